package alertmanager

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/fixtures"
	"github.com/alertengine/alertengine/ledger"
)

// kubeAlerts is a notification of n kube-prometheus alerts (fixtures.AlertStorm) for
// service, in group, every one with status.
func kubeAlerts(group, service, status string, n int, startsAt time.Time) []byte {
	return fixtures.AlertStorm{Group: group, Service: service, Status: status, N: n, StartsAt: startsAt,
		Alertnames: []string{"KubePodCrashLooping", "KubeContainerWaiting", "KubePodNotReady", "CPUThrottlingHigh"}}.Body()
}

func postBytes(t testing.TB, h http.Handler, body []byte) (int, AlertmanagerResult) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/alertmanager/webhook", strings.NewReader(string(body)))
	req.Header.Set("Authorization", "Bearer acme-secret-token")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var res AlertmanagerResult
	_ = json.Unmarshal(rec.Body.Bytes(), &res)
	return rec.Code, res
}

func countOutcomes(r AlertmanagerResult) map[string]int {
	m := map[string]int{}
	for _, a := range r.Results {
		m[a.Outcome]++
	}
	return m
}

// TestAlertmanagerTenThousandAlerts: a storm of 10,000 kube-prometheus alerts (over 8 MB,
// past the old 1 MiB limit) is accepted with the default limits, opens one incident with
// one DETECTED entry and one Opened event; its resolved twin closes it with one entry.
func TestAlertmanagerTenThousandAlerts(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), nil)
	handler := rcv(d).Handler()
	body := kubeAlerts("storm", "checkout", "firing", 10_000, base)
	if len(body) < 8<<20 {
		t.Fatalf("the storm is only %d bytes", len(body))
	}
	code, res := postBytes(t, handler, body)
	if code != http.StatusOK || countOutcomes(res)["opened"] != 10_000 {
		t.Fatalf("HTTP %d, outcomes %v", code, countOutcomes(res))
	}
	detects := h.entriesOf("acme", ledger.Detect)
	if len(h.entries("acme")) != 1 || len(detects) != 1 || len(h.events.of(Opened)) != 1 {
		t.Fatalf("%d entries, %d DETECTED, %d opened events; want one of each", len(h.entries("acme")), len(detects), len(h.events.of(Opened)))
	}
	if e := detects[0]; e.Data["severity"] != "critical" || e.Data["alerts"] != "10000" || !strings.Contains(e.Reason, "and 9,999 more alerts") {
		t.Fatalf("DETECTED %q %v", e.Reason, e.Data)
	}
	// The same notification again (Alertmanager's repeat): nothing new.
	if code, res := postBytes(t, handler, body); code != http.StatusOK || countOutcomes(res)["duplicate"] != 10_000 || len(h.entries("acme")) != 1 {
		t.Fatalf("repeat: HTTP %d, outcomes %v, %d entries", code, countOutcomes(res), len(h.entries("acme")))
	}
	code, res = postBytes(t, handler, kubeAlerts("storm", "checkout", "resolved", 10_000, base))
	if code != http.StatusOK || countOutcomes(res)["recovered"] != 10_000 {
		t.Fatalf("resolved: HTTP %d, outcomes %v", code, countOutcomes(res))
	}
	if got := h.stage(detects[0].Incident); got != ledger.Recovered || len(h.entries("acme")) != 2 {
		t.Fatalf("after the resolved twin: %s with %d entries", got, len(h.entries("acme")))
	}
}

// TestAlertmanagerJoinedAlertsSummarised: alerts joining an open incident are one update
// entry and one Updated event per notification, whose note names what joined.
func TestAlertmanagerJoinedAlertsSummarised(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), nil)
	handler := rcv(d).Handler()
	first := amAlert{status: "firing", name: "HighLatency", service: "checkout", fp: "f0"}
	post(t, handler, "Bearer acme-secret-token", amPayload("firing", first))
	alerts := []amAlert{first}
	for i := range 40 {
		name := "PodCrashLooping"
		if i%4 == 0 {
			name = "DiskFull"
		}
		alerts = append(alerts, amAlert{status: "firing", name: name, service: "checkout", fp: fmt.Sprintf("j%02d", i)})
	}
	code, res, raw := post(t, handler, "Bearer acme-secret-token", amPayload("firing", alerts...))
	if code != http.StatusOK || countOutcomes(res)["updated"] != 40 || countOutcomes(res)["duplicate"] != 1 {
		t.Fatalf("HTTP %d %.300s", code, raw)
	}
	updates := h.entriesOf("acme", ledger.Update)
	ups := h.events.of(Updated)
	if len(updates) != 1 || len(ups) != 1 {
		t.Fatalf("%d update entries, %d updated events; want one of each", len(updates), len(ups))
	}
	want := "40 new alerts: PodCrashLooping ×30, DiskFull ×10 joined."
	if !strings.Contains(ups[0].Note, want) || !strings.Contains(updates[0].Reason, "40 new alerts") {
		t.Fatalf("note %q, reason %q; want %q", ups[0].Note, updates[0].Reason, want)
	}
}

