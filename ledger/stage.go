package ledger

import (
	"errors"
	"fmt"
)

// Stage is where an incident stands.
type Stage string

// The stages. None is the stage of an incident that does not exist yet.
const (
	None          Stage = ""
	Detected      Stage = "DETECTED"
	Proposed      Stage = "PROPOSED"
	Validated     Stage = "VALIDATED"
	Authorized    Stage = "AUTHORIZED"
	Executed      Stage = "EXECUTED"
	Resolved      Stage = "RESOLVED"
	Recovered     Stage = "RECOVERED"
	Expired       Stage = "EXPIRED"
	Rejected      Stage = "REJECTED"
	WebhookFailed Stage = "WEBHOOK_FAILED"
)

// Stages lists every stage, None first.
var Stages = []Stage{None, Detected, Proposed, Validated, Authorized, Executed, Resolved, Recovered, Expired, Rejected, WebhookFailed}

// Terminal reports whether nothing can follow s: the incident is closed for good.
func (s Stage) Terminal() bool {
	return s == Resolved || s == Recovered || s == Rejected
}

// Open reports whether an incident in stage s still occupies its service: it exists and is
// not terminal. EXPIRED and WEBHOOK_FAILED are open: a fresh approval or a re-drive can
// still follow, and the service is not known to be healthy.
func (s Stage) Open() bool { return s != None && !s.Terminal() }

// Event is what happened. Stage events move the incident; the others are recorded in
// the chain without moving it.
type Event string

// Stage events.
const (
	Detect      Event = "detect"       // None → DETECTED
	Propose     Event = "propose"      // DETECTED → PROPOSED (an action is suggested)
	Validate    Event = "validate"     // PROPOSED → VALIDATED (policy checked the proposal; approvals open)
	Authorize   Event = "authorize"    // VALIDATED → AUTHORIZED (an engineer's consumed approval)
	Execute     Event = "execute"      // AUTHORIZED → EXECUTED (the recovery webhook answered 2xx)
	Resolve     Event = "resolve"      // EXECUTED → RESOLVED (healthy again after the action)
	Recover     Event = "recover"      // before authorization, or after a failure → RECOVERED (healthy on its own)
	Expire      Event = "expire"       // VALIDATED → EXPIRED (approval TTL passed)
	Reject      Event = "reject"       // PROPOSED/VALIDATED → REJECTED (an approver declined)
	WebhookFail Event = "webhook_fail" // AUTHORIZED → WEBHOOK_FAILED (retries exhausted; dead-lettered)
	Reissue     Event = "reissue"      // EXPIRED → VALIDATED (an approver asked for a fresh approval)
	Redrive     Event = "redrive"      // WEBHOOK_FAILED → AUTHORIZED (an operator re-drove the dead letter; same approval)
)

// Non-stage events.
const (
	Update         Event = "update"          // new evidence on an open incident (score, alert)
	Question       Event = "question"        // an engineer asked in the thread
	Answer         Event = "answer"          // the bot answered
	Escalation     Event = "escalation"      // approvers re-notified or called
	PartialApprove Event = "partial_approve" // first of two approvers of a high-risk action
	RefusedPress   Event = "refused_press"   // a press that did not authorize (not an approver, already used, expired)
	Security       Event = "security"        // a refused request with a known identity
	Ack            Event = "ack"             // an engineer acknowledged
	Diagnosis      Event = "diagnosis"       // a lens's theory (advisory)
	Notice         Event = "notice"          // anything else worth keeping (silence, dispatch)
	// Loss is the chain's own entry, of no incident: the first append after a detected
	// ledger loss, whose seq jumps past everything the lost chain's signed checkpoint
	// covered and which carries that checkpoint (see LossMarker).
	Loss Event = "loss"
)

// Events lists every event.
var Events = []Event{Detect, Propose, Validate, Authorize, Execute, Resolve, Recover, Expire, Reject, WebhookFail, Reissue, Redrive,
	Update, Question, Answer, Escalation, PartialApprove, RefusedPress, Security, Ack, Diagnosis, Notice, Loss}

// transitions is the one transition table: for each stage event, the stages it may start
// from and the stage it leads to.
var transitions = map[Event]struct {
	from []Stage
	to   Stage
}{
	Detect:      {[]Stage{None}, Detected},
	Propose:     {[]Stage{Detected}, Proposed},
	Validate:    {[]Stage{Proposed}, Validated},
	Authorize:   {[]Stage{Validated}, Authorized},
	Execute:     {[]Stage{Authorized}, Executed},
	Resolve:     {[]Stage{Executed}, Resolved},
	Recover:     {[]Stage{Detected, Proposed, Validated, Expired, WebhookFailed}, Recovered},
	Expire:      {[]Stage{Validated}, Expired},
	Reject:      {[]Stage{Proposed, Validated}, Rejected},
	WebhookFail: {[]Stage{Authorized}, WebhookFailed},
	Reissue:     {[]Stage{Expired}, Validated},
	Redrive:     {[]Stage{WebhookFailed}, Authorized},
}

// IsStageEvent reports whether e moves an incident.
func (e Event) IsStageEvent() bool { _, ok := transitions[e]; return ok }

// Known reports whether e is an event of this ledger.
func (e Event) Known() bool {
	for _, k := range Events {
		if k == e {
			return true
		}
	}
	return false
}

// Errors of transitions.
var (
	ErrIllegalTransition = errors.New("illegal transition")
	ErrUnknownEvent      = errors.New("unknown event")
	ErrNotAuthorized     = errors.New("authorization requires an engineer with a consumed approval")
	ErrNoIncident        = errors.New("no such incident")
)

// TransitionError names the refused move.
type TransitionError struct {
	Event Event
	From  Stage
	To    Stage
}

func (e *TransitionError) Error() string {
	from := string(e.From)
	if from == "" {
		from = "(none)"
	}
	if e.To == "" {
		return fmt.Sprintf("illegal transition: %s from %s", e.Event, from)
	}
	return fmt.Sprintf("illegal transition: %s from %s to %s", e.Event, from, e.To)
}

func (e *TransitionError) Unwrap() error { return ErrIllegalTransition }

// Next returns the stage that event ev leads to from stage from, or an error naming from
// and to. Non-stage events keep the stage but need an existing incident, and nothing may
// follow a terminal stage except the audit of refused presses and security events.
func Next(from Stage, ev Event) (Stage, error) {
	if !ev.Known() {
		return from, fmt.Errorf("%w: %q", ErrUnknownEvent, ev)
	}
	if ev == Loss {
		// Only the ledger writes a loss marker, on no incident (see LossMarker).
		return from, &TransitionError{Event: ev, From: from}
	}
	t, ok := transitions[ev]
	if !ok {
		switch {
		case from == None:
			return from, &TransitionError{Event: ev, From: from}
		case from.Terminal() && ev != RefusedPress && ev != Security && ev != Question && ev != Answer:
			return from, &TransitionError{Event: ev, From: from}
		}
		return from, nil
	}
	for _, f := range t.from {
		if f == from {
			return t.to, nil
		}
	}
	return from, &TransitionError{Event: ev, From: from, To: t.to}
}
