package pagerduty

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/detector/detectortest"
	"github.com/alertengine/alertengine/ledger"
)

const (
	acmeKey   = "acme0checkout0routing0key000001"
	globexKey = "globex0api0routing0key00000001"
)

func tenants() []detector.Tenant {
	return []detector.Tenant{
		{ID: "acme", PolicyVersion: "policy-v7", Services: []detector.Service{{Name: "checkout"}, {Name: "payments"}}},
		{ID: "globex", PolicyVersion: "g-1", Services: []detector.Service{{Name: "api"}}},
	}
}

func keys() []Key {
	return []Key{{RoutingKey: acmeKey, Tenant: "acme", Service: "checkout"}, {RoutingKey: globexKey, Tenant: "globex", Service: "api"}}
}

// logBuf collects the log, safe for concurrent handlers.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) { l.mu.Lock(); defer l.mu.Unlock(); return l.b.Write(p) }
func (l *logBuf) String() string              { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

type fixture struct {
	h   *detectortest.Harness
	d   *detector.Detector
	srv *httptest.Server
	log *logBuf
}

func newFixture(t *testing.T, tweak func(*Options)) *fixture {
	t.Helper()
	h := detectortest.New(t)
	f := &fixture{h: h, log: &logBuf{}}
	o := Options{Keys: keys()}
	if tweak != nil {
		tweak(&o)
	}
	f.d = h.Replica("r1", tenants(), func(do *detector.Options) {
		do.Logger = slog.New(slog.NewTextHandler(f.log, nil))
		do.Intakes = []detector.NewIntake{Intake(o)}
	})
	f.srv = h.Serve(f.d)
	return f
}

func (f *fixture) rcv() *Receiver { return f.d.Intake(Source).(*Receiver) }

type answer struct {
	code       int
	retryAfter string
	res        response
	raw        string
}

func (f *fixture) post(t testing.TB, path, body string) answer {
	t.Helper()
	resp, err := http.Post(f.srv.URL+path, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	a := answer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), raw: b.String()}
	if err := json.Unmarshal(b.Bytes(), &a.res); err != nil {
		t.Fatalf("answer %d is not JSON: %q", a.code, a.raw)
	}
	return a
}

