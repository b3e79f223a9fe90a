package bot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// PipelineOptions configure the pipeline.
type PipelineOptions struct {
	Ledger       *ledger.Ledger
	Conversation *conversation.Engine
	Executor     *executor.Executor
	Tenants      []conversation.Tenant
	Logger       *slog.Logger
	// Clock stamps what the pipeline tells the threads; default time.Now.
	Clock func() time.Time
	// Metrics, when set, count what the pipeline handles.
	Metrics *Metrics
	// Queue bounds the detections waiting to be handled (default 1024).
	Queue int
	// SweepEvery is how often half-done work is looked for (default 30 s).
	SweepEvery time.Duration
	// Proposer proposes the action of a new incident (default PolicyProposer; the
	// diagnostic council through CouncilProposer).
	Proposer Proposer
	// Concurrency bounds the detections handled at once (default DefaultConcurrency);
	// ConcurrencyPerTenant bounds one tenant's (default DefaultConcurrencyPerTenant).
	// Detections of one incident are handled one at a time, in order.
	Concurrency, ConcurrencyPerTenant int
}

// Validate checks the options.
func (o *PipelineOptions) Validate() error {
	if o.Ledger == nil || o.Conversation == nil || o.Executor == nil {
		return errors.New("pipeline: ledger, conversation and executor are required")
	}
	if o.Concurrency < 0 || o.ConcurrencyPerTenant < 0 {
		return errors.New("pipeline: negative concurrency")
	}
	return nil
}

// Pipeline ties the pieces together, one way: a detection becomes a proposal and a
// validated incident presented in the tenant's chats; an authorization becomes an
// execution; an execution's outcome and the service's recovery are told in the thread.
// Each step reads and appends the ledger; nothing reaches back upstream.
type Pipeline struct {
	o       PipelineOptions
	tenants map[string]conversation.Tenant
	events  chan detector.Event
}

// NewPipeline returns a pipeline; Run must be running for detections to be handled.
func NewPipeline(o PipelineOptions) (*Pipeline, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Queue == 0 {
		o.Queue = 1024
	}
	if o.SweepEvery == 0 {
		o.SweepEvery = 30 * time.Second
	}
	if o.Proposer == nil {
		o.Proposer = PolicyProposer{}
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.ConcurrencyPerTenant == 0 {
		o.ConcurrencyPerTenant = DefaultConcurrencyPerTenant
	}
	p := &Pipeline{o: o, tenants: map[string]conversation.Tenant{}, events: make(chan detector.Event, o.Queue)}
	for _, t := range o.Tenants {
		p.tenants[t.ID] = t
	}
	return p, nil
}

// OnDetection is the detector's OnEvent: it queues the event and returns at once.
func (p *Pipeline) OnDetection(ctx context.Context, ev detector.Event) {
	p.o.Metrics.detection(ev)
	select {
	case p.events <- ev:
	default:
		// The queue is full: wait a little rather than lose an incident's presentation.
		t := time.NewTimer(5 * time.Second)
		defer t.Stop()
		select {
		case p.events <- ev:
		case <-t.C:
			p.o.Logger.Error("pipeline queue full: detection not presented", "tenant", ev.Tenant, "incident", ev.Incident, "kind", ev.Kind)
		case <-ctx.Done():
		}
	}
}

// Run handles queued detections until ctx ends. Detections of different incidents are
// handled concurrently (within Concurrency and ConcurrencyPerTenant), so an incident
// waiting on its diagnosis delays no other; one incident's detections are handled in
// order. At start and every SweepEvery it also finishes what was left half-done, by this
// replica or another that died: AUTHORIZED incidents whose execution was never enqueued,
// and open incidents never presented (a failed proposal, a chat that was down, a queue
// lost in a crash, a silence that ended). It returns once ctx has ended and the
// detections being handled are done; those still queued are left to the next sweep.
func (p *Pipeline) Run(ctx context.Context) error {
	w := &work{p: p, lanes: newLanes(p.o.Concurrency, p.o.ConcurrencyPerTenant), retry: make(chan retryItem, p.o.Queue)}
	defer w.lanes.wait()
	p.sweep(ctx, w)
	tick := time.NewTicker(p.o.SweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-p.events:
			w.submit(ctx, ev, 1)
		case r := <-w.retry:
			w.submit(ctx, r.ev, r.attempt)
		case <-tick.C:
			p.sweep(ctx, w)
		}
	}
}

// work is what one Run hands out: the lanes detections are handled on, and the retries
// due.
type work struct {
	p     *Pipeline
	lanes *lanes
	retry chan retryItem
}