// TestAlertmanagerAbsentAlertsResolved: a notification lists the whole group, so an
// alert it no longer lists is resolved, and the incident closes when none fires.
func TestAlertmanagerAbsentAlertsResolved(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), nil)
	handler := rcv(d).Handler()
	a := amAlert{status: "firing", name: "HighLatency", service: "checkout", fp: "a1"}
	b := amAlert{status: "firing", name: "HighLatency", service: "payments", fp: "b1"}
	post(t, handler, "Bearer acme-secret-token", amPayload("firing", a, b))
	if n := len(h.entriesOf("acme", ledger.Detect)); n != 2 {
		t.Fatalf("%d incidents, want checkout's and payments'", n)
	}
	// The group now lists only checkout's alert: payments' resolved unseen (a refused or
	// lost notification, send_resolved off).
	post(t, handler, "Bearer acme-secret-token", amPayload("firing", a))
	if n := len(h.entriesOf("acme", ledger.Recover)); n != 1 {
		t.Fatalf("%d recovered, want payments'", n)
	}
	rec := h.events.of(Recovered)
	if len(rec) != 1 || rec[0].Service != "payments" || rec[0].Note != "" {
		t.Fatalf("recovered events %+v", rec)
	}
}

// TestAlertmanagerTruncatedGroupExpires: while Alertmanager truncates a group, alerts it
// does not list are unknown, not resolved; but one that no notification re-sends within
// the expiry is forgotten, and the incident closes, saying why.
func TestAlertmanagerTruncatedGroupExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), func(o *testOptions) { o.Clock = h.clock.Now })
	handler := rcv(d).Handler()
	a := amAlert{status: "firing", name: "HighLatency", service: "checkout", fp: "a1"}
	b := amAlert{status: "firing", name: "HighErrors", service: "checkout", fp: "b1"}
	post(t, handler, "Bearer acme-secret-token", amGroup("g", 5, "firing", a, b))
	inc := h.entriesOf("acme", ledger.Detect)[0].Incident
	// Truncated, listing only a (resolved): b may still fire.
	h.clock.Set(base.Add(time.Hour))
	a.status = "resolved"
	_, res, _ := post(t, handler, "Bearer acme-secret-token", amGroup("g", 100, "firing", a))
	if !slices.Equal(outcomes(res), []string{"still_firing"}) || h.stage(inc) != ledger.Detected {
		t.Fatalf("truncated: %v, stage %s", outcomes(res), h.stage(inc))
	}
	// Within the expiry nothing changes.
	ctx := context.Background()
	if err := rcv(d).ExpireAlerts(ctx, base.Add(12*time.Hour-time.Second)); err != nil || h.stage(inc) != ledger.Detected {
		t.Fatalf("before the expiry: %v, %s", err, h.stage(inc))
	}
	if err := rcv(d).ExpireAlerts(ctx, base.Add(12*time.Hour+time.Second)); err != nil {
		t.Fatal(err)
	}
	if h.stage(inc) != ledger.Recovered || rcv(d).Stats().Expired != 1 {
		t.Fatalf("after the expiry: %s, %d expired", h.stage(inc), rcv(d).Stats().Expired)
	}
	rec := h.events.of(Recovered)
	if len(rec) != 1 || !strings.Contains(rec[0].Note, "within 12h0m0s") {
		t.Fatalf("recovered events %+v", rec)
	}
	// b fires again (a repeat of the truncated group): a new incident.
	h.clock.Set(base.Add(13 * time.Hour))
	post(t, handler, "Bearer acme-secret-token", amGroup("g", 100, "firing", b))
	if n := len(h.events.of(Opened)); n != 2 {
		t.Fatalf("%d opened, want a new incident", n)
	}
}

