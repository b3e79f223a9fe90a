package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Loop is one long-running part of the bot.
type Loop struct {
	Name string
	// Run runs until ctx ends and returns nil then.
	Run func(ctx context.Context) error
	// Restart: a failure does not stop the others; Run is started again after a wait of
	// RestartMin doubling to RestartMax (a chat platform being down). Returning nil
	// before ctx ends means there is nothing (more) to run.
	Restart bool
}

// The waits before a restarting loop runs again.
const (
	RestartMin = time.Second
	RestartMax = time.Minute
)

// RunLoops runs every loop until ctx ends or one that does not restart fails: the first
// failure stops the others and is returned, once every loop has returned.
func RunLoops(ctx context.Context, log *slog.Logger, loops ...Loop) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errc := make(chan error, len(loops))
	for _, l := range loops {
		wg.Add(1)
		go func() {
			defer wg.Done()
			run := l.Run
			if l.Restart {
				run = func(ctx context.Context) error { return restarting(ctx, log, l) }
			}
			if err := run(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", l.Name, err)
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

// restarting runs l until ctx ends, again after each failure.
func restarting(ctx context.Context, log *slog.Logger, l Loop) error {
	wait := RestartMin
	for {
		err := l.Run(ctx)
		if ctx.Err() != nil || err == nil {
			return nil
		}
		if errors.Is(err, context.Canceled) && ctx.Err() != nil {
			return nil
		}
		log.Warn(l.Name+" failed; retrying", "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
		wait = min(2*wait, RestartMax)
	}
}
