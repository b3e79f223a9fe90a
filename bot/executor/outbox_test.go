package executor_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/ledger"
)

// However many copies of an execution the outbox holds, and however many executors read
// it, the webhook is called once per approval.
func TestOneCallPerApproval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		copies            int
		workers, replicas int
	}{
		{"enqueued twice, one worker", 2, 1, 1},
		{"enqueued twice, four workers", 2, 4, 1},
		{"enqueued five times, three replicas of two workers", 5, 2, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t)
			h := newWebhook(t)
			v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
			outcomes := make(chan executor.Outcome, 64)
			var bots []*bot
			for i := 0; i < tc.replicas; i++ {
				bots = append(bots, v.newBot(func(o *executor.Options) {
					o.Workers = tc.workers
					o.Consumer = fmt.Sprintf("replica-%d", i)
					o.Lease = 300 * time.Millisecond // a copy found in flight elsewhere waits this long
					o.OnOutcome = func(_ context.Context, o executor.Outcome) { outcomes <- o }
				}))
			}
			id, _ := v.authorize("checkout", "restart_workers")
			x, err := bots[0].Prepare(context.Background(), tenant, id)
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tc.copies; i++ {
				if err := bots[0].Enqueue(context.Background(), x); err != nil {
					t.Fatal(err)
				}
			}
			for _, b := range bots {
				b.start(t)
			}
			kinds := map[executor.OutcomeKind]int{}
			for i := 0; i < tc.copies; i++ {
				select {
				case o := <-outcomes:
					kinds[o.Kind]++
					if o.Kind == executor.Skipped && o.Reason != "incident is EXECUTED" {
						t.Errorf("skipped copy: %q", o.Reason)
					}
				case <-time.After(waitTimeout):
					t.Fatalf("only %d of %d copies settled: %v", i, tc.copies, kinds)
				}
			}
			if diff := cmp.Diff(map[executor.OutcomeKind]int{executor.Executed: 1, executor.Skipped: tc.copies - 1}, kinds); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if n := len(h.Calls()); n != 1 {
				t.Errorf("webhook called %d times, want once", n)
			}
			if _, hist := v.incident(id); len(entries(hist, ledger.Execute)) != 1 {
				t.Errorf("%d execute entries", len(entries(hist, ledger.Execute)))
			}
			if n, p := v.outboxLen(); n != 0 || p != 0 {
				t.Errorf("outbox holds %d entries, %d pending; want it drained", n, p)
			}
		})
	}
}

// A bot that dies with an execution in flight leaves it pending in the outbox; another
// bot reclaims it once the lease has passed and delivers it with the same key.
func TestResumeAfterCrash(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		reply []func(http.ResponseWriter, *http.Request)
		// dieAt installs, in the first bot's options, the hook at which it dies: the hook
		// reports through died and then blocks until the bot is stopped.
		dieAt      func(o *executor.Options, died chan<- struct{})
		firstCalls int // calls the first bot made before dying
	}{
		{
			name: "dies after claiming, before calling",
			dieAt: func(o *executor.Options, died chan<- struct{}) {
				o.OnClaim = func(ctx context.Context, _ executor.Execution) { died <- struct{}{}; <-ctx.Done() }
			},
		},
		{
			name:  "dies while waiting to retry a 503",
			reply: []func(http.ResponseWriter, *http.Request){status(503), status(200)},
			dieAt: func(o *executor.Options, died chan<- struct{}) {
				o.Sleep = func(ctx context.Context, _ time.Duration) error { died <- struct{}{}; <-ctx.Done(); return ctx.Err() }
			},
			firstCalls: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t)
			h := newWebhook(t, tc.reply...)
			v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
			const lease = 300 * time.Millisecond
			died := make(chan struct{}, 1)
			first := v.newBot(func(o *executor.Options) {
				o.Consumer = "bot-a"
				o.Lease = lease
				tc.dieAt(o, died)
			})
			x := enqueueApproved(t, v, first, "checkout")
			stopFirst := first.start(t)
			select {
			case <-died:
			case <-time.After(waitTimeout):
				t.Fatal("the first bot never claimed the execution")
			}
			stopFirst()
			if n := len(h.Calls()); n != tc.firstCalls {
				t.Fatalf("the first bot made %d calls before dying, want %d", n, tc.firstCalls)
			}
			if n, p := v.outboxLen(); n != 1 || p != 1 {
				t.Fatalf("after the crash the outbox holds %d entries, %d pending; want the execution pending", n, p)
			}

			second := v.newBot(func(o *executor.Options) {
				o.Consumer = "bot-b"
				o.Lease = lease
			})
			second.start(t)
			o := second.outcome(t)
			if o.Kind != executor.Executed || o.Attempts != 1 {
				t.Fatalf("outcome %+v, want executed on the second bot's first attempt", o)
			}
			calls := h.Calls()
			if len(calls) != tc.firstCalls+1 {
				t.Fatalf("webhook got %d calls, want %d", len(calls), tc.firstCalls+1)
			}
			for i, c := range calls {
				if c.Key != x.IdempotencyKey || c.SigErr != nil {
					t.Errorf("call %d: key %q (want %q), signature %v", i+1, c.Key, x.IdempotencyKey, c.SigErr)
				}
			}
			select {
			case o := <-first.outcomes:
				t.Errorf("the dead bot reported %+v", o)
			default:
			}
			if _, hist := v.incident(x.Incident); len(entries(hist, ledger.Execute)) != 1 {
				t.Errorf("%d execute entries, want 1", len(entries(hist, ledger.Execute)))
			}
			if n, p := v.outboxLen(); n != 0 || p != 0 {
				t.Errorf("outbox holds %d entries, %d pending; want it drained", n, p)
			}
		})
	}
}

