package main

import (
	"context"
	"errors"
	"fmt"
	"os/user"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/audit"
)

// withOps loads the environment and the tenants file for the operator commands, connects
// to Redis and runs f.
func (a *cli) withOps(ctx context.Context, cfgPath string, f func(config.Env, *config.File, *ledger.RedisStore) error) error {
	env, err := a.toolEnv()
	if err != nil {
		return err
	}
	file, err := config.Load(cfgPath, a.lookup, env, app.ChatChannels(a.lookup)...)
	if err != nil {
		return usage(err)
	}
	return withStore(ctx, env, func(store *ledger.RedisStore) error { return f(env, file, store) })
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
	return a.withOps(ctx, *cfgPath, func(env config.Env, file *config.File, store *ledger.RedisStore) error {
		t, ok := file.Tenant(*tenant)
		if !ok {
			return usagef("--tenant: no tenant %q in %s", *tenant, file.Name)
		}
		if *revoke {
			n, err := conversation.Revoke(ctx, store.Client(), env.RedisKeyPrefix, *tenant, *name)
			if err != nil {
				return failedf("bot enroll --revoke: %v", err)
			}
			fmt.Fprintf(a.stdout, "revoked %d linked chat account(s) of %s in %s\n", n, *name, *tenant)
			return nil
		}
		configured := ""
		if p, ok := t.Person(*name); ok {
			configured = string(p.Role)
		}
		r, err := conversation.EnrollRole(*role, configured)
		if err != nil {
			return usage(err)
		}
		code, err := conversation.Enroll(ctx, store.Client(), env.RedisKeyPrefix, conversation.Enrollment{Tenant: *tenant, Name: *name, Role: r}, 10*time.Minute)
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, code)
		fmt.Fprintf(a.stderr, "valid for 10 minutes, once: send /start %s to the Telegram bot, or JOIN %s on WhatsApp, to link that chat identity to %s (%s) of %s\n",
			code, code, *name, r, *tenant)
		return nil
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
	return a.withOps(ctx, *cfgPath, func(env config.Env, file *config.File, store *ledger.RedisStore) error {
		ex, err := app.ToolExecutor(env, file, store)
		if err != nil {
			return usage(err)
		}
		if verb == "list" {
			dls, err := ex.DeadLetters(ctx, *tenant)
			if err != nil {
				return failedf("bot dlq list: %v", err)
			}
			for _, d := range dls {
				fmt.Fprintln(a.stdout, d)
			}
			fmt.Fprintf(a.stderr, "%d dead-lettered execution(s) for %s\n", len(dls), *tenant)
			return nil
		}
		who := *by
		if u, err := user.Current(); who == "" && err == nil {
			who = u.Username
		}
		if strings.TrimSpace(who) == "" {
			return usagef("--by: say who re-drives")
		}
		id := strings.ToUpper(fs.Arg(0))
		if err := ex.Redrive(ctx, *tenant, id, ledger.Actor{Kind: ledger.ActorEngineer, ID: who, Channel: "cli"}); err != nil {
			return failedf("bot dlq redrive: %v", err)
		}
		fmt.Fprintf(a.stdout, "re-driven: %s of %s is AUTHORIZED again and queued with its original idempotency key\n", id, *tenant)
		return nil
	})
}
