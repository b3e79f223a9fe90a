package detector

import (
	"context"
	"fmt"
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

// BenchmarkAlertmanagerNotification is one Alertmanager notification of n new firing
// kube-prometheus alerts (about 840 bytes each) for one service, through the HTTP handler:
// the streamed decode, the state of every alert in Redis, the DETECTED entry and the
// answer. Between iterations (untimed) its resolved twin closes the incident, so every
// iteration opens one again. Redis round trips included.
//
//	REDIS_URL=redis://127.0.0.1:6379 go test -run '^$' -bench AlertmanagerNotification -benchmem ./detector/
func BenchmarkAlertmanagerNotification(b *testing.B) {
	for _, n := range []int{100, 1_000, 10_000} {
		b.Run(fmt.Sprintf("alerts=%d", n), func(b *testing.B) {
			h := newHarness(b)
			tenants := amTenants()
			tenants[0].IncidentsPerHour = -1
			d := h.replica("bench", tenants, nil)
			handler := d.AlertmanagerHandler()
			firing := kubeAlerts("bench", "checkout", "firing", n, base)
			resolved := kubeAlerts("bench", "checkout", "resolved", n, base)
			b.SetBytes(int64(len(firing)))
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				if code, res := postBytes(b, handler, firing); code != 200 || res.Results[0].Outcome != "opened" {
					b.Fatalf("HTTP %d, %v", code, countOutcomes(res))
				}
				b.StopTimer()
				if code, _ := postBytes(b, handler, resolved); code != 200 {
					b.Fatalf("resolved: HTTP %d", code)
				}
				b.StartTimer()
			}
		})
	}
}
