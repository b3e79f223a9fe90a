package ledger

import (
	"context"
	"errors"
	"time"
)

// checkTimeout bounds one tenant's check in CheckAll.
const checkTimeout = 10 * time.Second

// CheckAll compares every tenant's chain with its last checkpoint (Check). A loss is
// logged at ERROR and counted through Options.OnLoss by Check itself; any other failure
// (Redis down) is logged as a warning, and the next check tries again.
func (l *Ledger) CheckAll(ctx context.Context, tenants []string) {
	for _, t := range tenants {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		err := l.Check(cctx, t)
		cancel()
		if err != nil && !errors.Is(err, ErrLost) && ctx.Err() == nil {
			l.opts.Logger.Warn("ledger check", "tenant", t, "err", err)
		}
	}
}

// Guard runs CheckAll every `every` until ctx ends, so a Redis that restarts empty is
// noticed even when nothing is being recorded. It returns nil when ctx ends.
func (l *Ledger) Guard(ctx context.Context, tenants []string, every time.Duration) error {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			l.CheckAll(ctx, tenants)
		}
	}
}
