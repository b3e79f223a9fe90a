package pipeline

import (
	"context"
	"fmt"
	"strings"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
)

// Proposer proposes how to handle a newly opened incident: the pipeline records what it
// returns (the lens entries, then PROPOSED) and presents the incident.
type Proposer interface {
	Propose(ctx context.Context, t conversation.Tenant, in ledger.Incident, hist []ledger.Entry) (Proposition, error)
}

// Proposition is a proposal with what the PROPOSED entry records and the entries that
// must precede it.
type Proposition struct {
	Proposal   conversation.Proposal
	Action     string
	Actor      ledger.Actor
	Confidence float64
	Reason     string
	// Diagnoses are the lenses' entries (event diagnosis), recorded before PROPOSED.
	Diagnoses []ledger.Entry
}

// PolicyProposer proposes the tenant's default action, without any diagnosis.
type PolicyProposer struct{}

// Propose implements Proposer.
func (PolicyProposer) Propose(_ context.Context, t conversation.Tenant, _ ledger.Incident, _ []ledger.Entry) (Proposition, error) {
	a, ok := ProposedAction(t)
	if !ok {
		return Proposition{}, fmt.Errorf("tenant %s has no action to propose", t.ID)
	}
	return Proposition{
		Proposal: conversation.Proposal{
			Theories: []conversation.Theory{{Lens: "policy", Action: a.Name,
				Summary: fmt.Sprintf("%s is the tenant's default recovery for a degraded service (no AI diagnosis in this step)", a.Name)}},
			Agree:  true,
			Offers: []conversation.Offer{{Action: a.Name}},
		},
		Action: a.Name, Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "pipeline"}, Reason: "policy default action " + a.Name,
	}, nil
}

// ProposedAction is the tenant's default action: the configured one, else the first
// low-risk action.
func ProposedAction(t conversation.Tenant) (conversation.Action, bool) {
	if a, ok := t.Action(t.DefaultAction); ok {
		return a, true
	}
	for _, a := range t.Actions {
		if !a.HighRisk {
			return a, true
		}
	}
	return conversation.Action{}, false
}

// validation is the VALIDATED entry: every action the card will offer (each theory's, in
// button order) checked against the tenant's actions and named with its risk, so that
// whichever one is authorized was validated. Its Action is the proposed one; data.offers
// lists them all.
func validation(t conversation.Tenant, in ledger.Incident, hist []ledger.Entry) (ledger.Entry, error) {
	offers := []conversation.Offer{{Action: in.Action}}
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].Event != ledger.Propose {
			continue
		}
		if pr, err := conversation.ProposalOf(hist[i]); err == nil && len(pr.Offers) > 0 {
			offers = pr.Offers
		}
		break
	}
	var names, parts []string
	for _, o := range offers {
		a, ok := t.Action(o.Action)
		if !ok {
			return ledger.Entry{}, fmt.Errorf("offered action %q is not defined for %s", o.Action, t.ID)
		}
		risk := "low"
		if a.HighRisk {
			risk = "high: two distinct approvers"
		}
		part := fmt.Sprintf("%s (risk %s)", a.Name, risk)
		if o.Theory != "" && len(offers) > 1 {
			part = fmt.Sprintf("%s for theory %s (risk %s)", a.Name, o.Theory, risk)
		}
		names, parts = append(names, a.Name), append(parts, part)
	}
	reason := fmt.Sprintf("%s is a defined action; approval open for %s", parts[0], t.ApprovalTTL)
	if len(parts) > 1 {
		reason = fmt.Sprintf("offered: %s; all defined; approving one voids the others; approval open for %s", strings.Join(parts, ", "), t.ApprovalTTL)
	}
	return ledger.Entry{Event: ledger.Validate, Action: in.Action, PolicyVersion: t.PolicyVersion, Reason: reason,
		Data: map[string]string{"offers": strings.Join(names, ",")}}, nil
}
