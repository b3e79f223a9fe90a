package ledger_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// TestVoidedPartialApprovalIsNoApproval: tendai gives the first of two approvals to
// "Trust B: rollback", then rudo approves "Trust A: restart_workers", which runs. The
// folded incident, the timeline and the report name rudo alone as the approver and show
// tendai's approval as voided.
func TestVoidedPartialApprovalIsNoApproval(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	l, err := ledger.New(ledger.Options{Store: ledger.NewMemStore(), Clock: func() time.Time { at = at.Add(time.Minute); return at }})
	if err != nil {
		t.Fatal(err)
	}
	open := ev("acme", "", ledger.Detect)
	open.Service = "checkout"
	first, err := l.Record(ctx, open)
	if err != nil {
		t.Fatal(err)
	}
	id := first.Incident
	refA, refB := "ap:groupgroup0AAAAAAAAAAA", "ap:groupgroup0BBBBBBBBBBB"
	steps := []ledger.Entry{
		ev("acme", id, ledger.Propose),
		ev("acme", id, ledger.Validate),
		{Tenant: "acme", Incident: id, Event: ledger.PartialApprove, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai", Channel: "console"},
			Action: "rollback", Approval: refB, Reason: "first of two approvals for high-risk action rollback"},
		{Tenant: "acme", Incident: id, Event: ledger.Authorize, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "rudo", Channel: "console"},
			Action: "restart_workers", Approval: refA, Reason: "approved restart_workers"},
		// A late partial approval of the voided option (recorded after the authorization).
		{Tenant: "acme", Incident: id, Event: ledger.PartialApprove, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "farai", Channel: "console"},
			Action: "rollback", Approval: refB, Reason: "first of two approvals for high-risk action rollback"},
	}
	for _, e := range steps {
		if _, err := l.Record(ctx, e); err != nil {
			t.Fatalf("%s: %v", e.Event, err)
		}
	}
	in, hist, err := l.Incident(ctx, "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(in.ApprovedBy, ",") != "rudo" || in.Action != "restart_workers" {
		t.Fatalf("approved by %v for %s; want rudo alone for restart_workers", in.ApprovedBy, in.Action)
	}
	v := in.Voided()
	if len(v) != 2 || v[0].By != "tendai" || v[0].VoidedBy != "rudo" || v[0].VoidedFor != "restart_workers" || v[1].By != "farai" {
		t.Fatalf("voided %+v", v)
	}
	if !strings.Contains(v[0].Describe(), "tendai approved rollback (1 of 2)") || !strings.Contains(v[0].Describe(), "voided: rudo approved restart_workers instead") {
		t.Errorf("describe: %s", v[0].Describe())
	}
	tl := strings.Join(ledger.Timeline(hist), "\n")
	if strings.Count(tl, "[VOIDED: rudo approved restart_workers instead]") != 2 {
		t.Errorf("timeline does not mark both partial approvals voided:\n%s", tl)
	}
	var b bytes.Buffer
	if err := ledger.WriteReport(&b, in, hist, ledger.Report{}, nil); err != nil {
		t.Fatal(err)
	}
	rep := b.String()
	for _, want := range []string{"**Approved by:** rudo\n", "**Voided:** tendai approved rollback (1 of 2)", "partial_approve (VOIDED: rudo approved restart_workers instead)"} {
		if !strings.Contains(rep, want) {
			t.Errorf("report lacks %q:\n%s", want, rep)
		}
	}
}

// TestTwoApproversOfOneOption: both approvals of the same high-risk option are its
// approvers; nothing is voided.
func TestTwoApproversOfOneOption(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	l, err := ledger.New(ledger.Options{Store: ledger.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	open := ev("acme", "", ledger.Detect)
	open.Service = "checkout"
	first, err := l.Record(ctx, open)
	if err != nil {
		t.Fatal(err)
	}
	id, ref := first.Incident, "ap:groupgroup0BBBBBBBBBBB"
	for _, e := range []ledger.Entry{
		ev("acme", id, ledger.Propose), ev("acme", id, ledger.Validate),
		{Tenant: "acme", Incident: id, Event: ledger.PartialApprove, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai"}, Action: "rollback", Approval: ref},
		{Tenant: "acme", Incident: id, Event: ledger.Authorize, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "rudo"}, Action: "rollback", Approval: ref},
	} {
		if _, err := l.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	in, _, err := l.Incident(ctx, "acme", id)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(in.ApprovedBy, ",") != "tendai,rudo" || len(in.Voided()) != 0 {
		t.Fatalf("approved by %v, voided %v", in.ApprovedBy, in.Voided())
	}
}
