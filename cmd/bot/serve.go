package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
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
	err = app.Serve(ctx, app.ServeOptions{Env: env, File: file, Lookup: a.lookup, Logger: log, Version: version})
	var setup *app.SetupError
	if errors.As(err, &setup) {
		fmt.Fprintln(a.stderr, setup.Err)
		return exitUsage
	}
	if err != nil {
		log.Error("stopped", "err", err)
		return exitFailed
	}
	log.Info("stopped")
	return exitOK
}
