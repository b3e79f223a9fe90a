package alertmanager

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

func amTenants() []Tenant {
	return []Tenant{
		{ID: "acme", PolicyVersion: "policy-v7", AlertmanagerToken: "acme-secret-token", Services: []Service{{Name: "checkout"}, {Name: "payments"}}},
		{ID: "globex", PolicyVersion: "g-1", AlertmanagerToken: "globex-secret-token", Services: []Service{{Name: "checkout"}}},
		{ID: "initech", PolicyVersion: "i-1", Services: []Service{{Name: "api"}}}, // no Alertmanager
	}
}

type amAlert struct {
	status, name, service, job, fp string
	startsAt                       time.Time
}

// amGroupKey is the group of amPayload.
const amGroupKey = `{}:{alertname="HighLatency"}`

func amPayload(status string, alerts ...amAlert) string {
	return amGroup(amGroupKey, 0, status, alerts...)
}

// amGroup is a notification of group with truncated alerts left out by Alertmanager.
func amGroup(group string, truncated int, status string, alerts ...amAlert) string {
	var as []map[string]any
	for _, a := range alerts {
		labels := map[string]string{"alertname": a.name, "severity": "critical"}
		if a.service != "" {
			labels["service"] = a.service
		}
		if a.job != "" {
			labels["job"] = a.job
		}
		starts := a.startsAt
		if starts.IsZero() {
			starts = base
		}
		as = append(as, map[string]any{
			"status": a.status, "labels": labels,
			"annotations":  map[string]string{"summary": a.name + " on " + a.service + a.job, "description": "long text"},
			"startsAt":     starts.Format(time.RFC3339Nano),
			"endsAt":       "0001-01-01T00:00:00Z",
			"generatorURL": "http://prometheus:9090/graph?g0.expr=x",
			"fingerprint":  a.fp,
		})
	}
	b, _ := json.Marshal(map[string]any{
		"version": "4", "groupKey": group, "truncatedAlerts": truncated, "status": status,
		"receiver": "alertengine", "groupLabels": map[string]string{"alertname": "HighLatency"},
		"commonLabels": map[string]string{}, "commonAnnotations": map[string]string{},
		"externalURL": "http://alertmanager:9093", "alerts": as,
	})
	return string(b)
}

func post(t *testing.T, h http.Handler, auth, body string) (int, AlertmanagerResult, string) {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/alertmanager/webhook", strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	var res AlertmanagerResult
	_ = json.Unmarshal(rec.Body.Bytes(), &res)
	return rec.Code, res, rec.Body.String()
}

func outcomes(r AlertmanagerResult) []string {
	var out []string
	for _, a := range r.Results {
		out = append(out, a.Outcome)
	}
	return out
}

