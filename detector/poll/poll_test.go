package poll

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// healthServer serves /health/alerts answers the test sets one by one.
type healthServer struct {
	*httptest.Server
	mu   sync.Mutex
	code int
	body string
	hits int
}

func newHealthServer(t *testing.T) *healthServer {
	hs := &healthServer{code: 200}
	hs.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hs.mu.Lock()
		code, body := hs.code, hs.body
		hs.hits++
		hs.mu.Unlock()
		if r.URL.Path != "/health/alerts" {
			http.NotFound(w, r)
			return
		}
		if code == 0 { // hang until the poller gives up
			<-r.Context().Done()
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(hs.Close)
	return hs
}

func (hs *healthServer) answer(code int, body string) {
	hs.mu.Lock()
	hs.code, hs.body = code, body
	hs.mu.Unlock()
}

// goHealth is the Go SDK's /health/alerts document.
func goHealth(score, p95, errRate float64, n int) string {
	status := "ok"
	if score < 40 {
		status = "critical"
	} else if score < 70 {
		status = "warning"
	}
	return fmt.Sprintf(`{"status":%q,"health_score":{"score":%v,"status":"x","trend":"stable","components":{"latency":50,"errors":100,"anomaly":0}},
"metrics":{"overall_p95_ms":%v,"error_rate":%v,"anomaly_score":1.2,"sample_size":%d},
"alerts":[{"type":"latency_spike","severity":"critical","message":"p95 high","reason_for_trigger":"p95","triggered_by":"window"}],
"timestamp":"2026-03-01T12:00:00Z"}`, status, score, p95, errRate, n)
}

// pythonHealth is the same document as the Python SDK writes it: unix timestamp, no
// components.
func pythonHealth(score, p95, errRate float64, n int) string {
	return fmt.Sprintf(`{"status":"critical","health_score":{"score":%v,"status":"critical","trend":"degrading"},
"metrics":{"overall_p95_ms":%v,"webhook_p95_ms":0,"api_p95_ms":%v,"error_rate":%v,"anomaly_score":3.1,"sample_size":%d},
"alerts":[],"timestamp":1772366400}`, score, p95, p95, errRate, n)
}

func pullTenants(url string) []Tenant {
	return []Tenant{{ID: "acme", PolicyVersion: "policy-v7", Services: []Service{{Name: "checkout", HealthURL: url + "/health/alerts", AllowPrivateNetwork: true}}}}
}

// TestPullMode polls an httptest server speaking the SDK's /health/alerts and feeds the
// same gate: two judged bad polls open, three healthy polls close, and an endpoint that
// fails once or twice in a row changes nothing by itself.
func TestPullMode(t *testing.T) {
	t.Parallel()
	hs := newHealthServer(t)
	h := newHarness(t)
	d := h.replica("r1", pullTenants(hs.URL), func(o *detector.Options) { o.PollTimeout = 200 * time.Millisecond })
	steps := []struct {
		name          string
		code          int
		body          string
		wantDetects   int
		wantRecovers  int
		wantPollFails uint64
	}{
		{"healthy", 200, goHealth(96, 85, 0.001, 400), 0, 0, 0},
		{"healthy again", 200, goHealth(95, 88, 0.002, 380), 0, 0, 0},
		{"first bad poll", 200, goHealth(23, 2800, 0, 410), 0, 0, 0},
		{"endpoint answers 503", 503, `upstream down`, 0, 0, 1},
		{"endpoint answers garbage", 200, `{"status":"ok","metrics":`, 0, 0, 2},
		{"second judged bad poll opens", 200, goHealth(21, 2900, 0, 420), 1, 0, 2},
		{"python SDK, still bad", 200, pythonHealth(30, 2500, 0.01, 300), 1, 0, 2},
		{"too few samples: not judged", 200, goHealth(96, 80, 0, 5), 1, 0, 2},
		{"healthy 1", 200, goHealth(96, 85, 0, 400), 1, 0, 2},
		{"healthy 2", 200, goHealth(96, 85, 0, 400), 1, 0, 2},
		{"endpoint hangs past the timeout: does not break the streak", 0, "", 1, 0, 3},
		{"healthy 3 closes", 200, goHealth(97, 84, 0, 400), 1, 1, 3},
	}
	ctx := context.Background()
	for k, s := range steps {
		hs.answer(s.code, s.body)
		now := base.Add(time.Duration(k) * DefaultPollInterval)
		h.clock.Set(now)
		if err := pl(d).Poll(ctx, now); err != nil {
			t.Fatalf("step %q: %v", s.name, err)
		}
		detects, recovers := h.entriesOf("acme", ledger.Detect), h.entriesOf("acme", ledger.Recover)
		if len(detects) != s.wantDetects || len(recovers) != s.wantRecovers || d.Stats().PollErrors != s.wantPollFails {
			t.Fatalf("after %q: %d DETECTED, %d RECOVERED, %d poll errors; want %d, %d, %d",
				s.name, len(detects), len(recovers), d.Stats().PollErrors, s.wantDetects, s.wantRecovers, s.wantPollFails)
		}
	}
	e := h.entriesOf("acme", ledger.Detect)[0]
	if e.Data["source"] != "pull" || !strings.HasPrefix(e.Reason, "health 21/100 < 70 for 2 evaluations: p95 2.9 s") {
		t.Fatalf("DETECTED %q %v", e.Reason, e.Data)
	}
}

// TestPullUnreachableIsDown: an endpoint failing UnreachableAfter polls in a row is a
// service that is down: judged health 0, so it opens an incident that says why, without
// the URL's credentials; it recovers once the endpoint answers healthy again.
func TestPullUnreachableIsDown(t *testing.T) {
	t.Parallel()
	hs := newHealthServer(t)
	h := newHarness(t)
	tenants := pullTenants(strings.Replace(hs.URL, "http://", "http://probe:s3cret@", 1))
	tenants[0].Services[0].HealthURL += "?token=hunter2"
	d := h.replica("r1", tenants, func(o *detector.Options) { o.PollTimeout = 200 * time.Millisecond })
	ctx := context.Background()
	poll := func(k, code int, body string) {
		hs.answer(code, body)
		now := base.Add(time.Duration(k) * DefaultPollInterval)
		h.clock.Set(now)
		if err := pl(d).Poll(ctx, now); err != nil {
			t.Fatal(err)
		}
	}
	poll(0, 200, goHealth(96, 85, 0.001, 400))
	for k := 1; k <= UnreachableAfter; k++ {
		poll(k, 503, "down")
		if n := len(h.entriesOf("acme", ledger.Detect)); n != 0 {
			t.Fatalf("opened after %d failed polls", k)
		}
	}
	poll(UnreachableAfter+1, 503, "down")
	detects := h.entriesOf("acme", ledger.Detect)
	if len(detects) != 1 || !strings.Contains(detects[0].Reason, "HTTP 503 for 4 polls in a row") {
		t.Fatalf("a service down for %d polls: %v", UnreachableAfter+1, detects)
	}
	for _, e := range h.entries("acme") {
		b, _ := json.Marshal(e)
		if strings.Contains(string(b), "s3cret") || strings.Contains(string(b), "hunter2") {
			t.Fatalf("health URL credentials reached the ledger: %s", b)
		}
	}
	for k := UnreachableAfter + 2; k < UnreachableAfter+5; k++ {
		poll(k, 200, goHealth(96, 85, 0.001, 400))
	}
	if n := len(h.entriesOf("acme", ledger.Recover)); n != 1 {
		t.Fatalf("not recovered after the endpoint came back: %d", n)
	}
}

// TestPullBandWobble: a reported score wobbling around the critical boundary records one
// update, not one per crossing.
func TestPullBandWobble(t *testing.T) {
	t.Parallel()
	hs := newHealthServer(t)
	h := newHarness(t)
	d := h.replica("r1", pullTenants(hs.URL), nil)
	scores := []float64{55, 55, 39, 41, 38, 42, 39, 44, 39}
	for k, s := range scores {
		hs.answer(200, goHealth(s, 1500, 0, 200))
		now := base.Add(time.Duration(k) * DefaultPollInterval)
		if err := pl(d).Poll(context.Background(), now); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(h.entriesOf("acme", ledger.Update)); n != 1 {
		t.Fatalf("%d updates for a score wobbling around 40, want 1%s", n, describe(h.events.All()))
	}
	hs.answer(200, goHealth(52, 1200, 0, 200))
	if err := pl(d).Poll(context.Background(), base.Add(time.Duration(len(scores))*DefaultPollInterval)); err != nil {
		t.Fatal(err)
	}
	if n := len(h.entriesOf("acme", ledger.Update)); n != 2 {
		t.Fatalf("%d updates after a clear improvement to 52, want 2", n)
	}
}

func TestPollsOnlyWithTheLease(t *testing.T) {
	t.Parallel()
	hs := newHealthServer(t)
	h := newHarness(t)
	a := h.replica("a", pullTenants(hs.URL), nil)
	b := h.replica("b", pullTenants(hs.URL), nil)
	hs.answer(200, goHealth(96, 85, 0, 400))
	for k := 0; k < 3; k++ {
		now := base.Add(time.Duration(k) * DefaultPollInterval)
		for _, d := range []*detector.Detector{a, b} {
			if err := pl(d).Poll(context.Background(), now); err != nil {
				t.Fatal(err)
			}
		}
	}
	hs.mu.Lock()
	hits := hs.hits
	hs.mu.Unlock()
	if hits != 3 {
		t.Fatalf("two replicas made %d polls in 3 rounds, want 3", hits)
	}
}

func TestParseHealth(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		body      string
		wantErr   bool
		wantScore float64 // -1: none
		wantN     uint64
		wantTime  time.Time
	}{
		{"go sdk", goHealth(23, 2800, 0.19, 410), false, 23, 410, time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)},
		{"python sdk", pythonHealth(30, 2500, 0.01, 300), false, 30, 300, time.Unix(1772366400, 0).UTC()},
		{"no health_score", `{"status":"ok","metrics":{"overall_p95_ms":80,"error_rate":0,"sample_size":12}}`, false, -1, 12, time.Time{}},
		{"float timestamp", `{"metrics":{"overall_p95_ms":80,"error_rate":0,"sample_size":1},"timestamp":1772366400.5}`, false, -1, 1, time.Unix(1772366400, 5e8).UTC()},
		{"not json", `<html>`, true, 0, 0, time.Time{}},
		{"no metrics", `{"status":"ok","health_score":{"score":90}}`, true, 0, 0, time.Time{}},
		{"no sample size", `{"metrics":{"overall_p95_ms":80,"error_rate":0}}`, true, 0, 0, time.Time{}},
		{"error rate in percent", `{"metrics":{"overall_p95_ms":80,"error_rate":5,"sample_size":100}}`, true, 0, 0, time.Time{}},
		{"negative p95", `{"metrics":{"overall_p95_ms":-1,"error_rate":0,"sample_size":100}}`, true, 0, 0, time.Time{}},
		{"fractional samples", `{"metrics":{"overall_p95_ms":1,"error_rate":0,"sample_size":1.5}}`, true, 0, 0, time.Time{}},
		{"score over 100", `{"health_score":{"score":130},"metrics":{"overall_p95_ms":1,"error_rate":0,"sample_size":1}}`, true, 0, 0, time.Time{}},
		{"unknown status", `{"status":"meh","metrics":{"overall_p95_ms":1,"error_rate":0,"sample_size":1}}`, true, 0, 0, time.Time{}},
		{"bad timestamp", `{"metrics":{"overall_p95_ms":1,"error_rate":0,"sample_size":1},"timestamp":"yesterday"}`, true, 0, 0, time.Time{}},
		{"trailing data", `{"metrics":{"overall_p95_ms":1,"error_rate":0,"sample_size":1}} {}`, true, 0, 0, time.Time{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := ParseHealth([]byte(tt.body))
			if tt.wantErr {
				if !errors.Is(err, ErrBadHealth) {
					t.Fatalf("error %v, want ErrBadHealth", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			score := -1.0
			if h.Score != nil {
				score = *h.Score
			}
			if score != tt.wantScore || h.SampleSize != tt.wantN || !h.Timestamp.Equal(tt.wantTime) {
				t.Fatalf("got score %v, n %d, time %v; want %v, %d, %v", score, h.SampleSize, h.Timestamp, tt.wantScore, tt.wantN, tt.wantTime)
			}
		})
	}
}

// TestPullIntervalPerService: Run looks for due polls every second (pollDue, here on the
// fake clock). Each service is polled every its own interval, and a poll under the
// threshold is confirmed a second later, so a fault the endpoint reports is detected
// within one interval and a second.
func TestPullIntervalPerService(t *testing.T) {
	fast, slow := newHealthServer(t), newHealthServer(t)
	h := newHarness(t)
	tenants := []Tenant{{ID: "acme", PolicyVersion: "policy-v7", Services: []Service{
		{Name: "checkout", HealthURL: fast.URL + "/health/alerts", AllowPrivateNetwork: true, PollInterval: 2 * time.Second},
		{Name: "payments", HealthURL: slow.URL + "/health/alerts", AllowPrivateNetwork: true}, // LOOP_INTERVAL_S: 5 s
	}}}
	d := h.replica("r1", tenants, func(o *detector.Options) { o.PollTimeout = time.Second })
	if tick := pl(d).pollTick(); tick != time.Second {
		t.Fatalf("Run looks for due polls every %v, want 1s", tick)
	}
	healthy := goHealth(96, 85, 0.001, 400)
	fast.answer(200, healthy)
	slow.answer(200, healthy)
	ctx := context.Background()
	const fault = 10_500 * time.Millisecond // the endpoint turns bad between two ticks
	var detected time.Duration
	for s := time.Duration(0); s <= 20*time.Second; s += time.Second {
		if s >= fault {
			fast.answer(200, goHealth(23, 2800, 0, 410))
		}
		now := base.Add(s)
		h.clock.Set(now)
		if err := pl(d).pollDue(ctx, now); err != nil {
			t.Fatal(err)
		}
		if detected == 0 && len(h.entriesOf("acme", ledger.Detect)) == 1 {
			detected = s
		}
	}
	if detected == 0 {
		t.Fatal("the fault was never detected")
	}
	if lat := detected - fault; lat > 2*time.Second+time.Second {
		t.Errorf("detected %v after the fault, want within the 2 s interval + 1 s", lat)
	}
	// 21 ticks over 20 s: the 2 s service 11 times plus one confirming poll; the 5 s one 5 times.
	fast.mu.Lock()
	slow.mu.Lock()
	defer fast.mu.Unlock()
	defer slow.mu.Unlock()
	if fast.hits < 11 || fast.hits > 13 || slow.hits != 5 {
		t.Errorf("polls: %d of the 2 s service, %d of the 5 s one; want about 11 (plus a confirmation) and 5", fast.hits, slow.hits)
	}
}