// TestAlertmanagerNewAlertAfterExpiredIncident: a new alert for a service whose incident's
// approval expired closes that incident and opens a new one (its card reaches chat),
// instead of updating a thread nobody acts on.
func TestAlertmanagerNewAlertAfterExpiredIncident(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), nil)
	handler := rcv(d).Handler()
	a := amAlert{status: "firing", name: "HighLatency", service: "checkout", fp: "a1"}
	post(t, handler, "Bearer acme-secret-token", amPayload("firing", a))
	old := h.entriesOf("acme", ledger.Detect)[0].Incident
	l := h.stageMover()
	h.move(l, old, ledger.Propose, ledger.Validate, ledger.Expire)
	b := amAlert{status: "firing", name: "PaymentsDown", service: "checkout", fp: "b1"}
	_, res, raw := post(t, handler, "Bearer acme-secret-token", amPayload("firing", a, b))
	if !slices.Equal(outcomes(res), []string{"duplicate", "opened"}) {
		t.Fatalf("outcomes %v (%s)", outcomes(res), raw)
	}
	if h.stage(old) != ledger.Recovered {
		t.Fatalf("the expired incident is %s", h.stage(old))
	}
	opened := h.events.of(Opened)
	if len(opened) != 2 || opened[1].Incident == old {
		t.Fatalf("opened events %+v", opened)
	}
	rec := h.events.of(Recovered)
	if len(rec) != 1 || rec[0].Incident != old || !strings.Contains(rec[0].Note, "approval had expired") {
		t.Fatalf("recovered events %+v", rec)
	}
	// The new incident belongs to the alerts: their resolution closes it.
	a.status, b.status = "resolved", "resolved"
	post(t, handler, "Bearer acme-secret-token", amPayload("resolved", a, b))
	if h.stage(opened[1].Incident) != ledger.Recovered {
		t.Fatalf("new incident %s after its alerts resolved", h.stage(opened[1].Incident))
	}
}

// TestAlertmanagerOverLimit: a body over the limit is refused with 413, logged at WARN
// with its size and counted by reason; alerts past max alerts are treated as truncated.
func TestAlertmanagerOverLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	rec := &records{}
	tenants := amTenants()
	tenants[0].AlertmanagerMaxAlerts = 100
	d := h.replica("r1", tenants, func(o *testOptions) { o.Logger = slog.New(rec) })
	handler := rcv(d).Handler()
	if got := rcv(d).MaxBody(); got != detector.DefaultMaxAlerts*BytesPerAlert {
		t.Fatalf("route limit %d", got) // globex keeps the default
	}
	// acme's limit: 100 alerts → 1 MiB. Streamed without a length.
	big := kubeAlerts("big", "checkout", "firing", 2000, base)
	req := httptest.NewRequest(http.MethodPost, "/alertmanager/webhook", io.MultiReader(strings.NewReader(string(big))))
	req.ContentLength = -1
	req.Header.Set("Authorization", "Bearer acme-secret-token")
	w := httptest.NewRecorder()
	handler.ServeHTTP(w, req)
	if w.Code != http.StatusRequestEntityTooLarge || !strings.Contains(w.Body.String(), "max_alerts") {
		t.Fatalf("HTTP %d %s", w.Code, w.Body.String())
	}
	if got := rcv(d).Stats().RefusedBy; got[RefusedTooLarge] != 1 || rcv(d).Stats().Refused != 1 {
		t.Fatalf("refused %v", got)
	}
	var line string
	for _, l := range rec.all() {
		if strings.Contains(l, "alertmanager webhook refused") {
			line = l
		}
	}
	for _, want := range []string{"WARN", "reason=too_large", "tenant=acme", "bytes=-1", "limit_bytes=1048576"} {
		if !strings.Contains(line, want) {
			t.Errorf("log %q lacks %q", line, want)
		}
	}
	if len(h.entries("acme")) != 0 {
		t.Fatal("a refused body recorded something")
	}
	// 150 alerts in 130 KB: within the bytes, over max alerts: the first 100 are acted
	// on, the rest are truncated (unknown, not resolved).
	code, res := postBytes(t, handler, kubeAlerts("big", "checkout", "firing", 150, base))
	if code != http.StatusOK || len(res.Results) != 100 || countOutcomes(res)["opened"] != 100 || rcv(d).Stats().OverMax != 1 {
		t.Fatalf("HTTP %d, %d results %v", code, len(res.Results), countOutcomes(res))
	}
	// A wrong token and a malformed body are counted by reason too.
	post(t, handler, "Bearer nope", amPayload("firing"))
	post(t, handler, "Bearer acme-secret-token", `{"version":"3","groupKey":"g3","status":"firing","alerts":[]}`)
	got := rcv(d).Stats().RefusedBy
	if got[RefusedUnauthorized] != 1 || got[RefusedMalformed] != 1 || rcv(d).Stats().Refused != 3 {
		t.Fatalf("refused %v", got)
	}
	if !strings.Contains(strings.Join(rec.all(), "\n"), "reason=malformed tenant=acme group=g3") {
		t.Errorf("the malformed refusal does not name its group: %q", rec.all())
	}
}
