package executor

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Drain handles, one after another on the caller's goroutine, the outbox entries waiting
// for this consumer now, and returns how many it handled. It is Run without the blocking
// read, the workers and the reclaim pass — the same lease, ledger checks, retries (through
// Options.Sleep), dead letters and OnOutcome — for a driver that owns the clock (the
// governance simulation).
func (e *Executor) Drain(ctx context.Context) (int, error) {
	if err := e.ensureGroup(ctx); err != nil {
		return 0, err
	}
	n := 0
	for ctx.Err() == nil {
		rctx, cancel := e.redisCtx(ctx)
		res, err := e.opts.Redis.XReadGroup(rctx, &redis.XReadGroupArgs{
			Group: e.opts.Group, Consumer: e.opts.Consumer, Streams: []string{e.outbox, ">"}, Count: 1, Block: -1,
		}).Result()
		cancel()
		if errors.Is(err, redis.Nil) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read outbox: %w", err)
		}
		got := false
		for _, s := range res {
			for _, m := range s.Messages {
				e.handle(ctx, m)
				n++
				got = true
			}
		}
		if !got {
			return n, nil
		}
	}
	return n, ctx.Err()
}
