package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/redis/go-redis/v9"
)

// Connect builds the Redis client the environment describes and checks that it answers.
// desc describes the server for logs; the error is safe to print (it names the variable,
// never a password).
func Connect(ctx context.Context, env config.Env) (rc redis.UniversalClient, desc string, err error) {
	rc, desc, err = RedisClient(env)
	if err != nil {
		return nil, desc, err
	}
	if err := PingRedis(ctx, rc); err != nil {
		_ = rc.Close()
		return nil, desc, fmt.Errorf("%s: Redis does not answer: %s", desc, RedactErr(err))
	}
	return rc, desc, nil
}

// ServeOptions are what `bot serve` read: the environment and the tenants file.
type ServeOptions struct {
	Env    config.Env
	File   *config.File
	Lookup channel.Lookup
	Logger *slog.Logger
	// Version is shown by the status endpoint.
	Version string
}

// SetupError: the bot could not start for a reason the operator fixes (Redis does not
// answer, a checkpoint sink is unusable, a chat platform refused the credentials).
type SetupError struct{ Err error }

func (e *SetupError) Error() string { return e.Err.Error() }
func (e *SetupError) Unwrap() error { return e.Err }

// Serve is `bot serve` once its configuration is read: it connects to Redis (whose own
// log lines then go through the log), opens the checkpoint sinks and the executed-keys
// file, builds the bot, checks its chat platforms and runs it until ctx ends. A failure
// before running is a *SetupError; any other error is what stopped the running bot.
func Serve(ctx context.Context, o ServeOptions) error {
	env := o.Env
	rc, desc, err := Connect(ctx, env)
	if err != nil {
		return &SetupError{err}
	}
	defer rc.Close()
	// Redis answers: from now on the client's own lines (reconnects during an outage)
	// go through the log, rate-limited.
	defer RouteRedisLog(o.Logger).Flush()
	key, _ := env.SigningKey()
	sink, sinkName, err := OpenSinks(ctx, env, key)
	if err != nil {
		return &SetupError{err}
	}
	opts := Options{Env: env, File: o.File, Lookup: o.Lookup, Redis: rc, Logger: o.Logger, Signer: key, Secret: []byte(env.AlertSecret.Reveal()), Addr: env.Addr,
		KeyPrefix: env.RedisKeyPrefix, Sink: sink, SinkName: sinkName, Version: o.Version}
	if path := env.LedgerCheckpointFile; path != "" {
		ef, err := ledger.NewExecutedFile(ledger.ExecutedPath(path))
		if err == nil {
			_, _, err = ef.Executed(ctx, "", "") // an unreadable file stops serve now, not at the first execution
		}
		if err != nil {
			return &SetupError{fmt.Errorf("LEDGER_CHECKPOINT_FILE: %w", err)}
		}
		opts.Executed = ef
	}
	bot, err := New(opts)
	if err != nil {
		return &SetupError{err}
	}
	defer bot.Close()
	if err := bot.Check(ctx); err != nil {
		return &SetupError{err}
	}
	o.Logger.Info("alertengine serving", "addr", env.Addr, "tenants", len(o.File.Tenants), "redis", desc, "channels", bot.Components().Channels)
	return bot.Run(ctx)
}
