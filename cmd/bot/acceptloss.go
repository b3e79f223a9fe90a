package main

import (
	"context"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger/audit"
)

// runLedger is `bot ledger accept-loss`: an operator's signed acceptance of a tenant's
// lost ledger chains, which lifts the fence on the incidents from before the loss.
func runLedger(ctx context.Context, a *cli, args []string) error {
	if len(args) == 0 || args[0] != "accept-loss" {
		return usagef("usage: bot ledger accept-loss --tenant T --by NAME --reason \"...\"")
	}
	fs := a.flags("ledger accept-loss")
	var r audit.LossRequest
	fs.StringVar(&r.Tenant, "tenant", "", "tenant whose lost chains to accept")
	fs.StringVar(&r.By, "by", "", "who reviewed the loss (recorded)")
	fs.StringVar(&r.Reason, "reason", "", "what was checked and why the bot may carry on (recorded)")
	fs.StringVar(&r.Checkpoints, "checkpoints", "", "the checkpoint file serve keeps outside Redis (default: LEDGER_CHECKPOINT_FILE, else "+config.DefaultCheckpointFile+")")
	env, err := a.ready(fs, args[1:], func() error { return r.Check() })
	if err != nil {
		return err
	}
	return a.tools(ctx, env).AcceptLoss(ctx, r)
}
