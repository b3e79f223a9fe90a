package main

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// TestLedgerToolsOnRedis: replay, export (JSONL and Markdown) and verify of a tenant's
// chain in Redis, and verify naming the first missing entry after the stream was cut.
func TestLedgerToolsOnRedis(t *testing.T) {
	t.Parallel()
	srv := ledgertest.NewServer(t)
	prefix := srv.Prefix(t)
	rc := srv.Client(t)
	key, _ := serveEnvKey()
	store := ledger.NewRedisStore(rc, prefix)
	l, err := ledger.New(ledger.Options{Store: store, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	open, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout", Actor: policy, Reason: "p95 2.8 s", PolicyVersion: "pol-1"})
	if err != nil {
		t.Fatal(err)
	}
	inc := open.Incident
	for _, e := range []ledger.Entry{
		{Event: ledger.Propose, Actor: policy, Action: "restart_workers"},
		{Event: ledger.Validate, Actor: policy},
		{Event: ledger.Authorize, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai", Channel: "telegram"}, Approval: "ap:AAAAAAAAAAABBBBBBBBBBB", Action: "restart_workers", Evidence: "cardhash"},
		{Event: ledger.Execute, Actor: ledger.Actor{Kind: ledger.ActorOrchestrator, ID: "executor"}},
		{Event: ledger.Resolve, Actor: policy},
	} {
		e.Tenant, e.Incident, e.PolicyVersion = "acme", inc, "pol-1"
		if _, err := l.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	e := env{"REDIS_URL": srv.URL, "REDIS_KEY_PREFIX": prefix, "LEDGER_SIGNING_KEY": seed}

	code, out, errs := runCLI(t, e, "replay", "--tenant", "acme", "--incident", inc)
	if code != exitOK || !strings.Contains(out, "VALIDATED → AUTHORIZED") || !strings.Contains(out, "engineer:tendai via telegram") || !strings.HasSuffix(out, "chain: ok (6 entries)\n") {
		t.Fatalf("replay: exit %d\n%s%s", code, out, errs)
	}
	dir := t.TempDir()
	jsonl, md := filepath.Join(dir, "acme.jsonl"), filepath.Join(dir, "report.md")
	cpFile := filepath.Join(dir, "checkpoints.json")
	e["LEDGER_CHECKPOINT_FILE"] = cpFile
	if code, _, errs := runCLI(t, e, "export", "--tenant", "acme", "--incident", inc, "--format", "jsonl", "--out", jsonl); code != exitOK {
		t.Fatalf("export jsonl: %d %s", code, errs)
	}
	// The export's checkpoint is kept outside Redis too.
	sink, _ := ledger.NewFileSink(cpFile, key.Public().(ed25519.PublicKey))
	if m, err := sink.Load(ctx, "acme"); err != nil || m == nil || m.Checkpoint.Size != 6 {
		t.Fatalf("checkpoint file after the export: %+v %v, want 6 entries", m, err)
	}
	if code, out, _ := runCLI(t, e, "verify", "--file", jsonl); code != exitOK || out != "ok: 6 entries\n" {
		t.Fatalf("verify export: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, e, "export", "--tenant", "acme", "--incident", inc, "--format", "md", "--out", md); code != exitOK {
		t.Fatalf("export md: %d %s", code, errs)
	}
	report, _ := os.ReadFile(md)
	for _, want := range []string{"# Incident " + inc, "| tendai | telegram | authorize | restart_workers | pol-1 | `cardhash` |", "The tenant's chain verifies: 6 entries"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if code, out, _ := runCLI(t, e, "verify", "--tenant", "acme"); code != exitOK || out != "ok: 6 entries\n" {
		t.Fatalf("verify tenant: %d %q", code, out)
	}
	// Someone trims the stream's newest entries: the signed checkpoint of the resolution
	// (taken at entry 6) catches it.
	if err := rc.XDel(ctx, store.ChainKey("acme"), "5-0", "6-0").Err(); err != nil {
		t.Fatal(err)
	}
	if code, out, _ := runCLI(t, e, "verify", "--tenant", "acme"); code != exitFailed || !strings.HasPrefix(out, "entry 5: missing: the signed checkpoint covers 6 entries") {
		t.Fatalf("verify after cutting the newest entries: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, env{"REDIS_URL": srv.URL}, "export", "--tenant", "acme", "--incident", inc, "--format", "jsonl"); code != exitUsage || !strings.Contains(errs, "LEDGER_SIGNING_KEY") {
		t.Fatalf("export without a signing key: %d %q", code, errs)
	}
	// Redis loses the tenant whole (chain, tail, checkpoint): the file still knows.
	iter := rc.Scan(ctx, 0, prefix+"{ae:acme}:*", 100).Iterator()
	for iter.Next(ctx) {
		rc.Del(ctx, iter.Val())
	}
	if code, out, _ := runCLI(t, e, "verify", "--tenant", "acme"); code != exitFailed || !strings.HasPrefix(out, "chain has 0 entries but its last checkpoint (") || !strings.Contains(out, ") had 6: the ledger lost entries") {
		t.Fatalf("verify after Redis lost the chain: %d %q", code, out)
	}
}
