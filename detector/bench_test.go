package detector

import (
	"context"
	"testing"
)

// BenchmarkIngestAndEvaluate is the detector's work for one second of one push-mode
// service with two instances: read and store two summaries, then judge the 10 s window
// (20 summaries merged). Redis round trips included.
//
//	go test -run '^$' -bench IngestAndEvaluate -benchtime 2000x ./detector/
func BenchmarkIngestAndEvaluate(b *testing.B) {
	h := newHarness(b)
	d := h.replica("bench", defaultTenants(), nil)
	ctx := context.Background()
	lat, st := constant(100, 80, 200)
	for i := 0; i < 10; i++ { // fill the window
		h.pushBucket("acme", "checkout", i, lat, st)
		h.step(d, i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 10; i < 10+b.N; i++ {
		b.StopTimer()
		h.pushBucket("acme", "checkout", i, lat, st)
		h.clock.Set(tick(i))
		b.StartTimer()
		if _, err := d.Ingest(ctx); err != nil {
			b.Fatal(err)
		}
		if err := d.Evaluate(ctx, tick(i)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if s := d.Stats(); s.Evaluations < uint64(b.N) {
		b.Fatalf("%d evaluations for %d seconds", s.Evaluations, b.N)
	}
}
