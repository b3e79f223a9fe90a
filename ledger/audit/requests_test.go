package audit_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/audit"
)

// errText is err's text, "" for none.
func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

func TestCheckProveAsksOneThing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		tenant, incident string
		checkpoint       bool
		old, new, want   string
	}{
		{"acme", "INC-1", false, "", "", ""},
		{"acme", "", true, "", "", ""},
		{"", "", false, "old.note", "new.note", ""},
		{"acme", "INC-1", true, "", "", "bot prove: give one of --incident ID, --checkpoint, or --consistency OLD NEW"},
		{"acme", "", false, "", "", "bot prove: give one of --incident ID, --checkpoint, or --consistency OLD NEW"},
		{"", "", false, "old.note", "", "bot prove --consistency OLD NEW: the NEW checkpoint file is missing"},
		{"", "", true, "", "", `--tenant: "" is not a tenant id ([a-z0-9-]{1,32})`},
		{"Acme!", "INC-1", false, "", "", `--tenant: "Acme!" is not a tenant id ([a-z0-9-]{1,32})`},
	}
	for _, c := range cases {
		err := audit.CheckProve(c.tenant, c.incident, c.checkpoint, c.old, c.new)
		if errText(err) != c.want {
			t.Errorf("CheckProve(%+v) = %v, want %q", c, err, c.want)
		}
		if err != nil && !errors.As(err, new(audit.UsageError)) {
			t.Errorf("CheckProve(%+v): %v is not a usage error", c, err)
		}
	}
}

func TestVerifyRequestMode(t *testing.T) {
	t.Parallel()
	cases := []struct {
		r          audit.VerifyRequest
		mode, want string
	}{
		{audit.VerifyRequest{Tenant: "acme"}, "chain", ""},
		{audit.VerifyRequest{File: "x.jsonl"}, "chain", ""},
		{audit.VerifyRequest{Bundle: "b.json"}, "proof", ""},
		{audit.VerifyRequest{Tenant: "acme", Follow: true, Interval: time.Minute}, "follow", ""},
		{audit.VerifyRequest{}, "", "bot verify: give exactly one of --tenant T or --file EXPORT.jsonl"},
		{audit.VerifyRequest{Tenant: "acme", File: "x.jsonl"}, "", "bot verify: give exactly one of --tenant T or --file EXPORT.jsonl"},
		{audit.VerifyRequest{Bundle: "b.json", Consistency: "c.json"}, "", "bot verify: give exactly one of --tenant, --file, --bundle or --consistency"},
		{audit.VerifyRequest{Tenant: "acme", Bundle: "b.json"}, "", "bot verify: give exactly one of --tenant, --file, --bundle or --consistency"},
		{audit.VerifyRequest{Tenant: "acme", Follow: true}, "", "bot verify --follow: --tenant T is required, and --interval must be positive"},
		{audit.VerifyRequest{Follow: true, Interval: time.Minute}, "", "bot verify --follow: --tenant T is required, and --interval must be positive"},
	}
	for _, c := range cases {
		mode, err := c.r.Mode()
		if mode != c.mode || errText(err) != c.want {
			t.Errorf("%+v.Mode() = %q, %v; want %q, %q", c.r, mode, err, c.mode, c.want)
		}
	}
}

func TestCheckExport(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ format, out, want string }{
		{"jsonl", "", ""},
		{"md", "r.md", ""},
		{"pdf", "r.pdf", ""},
		{"pdf", "", "--out FILE.pdf: required with --format pdf (the incident bundle is written beside it)"},
		{"pdf", "r.txt", "--out FILE.pdf: required with --format pdf (the incident bundle is written beside it)"},
		{"csv", "", `--format: want jsonl, md or pdf, got "csv"`},
	} {
		if got := errText(audit.CheckExport(c.format, c.out)); got != c.want {
			t.Errorf("CheckExport(%q, %q) = %q, want %q", c.format, c.out, got, c.want)
		}
	}
}

func TestChainResultTellsVerdictsFromErrors(t *testing.T) {
	t.Parallel()
	lines, err := audit.ChainResult(ledger.Report{Entries: 3}, nil, false)
	if err != nil || len(lines) != 1 || lines[0] != "ok: 3 entries" {
		t.Fatalf("ok chain: %q, %v", lines, err)
	}
	keyErr := fmt.Errorf("checkpoint: %w", &ledger.KeyError{Signer: "AAAA"})
	for flagKey, given := range map[bool]string{true: "--public-key", false: "LEDGER_SIGNING_KEY's public key"} {
		_, err := audit.ChainResult(ledger.Report{}, keyErr, flagKey)
		want := given + " does not match the key that signed the export's checkpoint (AAAA)"
		if !errors.As(err, new(audit.Verdict)) || err.Error() != want {
			t.Errorf("key mismatch (flag %v): %v, want the verdict %q", flagKey, err, want)
		}
	}
	readErr := errors.New("connection reset")
	if _, err := audit.ChainResult(ledger.Report{}, readErr, false); err != readErr {
		t.Errorf("a read error must stay an error, not a verdict: %v", err)
	}
}

func TestWitnessOpenNamesTheMissingFlags(t *testing.T) {
	t.Parallel()
	key := filepath.Join(t.TempDir(), "w.key")
	cases := []struct {
		w    audit.Witness
		want string
	}{
		{audit.Witness{KeyFile: key}, "bot witness: --name and --key are required"},
		{audit.Witness{Name: "w.example", KeyFile: key, Init: true}, ""},
		{audit.Witness{Name: "w.example", KeyFile: key}, "bot witness: --log-key, --state and one of --file or --listen are required (or --init)"},
	}
	for _, c := range cases {
		w, vkey, err := c.w.Open(time.Now)
		if errText(err) != c.want {
			t.Fatalf("%+v.Open: %v, want %q", c.w, err, c.want)
		}
		if err != nil && !errors.As(err, new(audit.UsageError)) {
			t.Errorf("%+v.Open: %v is not a usage error", c.w, err)
		}
		if c.w.Init && (w != nil || vkey == "") {
			t.Errorf("--init: want the verifier key only, got %v, %q", w, vkey)
		}
	}
}
