package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/alertengine/alertengine/bot"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/prometheus/client_golang/prometheus"
)

func newLogger(env config.Env, w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: env.LogLevel}
	if env.LogFormat == config.LogJSON {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

func runServe(ctx context.Context, a *app, args []string) int {
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
	key, _ := env.SigningKey()
	store := ledger.NewRedisStore(rc, "")
	led, err := ledger.New(ledger.Options{Store: store, Signer: key, Logger: log})
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	srv, err := bot.NewServer(bot.ServerOptions{
		Addr:     env.Addr,
		Logger:   log,
		Registry: prometheus.NewRegistry(),
		Ready: []bot.Check{
			{Name: "redis", Check: func(ctx context.Context) error { return rc.Ping(ctx).Err() }},
			{Name: "ledger", Check: store.Ping},
		},
	})
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	_ = led
	log.Info("alertengine serving", "addr", env.Addr, "tenants", len(file.Tenants), "redis", desc)
	if err := srv.Run(ctx); err != nil {
		log.Error("server stopped", "err", err)
		return exitFailed
	}
	log.Info("stopped")
	return exitOK
}
