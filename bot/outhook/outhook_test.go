package outhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/bot/outhook"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// secret is a Standard Webhooks secret of 32 bytes.
var (
	secretKey = []byte("0123456789abcdef0123456789abcdef")
	secret    = "whsec_" + base64.StdEncoding.EncodeToString(secretKey)
)

// verify is the receiver's check, written from the Standard Webhooks specification and
// independent of the package's signer: the signed content is id "." timestamp "." body,
// HMAC-SHA256 with the base64-decoded part of the secret after "whsec_", compared in
// constant time against each space-separated "v1," signature, and the timestamp must be
// within five minutes.
func verify(secret string, h http.Header, body []byte, now time.Time) bool {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return false
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || id == "" || now.Sub(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		return false
	}
	mac := hmac.New(sha256.New, key)
	io.WriteString(mac, id+"."+ts+".")
	mac.Write(body)
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

// delivery is one request the receiver saw.
type delivery struct {
	id       string
	verified bool
	payload  outhook.Payload
	raw      string
}

// receiver is an HTTP endpoint recording every request; answer decides each reply from
// the request's number (1-based) and webhook-id.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []delivery
	answer func(n int, id string, w http.ResponseWriter, r *http.Request)
}

func newReceiver(t *testing.T, answer func(n int, id string, w http.ResponseWriter, r *http.Request)) *receiver {
	rc := &receiver{answer: answer}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		d := delivery{id: r.Header.Get("webhook-id"), verified: verify(secret, r.Header, body, time.Now()), raw: string(body)}
		if err := json.Unmarshal(body, &d.payload); err != nil {
			t.Errorf("body is not the payload: %v: %s", err, body)
		}
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("%s with Content-Type %q", r.Method, r.Header.Get("Content-Type"))
		}
		rc.mu.Lock()
		rc.got = append(rc.got, d)
		n := len(rc.got)
		rc.mu.Unlock()
		if rc.answer != nil {
			rc.answer(n, d.id, w, r)
		}
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// waitFor polls until cond holds or fails the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// env is one tenant's ledger on the test Redis.
type env struct {
	rdb    *redis.Client
	prefix string
	store  *ledger.RedisStore
	led    *ledger.Ledger
	logs   *testkit.Log
	reg    *prometheus.Registry
	srv    *ledgertest.Server
}

// expireOnEmbedded lets d pass for key expiry on an embedded Redis, whose clock moves only
// when told; a real server expires keys on its own.
func (e *env) expireOnEmbedded(d time.Duration) {
	if e.srv.Mini != nil {
		e.srv.Mini.FastForward(d)
	}
}

func newEnv(t *testing.T) *env {
	srv := ledgertest.NewServer(t)
	rdb, prefix := srv.Client(t), srv.Prefix(t)
	store := ledger.NewRedisStore(rdb, prefix)
	led, err := ledger.New(ledger.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return &env{rdb: rdb, prefix: prefix, store: store, led: led, logs: &testkit.Log{}, reg: prometheus.NewRegistry(), srv: srv}
}

const tenantID = "acme"

// options are fast timings on the env, every target allowed to reach the loopback test
// receiver unless the test says otherwise.
func (e *env) options(targets ...outhook.Target) outhook.Options {
	return outhook.Options{
		Store: e.store, Redis: e.rdb, Prefix: e.prefix + ":",
		Tenants:    []outhook.Tenant{{ID: tenantID, Targets: targets}},
		Logger:     slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: e.reg,
		Poll:       10 * time.Millisecond, Lease: 1500 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, MaxAttempts: 5,
		Backfill: 1000,
	}
}

// start runs a Sender until the test ends or stop is called; stop waits for Run.
func start(t *testing.T, opts outhook.Options) (stop func()) {
	t.Helper()
	s, err := outhook.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return testkit.Start(t, s.Run)
}

// open records a new incident on svc and returns its id.
func (e *env) open(t *testing.T, svc string) string {
	t.Helper()
	en, err := e.led.Record(context.Background(), ledger.Entry{Tenant: tenantID, Event: ledger.Detect, Service: svc,
		Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "error-rate"}, Reason: "error rate 31% > 5%"})
	if err != nil {
		t.Fatal(err)
	}
	return en.Incident
}

