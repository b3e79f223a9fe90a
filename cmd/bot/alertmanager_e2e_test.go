package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/detector/alertmanager"
	"github.com/alertengine/alertengine/fixtures"
	"github.com/alertengine/alertengine/ledger"
)

// stormBody is an Alertmanager notification of group "storm" for checkout: n alerts of
// kube-prometheus shape named alertname, numbered from fp0, every one with status.
func stormBody(status, alertname string, n, fp0 int) []byte {
	return fixtures.AlertStorm{Group: `{}/{}:{namespace="production"}`, Service: "checkout", Status: status,
		Alertnames: []string{alertname}, N: n, First: fp0, StartsAt: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)}.Body()
}

func postAlertmanager(t *testing.T, base string, body io.Reader) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/alertmanager/webhook", body)
	req.Header.Set("Authorization", "Bearer "+amToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (h *harness) entriesOf(t *testing.T, ev ledger.Event) []ledger.Entry {
	t.Helper()
	es, err := ledger.NewRedisStore(h.redis.Client(t), h.prefix).Range(context.Background(), "acme", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []ledger.Entry
	for _, e := range es {
		if e.Event == ev {
			out = append(out, e)
		}
	}
	return out
}

// cardHeadline is an incident card's first line, open ("🚨 checkout degraded — INC-1") or
// retitled once closed ("✅ checkout healthy again — INC-1 · RECOVERED").
var cardHeadline = regexp.MustCompile(`^(🚨|✅|⏹) [^\n]* — INC-[0-9A-Z]+`)

func (h *harness) cards() int {
	n := 0
	for _, m := range h.tg.Sent(groupID) {
		if cardHeadline.MatchString(m.Text + m.Caption) {
			n++
		}
	}
	return n
}

// TestAlertmanagerStormEndToEnd: on the real wiring, a 10,000-alert notification (8.5 MB,
// past the server's general 1 MiB limit) opens one incident with one card; alerts joining
// it are one message in its thread; its resolved twin closes it; a new alert after that
// reaches chat with a new card; a body over the route's limit is refused and counted.
func TestAlertmanagerStormEndToEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.start(false)

	storm := stormBody("firing", "KubePodCrashLooping", 10_000, 0)
	if code, body := postAlertmanager(t, b.base, strings.NewReader(string(storm))); code != http.StatusOK {
		t.Fatalf("storm: HTTP %d %.300s", code, body)
	}
	card := h.card(t)
	if d := h.entriesOf(t, ledger.Detect); len(d) != 1 {
		t.Fatalf("%d incidents opened by one notification", len(d))
	}

	// The next notification lists 9,995 alerts of the storm (5 resolved, so absent) and 5
	// new ones: one message in the thread.
	var p map[string]any
	_ = json.Unmarshal(storm, &p)
	p["alerts"] = p["alerts"].([]any)[:9_995]
	var extra map[string]any
	_ = json.Unmarshal(stormBody("firing", "KubeContainerWaiting", 5, 20_000), &extra)
	p["alerts"] = append(p["alerts"].([]any), extra["alerts"].([]any)...)
	grown, _ := json.Marshal(p)
	if code, body := postAlertmanager(t, b.base, strings.NewReader(string(grown))); code != http.StatusOK {
		t.Fatalf("grown: HTTP %d %.300s", code, body)
	}
	joined, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, hasText("5 new alerts: KubeContainerWaiting ×5 on 5 instances"))
	if err != nil {
		t.Fatalf("no joined message: %v", err)
	}
	if joined.ReplyToMessage == nil || joined.ReplyToMessage.MessageID != card.MessageID {
		t.Fatalf("the joined message is not in the incident's thread: %+v", joined.ReplyToMessage)
	}
	if n := len(h.entriesOf(t, ledger.Update)); n != 1 {
		t.Fatalf("%d update entries for one notification", n)
	}

	// The resolved twin (every alert resolved) closes the incident.
	resolved := stormBody("resolved", "KubePodCrashLooping", 10_000, 0)
	if code, body := postAlertmanager(t, b.base, strings.NewReader(string(resolved))); code != http.StatusOK {
		t.Fatalf("resolved: HTTP %d %.300s", code, body)
	}
	if _, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, hasText("Recovered")); err != nil {
		t.Fatalf("no recovery message: %v", err)
	}
	inc := incidentCode(t, card)
	if st := h.stage(t, inc); st != ledger.Recovered {
		t.Fatalf("after the resolved twin: %s", st)
	}

	// A new alert after the closed incident reaches chat: a second card.
	if code, body := postAlertmanager(t, b.base, strings.NewReader(string(stormBody("firing", "KubePodNotReady", 1, 30_000)))); code != http.StatusOK {
		t.Fatalf("new alert: HTTP %d %.300s", code, body)
	}
	second, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, func(m telegramtest.Message) bool {
		return strings.Contains(m.Text+m.Caption, "🚨") && !strings.Contains(m.Text+m.Caption, inc)
	})
	if err != nil {
		t.Fatalf("no card for the new alert: %v", err)
	}
	if h.cards() != 2 || incidentCode(t, second) == inc {
		t.Fatalf("%d cards; the second names %s", h.cards(), incidentCode(t, second))
	}

	// A body over the route's limit (20 MiB for 10,000 alerts), refused on its declared
	// length before it is read: 413, logged and counted by reason (the server's general
	// 1 MiB limit used to answer before the route could), nothing recorded.
	huge := append([]byte(`{"version":"4","status":"firing","groupKey":"huge","alerts":[`), make([]byte, 21<<20)...)
	if code, body := postAlertmanager(t, b.base, bytes.NewReader(huge)); code != http.StatusRequestEntityTooLarge || !strings.Contains(body, "max_alerts") {
		t.Fatalf("oversize: HTTP %d %.300s", code, body)
	}
	_, metrics := get(t, b.base+"/metrics")
	if !strings.Contains(metrics, `alertengine_detector_alertmanager_refused_total{reason="too_large"} 1`) {
		t.Errorf("/metrics does not count the refusal:\n%s", grepLines(metrics, "alertmanager_refused"))
	}
	if n := len(h.entriesOf(t, ledger.Detect)); n != 2 {
		t.Fatalf("%d incidents after the refusal, want 2", n)
	}
}

