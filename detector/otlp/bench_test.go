package otlp

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/proto"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/detector/detectortest"
)

// BenchmarkExport1000Series is one OTLP/HTTP request of 1,000 delta explicit-bucket
// series of one service (protobuf, not compressed): decode, derive, window, and the
// judgement through the gate (Redis included).
//
//	REDIS_URL=redis://127.0.0.1:6379 go test -run '^$' -bench Export1000Series -benchtime 50x ./detector/otlp/
func BenchmarkExport1000Series(b *testing.B) {
	h := detectortest.New(b)
	d := h.Replica("bench", []detector.Tenant{{ID: "acme", IncidentsPerHour: -1, Services: []detector.Service{{Name: "checkout", Source: Source}}}},
		func(o *detector.Options) {
			o.Clock = time.Now
			o.Intakes = []detector.NewIntake{Intake(Options{Tokens: []Token{{Tenant: "acme", Token: acmeToken}}})}
		})
	handler := d.Intake(Source).(*Receiver).Handler()
	now := time.Now()
	pts := make([]*metricspb.HistogramDataPoint, 1000)
	for i := range pts {
		pts[i] = explicit(now.Add(-time.Second), now, 200, []uint64{0, 3, 5, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0}, kv("http.route", "/r/"+strconv.Itoa(i)))
	}
	body, err := proto.Marshal(request("checkout", metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA, pts...))
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		req := httptest.NewRequest(http.MethodPost, Path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/x-protobuf")
		req.Header.Set("Authorization", "Bearer "+acmeToken)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "points/s")
}