func (e *env) record(t *testing.T, inc string, ev ledger.Event, actor ledger.Actor, approval, reason string) {
	t.Helper()
	if _, err := e.led.Record(context.Background(), ledger.Entry{Tenant: tenantID, Incident: inc, Event: ev,
		Actor: actor, Approval: approval, Action: "rollback", Reason: reason}); err != nil {
		t.Fatal(err)
	}
}

func target(url string) outhook.Target {
	return outhook.Target{Name: "ops", URL: url, Secret: secret, AllowPrivateNetwork: true, Timeout: 2 * time.Second}
}

func metric(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			if m.Counter != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1 // no such series
}

// The events that matter reach the receiver in chain order, signed so that an
// independent Standard Webhooks check accepts them, with the documented payload and
// without the approval reference; evidence-only entries are not sent; the secret is in no
// log line.
func TestDeliversSignedEventsInOrder(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	start(t, e.options(target(rc.URL+"/hook?token=hunter2-query-token")))

	inc := e.open(t, "checkout")
	eng := ledger.Actor{Kind: ledger.ActorEngineer, ID: "alice", Channel: "telegram"}
	e.record(t, inc, ledger.Update, ledger.Actor{Kind: ledger.ActorPolicy, ID: "error-rate"}, "", "still 30%")
	e.record(t, inc, ledger.Propose, ledger.Actor{Kind: ledger.ActorAI, ID: "council"}, "", "deploy 4f2a broke <checkout> & \"payments\"")
	e.record(t, inc, ledger.Validate, ledger.Actor{Kind: ledger.ActorPolicy, ID: "policy"}, "", "low risk")
	e.record(t, inc, ledger.Authorize, eng, "apr-SECRETREF-7c1d", "approved")
	e.record(t, inc, ledger.Execute, ledger.Actor{Kind: ledger.ActorOrchestrator, ID: "executor"}, "", "recovery webhook answered 200")
	e.record(t, inc, ledger.Resolve, ledger.Actor{Kind: ledger.ActorPolicy, ID: "error-rate"}, "", "healthy")

	wantTypes := []string{outhook.TypeOpened, outhook.TypeProposed, outhook.TypeStageChanged, outhook.TypeApproved, outhook.TypeExecuted, outhook.TypeResolved}
	waitFor(t, "six deliveries", func() bool { return len(rc.deliveries()) >= len(wantTypes) })
	time.Sleep(50 * time.Millisecond) // nothing more arrives
	got := rc.deliveries()
	if len(got) != len(wantTypes) {
		t.Fatalf("%d deliveries, want %d (the update is not sent)", len(got), len(wantTypes))
	}
	entries, err := e.store.Range(context.Background(), tenantID, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var lastSeq uint64
	for i, d := range got {
		p := d.payload
		if !d.verified {
			t.Errorf("delivery %d (%s): the signature does not verify", i, d.id)
		}
		if p.Type != wantTypes[i] {
			t.Errorf("delivery %d is %s, want %s", i, p.Type, wantTypes[i])
		}
		if p.Data.Seq <= lastSeq {
			t.Errorf("delivery %d: seq %d after %d: out of order", i, p.Data.Seq, lastSeq)
		}
		lastSeq = p.Data.Seq
		en := entries[p.Data.Seq-1]
		if p.Data.Hash != en.Hash || p.Data.Tenant != tenantID || p.Data.Incident != inc || p.Data.Event != string(en.Event) ||
			p.Data.To != string(en.To) || p.Data.From != string(en.From) || p.Data.Actor.ID != en.Actor.ID || !p.Timestamp.Equal(en.At) {
			t.Errorf("delivery %d does not describe entry %d: %+v", i, en.Seq, p)
		}
		wantID := "msg_" + tenantID + "_" + strconv.FormatUint(en.Seq, 10) + "_" + en.Hash[:16]
		if d.id != wantID || strings.Contains(d.id, ".") || seen[d.id] {
			t.Errorf("delivery %d: webhook-id %q, want %q, unique and without '.'", i, d.id, wantID)
		}
		seen[d.id] = true
		if strings.Contains(d.raw, "SECRETREF") || strings.Contains(d.raw, "approval") {
			t.Errorf("delivery %d carries the approval reference: %s", i, d.raw)
		}
	}
	if got[1].payload.Data.Reason != "deploy 4f2a broke <checkout> & \"payments\"" || strings.Contains(got[1].raw, "<checkout>") {
		t.Errorf("the reason is not carried escaped: %s", got[1].raw)
	}
	if got[0].payload.Data.Service != "checkout" || got[0].payload.Data.From != "" || got[0].payload.Data.To != "DETECTED" {
		t.Errorf("opened: %+v", got[0].payload.Data)
	}
	if n := metric(t, e.reg, "alertengine_outhook_delivered_total", map[string]string{"tenant": tenantID, "webhook": "ops"}); n != 6 {
		t.Errorf("delivered_total = %v, want 6", n)
	}
	waitFor(t, "lag 0", func() bool {
		return metric(t, e.reg, "alertengine_outhook_lag_entries", map[string]string{"tenant": tenantID, "webhook": "ops"}) == 0
	})
	assertNoSecrets(t, e.logs.String())
}

func assertNoSecrets(t *testing.T, logs string) {
	t.Helper()
	for _, s := range []string{secret, base64.StdEncoding.EncodeToString(secretKey), "hunter2", "SECRETREF"} {
		if strings.Contains(logs, s) {
			t.Errorf("the logs contain %q:\n%s", s, logs)
		}
	}
}

// A 503 (with Retry-After) is retried with the same webhook-id and one delivery counts;
// the receiver de-duplicating by id sees the event once.
func TestRetriesServerErrorWithSameID(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(n int, id string, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	start(t, e.options(target(rc.URL)))
	e.open(t, "checkout")
	e.open(t, "search")
	waitFor(t, "four requests", func() bool { return len(rc.deliveries()) >= 4 })
	got := rc.deliveries()
	if got[0].id != got[1].id || got[1].id != got[2].id || got[3].id == got[0].id {
		t.Fatalf("ids %s %s %s %s: want the first three equal (retries) and the fourth new", got[0].id, got[1].id, got[2].id, got[3].id)
	}
	for i, d := range got {
		if !d.verified {
			t.Errorf("attempt %d: the signature does not verify", i)
		}
	}
	labels := map[string]string{"tenant": tenantID, "webhook": "ops"}
	waitFor(t, "two deliveries counted", func() bool { return metric(t, e.reg, "alertengine_outhook_delivered_total", labels) == 2 })
	if n := metric(t, e.reg, "alertengine_outhook_retries_total", labels); n != 2 {
		t.Errorf("retries_total = %v, want 2", n)
	}
	time.Sleep(50 * time.Millisecond)
	if n := len(rc.deliveries()); n != 4 {
		t.Errorf("%d requests, want 4", n)
	}
}

// A 400 is final: one attempt, counted as rejected, and the next event still goes out.
func TestClientErrorIsFinal(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, func(n int, id string, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			http.Error(w, "bad", http.StatusBadRequest)
		}
	})
	start(t, e.options(target(rc.URL)))
	e.open(t, "checkout")
	e.open(t, "search")
	waitFor(t, "two requests", func() bool { return len(rc.deliveries()) >= 2 })
	time.Sleep(100 * time.Millisecond)
	got := rc.deliveries()
	if len(got) != 2 || got[0].id == got[1].id || got[1].payload.Data.Service != "search" {
		t.Fatalf("requests: %+v; want the first (400) not retried and the second sent", got)
	}
	if n := metric(t, e.reg, "alertengine_outhook_failed_total", map[string]string{"reason": "rejected"}); n != 1 {
		t.Errorf("failed_total{reason=rejected} = %v, want 1", n)
	}
	if !strings.Contains(e.logs.String(), "not delivered") {
		t.Errorf("the final failure is not logged:\n%s", e.logs)
	}
}