// An outbox entry is executed only for an incident the ledger says is AUTHORIZED, and only
// as authorized; anything else is acknowledged without a call.
func TestOnlyAuthorizedExecutionsRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name     string
		setup    func(t *testing.T, v *env, b *bot) executor.Execution
		reason   string
		security bool // a security entry is expected
	}{
		{
			name: "incident not approved",
			setup: func(t *testing.T, v *env, b *bot) executor.Execution {
				policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
				d, err := v.ledger.Record(ctx, ledger.Entry{Tenant: tenant, Event: ledger.Detect, Actor: policy, Service: "checkout", Reason: "slow"})
				if err != nil {
					t.Fatal(err)
				}
				return executor.Execution{Tenant: tenant, Incident: d.Incident, Action: "restart_workers", ApprovedAt: now,
					IdempotencyKey: executor.IdempotencyKey(tenant, d.Incident, "ap:forged")}
			},
			reason: "incident is DETECTED",
		},
		{
			name: "incident already executed",
			setup: func(t *testing.T, v *env, b *bot) executor.Execution {
				id, _ := v.authorize("checkout", "restart_workers")
				x, err := b.Prepare(ctx, tenant, id)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := v.ledger.Record(ctx, ledger.Entry{Tenant: tenant, Incident: id, Event: ledger.Execute,
					Actor: ledger.Actor{Kind: ledger.ActorOrchestrator, ID: "executor"}, Reason: "done"}); err != nil {
					t.Fatal(err)
				}
				return x
			},
			reason: "incident is EXECUTED",
		},
		{
			name: "another action than the approved one",
			setup: func(t *testing.T, v *env, b *bot) executor.Execution {
				id, _ := v.authorize("checkout", "restart_workers")
				x, err := b.Prepare(ctx, tenant, id)
				if err != nil {
					t.Fatal(err)
				}
				x.Action = "rollback"
				return x
			},
			reason: "does not match the authorized approval", security: true,
		},
		{
			name: "a key of another approval",
			setup: func(t *testing.T, v *env, b *bot) executor.Execution {
				id, _ := v.authorize("checkout", "restart_workers")
				x, err := b.Prepare(ctx, tenant, id)
				if err != nil {
					t.Fatal(err)
				}
				x.IdempotencyKey = executor.IdempotencyKey(tenant, id, "ap:notTheConsumedOne0000")
				return x
			},
			reason: "does not match the authorized approval", security: true,
		},
		{
			name: "no such incident",
			setup: func(t *testing.T, v *env, b *bot) executor.Execution {
				return executor.Execution{Tenant: tenant, Incident: "INC-FFFF", Action: "restart_workers", ApprovedAt: now, IdempotencyKey: "k"}
			},
			reason: "no such incident",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t)
			h := newWebhook(t)
			v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
			b := v.newBot(nil)
			x := tc.setup(t, v, b)
			var before ledger.Incident
			if x.Incident != "INC-FFFF" {
				before, _ = v.incident(x.Incident)
			}
			if err := b.Enqueue(ctx, x); err != nil {
				t.Fatal(err)
			}
			b.start(t)
			o := b.outcome(t)
			if o.Kind != executor.Skipped || o.Reason != tc.reason {
				t.Errorf("outcome %+v, want skipped: %q", o, tc.reason)
			}
			if n := len(h.Calls()); n != 0 {
				t.Errorf("webhook called %d times", n)
			}
			if n, p := v.outboxLen(); n != 0 || p != 0 {
				t.Errorf("outbox holds %d entries, %d pending; want it drained", n, p)
			}
			if x.Incident == "INC-FFFF" {
				return
			}
			after, hist := v.incident(x.Incident)
			if after.Stage != before.Stage {
				t.Errorf("stage moved from %s to %s", before.Stage, after.Stage)
			}
			if got := len(entries(hist, ledger.Security)); (got == 1) != tc.security {
				t.Errorf("%d security entries, want security=%v", got, tc.security)
			}
		})
	}
}

