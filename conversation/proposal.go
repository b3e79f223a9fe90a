package conversation

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/alertengine/alertengine/ledger"
)

// Theory is one diagnostic lens's view of an incident.
type Theory struct {
	Label   string `json:"label"` // "A", "B"; "" for a policy proposal
	Lens    string `json:"lens"`  // who: a model name, "rules", "policy"
	Summary string `json:"summary"`
	Check   string `json:"check,omitempty"` // what to check to confirm it
	// Evidence is what the lens cites (numbers, commits), shown by /details.
	Evidence   []string `json:"evidence,omitempty"`
	Action     string   `json:"action"`
	Confidence float64  `json:"confidence"`
}

// Proposal is what the PROPOSED entry of an incident offers: one theory, two that agree,
// or two that disagree (dissent). Gated means the confidence was below the gate and only
// the policy's default action is offered.
type Proposal struct {
	Theories []Theory `json:"theories"`
	Agree    bool     `json:"agree"`
	Gated    bool     `json:"gated,omitempty"`
	// Offers are the actions offered for approval, in button order, with the theory each
	// comes from.
	Offers []Offer `json:"offers"`
	// Unavailable names the lenses that gave no valid diagnosis and why ("lens A
	// (llama3.1) timed out").
	Unavailable []string `json:"unavailable,omitempty"`
	// HighRisk asks two approvers for every offer, whatever the actions' own risk (an
	// AI agent's request marked high risk; an agent can raise the risk, never lower it).
	HighRisk bool `json:"high_risk,omitempty"`
}

// Offer is an action a card offers.
type Offer struct {
	Action string `json:"action"`
	Theory string `json:"theory,omitempty"`
}

// ConfidenceGate is the confidence below which only the default action is offered.
const ConfidenceGate = 0.60

// Dissent reports whether two lenses disagree.
func (p Proposal) Dissent() bool { return len(p.Theories) > 1 && !p.Agree }

// Confidence of the proposal: the agreed theories' mean, or the best single one.
func (p Proposal) Confidence() float64 {
	if len(p.Theories) == 0 {
		return 0
	}
	if p.Agree {
		s := 0.0
		for _, t := range p.Theories {
			s += t.Confidence
		}
		return s / float64(len(p.Theories))
	}
	best := 0.0
	for _, t := range p.Theories {
		best = max(best, t.Confidence)
	}
	return best
}

const proposalKey = "proposal"

// Data encodes the proposal for the PROPOSED entry's data.
func (p Proposal) Data() map[string]string {
	b, _ := json.Marshal(p)
	return map[string]string{proposalKey: string(b)}
}

// ProposalOf decodes the proposal recorded on a PROPOSED entry. An entry without one (a
// bare policy proposal) becomes a single policy theory offering its action.
func ProposalOf(e ledger.Entry) (Proposal, error) {
	if e.Event != ledger.Propose {
		return Proposal{}, errors.New("not a proposal entry")
	}
	raw, ok := e.Data[proposalKey]
	if !ok {
		return Proposal{
			Theories: []Theory{{Lens: string(e.Actor.Kind), Summary: e.Reason, Action: e.Action, Confidence: e.Confidence}},
			Agree:    true,
			Offers:   []Offer{{Action: e.Action}},
		}, nil
	}
	var p Proposal
	if err := json.Unmarshal([]byte(raw), &p); err != nil {
		return Proposal{}, fmt.Errorf("proposal of entry %d: %w", e.Seq, err)
	}
	return p, nil
}
