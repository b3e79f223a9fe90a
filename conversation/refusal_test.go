package conversation_test

import (
	"context"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/ledger"
)

// TestThreadToldOfARecoveryNotRunAgain: when the executor refuses to run a recovery a
// second time (it ran before Redis lost the ledger entries saying so), the incident's
// thread reads that it was not run again and why, without internals.
func TestThreadToldOfARecoveryNotRunAgain(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	w.open()
	reason := "not run again: this approval's recovery already ran at 2026-12-06T07:58:00Z, before the audit ledger lost recent entries"
	if err := w.eng.Notify(context.Background(), ledger.Entry{Tenant: "acme", Incident: w.incident, Event: ledger.Security,
		Action: "restart_workers", Reason: reason}); err != nil {
		t.Fatal(err)
	}
	s, ok := w.tg.find(group, "⛔")
	if !ok {
		t.Fatal("nothing about the refused recovery in the thread")
	}
	text := s.Msg.Text()
	for _, want := range []string{"Recovery restart_workers not run again", "already ran at 2026-12-06T07:58:00Z", "accept-loss"} {
		if !strings.Contains(text, want) {
			t.Errorf("thread message lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "ae1-") || strings.Contains(text, "Redis") {
		t.Errorf("thread message leaks internals:\n%s", text)
	}
}
