package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/ledger"
)

func withRetryAfter(code int, v string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", v)
		w.WriteHeader(code)
	}
}

// hang answers nothing until the client gives up.
func hang(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }

// drop closes the connection without an answer.
func drop(w http.ResponseWriter, r *http.Request) {
	c, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		_ = c.Close()
	}
}

// enqueueApproved authorizes a new incident and enqueues its execution.
func enqueueApproved(t *testing.T, v *env, b *bot, service string) executor.Execution {
	t.Helper()
	id, _ := v.authorize(service, "restart_workers")
	x, err := b.Prepare(context.Background(), tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Enqueue(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	return x
}

func within(lo, hi time.Duration) func(time.Duration) bool {
	return func(d time.Duration) bool { return d >= lo && d <= hi }
}

func exactly(want time.Duration) func(time.Duration) bool {
	return func(d time.Duration) bool { return d == want }
}

func TestRetriesUntilExecuted(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		reply   []func(http.ResponseWriter, *http.Request)
		timeout time.Duration
		rand    func() float64
		calls   int
		sleeps  []func(time.Duration) bool // one check per recorded wait
	}{
		{
			name:  "503, 503, 200: waits 2 s then 4 s plus 10 % jitter",
			reply: []func(http.ResponseWriter, *http.Request){status(503), status(503), status(200)},
			rand:  func() float64 { return 0.5 },
			calls: 3, sleeps: []func(time.Duration) bool{exactly(2200 * time.Millisecond), exactly(4400 * time.Millisecond)},
		},
		{
			name:  "503, 503, 200 with random jitter stays within 0–20 %",
			reply: []func(http.ResponseWriter, *http.Request){status(503), status(503), status(200)},
			calls: 3, sleeps: []func(time.Duration) bool{within(2*time.Second, 2400*time.Millisecond), within(4*time.Second, 4800*time.Millisecond)},
		},
		{
			name:  "largest jitter",
			reply: []func(http.ResponseWriter, *http.Request){status(502), status(504), status(204)},
			rand:  func() float64 { return 0.999999 },
			calls: 3, sleeps: []func(time.Duration) bool{within(2399*time.Millisecond, 2400*time.Millisecond), within(4799*time.Millisecond, 4800*time.Millisecond)},
		},
		{
			name:  "429 with Retry-After: 7 waits 7 s",
			reply: []func(http.ResponseWriter, *http.Request){withRetryAfter(429, "7"), status(200)},
			calls: 2, sleeps: []func(time.Duration) bool{exactly(7 * time.Second)},
		},
		{
			name:  "503 with Retry-After as an HTTP date",
			reply: []func(http.ResponseWriter, *http.Request){withRetryAfter(503, now.Add(9*time.Second).Format(http.TimeFormat)), status(200)},
			calls: 2, sleeps: []func(time.Duration) bool{exactly(9 * time.Second)},
		},
		{
			name:  "Retry-After is capped at 60 s",
			reply: []func(http.ResponseWriter, *http.Request){withRetryAfter(429, "3600"), status(200)},
			calls: 2, sleeps: []func(time.Duration) bool{exactly(60 * time.Second)},
		},
		{
			name:  "unreadable Retry-After falls back to the backoff",
			reply: []func(http.ResponseWriter, *http.Request){withRetryAfter(503, "soon"), status(200)},
			rand:  func() float64 { return 0 },
			calls: 2, sleeps: []func(time.Duration) bool{exactly(2 * time.Second)},
		},
		{
			name:    "a timeout is retried",
			reply:   []func(http.ResponseWriter, *http.Request){hang, status(200)},
			timeout: 100 * time.Millisecond,
			rand:    func() float64 { return 0 },
			calls:   2, sleeps: []func(time.Duration) bool{exactly(2 * time.Second)},
		},
		{
			name:  "a dropped connection is retried",
			reply: []func(http.ResponseWriter, *http.Request){drop, status(200)},
			rand:  func() float64 { return 0 },
			calls: 2, sleeps: []func(time.Duration) bool{exactly(2 * time.Second)},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t)
			h := newWebhook(t, tc.reply...)
			v.setTarget(tenant, executor.Target{URL: h.srv.URL + "/recover", Secret: secret, AllowPrivateNetwork: true})
			b := v.newBot(func(o *executor.Options) {
				o.AttemptTimeout = tc.timeout
				o.Rand = tc.rand
			})
			x := enqueueApproved(t, v, b, "checkout")
			b.start(t)

			o := b.outcome(t)
			if o.Kind != executor.Executed || o.Attempts != tc.calls || o.Status/100 != 2 {
				t.Fatalf("outcome %+v, want executed after %d attempts", o, tc.calls)
			}
			calls := h.Calls()
			if len(calls) != tc.calls {
				t.Fatalf("webhook got %d calls, want %d", len(calls), tc.calls)
			}
			for i, c := range calls {
				if c.SigErr != nil {
					t.Errorf("call %d: %v", i+1, c.SigErr)
				}
				if c.Key != x.IdempotencyKey || c.Body.IdempotencyKey != x.IdempotencyKey {
					t.Errorf("call %d: Idempotency-Key %q, body key %q, want %q on every attempt", i+1, c.Key, c.Body.IdempotencyKey, x.IdempotencyKey)
				}
				if diff := cmp.Diff(x, c.Body); diff != "" {
					t.Errorf("call %d body (-want +got):\n%s", i+1, diff)
				}
				if diff := cmp.Diff([]string{"tenant", "incident", "action", "approved_by", "approved_at", "idempotency_key"}, c.Fields); diff != "" {
					t.Errorf("call %d members (-want +got):\n%s", i+1, diff)
				}
			}
			got := b.sleeps.get()
			if len(got) != len(tc.sleeps) {
				t.Fatalf("waits %v, want %d", got, len(tc.sleeps))
			}
			for i, ok := range tc.sleeps {
				if !ok(got[i]) {
					t.Errorf("wait %d is %v", i+1, got[i])
				}
			}
			in, hist := v.incident(x.Incident)
			if in.Stage != ledger.Executed {
				t.Fatalf("stage %s, want EXECUTED", in.Stage)
			}
			ex := entries(hist, ledger.Execute)
			if len(ex) != 1 {
				t.Fatalf("%d execute entries", len(ex))
			}
			want := map[string]string{"attempts": itoa(tc.calls), "status": itoa(o.Status), "idempotency_key": x.IdempotencyKey}
			if diff := cmp.Diff(want, ex[0].Data); diff != "" {
				t.Errorf("execute entry data (-want +got):\n%s", diff)
			}
			if ex[0].Actor != (ledger.Actor{Kind: ledger.ActorOrchestrator, ID: "executor"}) {
				t.Errorf("execute entry by %+v", ex[0].Actor)
			}
			if n, p := v.outboxLen(); n != 0 || p != 0 {
				t.Errorf("outbox holds %d entries, %d pending; want it drained", n, p)
			}
		})
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func TestFailuresAreDeadLettered(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		reply    []func(http.ResponseWriter, *http.Request)
		noTarget bool
		timeout  time.Duration
		attempts int
		waits    int
		status   int
		reason   string
	}{
		{name: "always 500", reply: []func(http.ResponseWriter, *http.Request){status(500)},
			attempts: 3, waits: 2, status: 500, reason: "recovery webhook answered 500 after 3 attempts; dead-lettered"},
		{name: "429 every time", reply: []func(http.ResponseWriter, *http.Request){withRetryAfter(429, "1")},
			attempts: 3, waits: 2, status: 429, reason: "recovery webhook answered 429 after 3 attempts; dead-lettered"},
		{name: "400 is not retried", reply: []func(http.ResponseWriter, *http.Request){status(400)},
			attempts: 1, status: 400, reason: "recovery webhook answered 400; not retried; dead-lettered"},
		{name: "401 is not retried", reply: []func(http.ResponseWriter, *http.Request){status(401)},
			attempts: 1, status: 401, reason: "recovery webhook answered 401; not retried; dead-lettered"},
		{name: "a redirect is not followed", reply: []func(http.ResponseWriter, *http.Request){func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://169.254.169.254/latest/meta-data/", http.StatusTemporaryRedirect)
		}}, attempts: 1, status: 307, reason: "recovery webhook answered 307 (redirects are not followed); not retried; dead-lettered"},
		{name: "every attempt times out", reply: []func(http.ResponseWriter, *http.Request){hang}, timeout: 50 * time.Millisecond,
			attempts: 3, waits: 2, reason: "recovery webhook did not answer within 50ms after 3 attempts; dead-lettered"},
		{name: "no recovery webhook configured", noTarget: true,
			reason: "no recovery webhook is configured for this tenant; not retried; dead-lettered"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t)
			h := newWebhook(t, tc.reply...)
			if !tc.noTarget {
				v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
			}
			b := v.newBot(func(o *executor.Options) { o.AttemptTimeout = tc.timeout })
			x := enqueueApproved(t, v, b, "checkout")
			b.start(t)

			o := b.outcome(t)
			want := executor.Outcome{Kind: executor.Failed, Execution: x, Reason: tc.reason, Status: tc.status, Attempts: tc.attempts}
			if diff := cmp.Diff(want, o); diff != "" {
				t.Errorf("outcome (-want +got):\n%s", diff)
			}
			if n := len(h.Calls()); n != tc.attempts {
				t.Errorf("webhook got %d calls, want %d", n, tc.attempts)
			}
			if n := len(b.sleeps.get()); n != tc.waits {
				t.Errorf("%d waits, want %d", n, tc.waits)
			}
			in, hist := v.incident(x.Incident)
			if in.Stage != ledger.WebhookFailed {
				t.Fatalf("stage %s, want WEBHOOK_FAILED", in.Stage)
			}
			if wf := entries(hist, ledger.WebhookFail); len(wf) != 1 || wf[0].Reason != tc.reason {
				t.Errorf("webhook_fail entries %+v, want one with reason %q", wf, tc.reason)
			}
			dls, err := b.DeadLetters(context.Background(), tenant)
			if err != nil {
				t.Fatal(err)
			}
			if len(dls) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dls))
			}
			dl := dls[0]
			if dl.ID != x.Incident || dl.Attempts != tc.attempts || dl.Status != tc.status || dl.Reason != tc.reason || !dl.At.Equal(now) {
				t.Errorf("dead letter %+v", dl)
			}
			if diff := cmp.Diff(x, dl.Execution); diff != "" {
				t.Errorf("dead-lettered execution (-want +got):\n%s", diff)
			}
			if n, p := v.outboxLen(); n != 0 || p != 0 {
				t.Errorf("outbox holds %d entries, %d pending; want it drained", n, p)
			}
		})
	}
}

