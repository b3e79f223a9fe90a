package outhook

import (
	"slices"
	"strconv"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// Payload types.
const (
	TypeOpened          = "incident.opened"           // detect: a new incident
	TypeProposed        = "incident.proposed"         // propose: an action is suggested
	TypeStageChanged    = "incident.stage_changed"    // validate, expire, reissue, redrive
	TypePartialApproval = "incident.partial_approval" // the first of two approvers of a high-risk action
	TypeApproved        = "incident.approved"         // authorize: an engineer's approval was consumed
	TypeRejected        = "incident.rejected"         // reject: an approver declined
	TypeExecuted        = "incident.executed"         // execute: the recovery webhook answered 2xx
	TypeExecutionFailed = "incident.execution_failed" // webhook_fail: the recovery webhook failed for good
	TypeResolved        = "incident.resolved"         // resolve (RESOLVED) or recover (RECOVERED)
	TypeEscalated       = "incident.escalated"        // escalation: approvers re-notified or called
	TypeAcknowledged    = "incident.acknowledged"     // ack: an engineer acknowledged
)

// EventTypes lists every payload type, for Target.Events.
var EventTypes = []string{TypeOpened, TypeProposed, TypeStageChanged, TypePartialApproval, TypeApproved, TypeRejected,
	TypeExecuted, TypeExecutionFailed, TypeResolved, TypeEscalated, TypeAcknowledged}

var typeOf = map[ledger.Event]string{
	ledger.Detect:         TypeOpened,
	ledger.Propose:        TypeProposed,
	ledger.Validate:       TypeStageChanged,
	ledger.Expire:         TypeStageChanged,
	ledger.Reissue:        TypeStageChanged,
	ledger.Redrive:        TypeStageChanged,
	ledger.PartialApprove: TypePartialApproval,
	ledger.Authorize:      TypeApproved,
	ledger.Reject:         TypeRejected,
	ledger.Execute:        TypeExecuted,
	ledger.WebhookFail:    TypeExecutionFailed,
	ledger.Resolve:        TypeResolved,
	ledger.Recover:        TypeResolved,
	ledger.Escalation:     TypeEscalated,
	ledger.Ack:            TypeAcknowledged,
}

// EventType returns the payload type of a ledger entry, or false for entries that are not
// sent (evidence updates, questions and answers, refused presses, security entries,
// diagnoses, notices, loss markers).
func EventType(e ledger.Entry) (string, bool) {
	t, ok := typeOf[e.Event]
	return t, ok
}

func knownType(t string) bool { return slices.Contains(EventTypes, t) }

// Payload is the JSON body of every delivery.
type Payload struct {
	Type string `json:"type"`
	// Timestamp is when the entry was recorded (the webhook-timestamp header is when
	// this attempt was made).
	Timestamp time.Time `json:"timestamp"`
	Data      Data      `json:"data"`
}

// Data is the entry, without what must not leave the bot: the approval reference (a
// bearer capability), the evidence and the entry's free-form data.
type Data struct {
	Tenant   string `json:"tenant"`
	Incident string `json:"incident"`
	Seq      uint64 `json:"seq"`
	Event    string `json:"event"`
	From     string `json:"from"`
	To       string `json:"to"`
	Service  string `json:"service,omitempty"`
	Action   string `json:"action,omitempty"`
	Actor    Actor  `json:"actor"`
	Reason   string `json:"reason"`
	// Hash is the entry's hash in the tenant's chain: the receiver can ask for the
	// entry's proof (ae verify, the audit export) with it.
	Hash string `json:"hash"`
}

// Actor is who caused the entry.
type Actor struct {
	Kind string `json:"kind"`
	ID   string `json:"id"`
}

// maxReasonRunes bounds the reason; the other strings are clipped shorter.
const maxReasonRunes = 1000

// NewPayload returns the payload of e.
func NewPayload(e ledger.Entry, typ string) Payload {
	return Payload{
		Type:      typ,
		Timestamp: e.At.UTC(),
		Data: Data{
			Tenant:   e.Tenant,
			Incident: e.Incident,
			Seq:      e.Seq,
			Event:    string(e.Event),
			From:     string(e.From),
			To:       string(e.To),
			Service:  ledger.Clip(e.Service, 200),
			Action:   ledger.Clip(e.Action, 200),
			Actor:    Actor{Kind: string(e.Actor.Kind), ID: ledger.Clip(e.Actor.ID, 200)},
			Reason:   ledger.Clip(e.Reason, maxReasonRunes),
			Hash:     e.Hash,
		},
	}
}

// MessageID is the webhook-id of e's delivery: the same for every attempt and every
// replica, unique across tenants and across a ledger restart (seqs are never reused, and
// the hash prefix tells two chains apart). It holds no ".", as the scheme requires.
func MessageID(e ledger.Entry) string {
	h := e.Hash
	if len(h) > 16 {
		h = h[:16]
	}
	return "msg_" + e.Tenant + "_" + formatUint(e.Seq) + "_" + h
}

func formatUint(n uint64) string { return strconv.FormatUint(n, 10) }