func event(key, action, dedup string, payload map[string]any) string {
	m := map[string]any{"routing_key": key, "event_action": action}
	if dedup != "" {
		m["dedup_key"] = dedup
	}
	if payload != nil {
		m["payload"] = payload
	}
	if action == Trigger {
		m["links"] = []map[string]string{{"href": "https://grafana.example/d/abc", "text": "Dashboard"}}
		m["images"] = []map[string]string{{"src": "https://grafana.example/render/abc.png"}}
		m["client"], m["client_url"] = "Datadog", "https://app.datadoghq.example/monitors/1"
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func payload(summary string) map[string]any {
	return map[string]any{"summary": summary, "source": "checkout-7d9f.prod", "severity": "critical", "component": "postgres",
		"group": "prod-checkout", "class": "High latency", "custom_details": map[string]any{"p95": "2.8s", "load": 0.75}}
}

// TestTriggerAcknowledgeResolve: a trigger opens an incident with the event's fields on
// it, a repeat records nothing, the sender's acknowledgement is recorded with an actor
// from outside, and the resolve with the same dedup_key closes the incident; every answer
// is PagerDuty's.
func TestTriggerAcknowledgeResolve(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	a := f.post(t, Path, event(acmeKey, Trigger, "chk-latency-1", payload("p95 over 2 s on checkout")))
	if a.code != 202 || a.res.Status != "success" || a.res.Message != "Event processed" || a.res.DedupKey != "chk-latency-1" {
		t.Fatalf("trigger: %d %s", a.code, a.raw)
	}
	det := f.h.EntriesOf("acme", ledger.Detect)
	if len(det) != 1 || det[0].Service != "checkout" || det[0].Reason != "pagerduty: p95 over 2 s on checkout" {
		t.Fatalf("DETECTED %+v", det)
	}
	ev := ledger.EvidenceOf(det[0])
	if ev.Source != "pagerduty" || ev.Judged || ev.Severity != "critical" || ev.AlertName != "High latency" ||
		ev.Links["link_1_url"] != "https://grafana.example/d/abc" || ev.Links["image_1_url"] != "https://grafana.example/render/abc.png" ||
		det[0].Data["dedup_key"] != "chk-latency-1" || det[0].Data["component"] != "postgres" || !strings.Contains(det[0].Data["custom_details"], `"p95":"2.8s"`) {
		t.Fatalf("evidence %+v data %v", ev, det[0].Data)
	}
	inc := det[0].Incident
	if evs := f.h.Events.Of(detector.Opened); len(evs) != 1 || evs[0].Source != Source || evs[0].Incident != inc {
		t.Fatalf("events %+v", f.h.Events.All())
	}

	if a := f.post(t, Path, event(acmeKey, Trigger, "chk-latency-1", payload("p95 over 2 s on checkout"))); a.code != 202 {
		t.Fatalf("repeat: %s", a.raw)
	}
	if n := len(f.h.Entries("acme")); n != 1 {
		t.Fatalf("a repeated trigger recorded something: %d entries", n)
	}

	if a := f.post(t, Path, event(acmeKey, Acknowledge, "chk-latency-1", nil)); a.code != 202 || a.res.DedupKey != "chk-latency-1" {
		t.Fatalf("acknowledge: %s", a.raw)
	}
	acks := f.h.EntriesOf("acme", ledger.Ack)
	if len(acks) != 1 || acks[0].Incident != inc || acks[0].Actor != (ledger.Actor{Kind: ledger.ActorSystem, ID: "pagerduty"}) {
		t.Fatalf("acknowledgements %+v", acks)
	}
	if f.h.Stage("acme", inc) != ledger.Detected {
		t.Fatalf("acknowledged incident is %s, want still open", f.h.Stage("acme", inc))
	}
	f.post(t, Path, event(acmeKey, Acknowledge, "chk-latency-1", nil))
	if n := len(f.h.EntriesOf("acme", ledger.Ack)); n != 1 {
		t.Fatalf("a repeated acknowledgement recorded again: %d", n)
	}

	if a := f.post(t, Path, event(acmeKey, Resolve, "chk-latency-1", nil)); a.code != 202 {
		t.Fatalf("resolve: %s", a.raw)
	}
	if got := f.h.Stage("acme", inc); got != ledger.Recovered {
		t.Fatalf("resolved incident is %s, want RECOVERED", got)
	}
	if st := f.rcv().Stats(); st.Accepted[Trigger] != 2 || st.Accepted[Acknowledge] != 2 || st.Accepted[Resolve] != 1 || st.Duplicates != 2 {
		t.Fatalf("stats %+v", st)
	}
}

// TestTwoAlertsOneIncident: two alerts of one service share its incident; the incident
// closes when the second resolves, not the first. A trigger without a dedup_key gets one.
func TestTwoAlertsOneIncident(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	f.post(t, Path, event(acmeKey, Trigger, "a", payload("latency")))
	b := f.post(t, Path, event(acmeKey, Trigger, "", payload("errors")))
	if b.code != 202 || len(b.res.DedupKey) != 32 {
		t.Fatalf("trigger without dedup_key: %s", b.raw)
	}
	inc := f.h.EntriesOf("acme", ledger.Detect)[0].Incident
	if ups := f.h.EntriesOf("acme", ledger.Update); len(ups) != 1 || ups[0].Incident != inc || ups[0].Reason != "pagerduty: alert joined: errors" {
		t.Fatalf("updates %+v", ups)
	}
	f.post(t, Path, event(acmeKey, Resolve, "a", nil))
	if got := f.h.Stage("acme", inc); got != ledger.Detected {
		t.Fatalf("incident %s after one of two alerts resolved", got)
	}
	f.post(t, Path, event(acmeKey, Resolve, b.res.DedupKey, nil))
	if got := f.h.Stage("acme", inc); got != ledger.Recovered {
		t.Fatalf("incident %s after both resolved", got)
	}
}

// TestUnknownRoutingKey: a wrong key, a missing one, another tenant's key on a tenant's
// path and an unknown tenant's path are all answered with the same 400, which says nothing
// about which tenants exist; the key never reaches the log.
func TestUnknownRoutingKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	var bodies []string
	for _, c := range []struct{ path, key string }{
		{Path, "no-such-routing-key-0000000000"},
		{Path, ""},
		{"/pagerduty/acme/v2/enqueue", globexKey},
		{"/pagerduty/initech/v2/enqueue", "no-such-routing-key-0000000000"},
		{"/pagerduty/nosuch/v2/enqueue", acmeKey},
	} {
		a := f.post(t, c.path, event(c.key, Trigger, "x", payload("boom")))
		if a.code != 400 || a.res.Status != "invalid event" || !slices.Equal(a.res.Errors, []string{"'routing_key' is invalid"}) {
			t.Fatalf("%s with key %q: %d %s", c.path, c.key, a.code, a.raw)
		}
		bodies = append(bodies, a.raw)
	}
	for _, b := range bodies[1:] {
		if b != bodies[0] {
			t.Fatalf("answers differ: %q vs %q", b, bodies[0])
		}
	}
	if n := len(f.h.Entries("acme")) + len(f.h.Entries("globex")); n != 0 {
		t.Fatalf("%d entries recorded", n)
	}
	// The tenant's own path accepts its key.
	if a := f.post(t, "/pagerduty/acme/v2/enqueue", event(acmeKey, Trigger, "x", payload("boom"))); a.code != 202 {
		t.Fatalf("tenant path: %s", a.raw)
	}
	if strings.Contains(f.log.String(), acmeKey) || strings.Contains(f.log.String(), globexKey) {
		t.Fatal("a routing key reached the log")
	}
	if got := f.rcv().Stats().Refused[RefusedUnknownKey]; got != 5 {
		t.Fatalf("refused unknown_key %d, want 5", got)
	}
}

// TestResolveUnknownDedupKey: accepted (202), no effect, logged.
func TestResolveUnknownDedupKey(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	if a := f.post(t, Path, event(acmeKey, Resolve, "never-triggered", nil)); a.code != 202 || a.res.Status != "success" {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	if n := len(f.h.Entries("acme")); n != 0 {
		t.Fatalf("%d entries", n)
	}
	if !strings.Contains(f.log.String(), "resolve of an unknown dedup_key") {
		t.Fatalf("not logged: %s", f.log.String())
	}
}

// TestInvalidEvents: every problem of an event is listed in the 400; an oversized body is
// 413; nothing is recorded.
func TestInvalidEvents(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options) { o.MaxBodyBytes = 4 << 10 })
	long := strings.Repeat("x", MaxDedupKey+1)
	for _, c := range []struct {
		name, body, want string
	}{
		{"not JSON", `{"routing_key":`, "not a JSON event object"},
		{"no action", `{"routing_key":"` + acmeKey + `","payload":{"summary":"s","source":"h","severity":"info"}}`, "'event_action' is missing"},
		{"bad action", event(acmeKey, "explode", "x", nil), `'event_action' "explode"`},
		{"no payload", event(acmeKey, Trigger, "x", nil), "'payload' is missing"},
		{"bad severity", event(acmeKey, Trigger, "x", map[string]any{"summary": "s", "source": "h", "severity": "fatal"}), "'payload.severity'"},
		{"blank summary", event(acmeKey, Trigger, "x", map[string]any{"summary": " ", "source": "h", "severity": "info"}), "'payload.summary' is missing or blank"},
		{"long summary", event(acmeKey, Trigger, "x", map[string]any{"summary": strings.Repeat("é", MaxSummary+1), "source": "h", "severity": "info"}), "longer than 1024"},
		{"long dedup", event(acmeKey, Resolve, long, nil), "'dedup_key' is longer than 255"},
		{"resolve without dedup", event(acmeKey, Resolve, "", nil), "'dedup_key' is missing"},
		{"link without href", `{"routing_key":"` + acmeKey + `","event_action":"trigger","payload":{"summary":"s","source":"h","severity":"info"},"links":[{"text":"t"}]}`, "links[0].href"},
	} {
		a := f.post(t, Path, c.body)
		if a.code != 400 || a.res.Status != "invalid event" || !strings.Contains(strings.Join(a.res.Errors, " | "), c.want) {
			t.Errorf("%s: %d %s", c.name, a.code, a.raw)
		}
	}
	big := event(acmeKey, Trigger, "x", payload(strings.Repeat("y", 5000)))
	if a := f.post(t, Path, big); a.code != 413 {
		t.Errorf("oversized: %d %s", a.code, a.raw)
	}
	if n := len(f.h.Entries("acme")); n != 0 {
		t.Fatalf("%d entries recorded from invalid events", n)
	}
}

