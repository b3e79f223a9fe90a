package pipeline

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// presenter is the conversation as the pipeline sees it: it records what it was asked,
// and fails the first failures calls of Present.
type presenter struct {
	mu        sync.Mutex
	failures  int
	presented []string
	notified  []ledger.Entry
	said      []string
	shown     map[string]bool
	silenced  map[string]time.Duration
}

func newPresenter() *presenter {
	return &presenter{shown: map[string]bool{}, silenced: map[string]time.Duration{}}
}

func (p *presenter) Present(_ context.Context, _, incident string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failures > 0 {
		p.failures--
		return errors.New("chat is down")
	}
	p.presented = append(p.presented, incident)
	p.shown[incident] = true
	return nil
}

func (p *presenter) Notify(_ context.Context, e ledger.Entry) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.notified = append(p.notified, e)
	return nil
}

func (p *presenter) Say(_ context.Context, _, incident string, m conversation.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.said = append(p.said, incident+": "+m.Blocks[0].Text)
	return nil
}

func (p *presenter) Unpresented(_ context.Context, _, incident string) (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return !p.shown[incident], nil
}

func (p *presenter) Silenced(_ context.Context, _, service string) (time.Duration, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	d, ok := p.silenced[service]
	return d, ok
}

func (p *presenter) snapshot() (presented []string, notified []ledger.Entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.presented...), append([]ledger.Entry(nil), p.notified...)
}

// runner is the executor: it records what was enqueued.
type runner struct {
	mu       sync.Mutex
	enqueued []string
	fail     error
}

func (r *runner) Prepare(_ context.Context, tenant, incident string) (executor.Execution, error) {
	if r.fail != nil {
		return executor.Execution{}, r.fail
	}
	return executor.Execution{Tenant: tenant, Incident: incident, Action: "restart_workers"}, nil
}

func (r *runner) Enqueue(_ context.Context, x executor.Execution) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.enqueued = append(r.enqueued, x.Incident)
	return nil
}

func (r *runner) list() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.enqueued...)
}

type settler struct {
	mu      sync.Mutex
	settled []string
}

func (s *settler) Settle(_ context.Context, _, incident string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.settled = append(s.settled, incident)
	return nil
}

// scheduled records Options.After: the waits asked for, and the functions due.
type scheduled struct {
	waits []time.Duration
	due   []func()
}

func (s *scheduled) after(d time.Duration, f func()) {
	s.waits = append(s.waits, d)
	s.due = append(s.due, f)
}

// fire runs what is due.
func (s *scheduled) fire() {
	due := s.due
	s.due = nil
	for _, f := range due {
		f()
	}
}

var acme = conversation.Tenant{ID: "acme", ApprovalTTL: 5 * time.Minute, PolicyVersion: "v1", DefaultAction: "restart_workers",
	Actions: []conversation.Action{{Name: "restart_workers"}, {Name: "rollback", HighRisk: true}}}

type rig struct {
	l     *ledger.Ledger
	inbox *Inbox
	conv  *presenter
	exec  *runner
	set   *settler
	sched *scheduled
	pipe  *Pipeline
	gave  []string
}

func newRig(t *testing.T, tune func(*Options)) *rig {
	t.Helper()
	l, err := ledger.New(ledger.Options{Store: ledger.NewMemStore()})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{l: l, inbox: NewInbox(0), conv: newPresenter(), exec: &runner{}, set: &settler{}, sched: &scheduled{}}
	o := Options{Inbox: r.inbox, Ledger: Ledger{l}, Conversation: r.conv, Executor: r.exec, Settler: r.set, Tenants: []conversation.Tenant{acme},
		After: r.sched.after, OnGiveUp: func(ev detector.Event, n int, err error) {
			r.gave = append(r.gave, fmt.Sprintf("%s after %d: %v", ev.Incident, n, err))
		}}
	if tune != nil {
		tune(&o)
	}
	if r.pipe, err = New(o); err != nil {
		t.Fatal(err)
	}
	return r
}

