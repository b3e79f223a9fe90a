package app

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/redis/go-redis/v9"
)

// LedgerCheckEvery is how often a running bot compares every tenant's chain with its last
// checkpoint, besides at start and on every append.
const LedgerCheckEvery = 10 * time.Second

// OpenSinks opens where the bot keeps checkpoints outside Redis: the file of
// LEDGER_CHECKPOINT_FILE, checked before serving (its directory writable, an existing file
// sound and signed by key), and, with LEDGER_CHECKPOINT_URL, the auditor's service too.
// It returns nil when neither is configured, and a description safe to show.
func OpenSinks(ctx context.Context, env config.Env, key ed25519.PrivateKey) (ledger.CheckpointSink, string, error) {
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

// RouteRedisLog sends the Redis client's own log lines (process-wide) through log,
// rate-limited; Flush the result when stopping.
func RouteRedisLog(log *slog.Logger) *RedisLog {
	rl := NewRedisLog(RedisLogOptions{Logger: log})
	redis.SetLogger(rl)
	return rl
}
