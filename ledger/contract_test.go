package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// storeFactory returns n stores that share one backend, as n replicas would.
type storeFactory func(t *testing.T, n int) []ledger.Store

func memStores(t *testing.T, n int) []ledger.Store {
	m := ledger.NewMemStore()
	out := make([]ledger.Store, n)
	for i := range out {
		out[i] = m
	}
	return out
}

func redisStores(t *testing.T, n int) []ledger.Store {
	srv := ledgertest.NewServer(t)
	prefix := srv.Prefix(t)
	out := make([]ledger.Store, n)
	for i := range out {
		out[i] = ledger.NewRedisStore(srv.Client(t), prefix)
	}
	return out
}

var factories = map[string]storeFactory{"mem": memStores, "redis": redisStores}

// TestStoreContract runs the same behaviour against both stores.
func TestStoreContract(t *testing.T) {
	t.Parallel()
	for name, f := range factories {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each store is its own (the Redis one under a prefix of its own)
			t.Run("transitions", func(t *testing.T) { testTransitions(t, f) })
			t.Run("concurrent appends stay gapless", func(t *testing.T) { testConcurrentAppends(t, f) })
			t.Run("one authorization wins", func(t *testing.T) { testOneWinner(t, f) })
			t.Run("one open incident per service", func(t *testing.T) { testServiceDedup(t, f) })
			t.Run("history and fold", func(t *testing.T) { testHistory(t, f) })
		})
	}
}

