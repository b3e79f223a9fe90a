package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/ledger"
)

// TestHalfDoneWorkIsFinished: what a crashed replica left behind is finished by the next
// one: an incident stuck PROPOSED with no card gets validated and presented, and an
// AUTHORIZED incident whose execution was never enqueued is executed, once.
func TestHalfDoneWorkIsFinished(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	l := ledgerOf(t, h)
	ctx := context.Background()
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "pipeline"}
	pv := ""
	for _, ct := range app.ConversationTenants(h.file) {
		pv = ct.PolicyVersion
	}
	rec := func(e ledger.Entry) ledger.Entry {
		t.Helper()
		e.Tenant, e.PolicyVersion = "acme", pv
		out, err := l.Record(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	stuck := rec(ledger.Entry{Event: ledger.Detect, Service: "checkout", Actor: policy, Reason: "p95 2.8 s"}).Incident
	rec(ledger.Entry{Incident: stuck, Event: ledger.Propose, Actor: policy, Action: "restart_workers"})
	lost := rec(ledger.Entry{Event: ledger.Detect, Service: "payments", Actor: policy, Reason: "errors 19%"}).Incident
	for _, e := range []ledger.Entry{
		{Event: ledger.Propose, Actor: policy, Action: "restart_workers"},
		{Event: ledger.Validate, Actor: policy, Action: "restart_workers"},
		{Event: ledger.Authorize, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai", Channel: "telegram"}, Approval: "ap:AAAAAAAAAAABBBBBBBBBBB", Action: "restart_workers"},
	} {
		e.Incident = lost
		rec(e)
	}
	h.start(false)
	card := h.card(t)
	if !strings.Contains(card.Text+card.Caption, stuck) {
		t.Fatalf("the stuck incident was not presented: %q", card.Text)
	}
	if st := h.stage(t, stuck); st != ledger.Validated {
		t.Fatalf("stuck incident is %s, want VALIDATED", st)
	}
	select {
	case <-h.hook.calls:
	case <-time.After(40 * time.Second):
		t.Fatal("the authorized execution was never made")
	}
	waitStage(t, h, lost, ledger.Executed)
	if n, _ := h.hook.count(); n != 1 {
		t.Fatalf("%d calls, want 1", n)
	}
}
