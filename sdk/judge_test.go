package sdk

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

const ms = time.Millisecond

// around returns requests whose latency cycles through lo, lo+1ms, … lo+19ms, and
// whose status is code(i).
func around(lo time.Duration, code func(i int) int) func(int) request {
	return func(i int) request {
		return request{latency: lo + time.Duration(i%20)*ms, status: code(i)}
	}
}

func ok200(int) int { return http.StatusOK }

// every returns a status function answering code for one request in n, 200 otherwise.
func every(n, code int) func(int) int {
	return func(i int) int {
		if i%n == 0 {
			return code
		}
		return http.StatusOK
	}
}

type alertKey struct{ Type, Severity, TriggeredBy string }

func keys(alerts []alert) []alertKey {
	out := []alertKey{}
	for _, a := range alerts {
		out = append(out, alertKey{a.Type, a.Severity, a.TriggeredBy})
	}
	slices.SortFunc(out, func(a, b alertKey) int { return strings.Compare(a.Type+a.TriggeredBy, b.Type+b.TriggeredBy) })
	return out
}

func TestHealthAlerts(t *testing.T) {
	// Two minutes of healthy traffic (p95 ≈ 48 ms) teach the baseline.
	warm := phase{120, 50, around(30*ms, ok200)}
	tests := []struct {
		name       string
		phases     []phase
		wantStatus string
		wantAlerts []alertKey
		check      func(t *testing.T, h healthResponse)
	}{
		{
			name:       "steady traffic is ok",
			phases:     []phase{warm},
			wantStatus: "ok",
			wantAlerts: []alertKey{},
			check: func(t *testing.T, h healthResponse) {
				if h.Metrics.SampleSize != 3000 {
					t.Errorf("sample_size = %d, want 3000 (60 s × 50/s)", h.Metrics.SampleSize)
				}
				if !within(h.Metrics.OverallP95Ms, 48, 0.02) {
					t.Errorf("p95 = %v ms, want 48 within 2%%", h.Metrics.OverallP95Ms)
				}
				if h.HealthScore.Score != 100 || h.HealthScore.Status != "healthy" || h.HealthScore.Trend != "stable" {
					t.Errorf("health_score = %+v, want 100 healthy stable", h.HealthScore)
				}
				if h.Metrics.Baseline == nil || !within(h.Metrics.Baseline.P95Ms, 48, 0.02) {
					t.Errorf("baseline = %+v, want p95 ≈ 48 ms", h.Metrics.Baseline)
				}
			},
		},
		{
			name:       "latency spike",
			phases:     []phase{warm, {30, 50, around(1500*ms, ok200)}},
			wantStatus: "critical",
			wantAlerts: []alertKey{
				{"anomaly", "critical", "learned_baseline"},
				{"latency_spike", "warning", "absolute_threshold"},
			},
			check: func(t *testing.T, h healthResponse) {
				if !within(h.Metrics.OverallP95Ms, 1518, 0.02) {
					t.Errorf("p95 = %v ms, want ≈ 1518", h.Metrics.OverallP95Ms)
				}
				if h.Metrics.AnomalyScore < 30 {
					t.Errorf("anomaly_score = %v, want ≈ 31 (1518/48)", h.Metrics.AnomalyScore)
				}
			},
		},
		{
			name:       "error surge",
			phases:     []phase{warm, {30, 50, around(30*ms, every(10, 500))}, {30, 50, around(30*ms, every(5, 503))}},
			wantStatus: "warning",
			wantAlerts: []alertKey{
				{"anomaly", "warning", "learned_baseline"},
				{"error_anomaly", "warning", "absolute_threshold"},
			},
			check: func(t *testing.T, h healthResponse) {
				if !within(h.Metrics.ErrorRate, 0.15, 1e-9) {
					t.Errorf("error_rate = %v, want 0.15", h.Metrics.ErrorRate)
				}
				if h.HealthScore.Status != "degraded" {
					t.Errorf("health_score.status = %q, want degraded", h.HealthScore.Status)
				}
			},
		},
		{
			name:       "error rate at the critical threshold",
			phases:     []phase{warm, {60, 50, around(30*ms, every(5, 500))}},
			wantStatus: "critical",
			wantAlerts: []alertKey{
				{"anomaly", "warning", "learned_baseline"},
				{"error_anomaly", "critical", "absolute_threshold"},
			},
		},
		{
			name:       "low traffic is not judged",
			phases:     []phase{{1, 5, around(500*ms, every(1, 500))}},
			wantStatus: "ok",
			wantAlerts: []alertKey{},
			check: func(t *testing.T, h healthResponse) {
				if h.Metrics.SampleSize != 5 || h.Reason != "insufficient_data" || !strings.Contains(h.Note, "5 requests") {
					t.Errorf("sample_size %d, reason %q, note %q: want 5 requests noted as insufficient", h.Metrics.SampleSize, h.Reason, h.Note)
				}
				if h.Metrics.ErrorRate != 1 {
					t.Errorf("error_rate = %v, want 1: measured, just not judged", h.Metrics.ErrorRate)
				}
			},
		},
		{
			name:       "4xx are not errors",
			phases:     []phase{{60, 50, around(30*ms, every(2, 404))}},
			wantStatus: "ok",
			wantAlerts: []alertKey{},
			check: func(t *testing.T, h healthResponse) {
				if h.Metrics.ErrorRate != 0 || h.Metrics.ClientErrorRate != 0.5 {
					t.Errorf("error_rate %v, client_error_rate %v: want 0 and 0.5", h.Metrics.ErrorRate, h.Metrics.ClientErrorRate)
				}
			},
		},
		{
			name:       "sudden latency jump below every absolute threshold",
			phases:     []phase{{120, 50, around(70*ms, ok200)}, {10, 50, around(200*ms, ok200)}},
			wantStatus: "warning",
			wantAlerts: []alertKey{{"latency_spike", "warning", "rate_of_change"}},
			check: func(t *testing.T, h healthResponse) {
				if h.HealthScore.Status != "healthy" {
					t.Errorf("health_score.status = %q: the score alone would not alert", h.HealthScore.Status)
				}
			},
		},
		{
			name:       "sudden error jump below every absolute threshold",
			phases:     []phase{warm, {10, 50, around(30*ms, every(16, 500))}},
			wantStatus: "warning",
			wantAlerts: []alertKey{{"error_anomaly", "warning", "rate_of_change"}},
		},
		{
			name:       "an incident does not become the baseline",
			phases:     []phase{warm, {300, 20, around(1500*ms, ok200)}},
			wantStatus: "critical",
			wantAlerts: []alertKey{
				{"anomaly", "critical", "learned_baseline"},
				{"latency_spike", "warning", "absolute_threshold"},
			},
			check: func(t *testing.T, h healthResponse) {
				if h.Metrics.Baseline == nil || !within(h.Metrics.Baseline.P95Ms, 48, 0.02) {
					t.Errorf("baseline = %+v after 5 minutes at 1.5 s, want it still ≈ 48 ms", h.Metrics.Baseline)
				}
			},
		},
		{
			name:   "gradual degradation trends down",
			phases: append([]phase{warm}, ramp(10, 100*ms, 300*ms)...),
			check: func(t *testing.T, h healthResponse) {
				if h.HealthScore.Trend != "degrading" || h.HealthScore.TrendSlope >= -1 {
					t.Errorf("trend %q slope %v, want degrading", h.HealthScore.Trend, h.HealthScore.TrendSlope)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestSDK(t, Options{})
			h := ts.service()
			ts.run(t, h, tc.phases...)
			ts.settle(t)
			var got healthResponse
			if code := get(t, h, "/health/alerts", &got); code != http.StatusOK {
				t.Fatalf("GET /health/alerts: %d", code)
			}
			if tc.wantStatus != "" && got.Status != tc.wantStatus {
				t.Errorf("status = %q, want %q (alerts %+v)", got.Status, tc.wantStatus, got.Alerts)
			}
			if tc.wantAlerts != nil {
				if diff := cmp.Diff(tc.wantAlerts, keys(got.Alerts)); diff != "" {
					t.Errorf("alerts (-want +got):\n%s\n%+v", diff, got.Alerts)
				}
			}
			for _, a := range got.Alerts {
				if a.Message == "" || a.ReasonForTrigger == "" {
					t.Errorf("alert %+v lacks a message or a reason", a)
				}
			}
			if tc.check != nil {
				tc.check(t, got)
			}
		})
	}
}

// ramp returns n 10-second phases whose latency climbs by step each, starting at from.
func ramp(n int, from, step time.Duration) []phase {
	var out []phase
	for k := range n {
		out = append(out, phase{10, 50, around(from+time.Duration(k)*step, ok200)})
	}
	return out
}

func TestHealthAlertsJSONShape(t *testing.T) {
	ts := newTestSDK(t, Options{})
	h := ts.service()
	ts.run(t, h, phase{30, 10, around(30*ms, every(3, 500))})
	ts.settle(t)
	var got map[string]any
	get(t, h, "/health/alerts", &got)
	want := map[string][]string{
		"":             {"status", "health_score", "metrics", "alerts", "timestamp"},
		"health_score": {"score", "status", "trend", "components"},
		"metrics":      {"overall_p95_ms", "error_rate", "client_error_rate", "anomaly_score", "sample_size"},
	}
	for obj, fields := range want {
		m := got
		if obj != "" {
			m, _ = got[obj].(map[string]any)
		}
		for _, f := range fields {
			if _, ok := m[f]; !ok {
				t.Errorf("%s lacks %q: %v", obj, f, m)
			}
		}
	}
	if c, _ := got["health_score"].(map[string]any)["components"].(map[string]any); len(c) != 3 {
		t.Errorf("components = %v, want latency, errors, anomaly", c)
	}
	alerts, _ := got["alerts"].([]any)
	if len(alerts) == 0 {
		t.Fatalf("no alerts at 33%% errors: %v", got)
	}
	for _, f := range []string{"type", "severity", "message", "reason_for_trigger", "triggered_by"} {
		if _, ok := alerts[0].(map[string]any)[f]; !ok {
			t.Errorf("alert lacks %q: %v", f, alerts[0])
		}
	}
	if stamp, ok := got["timestamp"].(float64); !ok || int64(stamp) != t0.Add(30*time.Second).Unix() {
		t.Errorf("timestamp = %v, want the unix time of the clock", got["timestamp"])
	}
}

func TestEndpointsAreNotTraffic(t *testing.T) {
	ts := newTestSDK(t, Options{})
	h := ts.service()
	for range 50 {
		for _, p := range []string{"/health/alerts", "/metrics/history", "/metrics/ingestion", "/__alertengine/status"} {
			var v map[string]any
			get(t, h, p, &v)
		}
	}
	ts.settle(t)
	var got healthResponse
	get(t, h, "/health/alerts", &got)
	if got.Metrics.SampleSize != 0 {
		t.Errorf("sample_size = %d after only endpoint calls, want 0", got.Metrics.SampleSize)
	}
}

func TestEndpointsRefuseWrites(t *testing.T) {
	ts := newTestSDK(t, Options{})
	h := ts.service()
	for _, m := range []string{http.MethodPost, http.MethodDelete} {
		rec := httptestRecorder(h, m, "/health/alerts")
		if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
			t.Errorf("%s /health/alerts = %d (Allow %q), want 405", m, rec.Code, rec.Header().Get("Allow"))
		}
	}
}
