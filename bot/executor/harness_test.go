package executor_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

const (
	tenant = "acme"
	secret = "s3cr3t-recovery-key-for-tests-0123456789"
)

// now is the executors' clock in tests: signatures, Retry-After dates and dead letters.
var now = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var engineer = ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai", Channel: "telegram"}

// call is one request the fake recovery webhook received.
type call struct {
	Key    string
	Body   executor.Execution
	Fields []string // the JSON members, in order
	SigErr error
}

// webhook is a tenant's recovery endpoint: it checks the signature like a receiver
// should, records what it got, and answers from a script (the last answer repeats).
type webhook struct {
	srv   *httptest.Server
	mu    sync.Mutex
	calls []call
	conns int
	reply []func(w http.ResponseWriter, r *http.Request)
	got   chan call
	done  chan struct{}
}

func status(code int) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(code) }
}

func newWebhook(t testing.TB, reply ...func(w http.ResponseWriter, r *http.Request)) *webhook {
	t.Helper()
	h := &webhook{reply: reply, got: make(chan call, 4096), done: make(chan struct{})}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(h.serve))
	h.srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			h.mu.Lock()
			h.conns++
			h.mu.Unlock()
		}
	}
	h.srv.Start()
	t.Cleanup(func() { close(h.done); h.srv.Close() })
	return h
}

func (h *webhook) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	c := call{Key: r.Header.Get("Idempotency-Key")}
	c.SigErr = executor.VerifySignature(secret, r.Header.Get(executor.SignatureHeader), body, now, time.Minute)
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		c.SigErr = errors.Join(c.SigErr, errors.New("not a JSON POST"))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c.Body); err != nil {
		c.SigErr = errors.Join(c.SigErr, err)
	}
	c.Fields = members(body)
	h.mu.Lock()
	n := len(h.calls)
	h.calls = append(h.calls, c)
	h.mu.Unlock()
	h.got <- c
	if c.SigErr != nil {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if len(h.reply) == 0 {
		w.WriteHeader(http.StatusOK)
		return
	}
	h.reply[min(n, len(h.reply)-1)](w, r)
}

func (h *webhook) Calls() []call {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]call(nil), h.calls...)
}

func (h *webhook) Conns() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.conns
}

// sleeps records the executor's waits between attempts without waiting.
type sleeps struct {
	mu sync.Mutex
	d  []time.Duration
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.d = append(s.d, d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) get() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.d...)
}

// syncBuffer collects log output from several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// env is one test's Redis, ledger and targets; executors made from it share them.
type env struct {
	t       testing.TB
	srv     *ledgertest.Server
	rdb     *redis.Client
	prefix  string
	ledger  *ledger.Ledger
	mu      sync.Mutex
	targets map[string]executor.Target
	logs    *syncBuffer
}

func newEnv(t testing.TB) *env {
	t.Helper()
	srv := ledgertest.NewServer(t)
	rdb := srv.Client(t)
	prefix := srv.Prefix(t)
	l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(rdb, prefix)})
	if err != nil {
		t.Fatal(err)
	}
	return &env{t: t, srv: srv, rdb: rdb, prefix: prefix, ledger: l, targets: map[string]executor.Target{}, logs: &syncBuffer{}}
}

func (v *env) setTarget(tenant string, tg executor.Target) {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.targets[tenant] = tg
}

func (v *env) target(tenant string) (executor.Target, bool) {
	v.mu.Lock()
	defer v.mu.Unlock()
	tg, ok := v.targets[tenant]
	return tg, ok
}

// bot is one executor under test with what it reports.
type bot struct {
	*executor.Executor
	sleeps   *sleeps
	outcomes chan executor.Outcome
}

