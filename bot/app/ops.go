package app

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/user"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
)

// Ops is what the operator's commands over the tenants file (bot enroll, bot dlq) work
// on once their flags are read: the environment, the tenants file, the ledger's store in
// Redis, and where to print (what the command returns on Stdout, what it notes on
// Stderr). A mistake in what they are asked is a *SetupError.
type Ops struct {
	Env            config.Env
	File           *config.File
	Store          *ledger.RedisStore
	Stdout, Stderr io.Writer
}

// EnrollTTL is how long an enrollment code is valid (once).
const EnrollTTL = 10 * time.Minute

// tenant is the tenant of the file named id.
func (o Ops) tenant(id string) (*config.Tenant, error) {
	t, ok := o.File.Tenant(id)
	if !ok {
		return nil, &SetupError{fmt.Errorf("--tenant: no tenant %q in %s", id, o.File.Name)}
	}
	return t, nil
}

// executor is the executor the tools work with (toolExecutor).
func (o Ops) executor() (*executor.Executor, error) {
	ex, err := toolExecutor(o.Env, o.File, o.Store)
	if err != nil {
		return nil, &SetupError{err}
	}
	return ex, nil
}

// Enroll is `bot enroll`: it prints a one-time code that links the chat identity sending
// it to name of tenant with role (default: the person's role in the tenants file, else
// viewer), valid EnrollTTL, and says on Stderr how to send it.
func (o Ops) Enroll(ctx context.Context, tenant, name, role string) error {
	t, err := o.tenant(tenant)
	if err != nil {
		return err
	}
	configured := ""
	if p, ok := t.Person(name); ok {
		configured = string(p.Role)
	}
	r, err := conversation.EnrollRole(role, configured)
	if err != nil {
		return &SetupError{err}
	}
	code, err := conversation.Enroll(ctx, o.Store.Client(), o.Env.RedisKeyPrefix, conversation.Enrollment{Tenant: tenant, Name: name, Role: r}, EnrollTTL)
	if err != nil {
		return err
	}
	fmt.Fprintln(o.Stdout, code)
	fmt.Fprintf(o.Stderr, "valid for 10 minutes, once: send /start %s to the Telegram bot, or JOIN %s on WhatsApp, to link that chat identity to %s (%s) of %s\n",
		code, code, name, r, tenant)
	return nil
}

// Revoke is `bot enroll --revoke`: it unlinks every chat account enrolled as name in
// tenant, and says how many.
func (o Ops) Revoke(ctx context.Context, tenant, name string) error {
	if _, err := o.tenant(tenant); err != nil {
		return err
	}
	n, err := conversation.Revoke(ctx, o.Store.Client(), o.Env.RedisKeyPrefix, tenant, name)
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "revoked %d linked chat account(s) of %s in %s\n", n, name, tenant)
	return nil
}

// DeadLetters is `bot dlq list`: tenant's dead-lettered executions, one a line, and on
// Stderr how many.
func (o Ops) DeadLetters(ctx context.Context, tenant string) error {
	ex, err := o.executor()
	if err != nil {
		return err
	}
	dls, err := ex.DeadLetters(ctx, tenant)
	if err != nil {
		return err
	}
	for _, d := range dls {
		fmt.Fprintln(o.Stdout, d)
	}
	fmt.Fprintf(o.Stderr, "%d dead-lettered execution(s) for %s\n", len(dls), tenant)
	return nil
}

// Redrive is `bot dlq redrive`: tenant's dead-lettered execution of incident id (any
// case) AUTHORIZED again by the engineer by (default: the OS user) and queued with its
// original idempotency key.
func (o Ops) Redrive(ctx context.Context, tenant, id, by string) error {
	ex, err := o.executor()
	if err != nil {
		return err
	}
	if u, err := user.Current(); by == "" && err == nil {
		by = u.Username
	}
	if strings.TrimSpace(by) == "" {
		return &SetupError{errors.New("--by: say who re-drives")}
	}
	id = strings.ToUpper(id)
	if err := ex.Redrive(ctx, tenant, id, ledger.Actor{Kind: ledger.ActorEngineer, ID: by, Channel: "cli"}); err != nil {
		return err
	}
	fmt.Fprintf(o.Stdout, "re-driven: %s of %s is AUTHORIZED again and queued with its original idempotency key\n", id, tenant)
	return nil
}
