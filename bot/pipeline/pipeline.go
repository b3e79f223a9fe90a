package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// Recorder is what the pipeline reads and appends in the ledger ([Ledger] adapts a
// *ledger.Ledger).
type Recorder interface {
	Record(ctx context.Context, e ledger.Entry) (ledger.Entry, error)
	Incident(ctx context.Context, tenant, id string) (ledger.Incident, []ledger.Entry, error)
	Stage(ctx context.Context, tenant, incident string) (ledger.Stage, error)
	// Incidents lists a tenant's incidents, oldest first.
	Incidents(ctx context.Context, tenant string) ([]string, error)
}

// Ledger adapts a *ledger.Ledger to Recorder.
type Ledger struct{ *ledger.Ledger }

// Stage implements Recorder.
func (l Ledger) Stage(ctx context.Context, tenant, incident string) (ledger.Stage, error) {
	return l.Store().Stage(ctx, tenant, incident)
}

// Incidents implements Recorder.
func (l Ledger) Incidents(ctx context.Context, tenant string) ([]string, error) {
	return l.Store().Incidents(ctx, tenant)
}

// Presenter is what the pipeline asks of the conversation (*conversation.Engine).
type Presenter interface {
	Present(ctx context.Context, tenant, incident string) error
	Notify(ctx context.Context, e ledger.Entry) error
	Say(ctx context.Context, tenant, incident string, msg conversation.Message) error
	Unpresented(ctx context.Context, tenant, incident string) (bool, error)
	Silenced(ctx context.Context, tenant, service string) (time.Duration, bool)
}

// Runner is what the pipeline asks of the executor (*executor.Executor).
type Runner interface {
	Prepare(ctx context.Context, tenant, incident string) (executor.Execution, error)
	Enqueue(ctx context.Context, x executor.Execution) error
}

// Settler closes an incident whose recovery ran if its alerts resolved meanwhile
// (*detector.Detector).
type Settler interface {
	Settle(ctx context.Context, tenant, incident string) error
}

// Observer counts what the pipeline handles (the bot's metrics).
type Observer interface {
	Detection(ev detector.Event)
	Authorized(tenant string)
	Execution(o executor.Outcome)
	HandleFailed()
}

// Retry is how often a detection's handling is tried (a chat platform down for a while),
// and the first wait between tries, which doubles after each.
type Retry struct {
	Attempts int
	Backoff  time.Duration
}

// DefaultRetry is the pipeline's retry schedule: 6 attempts, waits of 2, 4, 8, 16 and 32 s.
var DefaultRetry = Retry{Attempts: 6, Backoff: 2 * time.Second}

// Wait is how long to wait after the attempt-th failed try (1-based), and false when
// it was the last.
func (r Retry) Wait(attempt int) (time.Duration, bool) {
	if attempt >= r.Attempts {
		return 0, false
	}
	return r.Backoff << (attempt - 1), true
}

// Options configure the pipeline.
type Options struct {
	// Inbox is where the other components' reports arrive; required.
	Inbox        *Inbox
	Ledger       Recorder
	Conversation Presenter
	Executor     Runner
	// Settler, when set, is asked to settle an incident after its recovery ran or failed.
	Settler Settler
	Tenants []conversation.Tenant
	Logger  *slog.Logger
	// Clock stamps what the pipeline tells the threads; default time.Now.
	Clock func() time.Time
	// Metrics, when set, count what the pipeline handles.
	Metrics Observer
	// SweepEvery is how often half-done work is looked for (default 30 s).
	SweepEvery time.Duration
	// Proposer proposes the action of a new incident (default PolicyProposer).
	Proposer Proposer
	// Concurrency bounds the reports handled at once (default DefaultConcurrency);
	// ConcurrencyPerTenant bounds one tenant's (default DefaultConcurrencyPerTenant).
	// Reports of one incident are handled one at a time, in order.
	Concurrency, ConcurrencyPerTenant int
	// Retry is the schedule of a failed detection's next tries (default DefaultRetry).
	Retry Retry
	// After runs f once d has passed (default time.AfterFunc); the simulation schedules
	// it on virtual time.
	After func(d time.Duration, f func())
	// OnGiveUp, when set, is told of a detection whose every try failed.
	OnGiveUp func(ev detector.Event, attempts int, err error)
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Inbox == nil || o.Ledger == nil || o.Conversation == nil || o.Executor == nil {
		return errors.New("pipeline: inbox, ledger, conversation and executor are required")
	}
	if o.Concurrency < 0 || o.ConcurrencyPerTenant < 0 {
		return errors.New("pipeline: negative concurrency")
	}
	if o.Retry.Attempts < 0 || o.Retry.Backoff < 0 {
		return errors.New("pipeline: negative retry")
	}
	return nil
}

