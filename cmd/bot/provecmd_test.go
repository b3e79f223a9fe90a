package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// TestProveVerifyWitness: the auditor's round trip on a ledger in Redis. `bot keys` prints
// the verifier; `bot prove` writes a bundle that `bot verify --bundle` accepts offline
// (with the printed key pinned, and no Redis) and refuses once one byte changed; a
// witness cosigns the first checkpoint and a consistent later one, refuses a checkpoint
// that does not extend it; a bundle proved against the cosigned checkpoint verifies with
// the witness pinned.
func TestProveVerifyWitness(t *testing.T) {
	t.Parallel()
	srv, prefix, _, l := redisLedger(t)
	ctx := context.Background()
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	open, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout", Actor: policy, Reason: "p95 2.8 s", PolicyVersion: "pol-1"})
	if err != nil {
		t.Fatal(err)
	}
	inc := open.Incident
	record := func(e ledger.Entry) {
		t.Helper()
		e.Tenant, e.Incident, e.PolicyVersion = "acme", inc, "pol-1"
		if _, err := l.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	record(ledger.Entry{Event: ledger.Propose, Actor: policy, Action: "restart_workers"})
	record(ledger.Entry{Event: ledger.Validate, Actor: policy})
	e := env{"REDIS_URL": srv.URL, "REDIS_KEY_PREFIX": prefix, "LEDGER_SIGNING_KEY": seed, "LEDGER_ORIGIN": "ae.example"}
	dir := t.TempDir()
	p := func(name string) string { return filepath.Join(dir, name) }

	code, vkey, errs := runCLI(t, e, "keys")
	vkey = strings.TrimSpace(vkey)
	if code != exitOK || !strings.HasPrefix(vkey, "ae.example+") {
		t.Fatalf("keys: %d %q %s", code, vkey, errs)
	}
	if code, _, errs := runCLI(t, e, "prove", "--tenant", "acme", "--checkpoint", "--out", p("cp1")); code != exitOK {
		t.Fatalf("prove --checkpoint: %d %s", code, errs)
	}
	// The witness: a key of its own, the first checkpoint trusted as it comes.
	code, wkey, errs := runCLI(t, env{}, "witness", "--name", "w1.example", "--key", p("w.key"), "--init")
	wkey = strings.TrimSpace(wkey)
	if code != exitOK || !strings.HasPrefix(wkey, "w1.example+") {
		t.Fatalf("witness --init: %d %q %s", code, wkey, errs)
	}
	wit := []string{"witness", "--name", "w1.example", "--key", p("w.key"), "--log-key", vkey, "--state", p("w.state")}
	if code, out, errs := runCLI(t, env{}, append(wit, "--file", p("cp1"), "--out", p("cp1.cosigned"))...); code != exitOK {
		t.Fatalf("witness first: %d %s %s", code, out, errs)
	}
	record(ledger.Entry{Event: ledger.Authorize, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai", Channel: "telegram"}, Approval: "ap:AAAAAAAAAAABBBBBBBBBBB", Action: "restart_workers", Evidence: "cardhash"})
	if code, _, errs := runCLI(t, e, "prove", "--tenant", "acme", "--checkpoint", "--out", p("cp2")); code != exitOK {
		t.Fatalf("prove --checkpoint: %d %s", code, errs)
	}
	// A witness given the later checkpoint without a proof refuses.
	if code, out, _ := runCLI(t, env{}, append(wit, "--file", p("cp2"))...); code != exitFailed || !strings.Contains(out, "witness refuses") {
		t.Fatalf("witness without proof: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, e, "prove", "--consistency", p("cp1.cosigned"), p("cp2"), "--out", p("c12.json")); code != exitOK {
		t.Fatalf("prove --consistency: %d %s", code, errs)
	}
	if code, out, errs := runCLI(t, env{}, "verify", "--consistency", p("c12.json"), "--key", vkey); code != exitOK || !strings.Contains(out, "ae.example/acme at 4 entries extends its checkpoint at 3 entries") {
		t.Fatalf("verify --consistency: %d %q %s", code, out, errs)
	}
	if code, out, errs := runCLI(t, env{}, append(wit, "--file", p("c12.json"), "--out", p("cp2.cosigned"))...); code != exitOK {
		t.Fatalf("witness consistent: %d %q %s", code, out, errs)
	}
	// The bundle: verified offline (no Redis, no LEDGER_SIGNING_KEY), key and witness pinned.
	if code, _, errs := runCLI(t, e, "prove", "--tenant", "acme", "--incident", inc, "--out", p("bundle.json")); code != exitOK {
		t.Fatalf("prove --incident: %d %s", code, errs)
	}
	code, out, errs := runCLI(t, env{}, "verify", "--bundle", p("bundle.json"), "--key", vkey)
	if code != exitOK || out != "ok: 4 entries of "+inc+" (AUTHORIZED), each included in the signed tree of 4 entries\n" || !strings.Contains(errs, "no witness pinned") {
		t.Fatalf("verify --bundle: %d %q %s", code, out, errs)
	}
	// The bundle's own checkpoint carries no cosignature: with the witness pinned it fails.
	if code, out, _ := runCLI(t, env{}, "verify", "--bundle", p("bundle.json"), "--key", vkey, "--witness", wkey); code != exitFailed || !strings.Contains(out, "no signature by w1.example") {
		t.Fatalf("verify --bundle uncosigned with witness pinned: %d %q", code, out)
	}
	// Proved against the cosigned checkpoint, it passes with the witness pinned.
	if code, _, errs := runCLI(t, e, "prove", "--tenant", "acme", "--incident", inc, "--against", p("cp2.cosigned"), "--out", p("bundle2.json")); code != exitOK {
		t.Fatalf("prove --against: %d %s", code, errs)
	}
	if code, out, errs := runCLI(t, env{}, "verify", "--bundle", p("bundle2.json"), "--key", vkey, "--witness", wkey); code != exitOK || !strings.Contains(errs, "cosigned by w1.example") {
		t.Fatalf("verify --bundle cosigned: %d %q %s", code, out, errs)
	}
	raw, _ := os.ReadFile(p("bundle.json"))
	bad := strings.Replace(string(raw), "restart_workers", "restart_workerz", 1)
	os.WriteFile(p("bad.json"), []byte(bad), 0o600)
	if code, out, _ := runCLI(t, env{}, "verify", "--bundle", p("bad.json"), "--key", vkey); code != exitFailed || !strings.HasPrefix(out, "bundle entry 2: ") {
		t.Fatalf("verify altered bundle: %d %q", code, out)
	}
	if code, _, errs := runCLI(t, env{}, "verify", "--bundle", p("bundle.json"), "--key", "nope"); code != exitUsage || !strings.Contains(errs, "--key") {
		t.Fatalf("verify with a bad key: %d %s", code, errs)
	}
}

// TestExportPDF: `bot export --format pdf` writes the one-page PDF and, beside it, the
// bundle it names, which `bot verify --bundle` accepts offline.
func TestExportPDF(t *testing.T) {
	t.Parallel()
	srv := ledgertest.NewServer(t)
	prefix := srv.Prefix(t)
	l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(srv.Client(t), prefix)})
	if err != nil {
		t.Fatal(err)
	}
	open, err := l.Record(context.Background(), ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout", Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}, Reason: "p95 up", PolicyVersion: "pol-1"})
	if err != nil {
		t.Fatal(err)
	}
	e := env{"REDIS_URL": srv.URL, "REDIS_KEY_PREFIX": prefix, "LEDGER_SIGNING_KEY": seed}
	dir := t.TempDir()
	out := filepath.Join(dir, "inc.pdf")
	if code, _, errs := runCLI(t, e, "export", "--tenant", "acme", "--incident", open.Incident, "--format", "pdf"); code != exitUsage || !strings.Contains(errs, "--out FILE.pdf") {
		t.Fatalf("pdf to stdout: %d %s", code, errs)
	}
	code, _, errs := runCLI(t, e, "export", "--tenant", "acme", "--incident", open.Incident, "--format", "pdf", "--out", out)
	if code != exitOK || !strings.Contains(errs, "(1 page(s))") {
		t.Fatalf("export pdf: %d %s", code, errs)
	}
	pdf, _ := os.ReadFile(out)
	if !strings.HasPrefix(string(pdf), "%PDF-") {
		t.Fatalf("not a PDF: %.20q", pdf)
	}
	if code, out, errs := runCLI(t, e, "verify", "--bundle", filepath.Join(dir, "inc.bundle.json")); code != exitOK || !strings.HasPrefix(out, "ok: 1 entries") {
		t.Fatalf("verify the PDF's bundle: %d %q %s", code, out, errs)
	}
}
