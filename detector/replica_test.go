package detector

import (
	"context"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/fixtures"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/sdk"
)

// TestTwoReplicasOneIncident runs two detector replicas (own Redis clients, own ledgers)
// on one Redis and one stream through the latency spike. They share the stream through
// the consumer group (each ingests half of the buckets), both evaluate every tick at the
// same time, and the ledger must still hold exactly one DETECTED and one RECOVERED.
func TestTwoReplicasOneIncident(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// handover: after this bucket the lease holder dies (its lease is gone) and the
		// other replica carries on from the shared gate state.
		handover int
	}{
		{name: "stable lease", handover: -1},
		{name: "holder dies mid-incident", handover: 75},
		{name: "holder dies between the two bad evaluations", handover: 60},
	}
	sc, err := fixtures.Scenario("latency-spike")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t)
			// The whole window decides (no FastWindow), so the handover can fall between
			// its two bad evaluations.
			a := h.replica("replica-a", defaultTenants(), wholeWindowOnly)
			b := h.replica("replica-b", defaultTenants(), wholeWindowOnly)
			ctx := context.Background()
			dead := map[*Detector]bool{}
			for i := range sc.Buckets {
				lat, st := sc.Samples(i)
				h.pushBucket("acme", "checkout", i, lat, st)
				h.clock.Set(tick(i))
				// Alternate which replica reads the stream, so each holds half the data.
				reader := a
				if (i%2 == 1 || dead[a]) && !dead[b] {
					reader = b
				}
				if _, err := reader.Ingest(ctx); err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				for _, d := range []*Detector{a, b} {
					if dead[d] {
						continue
					}
					wg.Add(1)
					go func() {
						defer wg.Done()
						if err := d.Evaluate(ctx, tick(i)); err != nil {
							t.Errorf("bucket %d: %s: %v", i, d.ReplicaID(), err)
						}
					}()
				}
				wg.Wait()
				if i == tt.handover {
					holder := h.leaseHolder("acme", "checkout")
					for _, d := range []*Detector{a, b} {
						if d.ReplicaID() == holder {
							dead[d] = true
						}
					}
					h.rdb.Del(ctx, a.keys.lease("acme", "checkout")) // its lease expired
				}
			}
			if a.Stats().Summaries == 0 || b.Stats().Summaries == 0 {
				t.Fatalf("summaries ingested: a %d, b %d; want both > 0", a.Stats().Summaries, b.Stats().Summaries)
			}
			detects := h.entriesOf("acme", ledger.Detect)
			recovers := h.entriesOf("acme", ledger.Recover)
			if len(detects) != 1 || len(recovers) != 1 {
				t.Fatalf("%d DETECTED and %d RECOVERED entries, want 1 and 1%s", len(detects), len(recovers), describe(h.events.all()))
			}
			if got, want := bucketIndexes(h.events.of(Opened)), []int{61}; len(got) != 1 || got[0] != want[0] {
				t.Fatalf("opened after %v, want %v (merged data of both readers)", got, want)
			}
			if recovers[0].Incident != detects[0].Incident {
				t.Fatalf("recovered %s, opened %s", recovers[0].Incident, detects[0].Incident)
			}
		})
	}
}

func (h *harness) leaseHolder(tenant, service string) string {
	k := keys{prefix: h.prefix}
	v, err := h.rdb.Get(context.Background(), k.lease(tenant, service)).Result()
	if err != nil {
		h.t.Fatalf("lease of %s/%s: %v", tenant, service, err)
	}
	return v
}

