package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

// The first loop that fails stops the others, and its error names it.
func TestRunLoopsFirstFailureStopsAll(t *testing.T) {
	t.Parallel()
	var stopped atomic.Int32
	waiter := func(ctx context.Context) error { <-ctx.Done(); stopped.Add(1); return nil }
	err := RunLoops(t.Context(), slog.New(slog.DiscardHandler),
		Loop{Name: "a", Run: waiter}, Loop{Name: "b", Run: waiter},
		Loop{Name: "broken", Run: func(context.Context) error { return errors.New("disk full") }})
	if err == nil || err.Error() != "broken: disk full" || stopped.Load() != 2 {
		t.Errorf("err %v, %d loops stopped; want broken's error and both others stopped", err, stopped.Load())
	}
}

// A restarting loop never stops the others: it runs again after 1 s, 2 s, 4 s… up to a
// minute between tries, and a nil return means it has nothing more to run.
func TestRestartingLoopBacksOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var starts []time.Duration
		begin := time.Now()
		ctx, cancel := context.WithCancel(t.Context())
		flaky := Loop{Name: "chat", Restart: true, Run: func(context.Context) error {
			starts = append(starts, time.Since(begin))
			if len(starts) == 9 {
				cancel()
			}
			return errors.New("platform down")
		}}
		once := Loop{Name: "template", Restart: true, Run: func(context.Context) error { return nil }}
		if err := RunLoops(ctx, slog.New(slog.DiscardHandler), flaky, once); err != nil {
			t.Fatalf("RunLoops: %v", err)
		}
		var waits []string
		for i := 1; i < len(starts); i++ {
			waits = append(waits, (starts[i] - starts[i-1]).String())
		}
		if got := strings.Join(waits, " "); got != "1s 2s 4s 8s 16s 32s 1m0s 1m0s" {
			t.Errorf("waits %s", got)
		}
	})
}