// TestBurstRateLimited: 10,000 events from one sender at once: past the burst they get
// 429 with Retry-After and nothing is recorded for them; every accepted one is recorded
// (its alert is remembered, its incident entry written).
func TestBurstRateLimited(t *testing.T) {
	t.Parallel()
	f := newFixture(t, func(o *Options) { o.Burst = 50; o.Rate = 0.001 })
	h := f.rcv().Handler()
	var accepted []string
	limited := 0
	for i := range 10_000 {
		dedup := "storm-" + strconv.Itoa(i)
		req := httptest.NewRequest(http.MethodPost, Path, strings.NewReader(event(acmeKey, Trigger, dedup, payload("storm "+strconv.Itoa(i)))))
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		switch rec.Code {
		case 202:
			accepted = append(accepted, dedup)
		case 429:
			limited++
			if ra, err := strconv.Atoi(rec.Header().Get("Retry-After")); err != nil || ra < 1 {
				t.Fatalf("429 with Retry-After %q", rec.Header().Get("Retry-After"))
			}
		default:
			t.Fatalf("event %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if len(accepted) != 50 || limited != 10_000-50 {
		t.Fatalf("%d accepted, %d limited; want 50 and %d", len(accepted), limited, 10_000-50)
	}
	// Every accepted alert is remembered with its incident: one DETECTED, 49 updates.
	state, err := f.h.RDB.HGetAll(context.Background(), f.d.ServiceKey("acme", "checkout", "pd")).Result()
	if err != nil || len(state) != 50 {
		t.Fatalf("%d alerts remembered (%v), want 50", len(state), err)
	}
	for _, dd := range accepted {
		if _, ok := state[field(dd)]; !ok {
			t.Fatalf("accepted %s is not remembered", dd)
		}
	}
	if d, u := len(f.h.EntriesOf("acme", ledger.Detect)), len(f.h.EntriesOf("acme", ledger.Update)); d != 1 || u != 49 {
		t.Fatalf("%d DETECTED, %d updates; want 1 and 49", d, u)
	}
	if got := f.rcv().Stats().Refused[RefusedRateLimited]; got != uint64(limited) {
		t.Fatalf("refused rate_limited %d, want %d", got, limited)
	}
}

// TestHugeValues: a trigger whose fields are as large as the body allows is recorded with
// every value bounded.
func TestHugeValues(t *testing.T) {
	t.Parallel()
	f := newFixture(t, nil)
	huge := strings.Repeat("ü", 40_000)
	p := map[string]any{"summary": "s", "source": huge, "severity": "warning", "component": huge, "group": huge, "class": huge,
		"custom_details": map[string]string{"blob": huge}}
	if a := f.post(t, Path, event(acmeKey, Trigger, "huge", p)); a.code != 202 {
		t.Fatalf("%d %s", a.code, a.raw)
	}
	for _, e := range f.h.Entries("acme") {
		for k, v := range e.Data {
			if n := len([]rune(v)); n > ledger.MaxTextRunes {
				t.Fatalf("data %s of %d runes", k, n)
			}
		}
	}
}

func TestKeysChecked(t *testing.T) {
	t.Parallel()
	h := detectortest.New(t)
	for _, k := range []Key{
		{RoutingKey: "short", Tenant: "acme", Service: "checkout"},
		{RoutingKey: acmeKey, Tenant: "nosuch", Service: "checkout"},
		{RoutingKey: acmeKey, Tenant: "acme", Service: "nosuch"},
	} {
		d := h.Replica("r-"+k.Tenant+k.Service+k.RoutingKey, tenants(), nil)
		if _, err := New(d, Options{Keys: []Key{k}}); err == nil {
			t.Errorf("key %+v accepted", k)
		}
	}
	d := h.Replica("r", tenants(), nil)
	if _, err := New(d, Options{Keys: []Key{{acmeKey, "acme", "checkout"}, {acmeKey, "acme", "payments"}}}); err == nil {
		t.Error("a routing key used twice was accepted")
	}
}