// Pipeline ties the pieces together, one way: a detection becomes a proposal and a
// validated incident presented in the tenant's chats; an authorization becomes an
// execution; an execution's outcome and the service's recovery are told in the thread.
// Each step reads and appends the ledger; nothing reaches back upstream.
type Pipeline struct {
	o       Options
	tenants map[string]conversation.Tenant
}

// New returns a pipeline on o.Inbox; Run (or Drain) must be called for reports to be
// handled.
func New(o Options) (*Pipeline, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
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
	if o.Retry == (Retry{}) {
		o.Retry = DefaultRetry
	}
	if o.After == nil {
		o.After = func(d time.Duration, f func()) { time.AfterFunc(d, f) }
	}
	if o.Metrics == nil {
		o.Metrics = noMetrics{}
	}
	if o.Inbox.dropped == nil {
		log := o.Logger
		o.Inbox.dropped = func(what, tenant, incident string) {
			log.Error("pipeline queue full: "+what+" dropped (the sweep finds it again)", "tenant", tenant, "incident", incident)
		}
	}
	p := &Pipeline{o: o, tenants: map[string]conversation.Tenant{}}
	for _, t := range o.Tenants {
		p.tenants[t.ID] = t
	}
	return p, nil
}

type noMetrics struct{}

func (noMetrics) Detection(detector.Event)   {}
func (noMetrics) Authorized(string)          {}
func (noMetrics) Execution(executor.Outcome) {}
func (noMetrics) HandleFailed()              {}

// outcomeGrace bounds how long a stopping Run still tells the threads about the outcomes
// already reported.
const outcomeGrace = 5 * time.Second

// Run handles the inbox's reports until ctx ends. Reports of different incidents are
// handled concurrently (within Concurrency and ConcurrencyPerTenant), so an incident
// waiting on its diagnosis delays no other; one incident's reports are handled in order.
// At start and every SweepEvery it also finishes what was left half-done, by this replica
// or another that died: AUTHORIZED incidents whose execution was never enqueued, and open
// incidents never presented (a failed proposal, a chat that was down, a queue lost in a
// crash, a silence that ended). It returns once ctx has ended and the reports being
// handled are done; detections still queued are left to the next sweep, outcomes still
// queued are told first.
func (p *Pipeline) Run(ctx context.Context) error {
	l := newLanes(p.o.Concurrency, p.o.ConcurrencyPerTenant)
	defer l.wait()
	resubmit := func(ev detector.Event) {
		l.submit(ctx, ev.Tenant, ev.Incident, func() { p.handleOnce(ctx, ev, 1) })
	}
	p.sweep(ctx, resubmit)
	tick := time.NewTicker(p.o.SweepEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			p.tellOutcomes(ctx)
			return nil
		case r := <-p.o.Inbox.reports:
			t, inc := r.lane()
			l.submit(ctx, t, inc, func() { p.take(ctx, r) })
		case <-tick.C:
			p.sweep(ctx, resubmit)
		}
	}
}

// tellOutcomes tells the threads about the outcomes still queued when Run stops (the
// executor reported them: the recovery ran), within outcomeGrace.
func (p *Pipeline) tellOutcomes(ctx context.Context) {
	gctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), outcomeGrace)
	defer cancel()
	for gctx.Err() == nil {
		select {
		case r := <-p.o.Inbox.reports:
			if r.kind == outcome {
				p.outcome(gctx, r.outcome)
			}
		default:
			return
		}
	}
}

// Drain handles, one after another on the caller's goroutine, every report queued in the
// inbox now (and those queued meanwhile), in the order they came, and returns once it is
// empty. It is Run without the lanes and the sweep, for a driver that owns the clock (the
// governance simulation); retries are scheduled through Options.After. Run must not be
// running.
func (p *Pipeline) Drain(ctx context.Context) {
	for ctx.Err() == nil {
		select {
		case r := <-p.o.Inbox.reports:
			p.take(ctx, r)
		default:
			return
		}
	}
}

// Sweep looks once for half-done work (see Run) and handles it on the caller's goroutine.
func (p *Pipeline) Sweep(ctx context.Context) {
	p.sweep(ctx, func(ev detector.Event) { p.handleOnce(ctx, ev, 1) })
}

