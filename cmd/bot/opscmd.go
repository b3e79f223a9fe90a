package main

import (
	"context"
	"errors"
	"strings"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/audit"
)

// withOps loads the environment and the tenants file for the operator commands, connects
// to Redis and runs f with them.
func (a *cli) withOps(ctx context.Context, cfgPath string, f func(app.Ops) error) error {
	env, err := a.toolEnv()
	if err != nil {
		return err
	}
	file, err := config.Load(cfgPath, a.lookup, env, app.ChatChannels(a.lookup)...)
	if err != nil {
		return usage(err)
	}
	return withStore(ctx, env, func(store *ledger.RedisStore) error {
		return f(app.Ops{Env: env, File: file, Store: store, Stdout: a.stdout, Stderr: a.stderr})
	})
}

func runEnroll(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("enroll")
	cfgPath := fs.String("config", "alertengine.yaml", "tenants config file (YAML)")
	tenant := fs.String("tenant", "", "tenant id")
	name := fs.String("name", "", "the person's name (as in the config's people, or a new one)")
	role := fs.String("role", "", "approver or viewer (default: the person's role in the config, else viewer)")
	revoke := fs.Bool("revoke", false, "unlink every chat account enrolled as NAME instead")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	switch {
	case *tenant == "":
		return usage(audit.CheckTenant(*tenant, true))
	case *name == "":
		return usagef("--name: required (the person's name, e.g. --name tendai)")
	}
	return a.withOps(ctx, *cfgPath, func(o app.Ops) error {
		if *revoke {
			return failedAs("bot enroll --revoke", o.Revoke(ctx, *tenant, *name))
		}
		return o.Enroll(ctx, *tenant, *name, *role)
	})
}

func runDLQ(ctx context.Context, a *cli, args []string) error {
	dlqUsage := errors.New("usage: bot dlq list --tenant T | bot dlq redrive --tenant T INCIDENT")
	verb := ""
	if len(args) > 0 && (args[0] == "list" || args[0] == "redrive") {
		verb, args = args[0], args[1:]
	}
	fs := a.flags(strings.TrimSpace("dlq " + verb))
	cfgPath := fs.String("config", "alertengine.yaml", "tenants config file (YAML)")
	tenant := fs.String("tenant", "", "tenant id")
	by := fs.String("by", "", "who re-drives (recorded in the ledger; default: the OS user)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if verb == "" {
		return usage(dlqUsage)
	}
	if err := audit.CheckTenant(*tenant, true); err != nil {
		return usage(err)
	}
	if verb == "redrive" && fs.NArg() != 1 || verb == "list" && fs.NArg() != 0 {
		return usage(dlqUsage)
	}
	return a.withOps(ctx, *cfgPath, func(o app.Ops) error {
		if verb == "list" {
			return failedAs("bot dlq list", o.DeadLetters(ctx, *tenant))
		}
		return failedAs("bot dlq redrive", o.Redrive(ctx, *tenant, fs.Arg(0), *by))
	})
}