// A restarted sender resumes from its cursor: what was delivered is not sent again, the
// event in flight when the first one stopped is sent again with the same id.
func TestRestartResumesFromCursor(t *testing.T) {
	e := newEnv(t)
	release := make(chan struct{})
	rc := newReceiver(t, func(n int, id string, w http.ResponseWriter, r *http.Request) {
		if n == 2 { // hang on the second event until the sender goes away
			select {
			case <-r.Context().Done():
			case <-release:
			}
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	defer close(release)
	stop := start(t, e.options(target(rc.URL)))
	e.open(t, "checkout")
	e.open(t, "search")
	waitFor(t, "the second event in flight", func() bool { return len(rc.deliveries()) >= 2 })
	stop()
	e.open(t, "billing")

	opts := e.options(target(rc.URL))
	opts.Registerer = prometheus.NewRegistry()
	start(t, opts)
	waitFor(t, "four requests", func() bool { return len(rc.deliveries()) >= 4 })
	time.Sleep(100 * time.Millisecond)
	got := rc.deliveries()
	if len(got) != 4 {
		t.Fatalf("%d requests, want 4", len(got))
	}
	if got[2].id != got[1].id || got[2].payload.Data.Service != "search" {
		t.Errorf("after the restart: %s (%s), want the in-flight %s again", got[2].id, got[2].payload.Data.Service, got[1].id)
	}
	if got[3].payload.Data.Service != "billing" {
		t.Errorf("then %s, want billing", got[3].payload.Data.Service)
	}
	for _, d := range got[2:] {
		if d.id == got[0].id {
			t.Errorf("the delivered first event was sent again")
		}
	}
}

// Two replicas on the same Redis: each event is sent once.
func TestTwoReplicasSendEachEventOnce(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	a := e.options(target(rc.URL))
	a.Instance = "replica-a"
	b := e.options(target(rc.URL))
	b.Instance, b.Registerer = "replica-b", prometheus.NewRegistry()
	start(t, a)
	start(t, b)
	services := []string{"a", "b", "c", "d", "e", "f"}
	for _, s := range services {
		e.open(t, s)
	}
	waitFor(t, "six requests", func() bool { return len(rc.deliveries()) >= len(services) })
	time.Sleep(300 * time.Millisecond)
	count := map[string]int{}
	for _, d := range rc.deliveries() {
		count[d.id]++
	}
	if len(count) != len(services) {
		t.Errorf("%d distinct events, want %d", len(count), len(services))
	}
	for id, n := range count {
		if n != 1 {
			t.Errorf("%s sent %d times", id, n)
		}
	}
}

// Without allow_private_network, a URL on a loopback address is refused at dial time:
// the receiver sees nothing, the refusal is final and counted.
func TestPrivateAddressRefusedUnlessAllowed(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	guarded := target(rc.URL + "/x?token=hunter2")
	guarded.Name, guarded.AllowPrivateNetwork = "guarded", false
	allowed := target(rc.URL + "/y")
	start(t, e.options(guarded, allowed))
	e.open(t, "checkout")
	waitFor(t, "the refusal counted", func() bool {
		return metric(t, e.reg, "alertengine_outhook_failed_total", map[string]string{"webhook": "guarded", "reason": "refused_address"}) == 1
	})
	waitFor(t, "the allowed target's delivery", func() bool { return len(rc.deliveries()) == 1 })
	time.Sleep(50 * time.Millisecond)
	if n := len(rc.deliveries()); n != 1 {
		t.Errorf("the receiver saw %d requests, want 1 (the allowed target's)", n)
	}
	assertNoSecrets(t, e.logs.String())
}

// A receiver slower than the timeout is retried; a target that keeps failing holds back
// no other target.
func TestSlowReceiverRetriedAndFailingTargetHoldsNoOther(t *testing.T) {
	e := newEnv(t)
	slow := newReceiver(t, func(n int, id string, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(3 * time.Second):
			}
		}
	})
	down := newReceiver(t, func(n int, id string, w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadGateway)
	})
	st := target(slow.URL)
	st.Timeout = 150 * time.Millisecond
	dn := target(down.URL)
	dn.Name = "down"
	opts := e.options(st, dn)
	opts.MaxAttempts, opts.MinBackoff, opts.MaxBackoff = 1000, time.Second, time.Second
	start(t, opts)
	e.open(t, "checkout")
	e.open(t, "search")
	waitFor(t, "three requests to the slow receiver", func() bool { return len(slow.deliveries()) >= 3 })
	got := slow.deliveries()
	if got[0].id != got[1].id || got[2].payload.Data.Service != "search" {
		t.Errorf("slow receiver saw %s, %s, %s: want the timed-out one again, then the next", got[0].id, got[1].id, got[2].id)
	}
	if n := metric(t, e.reg, "alertengine_outhook_delivered_total", map[string]string{"webhook": "down"}); n > 0 {
		t.Errorf("the failing target delivered %v", n)
	}
	if len(down.deliveries()) == 0 {
		t.Error("the failing target was never tried")
	}
	waitFor(t, "the failing target's lag at 2 (both entries undelivered)", func() bool {
		return metric(t, e.reg, "alertengine_outhook_lag_entries", map[string]string{"webhook": "down"}) == 2
	})
}

