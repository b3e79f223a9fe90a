package conversation

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

var updateCards = flag.Bool("update-cards", false, "rewrite the card golden files under testdata/cards")

// renderCard is a card as text: one line per block with its style, then the buttons.
func renderCard(m Message) string {
	styles := map[Style]string{Plain: "plain", Title: "title", Bold: "bold", Code: "code", Warning: "warning", Muted: "muted"}
	var b strings.Builder
	for _, bl := range m.Blocks {
		fmt.Fprintf(&b, "[%s] %s\n", styles[bl.Style], bl.Text)
	}
	for _, row := range m.Buttons {
		var labels []string
		for _, bt := range row {
			labels = append(labels, fmt.Sprintf("(%s → %s)", bt.Label, bt.Data))
		}
		fmt.Fprintf(&b, "buttons: %s\n", strings.Join(labels, " "))
	}
	return b.String()
}

// TestIncidentCardGolden renders the first card of incidents as the detector records
// them (its DETECTED entries' reason and data) and compares them with
// testdata/cards/*.golden: an unreachable service says "unreachable" instead of a health
// of 0 with 0% errors, and an Alertmanager alert labelled severity=critical is carded
// critical.
func TestIncidentCardGolden(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 15, 0, time.UTC)
	tests := []struct {
		name    string
		service string
		reason  string
		data    map[string]string
	}{
		{"unreachable", "checkout",
			"health 0/100 < 70 for 2 evaluations: health endpoint unreachable for 4 polls in a row",
			map[string]string{"source": "pull", "score": "0.0", "p95_ms": "0.0", "error_rate": "0.0000", "baseline_p95_ms": "85.0",
				"anomaly_ratio": "1.00", "trend": "degrading", "slope": "-9.60", "sample_size": "20", "window": "endpoint http://checkout:8000/health/alerts",
				"min_score": "70.0", "evaluations": "2", "unreachable": "health endpoint unreachable for 4 polls in a row"}},
		{"alertmanager_critical", "payments",
			"alertmanager: PaymentsDown firing: payments answers 5xx to 40% of requests",
			map[string]string{"source": "alertmanager", "alertname": "PaymentsDown", "severity": "critical", "fingerprint": "a1b2c3d4e5f60718",
				"starts_at": "2026-03-01T11:58:00Z", "group_key": `{}:{alertname="PaymentsDown"}`, "receiver": "alertengine",
				"generator_url": "http://prometheus:9090/graph?g0.expr=x", "external_url": "http://alertmanager:9093"}},
		{"alertmanager_warning", "payments",
			"alertmanager: PaymentsSlow firing: p95 over 800 ms",
			map[string]string{"source": "alertmanager", "alertname": "PaymentsSlow", "severity": "warning", "fingerprint": "0718a1b2c3d4e5f6",
				"starts_at": "2026-03-01T11:58:00Z", "receiver": "alertengine"}},
		{"measured_critical", "checkout",
			"health 23/100 < 70 for 2 evaluations: p95 2.8 s (baseline 80 ms, ×35), errors 19.0%",
			map[string]string{"source": "push", "score": "23.0", "p95_ms": "2800.0", "error_rate": "0.1900", "baseline_p95_ms": "80.0",
				"anomaly_ratio": "35.00", "trend": "degrading", "slope": "-8.20", "sample_size": "410", "window": "10s ending 2026-03-01T12:00:15Z (10 buckets, 20 summaries)",
				"min_score": "70.0", "evaluations": "2"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := ledger.Entry{Tenant: "acme", Incident: "INC-12", Seq: 1, At: at, To: ledger.Detected, Event: ledger.Detect,
				Actor: ledger.Actor{Kind: ledger.ActorSystem, ID: "detector"}, Service: tc.service, Reason: tc.reason, Data: tc.data}
			in, err := ledger.Fold([]ledger.Entry{e})
			if err != nil {
				t.Fatal(err)
			}
			got := renderCard(incidentCard(cardInput{in: in, hist: []ledger.Entry{e}, now: at.Add(time.Minute)}))
			path := filepath.Join("testdata", "cards", tc.name+".golden")
			if *updateCards {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update-cards)", err)
			}
			if got != string(want) {
				t.Errorf("card differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
			}
		})
	}
}

// An alert's links to look at (Grafana's dashboard, panel and silence, PagerDuty's links)
// are on its card; only http(s) links, at most four.
func TestCardShowsTheAlertsLinks(t *testing.T) {
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	e := ledger.Entry{Tenant: "acme", Incident: "INC-7", Event: ledger.Detect, Service: "payments", At: at, Reason: "PaymentsErrors firing",
		Data: map[string]string{"source": "grafana", "severity": "critical",
			"dashboard_url": "https://grafana.example/d/payments", "panel_url": "https://grafana.example/d/payments?viewPanel=2",
			"silence_url": "javascript:alert(1)", "link_1_url": "https://runbooks.example/payments", "link_1_text": "Runbook"}}
	in := ledger.Incident{ID: "INC-7", Service: "payments", Stage: ledger.Detected, OpenedAt: at, Reason: e.Reason}
	text := incidentCard(cardInput{in: in, hist: []ledger.Entry{e}, now: at.Add(time.Minute)}).Text()
	want := "Dashboard: https://grafana.example/d/payments · Panel: https://grafana.example/d/payments?viewPanel=2 · Runbook: https://runbooks.example/payments"
	if !strings.Contains(text, want) {
		t.Errorf("card:\n%s\nwant the line %q", text, want)
	}
	if strings.Contains(text, "javascript:") {
		t.Errorf("card shows a non-http link:\n%s", text)
	}
}
