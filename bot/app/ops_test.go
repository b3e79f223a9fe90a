package app

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// testOps are the operator's commands over testFile, printing into out and notes.
func testOps(t *testing.T) (Ops, *bytes.Buffer, *bytes.Buffer) {
	rc, prefix := ledgertest.Redis(t)
	var out, notes bytes.Buffer
	return Ops{Env: config.Env{RedisKeyPrefix: prefix}, File: testFile(), Store: ledger.NewRedisStore(rc, prefix), Stdout: &out, Stderr: &notes}, &out, &notes
}

// TestEnrollPrintsACodeInTheConfiguredRole: bot enroll prints the code alone on stdout and
// how to send it, with the person's role from the tenants file; a tenant not in the file
// or a role that cannot be granted is a usage error naming the flag.
func TestEnrollPrintsACodeInTheConfiguredRole(t *testing.T) {
	o, out, notes := testOps(t)
	if err := o.Enroll(t.Context(), "acme", "tendai", ""); err != nil {
		t.Fatal(err)
	}
	code := strings.TrimSpace(out.String())
	if code == "" || strings.ContainsAny(code, " \n") {
		t.Fatalf("stdout %q: want the code alone", out)
	}
	if want := "valid for 10 minutes, once: send /start " + code + " to the Telegram bot, or JOIN " + code + " on WhatsApp, to link that chat identity to tendai (approver) of acme\n"; notes.String() != want {
		t.Fatalf("stderr %q, want %q", notes, want)
	}
	for _, c := range []struct{ tenant, role, want string }{
		{"nope", "", `--tenant: no tenant "nope" in test`},
		{"acme", "admin", `--role: want approver or viewer, got "admin"`},
	} {
		err := o.Enroll(t.Context(), c.tenant, "farai", c.role)
		if !errors.As(err, new(*SetupError)) || err.Error() != c.want {
			t.Errorf("Enroll(%s, role %q): %v, want the usage error %q", c.tenant, c.role, err, c.want)
		}
	}
}

// TestRevokeSaysHowMany: revoking a person with no linked account says 0.
func TestRevokeSaysHowMany(t *testing.T) {
	o, out, _ := testOps(t)
	if err := o.Revoke(t.Context(), "acme", "farai"); err != nil {
		t.Fatal(err)
	}
	if want := "revoked 0 linked chat account(s) of farai in acme\n"; out.String() != want {
		t.Fatalf("%q, want %q", out, want)
	}
}

// TestDeadLettersAndRedrive: an empty dead-letter queue says so on stderr, and re-driving
// an incident that has no dead letter fails (not a usage error: the request was right).
func TestDeadLettersAndRedrive(t *testing.T) {
	o, out, notes := testOps(t)
	if err := o.DeadLetters(t.Context(), "acme"); err != nil {
		t.Fatal(err)
	}
	if out.String() != "" || notes.String() != "0 dead-lettered execution(s) for acme\n" {
		t.Fatalf("stdout %q, stderr %q", out, notes)
	}
	err := o.Redrive(t.Context(), "acme", "inc-1", "tendai")
	if err == nil || errors.As(err, new(*SetupError)) {
		t.Fatalf("redrive of no dead letter: %v", err)
	}
	if out.String() != "" {
		t.Fatalf("said it re-drove: %q", out)
	}
}
