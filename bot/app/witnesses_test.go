package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"golang.org/x/mod/sumdb/note"
)

// TestWitnessedCheckpointsPublished: with LEDGER_WITNESS_URLS/KEYS set, serve's assembly
// runs the witnessing loop, which publishes each tenant's checkpoint note beside the
// checkpoint file, cosigned by the witness.
func TestWitnessedCheckpointsPublished(t *testing.T) {
	t.Parallel()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32))
	_, lkey, _ := ledger.NoteSigner(ledger.DefaultOrigin, key)
	lv, _ := ledger.ParseVerifier(lkey)
	wk := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	w, err := ledger.NewWitness("w1.example", wk, []note.Verifier{lv}, filepath.Join(t.TempDir(), "w.json"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ws := httptest.NewServer(w.Handler())
	defer ws.Close()
	wv, _ := ledger.ParseVerifier(w.VerifierKey())

	rs := ledgertest.NewServer(t)
	rc := rs.Client(t)
	cpFile := filepath.Join(t.TempDir(), "checkpoints.json")
	env := config.Env{LedgerWitnessURLs: []string{ws.URL}, LedgerWitnessKeys: []string{w.VerifierKey()}, LedgerWitnessQuorum: 1, LedgerCheckpointFile: cpFile}
	a, err := New(Options{File: testFile(), Redis: rc, KeyPrefix: rs.Prefix(t), Addr: "127.0.0.1:0", Signer: key, Secret: bytes.Repeat([]byte{2}, 32), Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if !slices.Contains(a.Components().Loops, "checkpoint-witnesses") {
		t.Fatalf("loops: %v", a.Components().Loops)
	}
	tenant := a.Tenants()[0]
	if _, err := a.Ledger().Record(context.Background(), ledger.Entry{Tenant: tenant, Event: ledger.Detect, Service: "checkout",
		Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}, Reason: "p95", PolicyVersion: "pol-1"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { a.notes.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	sink := ledger.NoteDirFor(cpFile)
	for deadline := time.Now().Add(5 * time.Second); ; {
		msg, _ := sink.LatestNote(ctx, tenant)
		if msg != nil {
			if cp, err := ledger.OpenCheckpointNote(msg, nil, lv, wv); err != nil || cp.Tree.N != 1 {
				t.Fatalf("published note: %v %+v", err, cp)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no checkpoint note published")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