// submit handles ev on its incident's lane.
func (w *work) submit(ctx context.Context, ev detector.Event, attempt int) {
	w.lanes.submit(ctx, ev.Tenant, ev.Incident, func() { w.p.handleOnce(ctx, ev, attempt, w.retry) })
}

// sweepSource marks the detections the sweep re-raises.
const sweepSource detector.Source = "sweep"

// sweepRecent bounds how many of a tenant's newest incidents a sweep looks at.
const sweepRecent = 500

func (p *Pipeline) sweep(ctx context.Context, w *work) {
	for id := range p.tenants {
		ids, err := p.o.Ledger.Store().Incidents(ctx, id)
		if err != nil {
			p.o.Logger.Error("sweep incidents", "tenant", id, "err", err)
			continue
		}
		if len(ids) > sweepRecent {
			ids = ids[len(ids)-sweepRecent:]
		}
		for _, inc := range ids {
			st, err := p.o.Ledger.Store().Stage(ctx, id, inc)
			if err != nil {
				continue
			}
			switch st {
			case ledger.Authorized:
				// Duplicates are harmless: the executor calls once per approval.
				if err := p.enqueue(ctx, id, inc); err != nil {
					p.o.Logger.Error("sweep: enqueue authorized execution", "tenant", id, "incident", inc, "err", err)
				}
			case ledger.Detected, ledger.Proposed, ledger.Validated:
				p.presentIfMissing(ctx, id, inc, w)
			}
		}
	}
}

// presentIfMissing re-raises an open incident that some chat has not been shown.
func (p *Pipeline) presentIfMissing(ctx context.Context, tenant, incident string, w *work) {
	missing, err := p.o.Conversation.Unpresented(ctx, tenant, incident)
	if err != nil || !missing {
		return
	}
	in, _, err := p.o.Ledger.Incident(ctx, tenant, incident)
	if err != nil {
		return
	}
	if _, silenced := p.o.Conversation.Silenced(ctx, tenant, in.Service); silenced {
		return
	}
	w.submit(ctx, detector.Event{Kind: detector.Opened, Source: sweepSource, Tenant: tenant, Service: in.Service, Incident: incident, At: in.OpenedAt}, 1)
}

// retryItem is a detection whose handling failed, due again.
type retryItem struct {
	ev      detector.Event
	attempt int
}

// handleAttempts bounds how often a detection's handling is tried (a chat platform down
// for a while); the waits double from handleBackoff.
const (
	handleAttempts = 6
	handleBackoff  = 2 * time.Second
	handleTimeout  = time.Minute
)

// handleOnce handles ev to the end even if the service is shutting down meanwhile (so a
// card that reached the chat is always remembered), and schedules a retry on failure.
func (p *Pipeline) handleOnce(ctx context.Context, ev detector.Event, attempt int, retry chan<- retryItem) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handleTimeout)
	err := p.handle(hctx, ev)
	cancel()
	if err == nil {
		return
	}
	p.o.Metrics.handleFailed()
	if attempt >= handleAttempts {
		p.o.Logger.Error("handle detection: giving up", "tenant", ev.Tenant, "incident", ev.Incident, "kind", ev.Kind, "attempts", attempt, "err", err)
		return
	}
	wait := handleBackoff << (attempt - 1)
	p.o.Logger.Warn("handle detection: will retry", "tenant", ev.Tenant, "incident", ev.Incident, "kind", ev.Kind, "in", wait, "err", err)
	time.AfterFunc(wait, func() {
		select {
		case retry <- retryItem{ev, attempt + 1}:
		case <-ctx.Done():
		}
	})
}

func (p *Pipeline) handle(ctx context.Context, ev detector.Event) error {
	switch ev.Kind {
	case detector.Opened:
		return p.opened(ctx, ev)
	case detector.Recovered:
		// A note says why an incident closed without being healthy again (its alerts
		// expired, or a new alert superseded it); the thread says that, not "recovered".
		return p.o.Conversation.Notify(ctx, ledger.Entry{Tenant: ev.Tenant, Incident: ev.Incident, Event: ledger.Recover, At: ev.At, Reason: ev.Note})
	case detector.Updated:
		// What joined an open incident (Alertmanager alerts), once per notification.
		if ev.Note == "" {
			return nil
		}
		return p.o.Conversation.Say(ctx, ev.Tenant, ev.Incident, conversation.Message{Blocks: []conversation.Block{{Style: conversation.Plain, Text: "➕ " + ev.Note}}})
	case detector.Resolved:
		return p.o.Conversation.Notify(ctx, ledger.Entry{Tenant: ev.Tenant, Incident: ev.Incident, Event: ledger.Resolve, At: ev.At})
	case detector.Suppressed:
		p.o.Logger.Warn("detection suppressed by the incidents-per-hour limit", "tenant", ev.Tenant, "service", ev.Service)
	}
	return nil
}

