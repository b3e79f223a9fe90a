package main

import (
	"context"
	"errors"
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

// stopped logs how a long-running command ended: a failure is logged, not printed; a
// *app.SetupError (it never ran) is returned to be printed.
func stopped(log *slog.Logger, err error) error {
	switch {
	case errors.As(err, new(*app.SetupError)):
		return err
	case err != nil:
		log.Error("stopped", "err", err)
		return &exitError{code: exitFailed}
	}
	log.Info("stopped")
	return nil
}

func runServe(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("serve")
	cfgPath := fs.String("config", "alertengine.yaml", "tenants config file (YAML)")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	env, err := config.LoadEnv(a.lookup, config.Serve)
	if err != nil {
		return usage(err)
	}
	file, err := config.Load(*cfgPath, a.lookup, env, app.ChatChannels(a.lookup)...)
	if err != nil {
		return usage(err)
	}
	log := newLogger(env, a.stderr)
	return stopped(log, app.Serve(ctx, app.ServeOptions{Env: env, File: file, Lookup: a.lookup, Logger: log, Version: version}))
}
