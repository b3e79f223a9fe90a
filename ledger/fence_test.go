package ledger_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// TestRollbackFencesIncidentsUntilAccepted: the store comes back with an older copy of
// the chain (a Redis restarted from an AOF taken before the press), so an incident that
// was authorized reads VALIDATED again. Nothing that hands out or uses an approval is
// recorded on it — in this process, in a later one, until an operator accepts the loss —
// while incidents opened after the loss proceed. The acceptance is signed into the sink
// and noted on the incident.
func TestRollbackFencesIncidentsUntilAccepted(t *testing.T) {
	ctx := context.Background()
	sink, _ := newSink(t)
	at := time.Date(2026, 12, 6, 8, 0, 0, 0, time.UTC)
	clock := func() time.Time { return at }
	build := func(st ledger.Store, guarded bool) (*ledger.Ledger, string) {
		o := ledger.Options{Store: st, Clock: clock}
		if guarded {
			o.Signer, o.Sink = sinkKey, sink
		}
		l, err := ledger.New(o)
		if err != nil {
			t.Fatal(err)
		}
		id := ""
		for _, e := range []ledger.Event{ledger.Detect, ledger.Propose, ledger.Validate} {
			en := ev("acme", id, e)
			en.Service = "checkout"
			got, err := l.Record(ctx, en)
			if err != nil {
				t.Fatal(err)
			}
			id = got.Incident
		}
		return l, id
	}
	current, older := ledger.NewMemStore(), ledger.NewMemStore()
	l1, inc := build(current, true)
	if _, err := l1.Record(ctx, ev("acme", inc, ledger.Authorize)); err != nil {
		t.Fatal(err)
	}
	if err := l1.Check(ctx, "acme"); err != nil { // the sink covers the authorization
		t.Fatal(err)
	}
	// The older copy: the same first three entries, no authorization.
	_, same := build(older, false)
	if same != inc {
		t.Fatalf("the older copy opened %s, want %s", same, inc)
	}

	l2, err := ledger.New(ledger.Options{Store: older, Clock: clock, Signer: sinkKey, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Check(ctx, "acme"); !errors.Is(err, ledger.ErrLost) {
		t.Fatalf("Check on the rolled-back store: %v, want a loss", err)
	}
	for _, e := range []ledger.Event{ledger.Authorize, ledger.Escalation, ledger.PartialApprove} {
		if _, err := l2.Record(ctx, ev("acme", inc, e)); !errors.Is(err, ledger.ErrFenced) {
			t.Errorf("%s on %s after the rollback: %v, want ErrFenced", e, inc, err)
		}
	}
	if fenced, err := l2.Fenced(ctx, "acme", inc); err != nil || !fenced {
		t.Errorf("Fenced(%s) = %v, %v; want true", inc, fenced, err)
	}
	if _, err := l2.Record(ctx, ev("acme", inc, ledger.RefusedPress)); err != nil {
		t.Errorf("a refused press is still recorded on a fenced incident: %v", err)
	}
	// An incident opened after the loss is not fenced.
	fresh := open(t, l2, "search")
	for _, e := range []ledger.Event{ledger.Propose, ledger.Validate, ledger.Authorize} {
		if _, err := l2.Record(ctx, ev("acme", fresh.Incident, e)); err != nil {
			t.Fatalf("%s on %s, opened after the loss: %v", e, fresh.Incident, err)
		}
	}

	// A restarted process still fences it, and verify still reports the loss.
	l3, err := ledger.New(ledger.Options{Store: older, Clock: clock, Signer: sinkKey, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l3.Record(ctx, ev("acme", inc, ledger.Authorize)); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("authorize in a restarted process: %v, want ErrFenced", err)
	}
	pub := sinkKey.Public().(ed25519.PublicKey)
	mark, err := sink.Load(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.VerifyStoreMark(ctx, older, "acme", pub, mark); !errors.Is(err, ledger.ErrLost) {
		t.Fatalf("verify before acceptance: %v, want the loss", err)
	}

	if _, _, err := l3.AcceptLoss(ctx, "acme", "", "x"); err == nil {
		t.Error("an acceptance without a name was taken")
	}
	acc, notes, err := l3.AcceptLoss(ctx, "acme", "tendai", "checked the receiver: restart_workers ran once at 07:58")
	if err != nil {
		t.Fatalf("AcceptLoss: %v", err)
	}
	if acc.By != "tendai" || len(notes) != 1 || notes[0].Incident != inc || !strings.Contains(notes[0].Reason, "accepted by tendai: checked the receiver") {
		t.Fatalf("acceptance %+v, notes %+v; want one notice on %s naming who and why", acc, notes, inc)
	}
	mark, err = sink.Load(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(mark.Lost) != 1 || len(mark.Accepted) != 1 || mark.Accepted[0].Reason == "" {
		t.Fatalf("mark after acceptance: %d lost, %d accepted; want the lost chain kept and the acceptance signed in", len(mark.Lost), len(mark.Accepted))
	}
	if _, err := ledger.VerifyStoreMark(ctx, older, "acme", pub, mark); err != nil {
		t.Fatalf("verify after acceptance: %v", err)
	}
	if _, _, err := l3.AcceptLoss(ctx, "acme", "tendai", "again"); !errors.Is(err, ledger.ErrNoLoss) {
		t.Errorf("a second acceptance: %v, want ErrNoLoss", err)
	}
	if _, err := l3.Record(ctx, ev("acme", inc, ledger.Authorize)); err != nil {
		t.Errorf("authorize after acceptance: %v", err)
	}
	// The replica that found the loss lifts its fence at its next Check.
	if err := l2.Check(ctx, "acme"); err != nil && !errors.Is(err, ledger.ErrLost) {
		t.Fatal(err)
	}
	if fenced, _ := l2.Fenced(ctx, "acme", inc); fenced {
		t.Error("the fence stays up in the replica that found the loss after an operator accepted it")
	}
}