// A target far behind skips the oldest undelivered entries, counted as a gap.
func TestBacklogIsBounded(t *testing.T) {
	e := newEnv(t)
	for _, s := range []string{"a", "b", "c", "d", "e"} {
		e.open(t, s)
	}
	rc := newReceiver(t, nil)
	opts := e.options(target(rc.URL))
	opts.MaxBacklog = 2
	start(t, opts)
	waitFor(t, "two requests", func() bool { return len(rc.deliveries()) >= 2 })
	time.Sleep(50 * time.Millisecond)
	got := rc.deliveries()
	if len(got) != 2 || got[0].payload.Data.Service != "d" || got[1].payload.Data.Service != "e" {
		t.Fatalf("got %d deliveries, want d and e only", len(got))
	}
	if n := metric(t, e.reg, "alertengine_outhook_failed_total", map[string]string{"reason": "backlog_dropped"}); n != 3 {
		t.Errorf("backlog_dropped = %v, want 3", n)
	}
}

// Configuration errors are clear and never show the secret or the URL's query.
func TestNewRejectsBadTargets(t *testing.T) {
	e := newEnv(t)
	short := "whsec_" + base64.StdEncoding.EncodeToString([]byte("tooshort-hunter2"))
	cases := []struct {
		t    outhook.Target
		want string
	}{
		{outhook.Target{URL: "https://h.example/x?token=hunter2", Secret: "hunter2-not-whsec"}, `"whsec_"`},
		{outhook.Target{URL: "https://h.example/x", Secret: short}, "24 to 64"},
		{outhook.Target{URL: "https://h.example/x", Secret: "whsec_hunter2!!"}, "base64"},
		{outhook.Target{URL: "ftp://h.example/x?token=hunter2", Secret: secret}, "http(s)"},
		{outhook.Target{URL: "https://h.example/x", Secret: secret, Events: []string{"incident.hunter2"}}, "unknown event type"},
		{outhook.Target{URL: "https://h.example/x", Secret: secret, Timeout: time.Hour}, "above 5m"},
	}
	for _, c := range cases {
		_, err := outhook.New(e.options(c.t))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("New(%+v): %v, want an error about %s", c.t.URL, err, c.want)
			continue
		}
		if strings.Contains(err.Error(), "hunter2-not") || strings.Contains(err.Error(), "token=") || strings.Contains(err.Error(), secret) {
			t.Errorf("the error shows a secret: %v", err)
		}
	}
	if _, err := outhook.New(e.options(target("https://h.example/a"), target("https://h.example/b"))); err == nil {
		t.Error("two webhooks named alike were accepted")
	}
}

