package audit_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/audit"
)

// testTools are the tools over a store holding one incident of acme (returned), signed
// with key, printing into out and notes.
func testTools(t *testing.T) (audit.Tools, string, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, ed25519.SeedSize))
	store := ledger.NewMemStore()
	l, err := ledger.New(ledger.Options{Store: store, Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	e, err := l.Record(context.Background(), ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout",
		Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}, Reason: "p95 up"})
	if err != nil {
		t.Fatal(err)
	}
	var out, notes bytes.Buffer
	return audit.Tools{SigningKey: key, Open: func(f func(audit.Store) error) error { return f(store) }, Stdout: &out, Stderr: &notes}, e.Incident, &out, &notes
}

// TestVerifyAnExportAndItsForgery: an export verifies (the verdict on stdout, what the
// checkpoint proved on stderr); a key that did not sign it is the verdict, and so is an
// entry changed after the export; asking two things is a usage error.
func TestVerifyAnExportAndItsForgery(t *testing.T) {
	t.Parallel()
	tools, id, out, notes := testTools(t)
	path := filepath.Join(t.TempDir(), "acme.jsonl")
	ctx := context.Background()
	if err := tools.Export(ctx, audit.IncidentRequest{Tenant: "acme", Incident: id, Format: "jsonl", Out: path}); err != nil {
		t.Fatal(err)
	}
	if notes.String() != "wrote "+path+"\n" {
		t.Fatalf("export said %q", notes)
	}
	out.Reset()
	notes.Reset()
	if err := tools.Verify(ctx, audit.VerifyRequest{File: path}); err != nil {
		t.Fatal(err)
	}
	if out.String() != "ok: 1 entries\n" || !strings.Contains(notes.String(), "(key pinned)") {
		t.Fatalf("stdout %q, stderr %q", out, notes)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, ed25519.SeedSize))
	err := audit.Tools{SigningKey: other, Stdout: out, Stderr: notes}.Verify(ctx, audit.VerifyRequest{File: path})
	if !errors.As(err, new(audit.Verdict)) || !strings.HasPrefix(err.Error(), "LEDGER_SIGNING_KEY's public key does not match the key that signed the export's checkpoint") {
		t.Fatalf("another key: %v", err)
	}
	b, _ := os.ReadFile(path)
	os.WriteFile(path, bytes.Replace(b, []byte("p95 up"), []byte("p99 up"), 1), 0o600)
	if err := tools.Verify(ctx, audit.VerifyRequest{File: path}); !errors.As(err, new(audit.Verdict)) {
		t.Fatalf("an entry changed: %v", err)
	}
	err = tools.Verify(ctx, audit.VerifyRequest{File: path, Tenant: "acme"})
	if !errors.As(err, new(audit.UsageError)) || err.Error() != "bot verify: give exactly one of --tenant T or --file EXPORT.jsonl" {
		t.Fatalf("two things: %v", err)
	}
}

