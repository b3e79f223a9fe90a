package otlp

import (
	"testing"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/detector/detectortest"
)

// FuzzIngest feeds arbitrary protobuf bodies to the decoder and the derivation: either a
// clear error, or every point used or skipped and counted, with the series bounded and
// every window's p95 a finite, non-negative number.
func FuzzIngest(f *testing.F) {
	now := time.Now()
	ok, _ := proto.Marshal(request("checkout", metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE,
		explicit(now.Add(-time.Second), now, 503, []uint64{0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1})))
	f.Add(ok)
	f.Add([]byte{0x0a, 0x02, 0x0a, 0x00})
	h := detectortest.New(f)
	d := h.Replica("fuzz", []detector.Tenant{{ID: "acme", Services: []detector.Service{{Name: "checkout", Source: Source}}}},
		func(o *detector.Options) { o.Intakes = []detector.NewIntake{Intake(Options{MaxSeries: 50})} })
	r := d.Intake(Source).(*Receiver)
	f.Fuzz(func(t *testing.T, body []byte) {
		md, err := Decode(body, false)
		if err != nil {
			return
		}
		r.ingest("acme", md, now)
		if n := r.Stats().Series; n > 50 {
			t.Fatalf("%d series remembered, max 50", n)
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		for _, w := range r.windows {
			s := w.summarise(0, 1<<62)
			if s.p95Ms < 0 || s.p95Ms != s.p95Ms || s.errorRate < 0 || s.errorRate > 1 {
				t.Fatalf("window summary %+v", s)
			}
		}
	})
}
