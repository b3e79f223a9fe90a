package main

import (
	"context"
	"fmt"
	"os/user"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
)

// opsEnv loads the environment and the tenants file for the operator commands, and
// connects to Redis.
func (a *cli) opsEnv(ctx context.Context, cfgPath string) (config.Env, *config.File, *ledger.RedisStore, func(), int, bool) {
	env, code, ok := a.toolEnv()
	if !ok {
		return env, nil, nil, nil, code, false
	}
	file, err := config.Load(cfgPath, a.lookup, env, app.ChatChannels(a.lookup)...)
	if err != nil {
		return env, nil, nil, nil, a.problems(err), false
	}
	store, closeFn, code, ok := a.openStore(ctx, env)
	if !ok {
		return env, nil, nil, nil, code, false
	}
	return env, file, store, closeFn, 0, true
}

func runEnroll(ctx context.Context, a *cli, args []string) int {
	fs := a.flags("enroll")
	cfgPath := fs.String("config", "alertengine.yaml", "tenants config file (YAML)")
	tenant := fs.String("tenant", "", "tenant id")
	name := fs.String("name", "", "the person's name (as in the config's people, or a new one)")
	role := fs.String("role", "", "approver or viewer (default: the person's role in the config, else viewer)")
	revoke := fs.Bool("revoke", false, "unlink every chat account enrolled as NAME instead")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	switch {
	case *tenant == "":
		fmt.Fprintln(a.stderr, "--tenant: required (e.g. --tenant acme)")
		return exitUsage
	case *name == "":
		fmt.Fprintln(a.stderr, "--name: required (the person's name, e.g. --name tendai)")
		return exitUsage
	}
	env, file, store, closeFn, code, ok := a.opsEnv(ctx, *cfgPath)
	if !ok {
		return code
	}
	defer closeFn()
	t, ok := file.Tenant(*tenant)
	if !ok {
		fmt.Fprintf(a.stderr, "--tenant: no tenant %q in %s\n", *tenant, file.Name)
		return exitUsage
	}
	if *revoke {
		n, err := conversation.Revoke(ctx, store.Client(), env.RedisKeyPrefix, *tenant, *name)
		if err != nil {
			fmt.Fprintf(a.stderr, "bot enroll --revoke: %v\n", err)
			return exitFailed
		}
		fmt.Fprintf(a.stdout, "revoked %d linked chat account(s) of %s in %s\n", n, *name, *tenant)
		return exitOK
	}
	r := *role
	if r == "" {
		r = "viewer"
		if p, ok := t.Person(*name); ok {
			r = string(p.Role)
		}
	}
	if r != "approver" && r != "viewer" {
		fmt.Fprintf(a.stderr, "--role: want approver or viewer, got %q\n", r)
		return exitUsage
	}
	enrollCode, err := conversation.Enroll(ctx, store.Client(), env.RedisKeyPrefix, conversation.Enrollment{Tenant: *tenant, Name: *name, Role: r}, 10*time.Minute)
	if err != nil {
		fmt.Fprintf(a.stderr, "bot enroll: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(a.stdout, "%s\n", enrollCode)
	fmt.Fprintf(a.stderr, "valid for 10 minutes, once: send /start %s to the Telegram bot, or JOIN %s on WhatsApp, to link that chat identity to %s (%s) of %s\n",
		enrollCode, enrollCode, *name, r, *tenant)
	return exitOK
}

func runDLQ(ctx context.Context, a *cli, args []string) int {
	const usage = "usage: bot dlq list --tenant T | bot dlq redrive --tenant T INCIDENT"
	verb := ""
	if len(args) > 0 && (args[0] == "list" || args[0] == "redrive") {
		verb, args = args[0], args[1:]
	}
	fs := a.flags(strings.TrimSpace("dlq " + verb))
	cfgPath := fs.String("config", "alertengine.yaml", "tenants config file (YAML)")
	tenant := fs.String("tenant", "", "tenant id")
	by := fs.String("by", "", "who re-drives (recorded in the ledger; default: the OS user)")
	if err := fs.Parse(args); err != nil {
		return flagError(fs, err)
	}
	if verb == "" {
		fmt.Fprintln(a.stderr, usage)
		return exitUsage
	}
	switch {
	case *tenant == "":
		fmt.Fprintln(a.stderr, "--tenant: required (e.g. --tenant acme)")
		return exitUsage
	case !ledger.ValidTenant(*tenant):
		fmt.Fprintf(a.stderr, "--tenant: %q is not a tenant id ([a-z0-9-]{1,32})\n", *tenant)
		return exitUsage
	}
	if verb == "redrive" && fs.NArg() != 1 || verb == "list" && fs.NArg() != 0 {
		fmt.Fprintln(a.stderr, usage)
		return exitUsage
	}
	env, file, store, closeFn, code, ok := a.opsEnv(ctx, *cfgPath)
	if !ok {
		return code
	}
	defer closeFn()
	ex, err := app.ToolExecutor(env, file, store)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	if verb == "list" {
		dls, err := ex.DeadLetters(ctx, *tenant)
		if err != nil {
			fmt.Fprintf(a.stderr, "bot dlq list: %v\n", err)
			return exitFailed
		}
		for _, d := range dls {
			fmt.Fprintf(a.stdout, "%s  %s  %s  attempts %d  %s  key %s\n", d.ID, d.At.UTC().Format(time.RFC3339), d.Execution.Action, d.Attempts, d.Reason, d.Execution.IdempotencyKey)
		}
		fmt.Fprintf(a.stderr, "%d dead-lettered execution(s) for %s\n", len(dls), *tenant)
		return exitOK
	}
	who := *by
	if who == "" {
		if u, err := user.Current(); err == nil {
			who = u.Username
		}
	}
	if strings.TrimSpace(who) == "" {
		fmt.Fprintln(a.stderr, "--by: say who re-drives")
		return exitUsage
	}
	id := strings.ToUpper(fs.Arg(0))
	if err := ex.Redrive(ctx, *tenant, id, ledger.Actor{Kind: ledger.ActorEngineer, ID: who, Channel: "cli"}); err != nil {
		fmt.Fprintf(a.stderr, "bot dlq redrive: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(a.stdout, "re-driven: %s of %s is AUTHORIZED again and queued with its original idempotency key\n", id, *tenant)
	return exitOK
}
