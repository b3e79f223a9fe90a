package conversation

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// Caller places voice calls that speak a summary (bot/whatsapp on Twilio's Calls API).
type Caller interface {
	Call(ctx context.Context, phone, speech string) error
}

// deadlineCall is the voice escalation, after re-notification got no decision.
const deadlineCall = "call"

// callDelay is how long after re-notification the next approver is called: another
// escalate_after, but within the first half of what is left of the approval's TTL, so
// the person called still has time to decide.
func callDelay(t *Tenant) time.Duration {
	left := t.ApprovalTTL - t.EscalateAfter
	return max(0, min(t.EscalateAfter, left/2))
}

// scheduleCall plans the voice escalation of an incident that was just re-notified.
func (e *Engine) scheduleCall(ctx context.Context, t *Tenant, in ledger.Incident) error {
	if e.o.Caller == nil || len(callees(t)) == 0 {
		return nil
	}
	return e.st.addDeadline(ctx, t.ID, in.ID, deadlineCall, e.o.Clock().Add(callDelay(t)))
}

// callees are the approvers with a phone, in config order.
func callees(t *Tenant) []Person {
	var out []Person
	for _, p := range t.People {
		if p.Approver && p.Phone != "" {
			out = append(out, p)
		}
	}
	return out
}

// call rings the next approver of an incident still awaiting a decision: the first
// with a phone, then the next one on each later escalation of the incident. The call is
// recorded as an escalation entry ("ESCALATED: called NAME").
func (e *Engine) call(ctx context.Context, t *Tenant, in ledger.Incident) error {
	people := callees(t)
	if e.o.Caller == nil || len(people) == 0 {
		return nil
	}
	in, hist, err := e.o.Ledger.Incident(ctx, t.ID, in.ID)
	if err != nil {
		return fmt.Errorf("call for %s: %w", in.ID, err)
	}
	if in.Stage != ledger.Validated {
		return nil // decided meanwhile: never call
	}
	calls := 0
	for _, en := range hist {
		if en.Event == ledger.Escalation && en.Data["kind"] == "call" {
			calls++
		}
	}
	p := people[calls%len(people)]
	if err := e.o.Caller.Call(ctx, p.Phone, speech(t, in, hist)); err != nil {
		return fmt.Errorf("call %s for %s: %w", p.Name, in.ID, err)
	}
	if _, err := e.o.Ledger.Record(ctx, ledger.Entry{Tenant: t.ID, Incident: in.ID, Event: ledger.Escalation,
		Actor: ledger.Actor{Kind: ledger.ActorSystem, ID: "escalation"}, PolicyVersion: t.PolicyVersion,
		Reason: "ESCALATED: called " + p.Name + " (voice); no decision after re-notification",
		Data:   map[string]string{"kind": "call", "to": p.Name}}); err != nil {
		// The call was made: it is not repeated for a ledger hiccup, only logged.
		e.o.Logger.Error("record escalation call", "incident", in.ID, "err", err)
	}
	_ = e.Say(ctx, t.ID, in.ID, text1("📞 Still no decision: calling "+p.Name+"."))
	return nil
}

// speech is what the call says: service, health, suggested action, where to decide.
func speech(t *Tenant, in ledger.Incident, hist []ledger.Entry) string {
	f := detectionFacts(hist)
	var b strings.Builder
	fmt.Fprintf(&b, "AlertEngine escalation for %s. %s is in trouble", t.ID, in.Service)
	if f.haveScore {
		fmt.Fprintf(&b, ", health %.0f of 100", f.score)
	}
	fmt.Fprintf(&b, ". Incident %s has waited for a decision.", spell(in.ID))
	if p := latestProposal(hist); p != nil && len(p.Offers) > 0 {
		fmt.Fprintf(&b, " Suggested action: %s.", strings.ReplaceAll(p.Offers[0].Action, "_", " "))
	}
	b.WriteString(" Nothing runs without an approval. Please approve or reject in chat.")
	return b.String()
}

// spell reads an id character by character ("INC-7F3" → "I N C 7 F 3").
func spell(id string) string {
	var out []string
	for _, r := range id {
		if r != '-' {
			out = append(out, string(r))
		}
	}
	return strings.Join(out, " ")
}