// TestReplayPrintsTheTimeline: the incident's header, its timeline and the chain's verdict;
// an incident that is not there is an error, not a verdict.
func TestReplayPrintsTheTimeline(t *testing.T) {
	t.Parallel()
	tools, id, out, _ := testTools(t)
	ctx := context.Background()
	if err := tools.Replay(ctx, audit.IncidentRequest{Tenant: "acme", Incident: id}); err != nil {
		t.Fatal(err)
	}
	ls := strings.Split(strings.TrimSpace(out.String()), "\n")
	if !strings.HasPrefix(ls[0], id+"  checkout  ") || ls[len(ls)-1] != "chain: ok (1 entries)" {
		t.Fatalf("replay:\n%s", out)
	}
	// An entry changed in the store: the timeline, then the chain's verdict.
	tools.Open(func(s audit.Store) error {
		s.(*ledger.MemStore).Tamper("acme", func(es []ledger.Entry) []ledger.Entry {
			es[0].Reason = "p99 up"
			return es
		})
		return nil
	})
	out.Reset()
	err := tools.Replay(ctx, audit.IncidentRequest{Tenant: "acme", Incident: id})
	if !errors.As(err, new(audit.Verdict)) || !strings.HasPrefix(err.Error(), "chain: DOES NOT VERIFY: ") || !strings.HasPrefix(out.String(), id+"  checkout  ") || strings.Contains(out.String(), "chain:") {
		t.Fatalf("tampered: %v after\n%s", err, out)
	}
	err = tools.Replay(ctx, audit.IncidentRequest{Tenant: "acme", Incident: "INC-NONE"})
	if err == nil || errors.As(err, new(audit.Verdict)) || err.Error() != "no incident INC-NONE for tenant acme" {
		t.Fatalf("no such incident: %v", err)
	}
	if err := tools.Replay(ctx, audit.IncidentRequest{Tenant: "acme"}); !errors.As(err, new(audit.UsageError)) {
		t.Fatalf("no incident named: %v", err)
	}
}

// TestToolsWithoutASigningKey: what needs the ledger's key says which variable to set.
func TestToolsWithoutASigningKey(t *testing.T) {
	t.Parallel()
	tools, id, out, _ := testTools(t)
	ctx := context.Background()
	if err := tools.Keys(); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.ParseVerifier(strings.TrimSuffix(out.String(), "\n")); err != nil {
		t.Fatalf("keys printed %q: %v", out, err)
	}
	tools.SigningKey = nil
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"keys", tools.Keys(), "LEDGER_SIGNING_KEY: required to sign checkpoints (or LEDGER_SIGNING_KEY_FILE)"},
		{"export jsonl", tools.Export(ctx, audit.IncidentRequest{Tenant: "acme", Incident: id, Format: "jsonl"}), "LEDGER_SIGNING_KEY: required to sign the export's checkpoint (or LEDGER_SIGNING_KEY_FILE)"},
		{"accept-loss", tools.AcceptLoss(ctx, audit.LossRequest{Tenant: "acme", By: "tendai", Reason: "checked"}), "LEDGER_SIGNING_KEY: required (the acceptance is signed with serve's key)"},
		{"accept-loss unasked", tools.AcceptLoss(ctx, audit.LossRequest{Tenant: "acme", By: "tendai"}), "bot ledger accept-loss: --by and --reason are both required (they are recorded in the ledger)"},
	}
	for _, c := range cases {
		if !errors.As(c.err, new(audit.UsageError)) || c.err.Error() != c.want {
			t.Errorf("%s: %v, want the usage error %q", c.name, c.err, c.want)
		}
	}
}

// TestAcceptLossNeedsACheckpointOutside: with no checkpoint kept outside the store there
// is no recorded loss to accept (a usage error); a sink that cannot be opened is a
// failure in its own words.
func TestAcceptLossNeedsACheckpointOutside(t *testing.T) {
	t.Parallel()
	tools, _, _, _ := testTools(t)
	ctx := context.Background()
	r := audit.LossRequest{Tenant: "acme", By: "tendai", Reason: "checked"}
	tools.Sinks = func(string) (ledger.CheckpointSink, string, error) { return nil, "", nil }
	if err := tools.AcceptLoss(ctx, r); !errors.As(err, new(audit.UsageError)) || !strings.HasPrefix(err.Error(), "no checkpoint outside Redis") {
		t.Fatalf("no sink: %v", err)
	}
	tools.Sinks = func(string) (ledger.CheckpointSink, string, error) {
		return nil, "", errors.New("LEDGER_CHECKPOINT_FILE: permission denied")
	}
	if err := tools.AcceptLoss(ctx, r); !errors.As(err, new(audit.Failure)) || err.Error() != "LEDGER_CHECKPOINT_FILE: permission denied" {
		t.Fatalf("sink fails: %v", err)
	}
}