func TestIdempotencyKey(t *testing.T) {
	t.Parallel()
	k := executor.IdempotencyKey("acme", "INC-7F3", "ap:0123456789abcdefghijkl")
	tests := []struct {
		name                       string
		tenant, incident, approval string
		same                       bool
	}{
		{"same approval", "acme", "INC-7F3", "ap:0123456789abcdefghijkl", true},
		{"another approval", "acme", "INC-7F3", "ap:0123456789abcdefghijkm", false},
		{"another incident", "acme", "INC-7F4", "ap:0123456789abcdefghijkl", false},
		{"another tenant", "acme-2", "INC-7F3", "ap:0123456789abcdefghijkl", false},
		{"fields not just concatenated", "acme", "INC-7F3a", "p:0123456789abcdefghijkl", false},
	}
	for _, tc := range tests {
		if got := executor.IdempotencyKey(tc.tenant, tc.incident, tc.approval); (got == k) != tc.same {
			t.Errorf("%s: %q vs %q", tc.name, got, k)
		}
	}
}

func TestPrepareNeedsAnAuthorizedIncident(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := newEnv(t)
	b := v.newBot(nil)
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	d, err := v.ledger.Record(ctx, ledger.Entry{Tenant: tenant, Event: ledger.Detect, Actor: policy, Service: "checkout", Reason: "slow"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Prepare(ctx, tenant, d.Incident); !errors.Is(err, executor.ErrNotAuthorized) {
		t.Errorf("Prepare(DETECTED) = %v, want ErrNotAuthorized", err)
	}
	if _, err := b.Prepare(ctx, tenant, "INC-FFFF"); !errors.Is(err, ledger.ErrNoIncident) {
		t.Errorf("Prepare(unknown) = %v, want ErrNoIncident", err)
	}
	id, _ := v.authorize("payments", "restart_workers")
	x, err := b.Prepare(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	_, hist := v.incident(id)
	want := executor.Execution{Tenant: tenant, Incident: id, Action: "restart_workers", ApprovedBy: []string{"tendai"},
		ApprovedAt: entries(hist, ledger.Authorize)[0].At, IdempotencyKey: x.IdempotencyKey}
	if diff := cmp.Diff(want, x); diff != "" {
		t.Errorf("Prepare (-want +got):\n%s", diff)
	}
}

func TestEnqueueRefusesIncompleteExecutions(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	b := v.newBot(nil)
	good := executor.Execution{Tenant: tenant, Incident: "INC-1", Action: "restart_workers", ApprovedBy: []string{"tendai"}, ApprovedAt: now, IdempotencyKey: "k"}
	tests := []struct {
		name   string
		change func(x *executor.Execution)
	}{
		{"bad tenant", func(x *executor.Execution) { x.Tenant = "Acme Corp" }},
		{"no incident", func(x *executor.Execution) { x.Incident = "" }},
		{"no action", func(x *executor.Execution) { x.Action = "" }},
		{"no key", func(x *executor.Execution) { x.IdempotencyKey = "" }},
		{"no approval time", func(x *executor.Execution) { x.ApprovedAt = time.Time{} }},
	}
	for _, tc := range tests {
		x := good
		tc.change(&x)
		if err := b.Enqueue(context.Background(), x); !errors.Is(err, executor.ErrBadExecution) {
			t.Errorf("%s: Enqueue = %v, want ErrBadExecution", tc.name, err)
		}
	}
	if n, _ := v.rdb.XLen(context.Background(), v.prefix+"ae:outbox").Result(); n != 0 {
		t.Errorf("refused executions reached the outbox (%d)", n)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	base := executor.Options{Redis: v.rdb, Ledger: v.ledger, Targets: v.target}
	tests := []struct {
		name   string
		change func(o *executor.Options)
		ok     bool
	}{
		{"minimal", func(o *executor.Options) {}, true},
		{"no Redis", func(o *executor.Options) { o.Redis = nil }, false},
		{"no ledger", func(o *executor.Options) { o.Ledger = nil }, false},
		{"no targets", func(o *executor.Options) { o.Targets = nil }, false},
		{"negative lease", func(o *executor.Options) { o.Lease = -time.Second }, false},
		{"tiny lease", func(o *executor.Options) { o.Lease = time.Millisecond }, false},
		{"negative attempt timeout", func(o *executor.Options) { o.AttemptTimeout = -1 }, false},
		{"negative backoff", func(o *executor.Options) { o.Backoff = []time.Duration{time.Second, -time.Second} }, false},
		{"jitter above 1", func(o *executor.Options) { o.Jitter = 1.5 }, false},
		{"consumer with a space", func(o *executor.Options) { o.Consumer = "bot a" }, false},
		{"negative workers", func(o *executor.Options) { o.Workers = -1 }, false},
	}
	for _, tc := range tests {
		o := base
		tc.change(&o)
		err := o.Validate()
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, executor.ErrInvalidOptions)) {
			t.Errorf("%s: Validate = %v", tc.name, err)
		}
		if _, nerr := executor.New(o); (nerr == nil) != tc.ok {
			t.Errorf("%s: New = %v", tc.name, nerr)
		}
	}
}

// An execution in flight for longer than the lease is kept by its owner's heartbeat:
// another replica does not take it over and call a second time.
func TestHeartbeatKeepsALongExecution(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	const lease = 200 * time.Millisecond
	// The first attempt hangs until the per-attempt timeout, five leases long.
	h := newWebhook(t, hang, status(200))
	v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
	owner := v.newBot(func(o *executor.Options) {
		o.Consumer, o.Lease, o.AttemptTimeout = "owner", lease, 5*lease
	})
	claimed := make(chan executor.Execution, 4)
	other := v.newBot(func(o *executor.Options) {
		o.Consumer, o.Lease = "other", lease
		o.OnClaim = func(_ context.Context, x executor.Execution) { claimed <- x }
	})
	x := enqueueApproved(t, v, owner, "checkout")
	owner.start(t)
	select {
	case <-h.got: // the owner's first, hanging, attempt
	case <-time.After(waitTimeout):
		t.Fatal("no call")
	}
	other.start(t)
	if o := owner.outcome(t); o.Kind != executor.Executed || o.Attempts != 2 {
		t.Fatalf("outcome %+v, want executed by the owner on its second attempt", o)
	}
	select {
	case x := <-claimed:
		t.Errorf("the other replica took over %s while it was in flight", x.Incident)
	default:
	}
	calls := h.Calls()
	if len(calls) != 2 {
		t.Errorf("webhook got %d calls, want the owner's 2", len(calls))
	}
	for i, c := range calls {
		if c.Key != x.IdempotencyKey {
			t.Errorf("call %d: key %q", i+1, c.Key)
		}
	}
}

// An outbox wiped under a running bot (a flushed Redis, a deleted key) is set up again,
// and executions enqueued afterwards still run.
func TestOutboxRecreatedWhileRunning(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	h := newWebhook(t)
	v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
	b := v.newBot(nil)
	first := enqueueApproved(t, v, b, "checkout")
	b.start(t)
	if o := b.outcome(t); o.Kind != executor.Executed || o.Execution.Incident != first.Incident {
		t.Fatalf("outcome %+v", o)
	}
	if err := v.rdb.Del(context.Background(), v.prefix+"ae:outbox").Err(); err != nil {
		t.Fatal(err)
	}
	second := enqueueApproved(t, v, b, "payments")
	if o := b.outcome(t); o.Kind != executor.Executed || o.Execution.Incident != second.Incident {
		t.Fatalf("outcome after the outbox was wiped %+v", o)
	}
}