// detect opens an incident on service as the detector does, and returns its detection.
func (r *rig) detect(t *testing.T, service string) detector.Event {
	t.Helper()
	e, err := r.l.Record(context.Background(), ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: service,
		Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "detector"}, Reason: service + " is slow"})
	if err != nil {
		t.Fatal(err)
	}
	return detector.Event{Kind: detector.Opened, Source: "test", Tenant: "acme", Service: service, Incident: e.Incident, At: e.At}
}

func (r *rig) events(t *testing.T, incident string) []ledger.Event {
	t.Helper()
	_, hist, err := r.l.Incident(context.Background(), "acme", incident)
	if err != nil {
		t.Fatal(err)
	}
	var out []ledger.Event
	for _, e := range hist {
		out = append(out, e.Event)
	}
	return out
}

func (r *rig) stage(t *testing.T, incident string) ledger.Stage {
	t.Helper()
	s, err := r.l.Store().Stage(context.Background(), "acme", incident)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestDetectionIsProposedValidatedAndPresented(t *testing.T) {
	r := newRig(t, nil)
	ev := r.detect(t, "checkout")
	r.inbox.OnDetection(t.Context(), ev)
	r.pipe.Drain(t.Context())
	if got := fmt.Sprint(r.events(t, ev.Incident)); got != fmt.Sprint([]ledger.Event{ledger.Detect, ledger.Propose, ledger.Validate}) {
		t.Fatalf("ledger %s, want detect, propose, validate", got)
	}
	_, hist, _ := r.l.Incident(t.Context(), "acme", ev.Incident)
	if hist[1].Action != "restart_workers" || hist[1].Actor.Kind != ledger.ActorPolicy {
		t.Errorf("proposal %+v, want the policy's restart_workers", hist[1])
	}
	if !strings.Contains(hist[2].Reason, "restart_workers (risk low) is a defined action; approval open for 5m0s") {
		t.Errorf("validation reason %q", hist[2].Reason)
	}
	if p, _ := r.conv.snapshot(); fmt.Sprint(p) != "["+ev.Incident+"]" {
		t.Errorf("presented %v, want [%s]", p, ev.Incident)
	}
}

// A chat that is down: the detection is tried again on the Retry schedule, and the retry
// continues from the stage reached (no second proposal).
func TestFailedPresentationIsRetriedWhereItStopped(t *testing.T) {
	r := newRig(t, nil)
	r.conv.failures = 2
	ev := r.detect(t, "checkout")
	r.inbox.OnDetection(t.Context(), ev)
	r.pipe.Drain(t.Context())
	if p, _ := r.conv.snapshot(); len(p) != 0 || len(r.sched.waits) != 1 || r.sched.waits[0] != 2*time.Second {
		t.Fatalf("after a failure: presented %v, retry waits %v; want nothing presented and one retry in 2s", p, r.sched.waits)
	}
	r.sched.fire()
	r.pipe.Drain(t.Context())
	r.sched.fire()
	r.pipe.Drain(t.Context())
	if fmt.Sprint(r.sched.waits) != "[2s 4s]" {
		t.Errorf("waits %v, want [2s 4s]", r.sched.waits)
	}
	if p, _ := r.conv.snapshot(); len(p) != 1 {
		t.Fatalf("presented %v, want once after the third try", p)
	}
	if got := fmt.Sprint(r.events(t, ev.Incident)); got != fmt.Sprint([]ledger.Event{ledger.Detect, ledger.Propose, ledger.Validate}) {
		t.Errorf("ledger %s: the retries must not propose or validate twice", got)
	}
}

func TestRetryGivesUpAfterItsAttempts(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Retry = Retry{Attempts: 3, Backoff: time.Second} })
	r.conv.failures = 100
	ev := r.detect(t, "checkout")
	r.inbox.OnDetection(t.Context(), ev)
	for range 5 {
		r.pipe.Drain(t.Context())
		r.sched.fire()
	}
	if fmt.Sprint(r.sched.waits) != "[1s 2s]" {
		t.Errorf("waits %v, want [1s 2s] (3 attempts)", r.sched.waits)
	}
	if len(r.gave) != 1 || !strings.Contains(r.gave[0], "after 3: chat is down") {
		t.Errorf("gave up %v, want once after 3 attempts", r.gave)
	}
}

