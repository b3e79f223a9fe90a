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

// runLedger is `bot ledger accept-loss`: an operator's signed acceptance of a tenant's
// lost ledger chains, which lifts the fence on the incidents from before the loss.
func runLedger(ctx context.Context, a *cli, args []string) error {
	if len(args) == 0 || args[0] != "accept-loss" {
		return usagef("usage: bot ledger accept-loss --tenant T --by NAME --reason \"...\"")
	}
	fs := a.flags("ledger accept-loss")
	tenant := fs.String("tenant", "", "tenant whose lost chains to accept")
	by := fs.String("by", "", "who reviewed the loss (recorded)")
	reason := fs.String("reason", "", "what was checked and why the bot may carry on (recorded)")
	cpFile := fs.String("checkpoints", "", "the checkpoint file serve keeps outside Redis (default: LEDGER_CHECKPOINT_FILE, else "+config.DefaultCheckpointFile+")")
	env, err := a.ready(fs, args[1:], func() error { return audit.CheckTenant(*tenant, false) }, func() error {
		if strings.TrimSpace(*by) == "" || strings.TrimSpace(*reason) == "" {
			return errors.New("bot ledger accept-loss: --by and --reason are both required (they are recorded in the ledger)")
		}
		return nil
	})
	if err != nil {
		return err
	}
	key, ok := env.SigningKey()
	if !ok {
		return usagef("LEDGER_SIGNING_KEY: required (the acceptance is signed with serve's key)")
	}
	env.LedgerCheckpointFile = audit.CheckpointFile(*cpFile, env.LedgerCheckpointFile, config.DefaultCheckpointFile)
	sink, desc, err := app.OpenSinks(ctx, env, key)
	if err != nil {
		return failedf("%v", err)
	}
	if sink == nil {
		return usagef("no checkpoint outside Redis (LEDGER_CHECKPOINT_FILE, LEDGER_CHECKPOINT_URL): there is no recorded loss to accept")
	}
	return withStore(ctx, env, func(store *ledger.RedisStore) error {
		out, err := audit.AcceptLoss(ctx, store, key, sink, desc, *tenant, *by, *reason)
		lines(a.stdout, out...)
		if err != nil && !errors.As(err, new(audit.Verdict)) {
			return failedf("%v", err) // its own words: "bot ledger accept-loss: …" or the ledger's
		}
		return err
	})
}