// A failing webhook's body may echo anything, the secret included, and be large: neither
// the secret nor more than 512 bytes of it may reach the ledger, the dead letter or the logs.
func TestResponseBodiesAreBoundedAndSecretFree(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("y", 4096)
	tests := []struct{ name, body string }{
		{"secret first", secret + long},
		{"secret across the 512-byte cut", strings.Repeat("y", 500) + secret + long},
		{"secret twice, the second pulled in by the first's redaction", secret + strings.Repeat("y", 490) + secret + long},
		{"secret after the cut", long + secret},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t)
			h := newWebhook(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(http.StatusBadRequest)
				_, _ = w.Write([]byte(tc.body))
			})
			v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
			b := v.newBot(nil)
			x := enqueueApproved(t, v, b, "checkout")
			b.start(t)
			if o := b.outcome(t); o.Kind != executor.Failed {
				t.Fatalf("outcome %+v", o)
			}
			_, hist := v.incident(x.Incident)
			ledgerJSON, _ := json.Marshal(hist)
			dlq, err := v.rdb.HGetAll(context.Background(), v.prefix+"ae:dlq:"+tenant).Result()
			if err != nil {
				t.Fatal(err)
			}
			dlqJSON, _ := json.Marshal(dlq)
			for name, text := range map[string]string{"ledger": string(ledgerJSON), "dead letter": string(dlqJSON), "logs": v.logs.String()} {
				for i := 12; i <= len(secret); i++ {
					if strings.Contains(text, secret[:i]) || strings.Contains(text, secret[len(secret)-i:]) {
						t.Errorf("%s shows %d bytes of the secret", name, i)
						break
					}
				}
				if strings.Contains(text, strings.Repeat("y", 513)) {
					t.Errorf("%s holds more than 512 bytes of the response", name)
				}
			}
			wf := entries(hist, ledger.WebhookFail)
			if len(wf) != 1 || !strings.HasPrefix(strings.TrimPrefix(wf[0].Data["response"], "[redacted]"), "yyyy") {
				t.Errorf("webhook_fail entry keeps no start of the response: %+v", wf)
			}
		})
	}
}

