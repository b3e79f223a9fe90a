package demo

import (
	"context"
	"time"
)

// FastForwarder is an embedded Redis whose clock moves only when told (miniredis).
type FastForwarder interface {
	FastForward(d time.Duration)
}

// DriveClock moves r's clock with the wall clock: at each tick (a time, as a ticker sends
// it) by the time since the previous one, from start, so keys with a TTL (approvals,
// leases, locks) expire as they would on a real server. It returns when ctx ends.
func DriveClock(ctx context.Context, r FastForwarder, start time.Time, ticks <-chan time.Time) error {
	last := start
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-ticks:
			if d := now.Sub(last); d > 0 {
				r.FastForward(d)
				last = now
			}
		}
	}
}