func TestRetryWaitsDouble(t *testing.T) {
	var waits []time.Duration
	for a := 1; ; a++ {
		d, ok := DefaultRetry.Wait(a)
		if !ok {
			break
		}
		waits = append(waits, d)
	}
	if fmt.Sprint(waits) != "[2s 4s 8s 16s 32s]" {
		t.Errorf("default waits %v", waits)
	}
}

// A silenced service's incident is recorded with a notice and not posted.
func TestSilencedServiceIsNotPosted(t *testing.T) {
	r := newRig(t, nil)
	r.conv.silenced["checkout"] = 20 * time.Minute
	ev := r.detect(t, "checkout")
	r.inbox.OnDetection(t.Context(), ev)
	r.pipe.Drain(t.Context())
	_, hist, _ := r.l.Incident(t.Context(), "acme", ev.Incident)
	if last := hist[len(hist)-1]; last.Event != ledger.Notice || !strings.Contains(last.Reason, "checkout is silenced for another 20m0s") {
		t.Errorf("last entry %+v, want the silence notice", last)
	}
	if p, _ := r.conv.snapshot(); len(p) != 0 {
		t.Errorf("presented %v while silenced", p)
	}
}

func TestOtherDetectionsAreToldInTheThread(t *testing.T) {
	r := newRig(t, nil)
	ev := r.detect(t, "checkout")
	for _, e := range []detector.Event{
		{Kind: detector.Updated, Tenant: "acme", Incident: ev.Incident, Note: "CheckoutErrors joined"},
		{Kind: detector.Updated, Tenant: "acme", Incident: ev.Incident},
		{Kind: detector.Resolved, Tenant: "acme", Incident: ev.Incident},
		{Kind: detector.Recovered, Tenant: "acme", Incident: ev.Incident, Note: "its alerts expired"},
		{Kind: detector.Suppressed, Tenant: "acme", Service: "payments"},
	} {
		r.inbox.OnDetection(t.Context(), e)
	}
	r.pipe.Drain(t.Context())
	if fmt.Sprint(r.conv.said) != "["+ev.Incident+": ➕ CheckoutErrors joined]" {
		t.Errorf("said %v", r.conv.said)
	}
	_, n := r.conv.snapshot()
	if len(n) != 2 || n[0].Event != ledger.Resolve || n[1].Event != ledger.Recover || n[1].Reason != "its alerts expired" {
		t.Errorf("notified %+v, want resolve then recover with its note", n)
	}
}

