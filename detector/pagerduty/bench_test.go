package pagerduty

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/detector/detectortest"
)

// BenchmarkTrigger is one accepted trigger of a new alert on a service with an open
// incident (parse, constant-time key lookup, rate limit, alert state, one ledger update),
// Redis round trips included: the intake's accepted events a second.
//
//	REDIS_URL=redis://127.0.0.1:6379 go test -run '^$' -bench Trigger -benchtime 2000x ./detector/pagerduty/
func BenchmarkTrigger(b *testing.B) {
	h := detectortest.New(b)
	ts := tenants()
	ts[0].IncidentsPerHour = -1
	d := h.Replica("bench", ts, func(o *detector.Options) {
		o.Intakes = []detector.NewIntake{Intake(Options{Keys: keys(), Rate: 1e9, Burst: 1 << 30})}
	})
	handler := d.Intake(Source).(*Receiver).Handler()
	bodies := make([]string, b.N)
	for i := range bodies {
		bodies[i] = event(acmeKey, Trigger, "bench-"+strconv.Itoa(i), payload("latency "+strconv.Itoa(i)))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, Path, strings.NewReader(bodies[i])))
		if rec.Code != http.StatusAccepted {
			b.Fatalf("%d %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
