package auditpdf_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/auditpdf"
)

// incident records a whole incident approved by people with non-Latin names, and returns
// the render input with its bundle.
func incident(t *testing.T) auditpdf.Input {
	t.Helper()
	ctx := context.Background()
	s := ledger.NewMemStore()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	l, err := ledger.New(ledger.Options{Store: s, Clock: func() time.Time { at = at.Add(37 * time.Second); return at }})
	if err != nil {
		t.Fatal(err)
	}
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	rec := func(e ledger.Entry) ledger.Entry {
		t.Helper()
		e.Tenant, e.PolicyVersion = "acme", "pol-2026-11"
		out, err := l.Record(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	open := rec(ledger.Entry{Event: ledger.Detect, Service: "checkout", Actor: policy, Reason: "p95 latency 2.8 s over 1.2 s for 3 min; health 0.41"})
	inc := open.Incident
	for _, e := range []ledger.Entry{
		{Event: ledger.Diagnosis, Actor: ledger.Actor{Kind: ledger.ActorAI, ID: "lens-a"}, Confidence: 0.82, Reason: "connection pool exhausted after deploy 4f9a2c1 (Ελένη: raised pool timeout)", Data: map[string]string{"commits": "4f9a2c1 raise pool timeout (Ελένη Παππά)"}},
		{Event: ledger.Propose, Actor: policy, Action: "restart_workers", Confidence: 0.82, Reason: "restart workers"},
		{Event: ledger.Validate, Actor: policy, Reason: "within policy"},
		{Event: ledger.Authorize, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "Дмитрий Соколов", Channel: "telegram"}, Approval: "ap:AAAAAAAAAAABBBBBBBBBBB", Action: "restart_workers", Evidence: "9c1e4f0a7b2d3e5f", Reason: "approved 🚀 (田中 agreed)"},
		{Event: ledger.Execute, Actor: ledger.Actor{Kind: ledger.ActorOrchestrator, ID: "executor"}, Reason: "webhook 200 in 412 ms"},
		{Event: ledger.Resolve, Actor: policy, Reason: "healthy for 5 min (p95 0.9 s)"},
	} {
		e.Incident = inc
		rec(e)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, 32))
	signer, vkey, err := ledger.NoteSigner("ledger.example", key)
	if err != nil {
		t.Fatal(err)
	}
	b, err := ledger.BuildBundle(ctx, s, ledger.LogSigner{Origin: "ledger.example", Signer: signer, Verifier: vkey}, "acme", inc, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(b)
	cp, err := ledger.ParseCheckpointText(strings.SplitN(b.Checkpoint, "\n\n", 2)[0] + "\n")
	if err != nil {
		t.Fatal(err)
	}
	in, hist, err := l.Incident(ctx, "acme", inc)
	if err != nil {
		t.Fatal(err)
	}
	return auditpdf.Input{Incident: in, Entries: hist, Checkpoint: cp, Bundle: raw, BundleName: inc + ".bundle.json", Verifier: vkey, Generated: at}
}

// TestRenderOnePage: a simple incident fits one page; Greek and Cyrillic names are drawn,
// emoji and CJK are counted and the page says so; the text an auditor needs is there
// (pdftotext), and the page renders to PNG (pdftoppm) — kept at $AUDIT_PDF_PNG if set.
func TestRenderOnePage(t *testing.T) {
	t.Parallel()
	in := incident(t)
	var buf bytes.Buffer
	res, err := auditpdf.Render(&buf, in)
	if err != nil {
		t.Fatal(err)
	}
	if res.Pages != 1 {
		t.Fatalf("%d pages, want 1", res.Pages)
	}
	if res.Unrenderable != 3 { // 🚀 田 中
		t.Fatalf("%d characters counted as unrenderable, want 3 (an emoji, two CJK)", res.Unrenderable)
	}
	dir := t.TempDir()
	pdf := filepath.Join(dir, "report.pdf")
	if err := os.WriteFile(pdf, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("pdftotext"); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("pdftotext (poppler-utils) is required in CI")
		}
		testkit.Skip(t, "pdftotext (poppler-utils) not installed: the text and PNG checks need it")
	}
	out, err := exec.Command("pdftotext", "-layout", pdf, "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{"Incident " + in.Incident.ID + " — checkout", "Дмитрий Соколов", "Ελένη", "restart_workers", "pol-2026-11",
		"RESOLVED", "webhook 200 in 412 ms", "bot verify --bundle " + in.Incident.ID + ".bundle.json", "ledger.example/acme — 7 entries", "cannot be drawn"} {
		if !strings.Contains(text, want) {
			t.Errorf("page lacks %q:\n%s", want, text)
		}
	}
	png := filepath.Join(dir, "page")
	if err := exec.Command("pdftoppm", "-png", "-r", "110", "-singlefile", pdf, png).Run(); err != nil {
		t.Fatal(err)
	}
	img, err := os.ReadFile(png + ".png")
	if err != nil || !bytes.HasPrefix(img, []byte("\x89PNG")) {
		t.Fatalf("no PNG: %v", err)
	}
	if dst := os.Getenv("AUDIT_PDF_PNG"); dst != "" {
		if err := os.WriteFile(dst, img, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