func TestRedriveDeliversWithTheSameKey(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := newEnv(t)
	var healthy atomic.Bool
	h := newWebhook(t, func(w http.ResponseWriter, r *http.Request) {
		if healthy.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	})
	v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
	b := v.newBot(nil)
	id, approval := v.authorize("checkout", "restart_workers")
	x, err := b.Prepare(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if x.IdempotencyKey != executor.IdempotencyKey(tenant, id, approval) {
		t.Fatalf("key %q is not derived from the approval", x.IdempotencyKey)
	}
	if err := b.Enqueue(ctx, x); err != nil {
		t.Fatal(err)
	}
	b.start(t)
	if o := b.outcome(t); o.Kind != executor.Failed || o.Attempts != 3 {
		t.Fatalf("outcome %+v, want failed after 3 attempts", o)
	}

	refusals := []struct {
		name string
		id   string
		by   ledger.Actor
		want error
	}{
		{"not an engineer", id, ledger.Actor{Kind: ledger.ActorSystem, ID: "cron"}, executor.ErrRedriveActor},
		{"an engineer without a name", id, ledger.Actor{Kind: ledger.ActorEngineer}, executor.ErrRedriveActor},
		{"no such dead letter", "INC-FFFF", engineer, executor.ErrNoDeadLetter},
	}
	for _, r := range refusals {
		if err := b.Redrive(ctx, tenant, r.id, r.by); !errors.Is(err, r.want) {
			t.Errorf("%s: Redrive = %v, want %v", r.name, err, r.want)
		}
	}
	if in, _ := v.incident(id); in.Stage != ledger.WebhookFailed {
		t.Fatalf("a refused re-drive moved the incident to %s", in.Stage)
	}

	healthy.Store(true)
	rudo := ledger.Actor{Kind: ledger.ActorEngineer, ID: "rudo", Channel: "cli"}
	if err := b.Redrive(ctx, tenant, id, rudo); err != nil {
		t.Fatal(err)
	}
	if o := b.outcome(t); o.Kind != executor.Executed || o.Attempts != 1 {
		t.Fatalf("outcome after re-drive %+v", o)
	}
	calls := h.Calls()
	if len(calls) != 4 {
		t.Fatalf("webhook got %d calls, want 3 + 1", len(calls))
	}
	for i, c := range calls {
		if c.Key != x.IdempotencyKey || c.SigErr != nil {
			t.Errorf("call %d: key %q (want %q), signature %v", i+1, c.Key, x.IdempotencyKey, c.SigErr)
		}
	}
	in, hist := v.incident(id)
	if in.Stage != ledger.Executed {
		t.Errorf("stage %s, want EXECUTED", in.Stage)
	}
	rd := entries(hist, ledger.Redrive)
	if len(rd) != 1 || rd[0].Actor != rudo || rd[0].Approval != approval || rd[0].From != ledger.WebhookFailed || rd[0].To != ledger.Authorized {
		t.Errorf("redrive entries %+v, want one by rudo carrying approval %s", rd, approval)
	}
	dls, err := b.DeadLetters(ctx, tenant)
	if err != nil || len(dls) != 0 {
		t.Errorf("dead letters after a successful re-drive: %v, %v", dls, err)
	}
	if err := b.Redrive(ctx, tenant, id, rudo); !errors.Is(err, executor.ErrNoDeadLetter) {
		t.Errorf("second re-drive = %v, want ErrNoDeadLetter", err)
	}
}

// A re-drive whose enqueue was interrupted after the ledger entry can simply be repeated.
func TestRedriveIsResumable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := newEnv(t)
	h := newWebhook(t, status(400))
	v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
	b := v.newBot(nil)
	x := enqueueApproved(t, v, b, "checkout")
	stop := b.start(t)
	if o := b.outcome(t); o.Kind != executor.Failed {
		t.Fatalf("outcome %+v", o)
	}
	stop()
	in, _ := v.incident(x.Incident)
	// The first re-drive recorded its entry, then died before enqueueing.
	if _, err := v.ledger.Record(ctx, ledger.Entry{Tenant: tenant, Incident: x.Incident, Event: ledger.Redrive, Actor: engineer, Approval: in.Approval, Reason: "re-drive"}); err != nil {
		t.Fatal(err)
	}
	if err := b.Redrive(ctx, tenant, x.Incident, engineer); err != nil {
		t.Fatalf("repeated re-drive: %v", err)
	}
	if n, _ := v.outboxLen(); n != 1 {
		t.Errorf("outbox holds %d entries, want the re-driven execution", n)
	}
	if _, hist := v.incident(x.Incident); len(entries(hist, ledger.Redrive)) != 1 {
		t.Errorf("the repeated re-drive recorded another redrive entry")
	}
}

// TestTargetTimeoutBoundsEachCall: a tenant's recovery.timeout, not the executor's
// default, bounds each call: a receiver that takes longer is given up on after it (with
// the bot's default of a minute, this test would wait a minute per attempt) and called
// again with the same Idempotency-Key.
func TestTargetTimeoutBoundsEachCall(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	v := newEnv(t)
	h := newWebhook(t, func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done() // slower than any timeout: answers only when the caller gives up
	})
	v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true, Timeout: 100 * time.Millisecond})
	b := v.newBot(func(o *executor.Options) { o.AttemptTimeout = time.Minute })
	id, approval := v.authorize("checkout", "restart_workers")
	x, err := b.Prepare(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Enqueue(ctx, x); err != nil {
		t.Fatal(err)
	}
	b.start(t)
	o := b.outcome(t)
	if o.Kind != executor.Failed || o.Attempts != 3 {
		t.Fatalf("outcome %+v, want failed after 3 timed-out attempts", o)
	}
	want := executor.IdempotencyKey(tenant, id, approval)
	for i := 0; i < 3; i++ {
		if c := <-h.got; c.Key != want {
			t.Errorf("call %d with key %q, want %q (one action, retried)", i+1, c.Key, want)
		}
	}
}
