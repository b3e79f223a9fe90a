package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/telegram"
	"github.com/alertengine/alertengine/ledger"
)

func newLogger(env config.Env, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: env.LogLevel}
	if env.LogFormat == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runServe(ctx context.Context, a *cli, args []string) int {
	fs := a.flags("serve")
	cfgPath := fs.String("config", "alertengine.yaml", "tenants config file (YAML)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	env, err := config.LoadEnv(a.lookup, config.Serve)
	if err != nil {
		return a.problems(err)
	}
	file, err := config.Load(*cfgPath, a.lookup, env)
	if err != nil {
		return a.problems(err)
	}
	log := newLogger(env, a.stderr)

	rc, desc, err := redisClient(env)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	defer rc.Close()
	if err := pingRedis(ctx, rc); err != nil {
		fmt.Fprintf(a.stderr, "%s: Redis does not answer: %s\n", desc, redactErr(err))
		return exitUsage
	}
	// Redis answers: from now on the client's own lines (reconnects during an outage)
	// go through the log, rate-limited.
	defer routeRedisLog(log).Flush()
	key, _ := env.SigningKey()
	sink, sinkName, err := openSinks(ctx, env, key)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	w := wiring{env: env, file: file, rc: rc, log: log, signer: key, secret: []byte(env.AlertSecret.Reveal()), addr: env.Addr, keyPrefix: env.RedisKeyPrefix,
		sink: sink, sinkName: sinkName}
	if path := env.LedgerCheckpointFile; path != "" {
		ef, err := ledger.NewExecutedFile(ledger.ExecutedPath(path))
		if err == nil {
			_, _, err = ef.Executed(ctx, "", "") // an unreadable file stops serve now, not at the first execution
		}
		if err != nil {
			fmt.Fprintf(a.stderr, "LEDGER_CHECKPOINT_FILE: %v\n", err)
			return exitUsage
		}
		w.executed = ef
	}
	sys, err := build(w)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	// A chain shorter than its last checkpoint is logged at ERROR and counted; serve keeps
	// running on a restarted chain whose incident codes never repeat the lost ones.
	checkLedgers(ctx, sys.ledger, sys.tenants, log)
	if sys.telegram != nil {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		name, err := sys.telegram.Check(cctx)
		cancel()
		switch {
		case errors.Is(err, telegram.ErrTokenRefused):
			fmt.Fprintln(a.stderr, "TELEGRAM_BOT_TOKEN: Telegram refused the token (getMe: 401 Unauthorized)")
			return exitUsage
		case err != nil:
			log.Warn("Telegram is not reachable at start-up; the bot starts and keeps trying", "err", err)
		default:
			log.Info("telegram bot", "username", name)
		}
	}
	log.Info("alertengine serving", "addr", env.Addr, "tenants", len(file.Tenants), "redis", desc, "telegram", env.TelegramEnabled())
	if err := sys.run(ctx, sys.server.Run); err != nil {
		log.Error("stopped", "err", err)
		return exitFailed
	}
	log.Info("stopped")
	return exitOK
}