// TestAlertmanagerLifecycle posts deliveries in order, as one Alertmanager would.
func TestAlertmanagerLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), nil)
	handler := rcv(d).Handler()
	const acme = "Bearer acme-secret-token"
	lat := amAlert{status: "firing", name: "HighLatency", service: "checkout", fp: "aaaa000000000001"}
	errs := amAlert{status: "firing", name: "HighErrorRate", job: "checkout", fp: "bbbb000000000002"}
	resolved := func(a amAlert) amAlert { a.status = "resolved"; return a }
	steps := []struct {
		name         string
		auth, body   string
		wantCode     int
		wantOutcomes []string
		wantEntries  []ledger.Event // the whole acme ledger after the step
	}{
		{"no token", "", amPayload("firing", lat), 401, nil, nil},
		{"wrong token", "Bearer nope", amPayload("firing", lat), 401, nil, nil},
		{"basic auth", "Basic YWNtZTpzZWNyZXQ=", amPayload("firing", lat), 401, nil, nil},
		{"token prefix only", "Bearer acme-secret", amPayload("firing", lat), 401, nil, nil},
		{"malformed JSON", acme, `{"version":"4","alerts":[`, 400, nil, nil},
		{"wrong version", acme, strings.Replace(amPayload("firing", lat), `"version":"4"`, `"version":"3"`, 1), 400, nil, nil},
		{"firing opens", acme, amPayload("firing", lat), 200, []string{"opened"}, []ledger.Event{ledger.Detect}},
		{"same notification again", acme, amPayload("firing", lat), 200, []string{"duplicate"}, []ledger.Event{ledger.Detect}},
		{"a second alert (job label) joins: one update", acme, amPayload("firing", lat, errs), 200, []string{"duplicate", "updated"},
			[]ledger.Event{ledger.Detect, ledger.Update}},
		{"unknown service is accepted and reported", acme, amGroup("other", 0, "firing", amAlert{status: "firing", name: "Disk", service: "billing", fp: "cccc000000000003"}),
			200, []string{"unknown_service"}, []ledger.Event{ledger.Detect, ledger.Update}},
		{"first resolved, the other still fires", acme, amPayload("firing", resolved(lat), errs), 200, []string{"still_firing", "duplicate"},
			[]ledger.Event{ledger.Detect, ledger.Update}},
		{"last resolved recovers", acme, amPayload("resolved", resolved(errs)), 200, []string{"recovered"},
			[]ledger.Event{ledger.Detect, ledger.Update, ledger.Recover}},
		{"resolved delivered twice", acme, amPayload("resolved", resolved(errs)), 200, []string{"no_incident"},
			[]ledger.Event{ledger.Detect, ledger.Update, ledger.Recover}},
		{"fires again later: a new incident", acme, amPayload("firing", amAlert{status: "firing", name: "HighLatency", service: "checkout",
			fp: "aaaa000000000001", startsAt: base.Add(time.Hour)}), 200, []string{"opened"},
			[]ledger.Event{ledger.Detect, ledger.Update, ledger.Recover, ledger.Detect}},
	}
	for _, s := range steps {
		code, res, raw := post(t, handler, s.auth, s.body)
		if code != s.wantCode {
			t.Fatalf("%s: HTTP %d %s, want %d", s.name, code, raw, s.wantCode)
		}
		if s.wantOutcomes != nil && !slices.Equal(outcomes(res), s.wantOutcomes) {
			t.Fatalf("%s: outcomes %v, want %v (%s)", s.name, outcomes(res), s.wantOutcomes, raw)
		}
		var got []ledger.Event
		for _, e := range h.entries("acme") {
			got = append(got, e.Event)
		}
		if !slices.Equal(got, s.wantEntries) {
			t.Fatalf("%s: acme ledger %v, want %v", s.name, got, s.wantEntries)
		}
		if code == 401 && !strings.HasPrefix(raw, `{"error":"missing or wrong bearer token"}`) {
			t.Fatalf("%s: 401 body %s", s.name, raw)
		}
	}
	if n := len(h.entries("globex")); n != 0 {
		t.Fatalf("globex has %d entries from acme's Alertmanager", n)
	}
	first := h.entries("acme")[0]
	if first.Reason != "alertmanager: HighLatency firing: HighLatency on checkout" || first.Actor.Kind != ledger.ActorPolicy ||
		first.PolicyVersion != "policy-v7" || first.Data["source"] != "alertmanager" || first.Data["fingerprint"] != lat.fp {
		t.Fatalf("DETECTED from Alertmanager: %+v", first)
	}
	if _, res, _ := post(t, handler, acme, amGroup("other", 0, "firing", amAlert{status: "firing", name: "X", service: "billing", fp: "dd"})); !slices.Equal(res.UnknownServices, []string{"billing"}) {
		t.Fatalf("unknown services %v", res.UnknownServices)
	}
	kinds := []Kind{}
	for _, e := range h.events.all() {
		kinds = append(kinds, e.Kind)
	}
	if !slices.Equal(kinds, []Kind{Opened, Updated, Recovered, Opened}) {
		t.Fatalf("events %v", kinds)
	}
}

