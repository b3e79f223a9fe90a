package detector

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/sdk"
)

// TestIngestRefusesBadEntries: entries that are not summaries of the stream's service,
// or are too old or in the future, are acknowledged, counted and dropped; they never
// block the stream or reach the window.
func TestIngestRefusesBadEntries(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", defaultTenants(), nil)
	ctx := context.Background()
	stream := sdk.StreamKey(h.prefix, "acme", "checkout")
	h.clock.Set(tick(30))
	lat, st := constant(30, 80, 200)
	good := sdk.NewSummaryForTest("acme", "checkout", "pod-a", base.Add(30*time.Second), lat, st)
	entries := []map[string]any{
		{"v": "1", "hello": "world"}, // not a summary
		sdk.NewSummaryForTest("globex", "checkout", "pod-a", base.Add(30*time.Second), lat, st).Fields(), // another tenant's
		sdk.NewSummaryForTest("acme", "payments", "pod-a", base.Add(30*time.Second), lat, st).Fields(),   // another service's
		sdk.NewSummaryForTest("acme", "checkout", "pod-a", base.Add(time.Hour), lat, st).Fields(),        // an hour ahead
		sdk.NewSummaryForTest("acme", "checkout", "pod-a", base.Add(5*time.Second), lat, st).Fields(),    // older than the window
		good.Fields(),
		good.Fields(), // shipped twice: stored once
	}
	for _, v := range entries {
		if err := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: v}).Err(); err != nil {
			t.Fatal(err)
		}
	}
	n, err := d.Ingest(ctx)
	if err != nil || n != 2 {
		t.Fatalf("stored %d (%v), want the 2 copies of the good summary", n, err)
	}
	s := d.Stats()
	if s.InvalidSummaries != 4 || s.LateSummaries != 1 {
		t.Fatalf("invalid %d, late %d; want 4 and 1", s.InvalidSummaries, s.LateSummaries)
	}
	pending, err := h.rdb.XPending(ctx, stream, group).Result()
	if err != nil || pending.Count != 0 {
		t.Fatalf("pending %+v %v: every entry must be acknowledged", pending, err)
	}
	if members, _ := h.rdb.ZCard(ctx, d.keys.window("acme", "checkout")).Result(); members != 1 {
		t.Fatalf("window holds %d members, want 1", members)
	}
}
