package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"log/slog"
	"time"

	"github.com/alertengine/alertengine/bot"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/redis/go-redis/v9"
)

// ledgerCheckInterval is how often serve compares every tenant's chain with its last
// checkpoint, besides at start and on every append.
const ledgerCheckInterval = 10 * time.Second

// openSink opens the checkpoint file of LEDGER_CHECKPOINT_FILE, checked before serving:
// its directory writable, an existing file sound and signed by key. An empty path is no
// sink.
func openSink(ctx context.Context, path string, key ed25519.PrivateKey) (*ledger.FileSink, error) {
	if path == "" {
		return nil, nil
	}
	s, err := ledger.NewFileSink(path, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, err
	}
	if err := s.Probe(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// checkLedgers compares every tenant's chain with its last checkpoint. A loss is logged
// at ERROR and counted by the ledger itself; other failures (Redis down) are warnings.
func checkLedgers(ctx context.Context, l *ledger.Ledger, tenants []string, log *slog.Logger) {
	for _, t := range tenants {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := l.Check(cctx, t)
		cancel()
		if err != nil && !errors.Is(err, ledger.ErrLost) && ctx.Err() == nil {
			log.Warn("ledger check", "tenant", t, "err", err)
		}
	}
}

// ledgerGuard is the serve loop that re-checks the chains every ledgerCheckInterval, so a
// Redis that restarts empty is noticed even when no incident is being recorded.
func (s *system) ledgerGuard(ctx context.Context) error {
	t := time.NewTicker(ledgerCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			checkLedgers(ctx, s.ledger, s.tenants, s.log)
		}
	}
}

// routeRedisLog sends the Redis client's own log lines through log, rate-limited.
func routeRedisLog(log *slog.Logger) *bot.RedisLog {
	rl := bot.NewRedisLog(bot.RedisLogOptions{Logger: log})
	redis.SetLogger(rl)
	return rl
}

func tenantIDs(f *config.File) []string {
	out := make([]string, 0, len(f.Tenants))
	for _, t := range f.Tenants {
		out = append(out, t.ID)
	}
	return out
}