// A target's event filter: only the types it asked for.
func TestEventFilter(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	tg := target(rc.URL)
	tg.Events = []string{outhook.TypeResolved}
	start(t, e.options(tg))
	inc := e.open(t, "checkout")
	e.record(t, inc, ledger.Recover, ledger.Actor{Kind: ledger.ActorPolicy, ID: "error-rate"}, "", "healthy on its own")
	waitFor(t, "one request", func() bool { return len(rc.deliveries()) >= 1 })
	time.Sleep(50 * time.Millisecond)
	got := rc.deliveries()
	if len(got) != 1 || got[0].payload.Type != outhook.TypeResolved || got[0].payload.Data.To != "RECOVERED" {
		t.Fatalf("got %+v, want only the resolution", got)
	}
}

// A ledger that Redis lost and that restarted behind the cursor is followed from its new
// start: the events recorded after the loss are not skipped.
func TestFollowsARestartedChain(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	start(t, e.options(target(rc.URL)))
	e.open(t, "checkout")
	e.open(t, "search")
	waitFor(t, "two deliveries", func() bool { return len(rc.deliveries()) >= 2 })

	ctx := context.Background()
	keys, err := e.rdb.Keys(ctx, e.prefix+"{ae:"+tenantID+"}*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("ledger keys: %v %v", keys, err)
	}
	if err := e.rdb.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	led, err := ledger.New(ledger.Options{Store: e.store})
	if err != nil {
		t.Fatal(err)
	}
	e.led = led
	e.open(t, "billing")
	waitFor(t, "the new chain's event", func() bool { return len(rc.deliveries()) >= 3 })
	got := rc.deliveries()
	if got[2].payload.Data.Service != "billing" || got[2].payload.Data.Seq != 1 || got[2].id == got[0].id {
		t.Errorf("after the loss: %s seq %d id %s", got[2].payload.Data.Service, got[2].payload.Data.Seq, got[2].id)
	}
	if !strings.Contains(e.logs.String(), "behind this webhook's cursor") {
		t.Error("the restart is not logged")
	}
}