// TestAlertmanagerNewAlertAfterExpiredReachesChat: an incident whose approval expired is
// closed by a new alert for its service ("Closed" in its thread), and the new alert gets
// its own card.
func TestAlertmanagerNewAlertAfterExpiredReachesChat(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.start(false)
	if code, body := postAlertmanager(t, b.base, strings.NewReader(string(stormBody("firing", "KubePodCrashLooping", 3, 0)))); code != http.StatusOK {
		t.Fatalf("HTTP %d %.300s", code, body)
	}
	card := h.card(t)
	inc := incidentCode(t, card)
	// The approval window passes with nobody deciding (the ledger's own EXPIRED entry).
	l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(h.redis.Client(t), h.prefix)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Record(context.Background(), ledger.Entry{Tenant: "acme", Incident: inc, Event: ledger.Expire,
		Actor: ledger.Actor{Kind: ledger.ActorSystem, ID: "test"}, Reason: "approval TTL passed"}); err != nil {
		t.Fatal(err)
	}
	// The group grows by one new alert.
	var p map[string]any
	_ = json.Unmarshal(stormBody("firing", "KubePodCrashLooping", 3, 0), &p)
	var extra map[string]any
	_ = json.Unmarshal(stormBody("firing", "PaymentsDown", 1, 50), &extra)
	p["alerts"] = append(p["alerts"].([]any), extra["alerts"].([]any)...)
	grown, _ := json.Marshal(p)
	if code, body := postAlertmanager(t, b.base, strings.NewReader(string(grown))); code != http.StatusOK {
		t.Fatalf("HTTP %d %.300s", code, body)
	}
	if _, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, func(m telegramtest.Message) bool {
		return strings.Contains(m.Text+m.Caption, "🚨") && !strings.Contains(m.Text+m.Caption, inc)
	}); err != nil {
		t.Fatalf("no card for the new alert: %v", err)
	}
	closed, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, hasText("Closed: its approval had expired"))
	if err != nil || closed.ReplyToMessage == nil || closed.ReplyToMessage.MessageID != card.MessageID {
		t.Fatalf("the expired incident's thread was not told: %v", err)
	}
	if st := h.stage(t, inc); st != ledger.Recovered {
		t.Fatalf("expired incident now %s", st)
	}
}

// TestTruncatedGroupCannotKeepAnIncidentOpen: a group Alertmanager truncates
// (truncatedAlerts > 0) keeps the alerts it does not list as unknown; once none is re-sent
// within alertmanager.expire_after (12 h), the expiry round closes the incident and its
// thread says why, instead of the incident staying open for ever.
func TestTruncatedGroupCannotKeepAnIncidentOpen(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.start(false)
	var p map[string]any
	_ = json.Unmarshal(stormBody("firing", "KubePodCrashLooping", 2, 0), &p)
	p["truncatedAlerts"] = 40
	body, _ := json.Marshal(p)
	if code, out := postAlertmanager(t, b.base, bytes.NewReader(body)); code != http.StatusOK {
		t.Fatalf("HTTP %d %.300s", code, out)
	}
	card := h.card(t)
	inc := incidentCode(t, card)
	// A truncated notification listing one of them resolved: the other is unknown, kept.
	_ = json.Unmarshal(stormBody("resolved", "KubePodCrashLooping", 1, 0), &p)
	p["truncatedAlerts"] = 40
	body, _ = json.Marshal(p)
	if code, out := postAlertmanager(t, b.base, bytes.NewReader(body)); code != http.StatusOK || !strings.Contains(out, "still_firing") {
		t.Fatalf("HTTP %d %.300s", code, out)
	}
	ctx := context.Background()
	if err := b.sys.Detector().Intake(alertmanager.Source).(*alertmanager.Receiver).ExpireAlerts(ctx, time.Now().Add(11*time.Hour)); err != nil || h.stage(t, inc) != ledger.Detected && h.stage(t, inc) != ledger.Validated {
		t.Fatalf("within the expiry: %v, %s", err, h.stage(t, inc))
	}
	if err := b.sys.Detector().Intake(alertmanager.Source).(*alertmanager.Receiver).ExpireAlerts(ctx, time.Now().Add(13*time.Hour)); err != nil {
		t.Fatal(err)
	}
	closed, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, hasText("Closed: no Alertmanager notification re-sent its firing alerts within 12h0m0s"))
	if err != nil || closed.ReplyToMessage == nil || closed.ReplyToMessage.MessageID != card.MessageID {
		t.Fatalf("the thread was not told: %v", err)
	}
	if st := h.stage(t, inc); st != ledger.Recovered {
		t.Fatalf("after the expiry: %s", st)
	}
}