// TestReclaimAbandonedEntries: a replica read summaries and died before acknowledging
// them; after ClaimIdle another replica claims them and they count.
func TestReclaimAbandonedEntries(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("live", defaultTenants(), nil)
	ctx := context.Background()
	stream := sdk.StreamKey(h.prefix, "acme", "checkout")
	for i := 0; i < 3; i++ {
		lat, st := constant(40, 80, 200)
		h.pushBucket("acme", "checkout", i, lat, st)
	}
	// The dead replica reads everything and never acknowledges.
	res, err := h.rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: group, Consumer: "dead", Streams: []string{stream, ">"}, Block: -1}).Result()
	if err != nil || len(res[0].Messages) != 6 {
		t.Fatalf("dead replica read %v, %v", res, err)
	}
	h.clock.Set(tick(2))
	if n, err := d.Ingest(ctx); n != 0 || err != nil {
		t.Fatalf("live replica ingested %d (%v) of entries pending elsewhere", n, err)
	}
	// Not idle long enough yet: nothing is taken.
	if n, err := d.Reclaim(ctx); n != 0 || err != nil {
		t.Fatalf("reclaimed %d (%v) entries that are not idle", n, err)
	}
	// Make them look idle for ten minutes, as if the dead replica's read was long ago.
	var ids []string
	for _, m := range res[0].Messages {
		ids = append(ids, m.ID)
	}
	args := []any{"XCLAIM", stream, group, "dead", 0}
	for _, id := range ids {
		args = append(args, id)
	}
	args = append(args, "IDLE", (10 * time.Minute).Milliseconds(), "JUSTID")
	if err := h.rdb.Do(ctx, args...).Err(); err != nil {
		t.Fatal(err)
	}
	n, err := d.Reclaim(ctx)
	if err != nil || n != 6 {
		t.Fatalf("reclaimed %d summaries (%v), want 6", n, err)
	}
	pending, err := h.rdb.XPending(ctx, stream, group).Result()
	if err != nil || pending.Count != 0 {
		t.Fatalf("still pending: %+v %v", pending, err)
	}
	if err := d.Evaluate(ctx, tick(2)); err != nil {
		t.Fatal(err)
	}
	s, err := d.Status(ctx, "acme", "checkout")
	if err != nil || s.Last == nil || s.Last.SampleSize != 120 {
		t.Fatalf("status after reclaim: %+v %v; want 120 samples judged", s.Last, err)
	}
}

// TestBaselineSurvivesRestart: the baseline learned by one detector is read back by a
// new one on the same Redis, and the new one judges against it.
func TestBaselineSurvivesRestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	first := h.replica("before-restart", defaultTenants(), nil)
	for i := 0; i < 60; i++ {
		lat, st := constant(40, 80, 200)
		h.pushBucket("acme", "checkout", i, lat, st)
		h.step(first, i)
	}
	learned, err := first.Status(ctx, "acme", "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if learned.Baseline.Samples < 5 || learned.Baseline.P95Ms < 79 || learned.Baseline.P95Ms > 81 {
		t.Fatalf("baseline after a healthy minute: %+v, want about 80 ms from ≥ 5 windows", learned.Baseline)
	}
	// The first process is gone; its lease ran out. A new process starts.
	h.rdb.Del(ctx, first.keys.lease("acme", "checkout"))
	second := h.replica("after-restart", defaultTenants(), nil)
	got, err := second.Status(ctx, "acme", "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if got.Baseline != learned.Baseline {
		t.Fatalf("new detector reads baseline %+v, want %+v", got.Baseline, learned.Baseline)
	}
	for i := 60; i < 62; i++ {
		lat, st := constant(40, 2500, 200)
		h.pushBucket("acme", "checkout", i, lat, st)
		h.step(second, i)
	}
	opened := h.events.of(Opened)
	if len(opened) != 1 || !regexp.MustCompile(`\(baseline 8\d ms, ×3\d\)`).MatchString(opened[0].Reason) || opened[0].BaselineP95Ms != learned.Baseline.P95Ms {
		t.Fatalf("after restart: %s; want one incident judged against the 80 ms baseline", describe(opened))
	}
}

// TestLatencyOnlySpikeOpensWithinTwoEvaluations: no error at all, p95 80 ms → 2.5 s.
func TestLatencyOnlySpikeOpensWithinTwoEvaluations(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", defaultTenants(), nil)
	sc, err := fixtures.Scenario("latency-spike")
	if err != nil {
		t.Fatal(err)
	}
	const firstSlow = 60
	evaluations := 0
	for i := 0; i < 90 && len(h.events.of(Opened)) == 0; i++ {
		lat, st := sc.Samples(i)
		for _, c := range st {
			if c >= 500 {
				t.Fatalf("bucket %d has a %d: the scenario must be latency-only", i, c)
			}
		}
		h.pushBucket("acme", "checkout", i, lat, st)
		h.step(d, i)
		if i >= firstSlow {
			evaluations++
		}
	}
	opened := h.events.of(Opened)
	if len(opened) != 1 || evaluations > 2 {
		t.Fatalf("opened %d incidents after %d evaluations of the spike, want 1 within 2", len(opened), evaluations)
	}
	if opened[0].ErrorRate != 0 || opened[0].P95Ms < 2000 {
		t.Fatalf("event %+v: want p95 ≥ 2 s and no errors", opened[0])
	}
	e := h.entriesOf("acme", ledger.Detect)[0]
	if e.Data["error_rate"] != "0.0000" || !strings.HasSuffix(e.Reason, "errors 0.0%; sudden latency spike") && !strings.HasSuffix(e.Reason, "errors 0.0%") {
		t.Fatalf("DETECTED %q %v", e.Reason, e.Data)
	}
}