// authorize moves an incident to AUTHORIZED as an approval does.
func (r *rig) authorize(t *testing.T, incident string) ledger.Entry {
	t.Helper()
	e, err := r.l.Record(t.Context(), ledger.Entry{Tenant: "acme", Incident: incident, Event: ledger.Authorize, Action: "restart_workers",
		Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai"}, Approval: "ref-1"})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestAuthorizationIsEnqueuedAndOutcomeToldAndSettled(t *testing.T) {
	r := newRig(t, nil)
	ev := r.detect(t, "checkout")
	r.inbox.OnDetection(t.Context(), ev)
	r.pipe.Drain(t.Context())
	if err := r.inbox.OnAuthorized(t.Context(), r.authorize(t, ev.Incident)); err != nil {
		t.Fatalf("OnAuthorized: %v (it only queues)", err)
	}
	if len(r.exec.list()) != 0 {
		t.Fatal("the inbox ran the executor itself; it must only queue")
	}
	r.pipe.Drain(t.Context())
	if fmt.Sprint(r.exec.list()) != "["+ev.Incident+"]" {
		t.Fatalf("enqueued %v", r.exec.list())
	}
	x := executor.Execution{Tenant: "acme", Incident: ev.Incident, Action: "restart_workers"}
	r.inbox.OnOutcome(t.Context(), executor.Outcome{Kind: executor.Executed, Execution: x})
	r.inbox.OnOutcome(t.Context(), executor.Outcome{Kind: executor.Refused, Execution: x, Reason: "bad target"})
	r.pipe.Drain(t.Context())
	_, n := r.conv.snapshot()
	if len(n) != 2 || n[0].Event != ledger.Execute || n[0].Action != "restart_workers" || n[1].Event != ledger.Security || n[1].Reason != "bad target" {
		t.Errorf("notified %+v", n)
	}
	if fmt.Sprint(r.set.settled) != "["+ev.Incident+"]" {
		t.Errorf("settled %v, want the executed one only (a refused execution ran nothing)", r.set.settled)
	}
}

// The sweep finishes half-done work: an AUTHORIZED incident never enqueued, an open one
// never presented; a presented or silenced one is left alone.
func TestSweepFinishesHalfDoneWork(t *testing.T) {
	r := newRig(t, nil)
	authorized := r.detect(t, "checkout")
	r.inbox.OnDetection(t.Context(), authorized)
	r.pipe.Drain(t.Context())
	r.authorize(t, authorized.Incident)
	lost := r.detect(t, "payments") // its detection was lost in a crash
	quiet := r.detect(t, "search")  // silenced
	r.conv.silenced["search"] = time.Hour
	presented := len(r.conv.presented)
	r.pipe.Sweep(t.Context())
	if fmt.Sprint(r.exec.list()) != "["+authorized.Incident+"]" {
		t.Errorf("enqueued %v, want the authorized incident", r.exec.list())
	}
	p, _ := r.conv.snapshot()
	if fmt.Sprint(p[presented:]) != "["+lost.Incident+"]" {
		t.Errorf("sweep presented %v, want only %s", p[presented:], lost.Incident)
	}
	if r.stage(t, quiet.Incident) != ledger.Detected {
		t.Errorf("the silenced incident moved to %s", r.stage(t, quiet.Incident))
	}
	r.pipe.Sweep(t.Context())
	if p2, _ := r.conv.snapshot(); len(p2) != len(p) {
		t.Errorf("a second sweep presented again: %v", p2[len(p):])
	}
}

func TestValidationNamesEveryOfferAndRefusesAnUnknownOne(t *testing.T) {
	in := ledger.Incident{Action: "rollback"}
	pr := conversation.Proposal{Offers: []conversation.Offer{{Action: "rollback", Theory: "A"}, {Action: "restart_workers", Theory: "B"}}}
	hist := []ledger.Entry{{Event: ledger.Propose, Data: pr.Data()}}
	v, err := validation(acme, in, hist)
	if err != nil {
		t.Fatal(err)
	}
	want := "offered: rollback for theory A (risk high: two distinct approvers), restart_workers for theory B (risk low); all defined; approving one voids the others; approval open for 5m0s"
	if v.Reason != want || v.Data["offers"] != "rollback,restart_workers" {
		t.Errorf("validation %q %v", v.Reason, v.Data)
	}
	pr.Offers = append(pr.Offers, conversation.Offer{Action: "drop_tables"})
	if _, err := validation(acme, in, []ledger.Entry{{Event: ledger.Propose, Data: pr.Data()}}); err == nil || !strings.Contains(err.Error(), `"drop_tables" is not defined`) {
		t.Errorf("an undefined offer validated: %v", err)
	}
}

func TestPolicyProposerNeedsAnAction(t *testing.T) {
	if _, err := (PolicyProposer{}).Propose(t.Context(), conversation.Tenant{ID: "bare"}, ledger.Incident{}, nil); err == nil {
		t.Error("a tenant without actions got a proposal")
	}
	pr, err := PolicyProposer{}.Propose(t.Context(), acme, ledger.Incident{}, nil)
	if err != nil || pr.Action != "restart_workers" || pr.Actor.Kind != ledger.ActorPolicy || len(pr.Diagnoses) != 0 {
		t.Errorf("%+v %v", pr, err)
	}
	risky := conversation.Tenant{ID: "x", Actions: []conversation.Action{{Name: "rollback", HighRisk: true}, {Name: "restart"}}}
	if a, ok := ProposedAction(risky); !ok || a.Name != "restart" {
		t.Errorf("proposed %v, want the first low-risk action", a)
	}
}

type failingProposer struct{}

func (failingProposer) Propose(context.Context, conversation.Tenant, ledger.Incident, []ledger.Entry) (Proposition, error) {
	return Proposition{}, errors.New("council unreachable")
}

func TestFailedProposalLeavesTheIncidentDetected(t *testing.T) {
	r := newRig(t, func(o *Options) { o.Proposer = failingProposer{} })
	ev := r.detect(t, "checkout")
	r.inbox.OnDetection(t.Context(), ev)
	r.pipe.Drain(t.Context())
	if r.stage(t, ev.Incident) != ledger.Detected || len(r.sched.waits) != 1 {
		t.Errorf("stage %s, retries %v: want DETECTED and a retry scheduled", r.stage(t, ev.Incident), r.sched.waits)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	if _, err := New(Options{}); err == nil {
		t.Error("no inbox, ledger, conversation or executor: accepted")
	}
	l, _ := ledger.New(ledger.Options{Store: ledger.NewMemStore()})
	o := Options{Inbox: NewInbox(1), Ledger: Ledger{l}, Conversation: newPresenter(), Executor: &runner{}, Concurrency: -1}
	if _, err := New(o); err == nil {
		t.Error("negative concurrency accepted")
	}
}

// Run handles what arrives in the inbox on its own goroutines, sweeps at start, and tells
// the outcomes already reported before it returns.
func TestRunHandlesTheInboxAndStops(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		r := newRig(t, func(o *Options) { o.After = nil })
		lost := r.detect(t, "payments")
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan error, 1)
		go func() { done <- r.pipe.Run(ctx) }()
		synctest.Wait() // the start's sweep is done
		ev := r.detect(t, "checkout")
		r.inbox.OnDetection(ctx, ev)
		synctest.Wait()
		if p, _ := r.conv.snapshot(); len(p) != 2 {
			t.Fatalf("presented %v, want the swept %s and the detected %s", p, lost.Incident, ev.Incident)
		}
		r.conv.failures = 1
		other := r.detect(t, "search")
		r.inbox.OnDetection(ctx, other)
		synctest.Wait()
		time.Sleep(2 * time.Second) // the retry's wait, on the real timer
		synctest.Wait()
		if p, _ := r.conv.snapshot(); len(p) != 3 {
			t.Fatalf("presented %v, want the retried %s too", p, other.Incident)
		}
		cancel()
		r.inbox.OnOutcome(context.Background(), executor.Outcome{Kind: executor.Executed, Execution: executor.Execution{Tenant: "acme", Incident: ev.Incident}})
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if _, n := r.conv.snapshot(); len(n) != 1 || n[0].Event != ledger.Execute {
			t.Errorf("notified %+v after stop: want the queued outcome told", n)
		}
	})
}

// A full inbox waits a little, then drops the report and says so.
func TestFullInboxDropsAndSays(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		in := NewInbox(1)
		var dropped []string
		in.dropped = func(what, tenant, incident string) { dropped = append(dropped, what+" "+incident) }
		in.OnDetection(t.Context(), detector.Event{Tenant: "acme", Incident: "INC-1"})
		start := time.Now()
		_ = in.OnAuthorized(t.Context(), ledger.Entry{Tenant: "acme", Incident: "INC-2"})
		if time.Since(start) != fullWait || fmt.Sprint(dropped) != "[authorization INC-2]" {
			t.Errorf("waited %v, dropped %v", time.Since(start), dropped)
		}
	})
}
