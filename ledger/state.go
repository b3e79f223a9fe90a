package ledger

import (
	"fmt"
	"time"
)

// Incident is the state of one incident, derived by folding its entries. It is never
// stored on its own: any copy of it can be rebuilt from the ledger.
type Incident struct {
	Tenant        string
	ID            string
	Service       string
	Stage         Stage
	OpenedAt      time.Time
	UpdatedAt     time.Time
	Reason        string  // why it was detected
	Confidence    float64 // of the latest proposal
	Action        string  // the proposed (then authorized) action
	ApprovedBy    []string
	Approval      string // the consumed approval reference
	PolicyVersion string
	Entries       int
	LastSeq       uint64
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
		in.ApprovedBy = append(in.ApprovedBy, e.Actor.ID)
	case Authorize:
		in.ApprovedBy = append(in.ApprovedBy, e.Actor.ID)
		in.Approval = e.Approval
		if e.Action != "" {
			in.Action = e.Action
		}
	case Reissue:
		in.ApprovedBy = nil
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
