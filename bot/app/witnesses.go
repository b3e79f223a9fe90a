package app

import (
	"context"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// notesLoop publishes each tenant's checkpoint note, cosigned by the witnesses of
// LEDGER_WITNESS_URLS, every LedgerCheckEvery; nil when no witness is configured.
func (a *App) notesLoop() (*Loop, error) {
	e := a.o.Env
	p, err := ledger.NewPublisher(ledger.WitnessConfig{URLs: e.LedgerWitnessURLs, Keys: e.LedgerWitnessKeys, Quorum: e.LedgerWitnessQuorum,
		Origin: e.LedgerOrigin, CheckpointFile: e.LedgerCheckpointFile, Sink: a.o.Sink}, a.store, a.o.Signer, a.log)
	if p == nil || err != nil {
		return nil, err
	}
	return &Loop{Name: "checkpoint-witnesses", Run: func(ctx context.Context) error {
		t := time.NewTicker(LedgerCheckEvery)
		defer t.Stop()
		p.Run(ctx, a.tenants, t.C)
		return nil
	}}, nil
}