// take handles one report.
func (p *Pipeline) take(ctx context.Context, r report) {
	switch r.kind {
	case detection:
		if r.attempt == 1 {
			p.o.Metrics.Detection(r.ev)
		}
		p.handleOnce(ctx, r.ev, r.attempt)
	case authorization:
		p.o.Metrics.Authorized(r.auth.Tenant)
		if err := p.enqueue(ctx, r.auth.Tenant, r.auth.Incident); err != nil {
			p.o.Logger.Error("hand authorized execution to the executor (the sweep tries again)", "tenant", r.auth.Tenant, "incident", r.auth.Incident, "err", err)
		}
	case outcome:
		p.outcome(ctx, r.outcome)
	}
}

// sweepSource marks the detections the sweep re-raises.
const sweepSource detector.Source = "sweep"

// sweepRecent bounds how many of a tenant's newest incidents a sweep looks at.
const sweepRecent = 500

func (p *Pipeline) sweep(ctx context.Context, handle func(detector.Event)) {
	for id := range p.tenants {
		ids, err := p.o.Ledger.Incidents(ctx, id)
		if err != nil {
			p.o.Logger.Error("sweep incidents", "tenant", id, "err", err)
			continue
		}
		if len(ids) > sweepRecent {
			ids = ids[len(ids)-sweepRecent:]
		}
		for _, inc := range ids {
			st, err := p.o.Ledger.Stage(ctx, id, inc)
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
				if ev, ok := p.missing(ctx, id, inc); ok {
					handle(ev)
				}
			}
		}
	}
}

// missing is the detection that re-raises an open incident some chat has not been shown.
func (p *Pipeline) missing(ctx context.Context, tenant, incident string) (detector.Event, bool) {
	missing, err := p.o.Conversation.Unpresented(ctx, tenant, incident)
	if err != nil || !missing {
		return detector.Event{}, false
	}
	in, _, err := p.o.Ledger.Incident(ctx, tenant, incident)
	if err != nil {
		return detector.Event{}, false
	}
	if _, silenced := p.o.Conversation.Silenced(ctx, tenant, in.Service); silenced {
		return detector.Event{}, false
	}
	return detector.Event{Kind: detector.Opened, Source: sweepSource, Tenant: tenant, Service: in.Service, Incident: incident, At: in.OpenedAt}, true
}

// handleTimeout bounds one try of a detection's handling.
const handleTimeout = time.Minute

// handleOnce handles ev to the end even if the service is shutting down meanwhile (so a
// card that reached the chat is always remembered), and schedules a retry on failure.
func (p *Pipeline) handleOnce(ctx context.Context, ev detector.Event, attempt int) {
	hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), handleTimeout)
	err := p.handle(hctx, ev)
	cancel()
	if err == nil {
		return
	}
	p.o.Metrics.HandleFailed()
	wait, again := p.o.Retry.Wait(attempt)
	if !again {
		p.o.Logger.Error("handle detection: giving up", "tenant", ev.Tenant, "incident", ev.Incident, "kind", ev.Kind, "attempts", attempt, "err", err)
		if p.o.OnGiveUp != nil {
			p.o.OnGiveUp(ev, attempt, err)
		}
		return
	}
	p.o.Logger.Warn("handle detection: will retry", "tenant", ev.Tenant, "incident", ev.Incident, "kind", ev.Kind, "in", wait, "err", err)
	p.o.After(wait, func() {
		if ctx.Err() == nil {
			p.o.Inbox.again(ctx, ev, attempt+1)
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
	stage, err := p.o.Ledger.Stage(ctx, ev.Tenant, ev.Incident)
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

func (p *Pipeline) enqueue(ctx context.Context, tenant, incident string) error {
	x, err := p.o.Executor.Prepare(ctx, tenant, incident)
	if errors.Is(err, executor.ErrRunByAgent) {
		return nil // an AI agent's approval for an action it runs itself: nothing to execute
	}
	if err != nil {
		return err
	}
	return p.o.Executor.Enqueue(ctx, x)
}

// outcome tells the thread how an execution ended, then settles the incident: an alert
// that resolved while the recovery ran closes its incident now.
func (p *Pipeline) outcome(ctx context.Context, o executor.Outcome) {
	p.o.Metrics.Execution(o)
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
	if p.o.Settler != nil && (o.Kind == executor.Executed || o.Kind == executor.Failed) {
		if err := p.o.Settler.Settle(ctx, o.Execution.Tenant, o.Execution.Incident); err != nil {
			p.o.Logger.Warn("settle incident after execution", "incident", o.Execution.Incident, "err", err)
		}
	}
}