// newBot returns an executor on v's Redis and ledger with fast polling and recorded sleeps;
// change lets a test adjust the options.
func (v *env) newBot(change func(o *executor.Options)) *bot {
	v.t.Helper()
	b := &bot{sleeps: &sleeps{}, outcomes: make(chan executor.Outcome, 4096)}
	opts := executor.Options{
		Redis:     v.rdb,
		KeyPrefix: v.prefix,
		Ledger:    v.ledger,
		Targets:   v.target,
		Logger:    slog.New(slog.NewTextHandler(v.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Poll:      50 * time.Millisecond,
		Clock:     func() time.Time { return now },
		Sleep:     b.sleeps.sleep,
		OnOutcome: func(_ context.Context, o executor.Outcome) { b.outcomes <- o },
	}
	if change != nil {
		change(&opts)
	}
	ex, err := executor.New(opts)
	if err != nil {
		v.t.Fatal(err)
	}
	b.Executor = ex
	return b
}

// start runs b until the returned stop is called (or the test ends).
func (b *bot) start(t testing.TB) (stop func()) {
	t.Helper()
	return testkit.Start(t, b.Run)
}

// waitTimeout bounds every wait for something the executor does; reaching it fails the test.
const waitTimeout = 20 * time.Second

func (b *bot) outcome(t testing.TB) executor.Outcome {
	t.Helper()
	select {
	case o := <-b.outcomes:
		return o
	case <-time.After(waitTimeout):
		t.Fatal("no outcome")
		return executor.Outcome{}
	}
}

// authorize brings a new incident of service to AUTHORIZED with action and returns its id
// and approval reference.
func (v *env) authorize(service, action string) (string, string) {
	v.t.Helper()
	ctx := context.Background()
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	d, err := v.ledger.Record(ctx, ledger.Entry{Tenant: tenant, Event: ledger.Detect, Actor: policy, Service: service, Reason: "p95 above threshold"})
	if err != nil {
		v.t.Fatal(err)
	}
	b := make([]byte, 11)
	_, _ = rand.Read(b)
	approval := "ap:" + hexString(b)[:22]
	for _, e := range []ledger.Entry{
		{Event: ledger.Propose, Actor: ledger.Actor{Kind: ledger.ActorAI, ID: "lens-a"}, Action: action, Confidence: 0.87, Reason: "pool exhausted"},
		{Event: ledger.Validate, Actor: policy, Reason: "action allowed"},
		{Event: ledger.Authorize, Actor: engineer, Approval: approval, Action: action, Reason: "approved"},
	} {
		e.Tenant, e.Incident = tenant, d.Incident
		if _, err := v.ledger.Record(ctx, e); err != nil {
			v.t.Fatal(err)
		}
	}
	return d.Incident, approval
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

// incident folds an incident and returns it with its entries.
func (v *env) incident(id string) (ledger.Incident, []ledger.Entry) {
	v.t.Helper()
	in, h, err := v.ledger.Incident(context.Background(), tenant, id)
	if err != nil {
		v.t.Fatal(err)
	}
	return in, h
}

// entries returns the incident's entries of event ev.
func entries(h []ledger.Entry, ev ledger.Event) []ledger.Entry {
	var out []ledger.Entry
	for _, e := range h {
		if e.Event == ev {
			out = append(out, e)
		}
	}
	return out
}

// outboxDrained reports whether the outbox holds nothing: no entry and none pending.
func (v *env) outboxLen() (entries, pending int64) {
	v.t.Helper()
	ctx := context.Background()
	n, err := v.rdb.XLen(ctx, v.prefix+"ae:outbox").Result()
	if err != nil {
		v.t.Fatal(err)
	}
	p, err := v.rdb.XPending(ctx, v.prefix+"ae:outbox", "executor").Result()
	if err != nil {
		v.t.Fatal(err)
	}
	return n, p.Count
}

// members lists the names of a JSON object's members in order.
func members(b []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return nil
	}
	var out []string
	for dec.More() {
		k, err := dec.Token()
		if err != nil {
			return out
		}
		out = append(out, k.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return out
		}
	}
	return out
}
