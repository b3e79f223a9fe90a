package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/alertengine/alertengine/bot/app"
	"strings"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/audit"
)

// runLedger is `bot ledger accept-loss`: an operator's signed acceptance of a tenant's
// lost ledger chains, which lifts the fence on the incidents from before the loss.
func runLedger(ctx context.Context, a *cli, args []string) int {
	if len(args) == 0 || args[0] != "accept-loss" {
		fmt.Fprintln(a.stderr, "usage: bot ledger accept-loss --tenant T --by NAME --reason \"...\"")
		return exitUsage
	}
	fs := a.flags("ledger accept-loss")
	tenant := fs.String("tenant", "", "tenant whose lost chains to accept")
	by := fs.String("by", "", "who reviewed the loss (recorded)")
	reason := fs.String("reason", "", "what was checked and why the bot may carry on (recorded)")
	cpFile := fs.String("checkpoints", "", "the checkpoint file serve keeps outside Redis (default: LEDGER_CHECKPOINT_FILE, else "+config.DefaultCheckpointFile+")")
	if code, ok := parse(fs, args[1:]); !ok {
		return code
	}
	switch {
	case !ledger.ValidTenant(*tenant):
		fmt.Fprintf(a.stderr, "--tenant: %q is not a tenant id ([a-z0-9-]{1,32})\n", *tenant)
		return exitUsage
	case strings.TrimSpace(*by) == "" || strings.TrimSpace(*reason) == "":
		fmt.Fprintln(a.stderr, "bot ledger accept-loss: --by and --reason are both required (they are recorded in the ledger)")
		return exitUsage
	}
	env, code, ok := a.toolEnv()
	if !ok {
		return code
	}
	key, ok := env.SigningKey()
	if !ok {
		fmt.Fprintln(a.stderr, "LEDGER_SIGNING_KEY: required (the acceptance is signed with serve's key)")
		return exitUsage
	}
	path := audit.CheckpointFile(*cpFile, env.LedgerCheckpointFile, config.DefaultCheckpointFile)
	env.LedgerCheckpointFile = path
	sink, desc, err := app.OpenSinks(ctx, env, key)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitFailed
	}
	if sink == nil {
		fmt.Fprintln(a.stderr, "no checkpoint outside Redis (LEDGER_CHECKPOINT_FILE, LEDGER_CHECKPOINT_URL): there is no recorded loss to accept")
		return exitUsage
	}
	store, closeFn, code, ok := a.openStore(ctx, env)
	if !ok {
		return code
	}
	defer closeFn()
	l, err := ledger.New(ledger.Options{Store: store, Signer: key, Sink: sink})
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitFailed
	}
	acc, notes, err := l.AcceptLoss(ctx, *tenant, *by, *reason)
	if errors.Is(err, ledger.ErrNoLoss) {
		fmt.Fprintf(a.stdout, "%s: no unaccepted ledger loss (checkpoints: %s)\n", *tenant, desc)
		return exitFailed
	}
	if err != nil && acc.Signature == "" {
		fmt.Fprintf(a.stderr, "bot ledger accept-loss: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(a.stdout, "accepted: %s's lost ledger chains, by %s at %s: %s\n", *tenant, acc.By, acc.At.Format("2006-01-02 15:04:05Z"), acc.Reason)
	for _, n := range notes {
		fmt.Fprintf(a.stdout, "noted on %s (entry %d); its approvals work again\n", n.Incident, n.Seq)
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "bot ledger accept-loss: %v\n", err)
		return exitFailed
	}
	return exitOK
}