// proposedAction is the tenant's default action: the configured one, else the first
// low-risk action.
func proposedAction(t conversation.Tenant) (conversation.Action, bool) {
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

// opened asks the Proposer (the policy default, or the diagnostic council), records its
// lens entries and the proposal, checks the action against the policy, and presents the
// incident.
func (p *Pipeline) opened(ctx context.Context, ev detector.Event) error {
	t, ok := p.tenants[ev.Tenant]
	if !ok {
		return fmt.Errorf("unknown tenant %q", ev.Tenant)
	}
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "pipeline"}
	if d, silenced := p.o.Conversation.Silenced(ctx, ev.Tenant, ev.Service); silenced {
		if ev.Source == sweepSource {
			return nil
		}
		_, err := p.o.Ledger.Record(ctx, ledger.Entry{Tenant: ev.Tenant, Incident: ev.Incident, Event: ledger.Notice, Actor: policy,
			PolicyVersion: t.PolicyVersion, Reason: fmt.Sprintf("%s is silenced for another %s: not posted to chat", ev.Service, d.Round(time.Second))})
		return err
	}
	// Each step is taken from the stage the incident is in, so a retry after a partial
	// failure continues where the last attempt stopped.
	stage, err := p.o.Ledger.Store().Stage(ctx, ev.Tenant, ev.Incident)
	if err != nil {
		return err
	}
	if len(t.Actions) > 0 && stage == ledger.Detected {
		in, hist, err := p.o.Ledger.Incident(ctx, ev.Tenant, ev.Incident)
		if err != nil {
			return err
		}
		pr, err := p.o.Proposer.Propose(ctx, t, in, hist)
		if err != nil {
			return fmt.Errorf("propose: %w", err)
		}
		// Each lens's diagnosis is its own entry, before PROPOSED: an auditor sees what
		// every lens said, including the ones discarded.
		for _, d := range pr.Diagnoses {
			if _, err := p.o.Ledger.Record(ctx, d); err != nil {
				return fmt.Errorf("record diagnosis: %w", err)
			}
		}
		if _, err := p.o.Ledger.Record(ctx, ledger.Entry{Tenant: ev.Tenant, Incident: ev.Incident, Event: ledger.Propose, Actor: pr.Actor,
			Action: pr.Action, Confidence: pr.Confidence, PolicyVersion: t.PolicyVersion, Reason: pr.Reason, Data: pr.Proposal.Data()}); err != nil {
			return fmt.Errorf("propose: %w", err)
		}
		stage = ledger.Proposed
	}
	if stage == ledger.Proposed {
		in, hist, err := p.o.Ledger.Incident(ctx, ev.Tenant, ev.Incident)
		if err != nil {
			return err
		}
		v, err := validation(t, in, hist)
		if err != nil {
			return fmt.Errorf("validate: %w", err)
		}
		v.Tenant, v.Incident, v.Actor = ev.Tenant, ev.Incident, policy
		if _, err := p.o.Ledger.Record(ctx, v); err != nil {
			return fmt.Errorf("validate: %w", err)
		}
	}
	return p.o.Conversation.Present(ctx, ev.Tenant, ev.Incident)
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

// OnAuthorized hands an authorized incident to the executor (conversation's hook).
func (p *Pipeline) OnAuthorized(ctx context.Context, e ledger.Entry) error {
	p.o.Metrics.authorized(e.Tenant)
	return p.enqueue(ctx, e.Tenant, e.Incident)
}

func (p *Pipeline) enqueue(ctx context.Context, tenant, incident string) error {
	x, err := p.o.Executor.Prepare(ctx, tenant, incident)
	if err != nil {
		return err
	}
	return p.o.Executor.Enqueue(ctx, x)
}

// OnOutcome tells the thread how an execution ended (executor's hook).
func (p *Pipeline) OnOutcome(ctx context.Context, o executor.Outcome) {
	p.o.Metrics.execution(o)
	var ev ledger.Event
	switch o.Kind {
	case executor.Executed:
		ev = ledger.Execute
	case executor.Failed:
		ev = ledger.WebhookFail
	case executor.Refused:
		ev = ledger.Security
	default:
		return
	}
	if err := p.o.Conversation.Notify(ctx, ledger.Entry{Tenant: o.Execution.Tenant, Incident: o.Execution.Incident, Event: ev,
		Action: o.Execution.Action, Reason: o.Reason, At: p.o.Clock()}); err != nil {
		p.o.Logger.Warn("tell the thread about the execution", "incident", o.Execution.Incident, "err", err)
	}
}
