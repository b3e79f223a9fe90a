package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/ledger"
)

// BenchmarkPressToWebhook measures, over b.N approvals, the time from a button press
// reaching the bot (Telegram's webhook POST of the callback query) to the tenant's
// recovery webhook receiving the signed call: adapter, approval redemption (JWT, atomic
// consume, AUTHORIZED entry), outbox, executor. Real Redis when REDIS_URL is set.
// Each approval is its own incident: opened by Alertmanager, approved, resolved.
//
//	REDIS_URL=redis://127.0.0.1:6379 go test -run XXX -bench PressToWebhook -benchtime=1000x ./cmd/bot/
func BenchmarkPressToWebhook(b *testing.B) {
	h := newHarness(b)
	r := h.start(true)
	lat := make([]time.Duration, 0, b.N)
	seen := map[int]bool{}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		r.alertN(b, "firing", i)
		card := h.newCard(b, seen)
		inc := incidentCode(b, card)
		h.tg.PressButton(groupID, card.MessageID, userTendai, card.Buttons()[0][0].CallbackData)
		upd := takeUpdates(b, h.tg, 1)[0]
		b.StartTimer()
		t0 := time.Now()
		code, err := h.tg.PostWebhook(context.Background(), r.base+"/telegram/webhook", "hook-secret", upd)
		if err != nil || code != http.StatusOK {
			b.Fatalf("press: %d %v", code, err)
		}
		select {
		case <-h.hook.calls:
		case <-time.After(10 * time.Second):
			b.Fatal("webhook not called")
		}
		lat = append(lat, time.Since(t0))
		b.StopTimer()
		waitStage(b, h, inc, ledger.Executed)
		r.alertN(b, "resolved", i)
		waitStage(b, h, inc, ledger.Resolved)
		b.StartTimer()
	}
	b.StopTimer()
	reportLatency(b, lat, 0.50, 0.99)
}

// newCard waits for an incident card not seen before.
func (h *harness) newCard(t testing.TB, seen map[int]bool) telegramtest.Message {
	m, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, func(m telegramtest.Message) bool {
		return !seen[m.MessageID] && strings.Contains(m.Text+m.Caption, "🚨") && len(m.Buttons()) > 0
	})
	if err != nil {
		t.Fatalf("no new card (%d seen): %v", len(seen), err)
	}
	seen[m.MessageID] = true
	return m
}

func waitStage(t testing.TB, h *harness, inc string, want ledger.Stage) {
	deadline := time.Now().Add(20 * time.Second)
	for h.stage(t, inc) != want {
		if time.Now().After(deadline) {
			t.Fatalf("%s never reached %s (is %s)", inc, want, h.stage(t, inc))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// alertN is alert with a distinct fingerprint per incident.
func (b *replica) alertN(t testing.TB, status string, n int) {
	t.Helper()
	payload := fmt.Sprintf(`{"version":"4","groupKey":"g%d","status":%q,"receiver":"alertengine","groupLabels":{},"commonLabels":{},
"commonAnnotations":{},"externalURL":"http://alertmanager","alerts":[{"status":%q,"labels":{"alertname":"CheckoutSlow","service":"checkout"},
"annotations":{"summary":"checkout p95 above 2 s"},"startsAt":"2026-11-27T09:00:00Z","endsAt":"0001-01-01T00:00:00Z",
"generatorURL":"http://prometheus","fingerprint":"f%d"}]}`, n, status, status, n)
	req, _ := http.NewRequest(http.MethodPost, b.base+"/alertmanager/webhook", strings.NewReader(payload))
	req.Header.Set("Authorization", "Bearer "+amToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("alertmanager: %d", resp.StatusCode)
	}
}
