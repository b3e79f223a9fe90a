package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
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
	file, err := config.Load(*cfgPath, a.lookup, env, app.ChatChannels(a.lookup)...)
	if err != nil {
		return a.problems(err)
	}
	log := newLogger(env, a.stderr)

	rc, desc, err := app.RedisClient(env)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	defer rc.Close()
	if err := app.PingRedis(ctx, rc); err != nil {
		fmt.Fprintf(a.stderr, "%s: Redis does not answer: %s\n", desc, app.RedactErr(err))
		return exitUsage
	}
	// Redis answers: from now on the client's own lines (reconnects during an outage)
	// go through the log, rate-limited.
	defer app.RouteRedisLog(log).Flush()
	key, _ := env.SigningKey()
	sink, sinkName, err := app.OpenSinks(ctx, env, key)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	o := app.Options{Env: env, File: file, Lookup: a.lookup, Redis: rc, Logger: log, Signer: key, Secret: []byte(env.AlertSecret.Reveal()), Addr: env.Addr,
		KeyPrefix: env.RedisKeyPrefix, Sink: sink, SinkName: sinkName, Version: version}
	if path := env.LedgerCheckpointFile; path != "" {
		ef, err := ledger.NewExecutedFile(ledger.ExecutedPath(path))
		if err == nil {
			_, _, err = ef.Executed(ctx, "", "") // an unreadable file stops serve now, not at the first execution
		}
		if err != nil {
			fmt.Fprintf(a.stderr, "LEDGER_CHECKPOINT_FILE: %v\n", err)
			return exitUsage
		}
		o.Executed = ef
	}
	bot, err := app.New(o)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	defer bot.Close()
	if err := bot.Check(ctx); err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	log.Info("alertengine serving", "addr", env.Addr, "tenants", len(file.Tenants), "redis", desc, "channels", bot.Components().Channels)
	if err := bot.Run(ctx); err != nil {
		log.Error("stopped", "err", err)
		return exitFailed
	}
	log.Info("stopped")
	return exitOK
}
