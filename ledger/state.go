package ledger

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Incident is the state of one incident, derived by folding its entries. It is never
// stored on its own: any copy of it can be rebuilt from the ledger.
type Incident struct {
	Tenant     string
	ID         string
	Service    string
	Stage      Stage
	OpenedAt   time.Time
	UpdatedAt  time.Time
	Reason     string  // why it was detected
	Confidence float64 // of the latest proposal
	Action     string  // the proposed (then authorized) action
	// ApprovedBy are the approvers of the authorized action: whoever consumed the approval
	// and, for a high-risk action, the first approver of that same approval. A partial
	// approval of another option is never among them (see Partials).
	ApprovedBy []string
	// Partials are the first approvals of high-risk actions since approvals last opened;
	// one of another option than the one authorized is voided.
	Partials      []PartialApproval
	Approval      string // the consumed approval reference
	PolicyVersion string
	Entries       int
	LastSeq       uint64
}

// PartialApproval is a first approval of a high-risk action (one of two).
type PartialApproval struct {
	Seq      uint64 // of its partial_approve entry
	By       string
	Action   string
	Approval string // the reference pressed
	At       time.Time
	// VoidedBy is who approved another option instead, VoidedFor that option's action;
	// both "" while the partial approval stands (or lapsed with its approval).
	VoidedBy, VoidedFor string
}

// Voided reports whether another option was approved instead: this approval can never
// complete and never counts as an approval of what ran.
func (p PartialApproval) Voided() bool { return p.VoidedBy != "" }

// Describe is one line for people: "tendai approved rollback (1 of 2) at 10:02 UTC —
// voided: rudo approved restart_workers".
func (p PartialApproval) Describe() string {
	s := fmt.Sprintf("%s approved %s (1 of 2) at %s", p.By, p.Action, p.At.UTC().Format("15:04 UTC"))
	if p.Voided() {
		s += fmt.Sprintf(" — voided: %s approved %s instead", p.VoidedBy, p.VoidedFor)
	}
	return s
}

// Voided returns the partial approvals voided by the approval of another option.
func (in Incident) Voided() []PartialApproval {
	var out []PartialApproval
	for _, p := range in.Partials {
		if p.Voided() {
			out = append(out, p)
		}
	}
	return out
}

// authorize settles the partial approvals when approval ref authorizes action by the
// named approvers: the partials of ref join its approvers, the others are voided.
func (in *Incident) authorize(actor, ref, action string) {
	var by []string
	for _, p := range in.Partials {
		if p.Approval == ref && p.By != actor && !slices.Contains(by, p.By) {
			by = append(by, p.By)
		}
	}
	in.ApprovedBy = append(by, actor)
	for i := range in.Partials {
		if in.Partials[i].Approval != ref && !in.Partials[i].Voided() {
			in.Partials[i].VoidedBy, in.Partials[i].VoidedFor = strings.Join(in.ApprovedBy, " and "), action
		}
	}
}

// Closed reports whether the incident reached a terminal stage.
func (in Incident) Closed() bool { return in.Stage.Terminal() }

// Fold rebuilds an incident from its entries in chain order, checking every move against
// the transition table; an entry that could not have been appended is an error naming it.
func Fold(entries []Entry) (Incident, error) {
	var in Incident
	for i := range entries {
		if err := in.apply(&entries[i]); err != nil {
			return in, err
		}
	}
	return in, nil
}

func (in *Incident) apply(e *Entry) error {
	if in.Entries > 0 && e.Incident != in.ID {
		return fmt.Errorf("entry %d: belongs to %s, not %s", e.Seq, e.Incident, in.ID)
	}
	if e.From != in.Stage {
		return fmt.Errorf("entry %d: recorded from %s but the incident was %s", e.Seq, stageName(e.From), stageName(in.Stage))
	}
	to, err := Next(in.Stage, e.Event)
	if err != nil {
		return fmt.Errorf("entry %d: %w", e.Seq, err)
	}
	if to != e.To {
		return fmt.Errorf("entry %d: %s leads to %s, recorded %s", e.Seq, e.Event, stageName(to), stageName(e.To))
	}
	if err := checkActor(e); err != nil {
		return fmt.Errorf("entry %d: %w", e.Seq, err)
	}
	switch e.Event {
	case Detect:
		in.Tenant, in.ID, in.Service, in.OpenedAt, in.Reason = e.Tenant, e.Incident, e.Service, e.At, e.Reason
	case Propose:
		in.Action, in.Confidence = e.Action, e.Confidence
	case PartialApprove:
		p := PartialApproval{Seq: e.Seq, By: e.Actor.ID, Action: e.Action, Approval: e.Approval, At: e.At}
		if in.Approval != "" && p.Approval != in.Approval {
			// Recorded after another option was authorized: void from the start.
			p.VoidedBy, p.VoidedFor = strings.Join(in.ApprovedBy, " and "), in.Action
		}
		in.Partials = append(in.Partials, p)
	case Authorize:
		if e.Action != "" {
			in.Action = e.Action
		}
		in.Approval = e.Approval
		in.authorize(e.Actor.ID, e.Approval, in.Action)
	case Reissue:
		// Fresh approvals: the earlier ones (and their partial approvals) lapsed.
		in.ApprovedBy, in.Partials, in.Approval = nil, nil, ""
	}
	if e.PolicyVersion != "" {
		in.PolicyVersion = e.PolicyVersion
	}
	in.Stage = to
	in.UpdatedAt = e.At
	in.Entries++
	in.LastSeq = e.Seq
	return nil
}

// checkActor enforces who may cause what: every way into AUTHORIZED (an authorization,
// a re-drive of the same approval) and a partial approval need an engineer carrying the
// consumed approval reference.
func checkActor(e *Entry) error {
	if (e.Event == Authorize || e.Event == PartialApprove || e.Event == Redrive) && (e.Actor.Kind != ActorEngineer || e.Approval == "") {
		return ErrNotAuthorized
	}
	return nil
}

func stageName(s Stage) string {
	if s == None {
		return "(none)"
	}
	return string(s)
}