func newLedger(t *testing.T, s ledger.Store) *ledger.Ledger {
	t.Helper()
	l, err := ledger.New(ledger.Options{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

var (
	policy   = ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	engineer = ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai", Channel: "telegram"}
	system   = ledger.Actor{Kind: ledger.ActorSystem, ID: "executor"}
)

// ev builds an entry for event e by the actor that would normally cause it.
func ev(tenant, incident string, e ledger.Event) ledger.Entry {
	en := ledger.Entry{Tenant: tenant, Incident: incident, Event: e, Actor: system, Reason: string(e), PolicyVersion: "pol-test"}
	switch e {
	case ledger.Authorize, ledger.PartialApprove, ledger.Reject, ledger.Reissue, ledger.Question, ledger.Ack, ledger.Redrive:
		en.Actor = engineer
		en.Approval = "ap:0123456789abcdefghijkl"
	case ledger.Detect, ledger.Propose, ledger.Validate, ledger.Recover:
		en.Actor = policy
	}
	return en
}

// pathTo lists the events that bring a new incident to each stage.
var pathTo = map[ledger.Stage][]ledger.Event{
	ledger.Detected:      {ledger.Detect},
	ledger.Proposed:      {ledger.Detect, ledger.Propose},
	ledger.Validated:     {ledger.Detect, ledger.Propose, ledger.Validate},
	ledger.Authorized:    {ledger.Detect, ledger.Propose, ledger.Validate, ledger.Authorize},
	ledger.Executed:      {ledger.Detect, ledger.Propose, ledger.Validate, ledger.Authorize, ledger.Execute},
	ledger.Resolved:      {ledger.Detect, ledger.Propose, ledger.Validate, ledger.Authorize, ledger.Execute, ledger.Resolve},
	ledger.Recovered:     {ledger.Detect, ledger.Recover},
	ledger.Expired:       {ledger.Detect, ledger.Propose, ledger.Validate, ledger.Expire},
	ledger.Rejected:      {ledger.Detect, ledger.Propose, ledger.Reject},
	ledger.WebhookFailed: {ledger.Detect, ledger.Propose, ledger.Validate, ledger.Authorize, ledger.WebhookFail},
}

// legal is written out by hand from the README's "Stages" (not derived from the code under test):
// the stage each legal (stage, stage event) pair leads to.
var legal = map[ledger.Stage]map[ledger.Event]ledger.Stage{
	ledger.None:          {ledger.Detect: ledger.Detected},
	ledger.Detected:      {ledger.Propose: ledger.Proposed, ledger.Recover: ledger.Recovered},
	ledger.Proposed:      {ledger.Validate: ledger.Validated, ledger.Recover: ledger.Recovered, ledger.Reject: ledger.Rejected},
	ledger.Validated:     {ledger.Authorize: ledger.Authorized, ledger.Recover: ledger.Recovered, ledger.Expire: ledger.Expired, ledger.Reject: ledger.Rejected},
	ledger.Authorized:    {ledger.Execute: ledger.Executed, ledger.WebhookFail: ledger.WebhookFailed},
	ledger.Executed:      {ledger.Resolve: ledger.Resolved},
	ledger.Expired:       {ledger.Reissue: ledger.Validated, ledger.Recover: ledger.Recovered},
	ledger.WebhookFailed: {ledger.Redrive: ledger.Authorized, ledger.Recover: ledger.Recovered},
}

func nonStageLegal(s ledger.Stage, e ledger.Event) bool {
	if s == ledger.None || e == ledger.Loss { // a loss marker is the ledger's own, on no incident
		return false
	}
	if s == ledger.None {
		return false
	}
	if s.Terminal() {
		return e == ledger.RefusedPress || e == ledger.Security || e == ledger.Question || e == ledger.Answer
	}
	return true
}

func testTransitions(t *testing.T, f storeFactory) {
	ctx := context.Background()
	s := f(t, 1)[0]
	l := newLedger(t, s)
	n := 0
	for _, stage := range ledger.Stages {
		for _, event := range ledger.Events {
			n++
			stage, event := stage, event
			t.Run(fmt.Sprintf("%s/%s", stage, event), func(t *testing.T) {
				tenant := "t"
				incident := "INC-FFFF"
				if stage != ledger.None {
					for i, e := range pathTo[stage] {
						en := ev(tenant, incident, e)
						en.Service = fmt.Sprintf("svc-%d", n)
						out, err := l.Record(ctx, en)
						if err != nil {
							t.Fatalf("setting up %s, step %d %s: %v", stage, i, e, err)
						}
						incident = out.Incident
					}
				}
				before, _ := s.Tail(ctx, tenant)
				en := ev(tenant, incident, event)
				en.Service = fmt.Sprintf("svc-x%d", n)
				out, err := l.Record(ctx, en)
				after, _ := s.Tail(ctx, tenant)

				if event == ledger.Detect && stage != ledger.None {
					// Detect never applies to an existing incident: it opens a new one.
					if err != nil || out.Incident == incident || out.From != ledger.None {
						t.Fatalf("detect beside %s incident: %+v, %v; want a new incident", stage, out, err)
					}
					if cur, _ := s.Stage(ctx, tenant, incident); cur != stage {
						t.Fatalf("existing incident moved to %s", cur)
					}
					return
				}
				want, isLegal := legal[stage][event]
				if !event.IsStageEvent() {
					want, isLegal = stage, nonStageLegal(stage, event)
				}
				if isLegal {
					if err != nil {
						t.Fatalf("%s from %s: %v, want move to %s", event, stage, err, want)
					}
					if out.From != stage || out.To != want || after.Seq != before.Seq+1 {
						t.Fatalf("%s from %s recorded %s→%s (tail %d→%d), want →%s", event, stage, out.From, out.To, before.Seq, after.Seq, want)
					}
					return
				}
				if err == nil {
					t.Fatalf("%s from %s was accepted (→%s), want refusal", event, stage, out.To)
				}
				var te *ledger.TransitionError
				if stage != ledger.None && !errors.As(err, &te) {
					t.Fatalf("%s from %s: error %v is not a TransitionError", event, stage, err)
				}
				if te != nil && te.From != stage {
					t.Fatalf("error %q does not name the stage %s", err, stage)
				}
				if after != before {
					t.Fatalf("refused %s from %s still appended (tail %d→%d)", event, stage, before.Seq, after.Seq)
				}
			})
		}
	}
}

func testConcurrentAppends(t *testing.T, f storeFactory) {
	const replicas, workers, total = 4, 8, 12800
	ctx := context.Background()
	stores := f(t, replicas)
	per := total / (replicas * workers)
	var wg sync.WaitGroup
	errs := make(chan error, replicas*workers)
	for r := 0; r < replicas; r++ {
		l := newLedger(t, stores[r])
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(r, w int) {
				defer wg.Done()
				en := ev("acme", "", ledger.Detect)
				en.Service = fmt.Sprintf("svc-%d-%d", r, w)
				open, err := l.Record(ctx, en)
				if err != nil {
					errs <- err
					return
				}
				for i := 1; i < per; i++ {
					q := ev("acme", open.Incident, ledger.Question)
					q.Reason = fmt.Sprintf("question %d from %d/%d", i, r, w)
					if _, err := l.Record(ctx, q); err != nil {
						errs <- err
						return
					}
				}
			}(r, w)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	rep, err := ledger.VerifyStore(ctx, stores[0], "acme", nil)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	if rep.Entries != total {
		t.Fatalf("%d entries, want %d", rep.Entries, total)
	}
	all, err := stores[1].Range(ctx, "acme", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range all {
		if e.Seq != uint64(i+1) {
			t.Fatalf("position %d has seq %d: gap or fork", i+1, e.Seq)
		}
	}
}

func testOneWinner(t *testing.T, f storeFactory) {
	ctx := context.Background()
	stores := f(t, 4)
	l0 := newLedger(t, stores[0])
	incident := ""
	for _, e := range pathTo[ledger.Validated] {
		en := ev("acme", incident, e)
		en.Service = "checkout"
		out, err := l0.Record(ctx, en)
		if err != nil {
			t.Fatal(err)
		}
		incident = out.Incident
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, losses := 0, 0
	for r := 0; r < 4; r++ {
		l := newLedger(t, stores[r])
		for i := 0; i < 25; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := l.Record(ctx, ev("acme", incident, ledger.Authorize))
				mu.Lock()
				defer mu.Unlock()
				var te *ledger.TransitionError
				switch {
				case err == nil:
					wins++
				case errors.As(err, &te) && te.From == ledger.Authorized:
					losses++
				default:
					t.Errorf("unexpected error: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	if wins != 1 || losses != 99 {
		t.Fatalf("%d authorizations won, %d lost; want exactly 1 and 99", wins, losses)
	}
	in, _, err := l0.Incident(ctx, "acme", incident)
	if err != nil || in.Stage != ledger.Authorized || len(in.ApprovedBy) != 1 {
		t.Fatalf("incident after the race: %+v, %v", in, err)
	}
}

func testServiceDedup(t *testing.T, f storeFactory) {
	ctx := context.Background()
	stores := f(t, 2)
	var wg sync.WaitGroup
	var mu sync.Mutex
	opened := map[string]int{}
	refusedWith := map[string]int{}
	for r := 0; r < 2; r++ {
		l := newLedger(t, stores[r])
		for i := 0; i < 10; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				en := ev("acme", "", ledger.Detect)
				en.Service = "checkout"
				out, err := l.Record(ctx, en)
				mu.Lock()
				defer mu.Unlock()
				var so *ledger.ServiceOpenError
				switch {
				case err == nil:
					opened[out.Incident]++
				case errors.As(err, &so):
					refusedWith[so.Incident]++
				default:
					t.Errorf("unexpected: %v", err)
				}
			}()
		}
	}
	wg.Wait()
	if len(opened) != 1 {
		t.Fatalf("opened %v, want exactly one incident", opened)
	}
	var id string
	for k := range opened {
		id = k
	}
	if refusedWith[id] != 19 {
		t.Fatalf("refusals named %v, want 19 naming %s", refusedWith, id)
	}
	l := newLedger(t, stores[0])
	if got, _ := stores[1].OpenIncident(ctx, "acme", "checkout"); got != id {
		t.Fatalf("open incident of checkout = %q, want %s", got, id)
	}
	if _, err := l.Record(ctx, ev("acme", id, ledger.Recover)); err != nil {
		t.Fatal(err)
	}
	if got, _ := stores[1].OpenIncident(ctx, "acme", "checkout"); got != "" {
		t.Fatalf("recovered incident still holds the service: %q", got)
	}
	en := ev("acme", "", ledger.Detect)
	en.Service = "checkout"
	again, err := l.Record(ctx, en)
	if err != nil || again.Incident == id {
		t.Fatalf("a new detection after recovery: %+v, %v", again, err)
	}
}

func testHistory(t *testing.T, f storeFactory) {
	ctx := context.Background()
	s := f(t, 1)[0]
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	l, err := ledger.New(ledger.Options{Store: s, Clock: func() time.Time { at = at.Add(time.Second); return at }})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, svc := range []string{"checkout", "payments"} {
		en := ev("acme", "", ledger.Detect)
		en.Service = svc
		out, err := l.Record(ctx, en)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, out.Incident)
	}
	for _, e := range []ledger.Event{ledger.Propose, ledger.Validate, ledger.Question, ledger.Authorize, ledger.Execute} {
		en := ev("acme", ids[0], e)
		en.Action = "restart_workers"
		en.Confidence = 0.87
		if _, err := l.Record(ctx, en); err != nil {
			t.Fatalf("%s: %v", e, err)
		}
		if _, err := l.Record(ctx, ev("acme", ids[1], ledger.Update)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Incidents(ctx, "acme")
	if err != nil || len(got) != 2 || got[0] != ids[0] || got[1] != ids[1] {
		t.Fatalf("incidents %v, %v; want %v", got, err, ids)
	}
	in, h, err := l.Incident(ctx, "acme", ids[0])
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 6 || in.Stage != ledger.Executed || in.Action != "restart_workers" || in.Service != "checkout" ||
		len(in.ApprovedBy) != 1 || in.ApprovedBy[0] != "tendai" || in.Approval == "" {
		t.Fatalf("folded %+v from %d entries", in, len(h))
	}
	for i := 1; i < len(h); i++ {
		if h[i].Seq <= h[i-1].Seq || h[i].Incident != ids[0] {
			t.Fatalf("history out of order or mixed: %+v", h)
		}
	}
	if _, _, err := l.Incident(ctx, "acme", "INC-FFFFFF"); !errors.Is(err, ledger.ErrNoIncident) {
		t.Fatalf("unknown incident: %v", err)
	}
}

// TestStaleRememberedStage: a Ledger that last saw an incident AUTHORIZED still judges
// the next event on the stage the store holds after another replica moved it.
func TestStaleRememberedStage(t *testing.T) {
	for name, f := range factories {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			stores := f(t, 2)
			a, b := newLedger(t, stores[0]), newLedger(t, stores[1])
			incident := ""
			for _, e := range pathTo[ledger.Authorized] {
				en := ev("acme", incident, e)
				en.Service = "checkout"
				out, err := a.Record(ctx, en)
				if err != nil {
					t.Fatal(err)
				}
				incident = out.Incident
			}
			if _, err := b.Record(ctx, ev("acme", incident, ledger.WebhookFail)); err != nil {
				t.Fatal(err)
			}
			// a remembers AUTHORIZED; a re-drive is illegal there but legal in WEBHOOK_FAILED.
			out, err := a.Record(ctx, ev("acme", incident, ledger.Redrive))
			if err != nil || out.From != ledger.WebhookFailed || out.To != ledger.Authorized {
				t.Fatalf("redrive through a stale ledger: %+v, %v", out, err)
			}
			// and an event legal in the guess but not in truth is refused.
			if _, err := b.Record(ctx, ev("acme", incident, ledger.Execute)); err != nil {
				t.Fatal(err)
			}
			if _, err := a.Record(ctx, ev("acme", incident, ledger.WebhookFail)); err == nil {
				t.Fatal("webhook_fail accepted on an EXECUTED incident")
			}
		})
	}
}
