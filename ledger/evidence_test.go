package ledger_test

import (
	"maps"
	"testing"

	"github.com/alertengine/alertengine/ledger"
)

// TestEvidenceData: a judged reading is written with the keys and precision entries have
// always had (their hashes depend on it), and reads back as it was written.
func TestEvidenceData(t *testing.T) {
	ev := ledger.Evidence{Source: "push", Judged: true, Score: 23.04, P95Ms: 2812.35, ErrorRate: 0.01234, BaselineP95Ms: 80,
		AnomalyRatio: 35.154, Trend: "degrading", Slope: -4.321, SampleSize: 410, Window: "10s ending 2026-03-01T12:00:10Z",
		MinScore: 70, Evaluations: 2, RateOfChange: "sudden latency spike"}
	want := map[string]string{"source": "push", "score": "23.0", "p95_ms": "2812.3", "error_rate": "0.0123", "baseline_p95_ms": "80.0",
		"anomaly_ratio": "35.15", "trend": "degrading", "slope": "-4.32", "sample_size": "410", "window": "10s ending 2026-03-01T12:00:10Z",
		"min_score": "70.0", "evaluations": "2", "rate_of_change": "sudden latency spike"}
	got := ev.Data()
	if !maps.Equal(got, want) {
		t.Fatalf("data %v\nwant %v", got, want)
	}
	back := ledger.EvidenceOf(ledger.Entry{Event: ledger.Detect, Data: got})
	if !back.Judged || back.Score != 23 || back.P95Ms != 2812.3 || back.ErrorRate != 0.0123 || back.SampleSize != 410 ||
		back.Trend != "degrading" || back.Evaluations != 2 || back.Slope != -4.32 || back.RateOfChange != "sudden latency spike" {
		t.Fatalf("read back %+v", back)
	}
}

// TestEvidenceOfAlert: an alert's entry has no score, so nothing reads as measured; its
// severity and links are kept.
func TestEvidenceOfAlert(t *testing.T) {
	e := ledger.Entry{Event: ledger.Detect, Data: map[string]string{"source": "alertmanager", "severity": "critical", "alertname": "HighLatency",
		"generator_url": "http://prom/graph", "dashboard_url": "https://grafana/d/1", "fingerprint": "abcd"}}
	ev := ledger.EvidenceOf(e)
	if ev.Judged || ev.Score != 0 || ev.Severity != "critical" || ev.AlertName != "HighLatency" ||
		ev.Links["generator_url"] != "http://prom/graph" || ev.Links["dashboard_url"] != "https://grafana/d/1" || len(ev.Links) != 2 {
		t.Fatalf("evidence %+v", ev)
	}
	if got := ev.Data(); got["fingerprint"] != "" || got["dashboard_url"] != "https://grafana/d/1" || got["score"] != "" {
		t.Fatalf("data %v", got)
	}
}

// TestEvidenceOfHostile: numbers that are not numbers, negative or infinite read as 0; an
// error rate over 1 reads as 1.
func TestEvidenceOfHostile(t *testing.T) {
	ev := ledger.EvidenceOf(ledger.Entry{Data: map[string]string{"score": "NaN", "p95_ms": "-5", "error_rate": "7", "sample_size": "1e400",
		"baseline_p95_ms": "+Inf", "evaluations": "-3", "slope": "x"}})
	if ev.Judged || ev.P95Ms != 0 || ev.ErrorRate != 1 || ev.SampleSize != 0 || ev.BaselineP95Ms != 0 || ev.Evaluations != 0 || ev.Slope != 0 {
		t.Fatalf("evidence %+v", ev)
	}
}
