package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/redis/go-redis/v9"
)

// ledgerCheckInterval is how often serve compares every tenant's chain with its last
// checkpoint, besides at start and on every append.
const ledgerCheckInterval = 10 * time.Second

// openSinks opens where serve keeps checkpoints outside Redis: the file of
// LEDGER_CHECKPOINT_FILE, checked before serving (its directory writable, an existing file
// sound and signed by key), and, with LEDGER_CHECKPOINT_URL, the auditor's service too.
// It returns nil when neither is configured, and a description safe to show.
func openSinks(ctx context.Context, env config.Env, key ed25519.PrivateKey) (ledger.CheckpointSink, string, error) {
	pub := key.Public().(ed25519.PublicKey)
	var sinks ledger.Sinks
	var names []string
	if path := env.LedgerCheckpointFile; path != "" {
		f, err := ledger.NewFileSink(path, pub)
		if err == nil {
			err = f.Probe(ctx)
		}
		if err != nil {
			return nil, "", fmt.Errorf("LEDGER_CHECKPOINT_FILE: %w", err)
		}
		sinks, names = append(sinks, f), append(names, "file "+path)
	}
	if u := env.LedgerCheckpointURL; u != "" {
		h, err := ledger.NewHTTPSink(u, env.LedgerCheckpointToken.Reveal(), pub, nil)
		if err != nil {
			return nil, "", fmt.Errorf("LEDGER_CHECKPOINT_URL: %w", err)
		}
		sinks, names = append(sinks, h), append(names, "url "+u)
	}
	switch len(sinks) {
	case 0:
		return nil, "", nil
	case 1:
		return sinks[0], names[0], nil
	}
	return sinks, strings.Join(names, ", "), nil
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
func routeRedisLog(log *slog.Logger) *app.RedisLog {
	rl := app.NewRedisLog(app.RedisLogOptions{Logger: log})
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