// A replica that died holding a tenant's lease blocks no one for longer than the lease:
// nothing is sent while it holds, and another replica takes over once it expires.
func TestTakesOverADeadReplicasLease(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	lease := e.prefix + ":{outhook:" + tenantID + "}:lease"
	if err := e.rdb.Set(ctx, lease, "dead-replica", 700*time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	e.open(t, "checkout")
	rc := newReceiver(t, nil)
	began := time.Now()
	start(t, e.options(target(rc.URL)))
	time.Sleep(300 * time.Millisecond)
	if n := len(rc.deliveries()); n != 0 {
		t.Fatalf("%d requests while another replica held the lease", n)
	}
	e.expireOnEmbedded(700 * time.Millisecond)
	waitFor(t, "the takeover's delivery", func() bool { return len(rc.deliveries()) == 1 })
	if waited := time.Since(began); e.srv.Mini == nil && waited < 600*time.Millisecond {
		t.Errorf("delivered after %v, before the dead replica's lease ran out", waited)
	}
}

// A replica whose lease was taken over (it stalled past it) stops sending at its next
// renewal, and takes the tenant back once the lease is free again.
func TestStopsWhenTheLeaseIsTaken(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	start(t, e.options(target(rc.URL)))
	e.open(t, "checkout")
	waitFor(t, "the first delivery", func() bool { return len(rc.deliveries()) == 1 })
	lease := e.prefix + ":{outhook:" + tenantID + "}:lease"
	// The other replica's lease outlives any stall of this test under load; the test
	// frees it itself once this replica has noticed the loss.
	if err := e.rdb.Set(context.Background(), lease, "other-replica", time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", e.logs)
		}
	})
	waitFor(t, "the loss noticed at a renewal", func() bool {
		return strings.Contains(e.logs.String(), "lease lost")
	})
	e.open(t, "search")
	time.Sleep(500 * time.Millisecond)
	if n := len(rc.deliveries()); n != 1 {
		t.Fatalf("%d requests while another replica held the lease, want 1", n)
	}
	if err := e.rdb.Del(context.Background(), lease).Err(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the delivery after the lease came back", func() bool {
		got := rc.deliveries()
		return len(got) >= 2 && got[len(got)-1].payload.Data.Service == "search"
	})
}

// A new webhook receives what was appended after the Sender marked the chain, even when
// its first pass comes later (a slow start, another replica holding the lease): an
// incident opened in between is not skipped, and what came before the mark is not sent.
func TestNewTargetStartsWhereTheSenderMarked(t *testing.T) {
	e := newEnv(t)
	rc := newReceiver(t, nil)
	before := e.open(t, "payments")
	opts := e.options(target(rc.URL + "/hook"))
	opts.Backfill = 0
	s, err := outhook.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Mark(context.Background())
	after := e.open(t, "checkout") // appended before the sender's first pass
	testkit.Start(t, s.Run)
	waitFor(t, "the incident opened after the mark", func() bool { return len(rc.deliveries()) >= 1 })
	time.Sleep(50 * time.Millisecond) // nothing more arrives
	got := rc.deliveries()
	if len(got) != 1 || got[0].payload.Data.Incident != after {
		t.Fatalf("deliveries %+v; want only %s's opening (not %s's, opened before the mark)", got, after, before)
	}
}
