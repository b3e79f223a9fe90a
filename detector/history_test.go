package detector

import (
	"context"
	"testing"
	"time"

	"github.com/alertengine/alertengine/fixtures"
	"github.com/alertengine/alertengine/sdk"
)

// The chart of an incident card draws the readings the detector judged: they must be
// kept, in order, with the spike visible.
func TestHistoryKeepsJudgedReadings(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", defaultTenants(), nil)
	sc, err := fixtures.Scenario("latency-spike")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 70; i++ {
		lat, st := sc.Samples(i)
		h.pushBucket("acme", "checkout", i, lat, st)
		h.step(d, i)
	}
	rs, err := d.History(context.Background(), "acme", "checkout", tick(0).Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) < 60 {
		t.Fatalf("%d readings kept for 70 evaluated buckets", len(rs))
	}
	for i := 1; i < len(rs); i++ {
		if rs[i].At.Before(rs[i-1].At) {
			t.Fatalf("readings out of order at %d", i)
		}
	}
	if first, last := rs[0], rs[len(rs)-1]; first.P95Ms > 500 || last.P95Ms < 2000 {
		t.Fatalf("history does not show the spike: first p95 %.0f ms, last %.0f ms", first.P95Ms, last.P95Ms)
	}
	later, err := d.History(context.Background(), "acme", "checkout", rs[len(rs)-1].At)
	if err != nil || len(later) != 1 {
		t.Fatalf("since the last reading: %d readings, %v", len(later), err)
	}
}

// A replica that stops with nothing pending leaves the streams' consumer groups, so
// restarts do not pile up consumer names in Redis.
func TestStoppedReplicaLeavesTheGroups(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("leaving-replica", defaultTenants(), nil)
	lat, st := constant(40, 80, 200)
	h.pushBucket("acme", "checkout", 0, lat, st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	key := sdk.StreamKey(h.prefix, "acme", "checkout")
	names := func() []string {
		cs, _ := h.rdb.XInfoConsumers(context.Background(), key, group).Result()
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	// Wait until the replica has read and acknowledged the entry: a consumer that still
	// holds pending entries rightly stays in the group.
	settled := func() bool {
		p, err := h.rdb.XPending(context.Background(), key, group).Result()
		return len(names()) > 0 && err == nil && p.Count == 0
	}
	for deadline := time.Now().Add(10 * time.Second); !settled(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the replica never read and acknowledged the stream")
		}
	}
	cancel()
	<-done
	if n := names(); len(n) != 0 {
		t.Fatalf("consumers after a clean stop: %v", n)
	}
}