func TestAlertmanagerTenantsAreSeparate(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), nil)
	code, res, raw := post(t, rcv(d).Handler(), "Bearer globex-secret-token",
		amPayload("firing", amAlert{status: "firing", name: "Down", service: "checkout", fp: "01"}))
	if code != 200 || res.Tenant != "globex" || len(h.entries("globex")) != 1 || len(h.entries("acme")) != 0 {
		t.Fatalf("HTTP %d %s; globex %d entries, acme %d", code, raw, len(h.entries("globex")), len(h.entries("acme")))
	}
	if e := h.entries("globex")[0]; e.PolicyVersion != "g-1" {
		t.Fatalf("policy version %q", e.PolicyVersion)
	}
}

// TestAlertmanagerDoesNotCloseWhatMetricsOpened: an alert about a service whose metrics
// already opened an incident adds evidence; its resolution does not close the incident
// while the metrics decide.
func TestAlertmanagerDoesNotCloseWhatMetricsOpened(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), shortWindow)
	i := 0
	for ; i < 7; i++ {
		ms := 80.0
		if i >= 5 {
			ms = 2500
		}
		lat, st := constant(40, ms, 200)
		h.pushBucket("acme", "checkout", i, lat, st)
		h.step(d, i)
	}
	inc := h.events.of(Opened)
	if len(inc) != 1 {
		t.Fatalf("metrics opened %d incidents", len(inc))
	}
	a := amAlert{status: "firing", name: "HighLatency", service: "checkout", fp: "01"}
	if _, res, raw := post(t, rcv(d).Handler(), "Bearer acme-secret-token", amPayload("firing", a)); !slices.Equal(outcomes(res), []string{"updated"}) {
		t.Fatal(raw)
	}
	a.status = "resolved"
	if _, res, raw := post(t, rcv(d).Handler(), "Bearer acme-secret-token", amPayload("resolved", a)); !slices.Equal(outcomes(res), []string{"no_incident"}) {
		t.Fatal(raw)
	}
	if got := h.stage(inc[0].Incident); got != ledger.Detected {
		t.Fatalf("stage %s, want DETECTED while the metrics are still bad", got)
	}
}

func TestAlertmanagerResolvedAfterExecution(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), nil)
	handler := rcv(d).Handler()
	a := amAlert{status: "firing", name: "HighLatency", service: "checkout", fp: "01"}
	if code, _, raw := post(t, handler, "Bearer acme-secret-token", amPayload("firing", a)); code != 200 {
		t.Fatal(raw)
	}
	inc := h.entries("acme")[0].Incident
	l := h.stageMover()
	h.move(l, inc, ledger.Propose, ledger.Validate, ledger.Authorize)
	a.status = "resolved"
	_, res, _ := post(t, handler, "Bearer acme-secret-token", amPayload("resolved", a))
	if !slices.Equal(outcomes(res), []string{"pending"}) || h.stage(inc) != ledger.Authorized {
		t.Fatalf("resolved while AUTHORIZED: %v, stage %s", outcomes(res), h.stage(inc))
	}
	h.move(l, inc, ledger.Execute)
	a.startsAt = base.Add(time.Minute) // the alert fired and resolved again
	a.status = "firing"
	post(t, handler, "Bearer acme-secret-token", amPayload("firing", a))
	a.status = "resolved"
	_, res, _ = post(t, handler, "Bearer acme-secret-token", amPayload("resolved", a))
	if !slices.Equal(outcomes(res), []string{"resolved"}) || h.stage(inc) != ledger.Resolved {
		t.Fatalf("resolved after EXECUTED: %v, stage %s", outcomes(res), h.stage(inc))
	}
}

func TestAlertmanagerRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), nil)
	handler := rcv(d).Handler()
	big := `{"version":"4","status":"firing","groupKey":"` + strings.Repeat("x", detector.DefaultMaxAlerts*BytesPerAlert) + `","alerts":[]}`
	tests := []struct {
		name     string
		method   string
		auth     string
		body     io.Reader
		length   int64 // -1: unknown (chunked)
		wantCode int
		wantText string
	}{
		{"GET", http.MethodGet, "Bearer acme-secret-token", nil, 0, 405, "use POST"},
		{"too large, declared", http.MethodPost, "Bearer acme-secret-token", strings.NewReader(big), int64(len(big)), 413, "body over 20480000 bytes (at most 10000 alerts)"},
		{"too large, streamed", http.MethodPost, "Bearer acme-secret-token", io.MultiReader(strings.NewReader(big)), -1, 413, "body over"},
		{"too large without a token is still 401", http.MethodPost, "", strings.NewReader(big), int64(len(big)), 401, "bearer"},
		{"tenant without Alertmanager", http.MethodPost, "Bearer ", strings.NewReader(amPayload("firing")), -1, 401, "bearer"},
		{"not an object", http.MethodPost, "Bearer acme-secret-token", strings.NewReader(`[1,2]`), -1, 400, "malformed Alertmanager payload"},
		{"two objects", http.MethodPost, "Bearer acme-secret-token", strings.NewReader(amPayload("firing") + amPayload("firing")), -1, 400, "trailing data"},
		{"alert without status", http.MethodPost, "Bearer acme-secret-token",
			strings.NewReader(`{"version":"4","status":"firing","alerts":[{"labels":{"a":"b"},"startsAt":"2026-03-01T12:00:00Z"}]}`), -1, 400, "alerts[0].status"},
		{"alert without startsAt", http.MethodPost, "Bearer acme-secret-token",
			strings.NewReader(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"}}]}`), -1, 400, "startsAt"},
		{"bad time", http.MethodPost, "Bearer acme-secret-token",
			strings.NewReader(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"soon"}]}`), -1, 400, "malformed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest(tt.method, "/alertmanager/webhook", tt.body)
			req.ContentLength = tt.length
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			rec := httptest.NewRecorder()
			handler.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode || !strings.Contains(rec.Body.String(), tt.wantText) {
				t.Fatalf("HTTP %d %q, want %d containing %q", rec.Code, rec.Body.String(), tt.wantCode, tt.wantText)
			}
			if n := len(h.entries("acme")); n != 0 {
				t.Fatalf("%d entries after a refused request", n)
			}
		})
	}
}

func TestAlertmanagerRespectsTheHourlyLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tenants := amTenants()
	tenants[0].IncidentsPerHour = 1
	d := h.replica("r1", tenants, nil)
	handler := rcv(d).Handler()
	_, res, raw := post(t, handler, "Bearer acme-secret-token", amPayload("firing",
		amAlert{status: "firing", name: "A", service: "checkout", fp: "01"},
		amAlert{status: "firing", name: "B", service: "payments", fp: "02"}))
	if !slices.Equal(outcomes(res), []string{"opened", "suppressed"}) || len(h.entriesOf("acme", ledger.Detect)) != 1 {
		t.Fatalf("outcomes %v (%s)", outcomes(res), raw)
	}
	if d.Stats().Suppressed != 1 || len(h.events.of(Suppressed)) != 1 {
		t.Fatalf("suppressed counter %d, events %d", d.Stats().Suppressed, len(h.events.of(Suppressed)))
	}
}

// TestAlertmanagerStoreDown: when the ledger cannot record, Alertmanager gets a 500 so it
// retries, and the retry is not mistaken for a duplicate.
func TestAlertmanagerStoreDown(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	broken, err := ledger.New(ledger.Options{Store: failingStore{ledger.NewMemStore()}})
	if err != nil {
		t.Fatal(err)
	}
	d := h.replica("r1", amTenants(), func(o *testOptions) { o.Ledger = broken })
	body := amPayload("firing", amAlert{status: "firing", name: "A", service: "checkout", fp: "01"})
	if code, res, raw := post(t, rcv(d).Handler(), "Bearer acme-secret-token", body); code != 500 || !slices.Equal(outcomes(res), []string{"error"}) {
		t.Fatalf("HTTP %d %s", code, raw)
	}
	if strings.Contains(fmt.Sprint(h.events.all()), "opened") {
		t.Fatal("an event for an unrecorded incident")
	}
	ok := h.replica("r2", amTenants(), nil)
	if code, res, raw := post(t, rcv(ok).Handler(), "Bearer acme-secret-token", body); code != 200 || !slices.Equal(outcomes(res), []string{"opened"}) {
		t.Fatalf("retry: HTTP %d %s", code, raw)
	}
}

type failingStore struct{ *ledger.MemStore }

var errStoreDown = errors.New("store down")

func (failingStore) Append(_ context.Context, _ string, _ ledger.Tail, _ []ledger.Entry) (int, error) {
	return 0, errStoreDown
}

func FuzzParseAlertmanager(f *testing.F) {
	f.Add([]byte(amPayload("firing", amAlert{status: "firing", name: "HighLatency", service: "checkout", fp: "aaaa"})))
	f.Add([]byte(amPayload("resolved", amAlert{status: "resolved", name: "X", job: "api"})))
	f.Add([]byte(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"2026-03-01T12:00:00Z"}]}`))
	f.Add([]byte(`{"version":"4","alerts":null}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`[`))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := ParseAlertmanager(body)
		if err != nil {
			boundedErr(t, err, ErrBadPayload)
			return
		}
		if p.Version != "4" || (p.Status != "firing" && p.Status != "resolved") {
			t.Fatalf("accepted version %q status %q", p.Version, p.Status)
		}
		for i, a := range p.Alerts {
			if a.Fingerprint == "" || len(a.Fingerprint) > maxFingerprintBytes || !printable(a.Fingerprint) || len(a.Labels) == 0 || a.StartsAt.IsZero() || (a.Status != "firing" && a.Status != "resolved") {
				t.Fatalf("accepted alert %d: %+v", i, a)
			}
			if r := alertReason("alertmanager: ", a.Status, p, a); utf8.RuneCountInString(r) > ledger.MaxTextRunes {
				t.Fatalf("a reason of %d runes", utf8.RuneCountInString(r))
			}
			for k, v := range alertData(p, a) {
				if v == "" || strings.ContainsAny(v, "\n\x00") || utf8.RuneCountInString(v) > ledger.MaxTextRunes {
					t.Fatalf("data %s=%q", k, v)
				}
			}
		}
		// What was accepted survives a round trip.
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseAlertmanager(again); err != nil {
			t.Fatalf("re-encoded payload refused: %v\n%s", err, bytes.TrimSpace(again))
		}
	})
}

// TestResolvedDuringExecutionIsSettledAfterIt: an alert that resolves while the recovery
// runs (AUTHORIZED) closes the incident once the execution ends, so the service is not
// blocked by an incident nobody will close; a fingerprint named "incident" cannot
// overwrite the incident the service's alerts hold.
func TestResolvedDuringExecutionIsSettledAfterIt(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", amTenants(), nil)
	handler := rcv(d).Handler()
	a := amAlert{status: "firing", name: "HighLatency", service: "checkout", fp: "incident"}
	if code, _, raw := post(t, handler, "Bearer acme-secret-token", amPayload("firing", a)); code != 200 {
		t.Fatal(raw)
	}
	inc := h.entries("acme")[0].Incident
	l := h.stageMover()
	h.move(l, inc, ledger.Propose, ledger.Validate, ledger.Authorize)
	a.status = "resolved"
	if _, res, _ := post(t, handler, "Bearer acme-secret-token", amPayload("resolved", a)); !slices.Equal(outcomes(res), []string{"pending"}) {
		t.Fatalf("resolved while AUTHORIZED: %v", outcomes(res))
	}
	ctx := context.Background()
	if err := d.Settle(ctx, "acme", inc); err != nil || h.stage(inc) != ledger.Authorized {
		t.Fatalf("settled while still AUTHORIZED: %v, %s", err, h.stage(inc))
	}
	h.move(l, inc, ledger.Execute)
	if err := d.Settle(ctx, "acme", inc); err != nil {
		t.Fatal(err)
	}
	if h.stage(inc) != ledger.Resolved {
		t.Fatalf("after the execution: %s, want RESOLVED", h.stage(inc))
	}
	// The service is free again: a new alert opens a new incident.
	a.status, a.startsAt = "firing", base.Add(time.Hour)
	post(t, handler, "Bearer acme-secret-token", amPayload("firing", a))
	if n := len(h.entriesOf("acme", ledger.Detect)); n != 2 {
		t.Fatalf("%d incidents, want a second one", n)
	}
}
