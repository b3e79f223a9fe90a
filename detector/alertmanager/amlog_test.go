package alertmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// records is a slog.Handler that keeps every record, with its attributes rendered.
type records struct {
	mu    sync.Mutex
	lines []string
	attrs []slog.Attr
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", rec.Level, rec.Message)
	for _, a := range r.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
		return true
	})
	r.mu.Lock()
	r.lines = append(r.lines, b.String())
	r.mu.Unlock()
	return nil
}
func (r *records) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordsWith{parent: r, attrs: as}
}
func (r *records) WithGroup(string) slog.Handler { return r }

func (r *records) all() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.lines...)
}

// recordsWith shares its parent's lines.
type recordsWith struct {
	parent *records
	attrs  []slog.Attr
}

func (w *recordsWith) Enabled(context.Context, slog.Level) bool { return true }
func (w *recordsWith) Handle(ctx context.Context, rec slog.Record) error {
	rec = rec.Clone()
	rec.AddAttrs(w.attrs...)
	return w.parent.Handle(ctx, rec)
}
func (w *recordsWith) WithAttrs(as []slog.Attr) slog.Handler {
	return &recordsWith{parent: w.parent, attrs: append(append([]slog.Attr(nil), w.attrs...), as...)}
}
func (w *recordsWith) WithGroup(string) slog.Handler { return w }

// TestAlertmanagerLogSummary: one authenticated delivery of 8,000 alerts for services the
// tenant does not watch (and one it does) is logged in a handful of lines — one summary
// counting every outcome and naming a few examples — however many alerts it carries.
func TestAlertmanagerLogSummary(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rec := &records{}
	d := h.replica("r1", amTenants(), func(o *testOptions) {
		o.Logger = slog.New(rec)
		o.MaxBodyBytes = 32 << 20
	})
	alerts := []amAlert{{status: "firing", name: "HighLatency", service: "checkout", fp: "c0"}}
	for i := range 8000 {
		alerts = append(alerts, amAlert{status: "firing", name: "Noise", service: fmt.Sprintf("svc-%d", i%500), fp: fmt.Sprintf("%04x", i)})
	}
	code, res, body := post(t, rcv(d).Handler(), "Bearer acme-secret-token", amPayload("firing", alerts...))
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %.300s", code, body)
	}
	if n := len(res.Results); n != 8001 || res.Results[0].Outcome != "opened" || len(res.UnknownServices) != 500 {
		t.Fatalf("%d results (first %+v), %d unknown services", n, res.Results[0], len(res.UnknownServices))
	}
	if got := rcv(d).Stats().Unknown; got != 8000 {
		t.Errorf("AlertmanagerUnknown = %d, want 8000", got)
	}
	lines := rec.all()
	if len(lines) > 5 {
		t.Fatalf("%d log records for one delivery, want at most 5; first: %q", len(lines), lines[:5])
	}
	var summary string
	for _, l := range lines {
		if strings.Contains(l, "alertmanager delivery: alerts ignored") {
			summary = l
		}
	}
	for _, want := range []string{"WARN", "alerts=8001", "outcomes=opened=1 unknown_service=8000", "ignored=8000", "unknown_services=500",
		`unknown_service: service "svc-0" alertname "Noise"`, `service "svc-2"`} {
		if !strings.Contains(summary, want) {
			t.Errorf("summary %q lacks %q", summary, want)
		}
	}
	if strings.Contains(summary, `"svc-3"`) {
		t.Errorf("summary names more than %d examples: %q", maxLoggedExamples, summary)
	}
}

// TestAlertmanagerHostileText: an alert's outside text — a 200 KB service label, summary
// and fingerprint, a 1 MB version — is bounded in the response, the log, the ledger and
// Redis.
func TestAlertmanagerHostileText(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rec := &records{}
	d := h.replica("r1", amTenants(), func(o *testOptions) { o.Logger = slog.New(rec); o.MaxBodyBytes = 8 << 20 })
	huge := strings.Repeat("x", 200_000)
	payload := func(version string, alerts ...map[string]any) string {
		b, _ := json.Marshal(map[string]any{"version": version, "groupKey": huge, "status": "firing", "receiver": huge, "alerts": alerts})
		return string(b)
	}
	alert := func(service string) map[string]any {
		return map[string]any{"status": "firing", "startsAt": base.Format(time.RFC3339), "fingerprint": huge + service,
			"generatorURL": huge, "labels": map[string]string{"service": service, "alertname": huge, "severity": huge},
			"annotations": map[string]string{"summary": huge}}
	}
	handler := rcv(d).Handler()
	code, _, body := post(t, handler, "Bearer acme-secret-token", payload(strings.Repeat("9", 1<<20)))
	if code != http.StatusBadRequest || len(body) > 1000 {
		t.Fatalf("a 1 MB version: HTTP %d with a %d-byte answer", code, len(body))
	}
	code, res, body := post(t, handler, "Bearer acme-secret-token", payload("4", alert(huge), alert("checkout"), alert("payments")))
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %.300s", code, body)
	}
	for _, r := range res.Results {
		if len(r.Service) > 4*ledger.MaxTextRunes || len(r.Fingerprint) > 4*ledger.MaxTextRunes {
			t.Errorf("a result of %d/%d bytes", len(r.Service), len(r.Fingerprint))
		}
	}
	if res.Results[1].Fingerprint == res.Results[2].Fingerprint {
		t.Errorf("two long fingerprints were made the same: %s", res.Results[1].Fingerprint)
	}
	for _, l := range rec.all() {
		if len(l) > 4<<10 {
			t.Errorf("a log record of %d bytes: %.200s", len(l), l)
		}
	}
	entries := h.entries("acme")
	if len(entries) != 2 {
		t.Fatalf("%d entries, want the two watched services' DETECTED", len(entries))
	}
	for _, e := range entries {
		b, _ := json.Marshal(e)
		if len(b) > 8<<10 {
			t.Errorf("a %d-byte ledger entry: %.300s", len(b), b)
		}
	}
	for _, line := range strings.Split(h.redisDump(), "\n") {
		if len(line) > 8<<10 {
			t.Fatalf("a Redis value of %d bytes: %.200s…", len(line), line)
		}
	}
}

// TestAlertmanagerSeverityRecorded: the DETECTED entry of an Alertmanager alert carries
// the alert's severity label, which the card shows (severity=critical is carded critical).
func TestAlertmanagerSeverityRecorded(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), nil)
	code, _, body := post(t, rcv(d).Handler(), "Bearer acme-secret-token",
		amPayload("firing", amAlert{status: "firing", name: "PaymentsDown", service: "payments", fp: "p1"}))
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, body)
	}
	detects := h.entriesOf("acme", ledger.Detect)
	if len(detects) != 1 || detects[0].Data["severity"] != "critical" || detects[0].Data["source"] != "alertmanager" {
		t.Fatalf("DETECTED %+v, want data severity=critical source=alertmanager", detects)
	}
}
