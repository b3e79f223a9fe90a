package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/sdk"
	"github.com/redis/go-redis/v9"
)

// TestPushedSlowTrafficOpensACardWithAChart: summaries a Go service's SDK ships to Redis
// (latency-only: p95 2.5 s, no errors) are judged by the running bot, which opens the
// incident with a PNG chart of p95 and error rate on the card.
func TestPushedSlowTrafficOpensACardWithAChart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.start(false)
	pushSlowPayments(t, h)
	card := h.card(t)
	if len(card.Photo) == 0 || !strings.HasPrefix(string(card.PhotoData), "\x89PNG") {
		t.Fatalf("the card carries no PNG chart: photo %v, %d bytes", card.Photo, len(card.PhotoData))
	}
	if !strings.Contains(card.Caption+card.Text, "payments") || !strings.Contains(card.Caption+card.Text, "P95 2.5 s") {
		t.Fatalf("card: %q %q", card.Caption, card.Text)
	}
}

// pushSlowPayments ships, as the Go SDK does, one summary a second of the payments
// service's traffic — 200 requests at p95 2.5 s, no errors — until the chat is sent
// something (at most 30 s).
func pushSlowPayments(t *testing.T, h *harness) {
	t.Helper()
	rc := h.redis.Client(t)
	key := sdk.StreamKey(h.prefix, "acme", "payments")
	ctx := context.Background()
	lat := make([]float64, 200)
	codes := make([]int, 200)
	for i := range lat {
		lat[i], codes[i] = 2500, 200
	}
	// Ship a bucket a second, as the SDK does, until the card shows up.
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		bucket := time.Now().Add(-time.Second).Truncate(time.Second)
		s := sdk.NewSummaryForTest("acme", "payments", "payments-1", bucket, lat, codes)
		if err := rc.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: s.Fields()}).Err(); err != nil {
			t.Fatal(err)
		}
		if ms := h.tg.Sent(groupID); len(ms) > 0 {
			break
		}
		time.Sleep(time.Second) // the producer's pace, not synchronisation
	}
}
