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

// TestRunPollsInRealTime: Run's poll loop judges pull-mode services on its own, and Run
// returns when its context ends.
func TestRunPollsInRealTime(t *testing.T) {
	t.Parallel()
	hs := newHealthServer(t)
	hs.answer(200, goHealth(20, 2900, 0.2, 500))
	h := newHarness(t)
	opened := make(chan Event, 1)
	d := h.replica("r1", pullTenants(hs.URL), func(o *Options) {
		o.Clock = time.Now
		o.PollInterval, o.PollTimeout = time.Second, 500*time.Millisecond
		o.OnEvent = func(_ context.Context, e Event) {
			if e.Kind == Opened {
				select {
				case opened <- e:
				default:
				}
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case e := <-opened:
		if e.Source != SourcePull || e.Service != "checkout" {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no incident from two bad polls within 15 s")
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
}
