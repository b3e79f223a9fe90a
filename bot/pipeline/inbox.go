package pipeline

import (
	"context"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// DefaultQueue bounds each kind of report waiting in an inbox.
const DefaultQueue = 1024

// fullWait is how long a report waits for room in a full inbox before it is dropped (the
// sweep re-raises a dropped detection or authorization; a dropped outcome loses only the
// thread's line about it).
const fullWait = 5 * time.Second

// Inbox is what the other components report to. It depends on none of them: create it
// first, hand its methods to detector.Options.OnEvent, conversation.Options.OnAuthorized
// and executor.Options.OnOutcome, then build the pipeline on it. Each method only queues
// and returns.
type Inbox struct {
	// reports keeps every kind in one queue, so they are taken in the order they came
	// (the simulation's runs are reproducible).
	reports chan report
	// dropped is told of a report dropped because the inbox stayed full.
	dropped func(what string, tenant, incident string)
}

// report is one thing reported: a detection (and which attempt of its handling is due),
// an authorization or an outcome.
type report struct {
	kind    reportKind
	ev      detector.Event
	attempt int
	auth    ledger.Entry
	outcome executor.Outcome
}

type reportKind uint8

const (
	detection reportKind = iota + 1
	authorization
	outcome
)

// tenant and incident name the lane a report is handled on.
func (r report) lane() (tenant, incident string) {
	switch r.kind {
	case authorization:
		return r.auth.Tenant, r.auth.Incident
	case outcome:
		return r.outcome.Execution.Tenant, r.outcome.Execution.Incident
	}
	return r.ev.Tenant, r.ev.Incident
}

// NewInbox returns an inbox holding up to size reports of each kind (0: DefaultQueue).
func NewInbox(size int) *Inbox {
	if size <= 0 {
		size = DefaultQueue
	}
	return &Inbox{reports: make(chan report, size)}
}

// OnDetection queues a detector event (detector.Options.OnEvent).
func (in *Inbox) OnDetection(ctx context.Context, ev detector.Event) {
	in.put(ctx, report{kind: detection, ev: ev, attempt: 1}, "detection")
}

// OnAuthorized queues an authorized incident for execution (conversation.Options.
// OnAuthorized). It never fails: an authorization the pipeline does not get to is found
// by its sweep.
func (in *Inbox) OnAuthorized(ctx context.Context, e ledger.Entry) error {
	in.put(ctx, report{kind: authorization, auth: e}, "authorization")
	return nil
}

// OnOutcome queues an execution's outcome (executor.Options.OnOutcome).
func (in *Inbox) OnOutcome(ctx context.Context, o executor.Outcome) {
	in.put(ctx, report{kind: outcome, outcome: o}, "outcome")
}

// again queues a detection's next attempt.
func (in *Inbox) again(ctx context.Context, ev detector.Event, attempt int) {
	in.put(ctx, report{kind: detection, ev: ev, attempt: attempt}, "retry")
}

// put queues r, waiting a little when the queue is full rather than losing it at once.
func (in *Inbox) put(ctx context.Context, r report, what string) {
	select {
	case in.reports <- r:
		return
	default:
	}
	t := time.NewTimer(fullWait)
	defer t.Stop()
	select {
	case in.reports <- r:
	case <-t.C:
		if in.dropped != nil {
			tenant, incident := r.lane()
			in.dropped(what, tenant, incident)
		}
	case <-ctx.Done():
	}
}
