package sdk

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	vm "github.com/VictoriaMetrics/metrics"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// BenchmarkMiddleware measures what each instrumentation adds to a request, side by
// side in one run, so the anchors share the machine's state with the SDK:
//
//	go test -run '^$' -bench Middleware -benchmem -count=10 ./sdk/
//
// Every sub-benchmark serves the same tiny handler (writes "ok") with a reused request
// and ResponseWriter, so what is measured is the wrapper. The anchors live in this test
// file only: nothing of theirs reaches the SDK's import graph for the services that
// embed it.
func BenchmarkMiddleware(b *testing.B) {
	handler := http.HandlerFunc(tiny)
	s := New(Options{Service: "bench", Tenant: "acme"})
	defer s.Close()
	otelMeters := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	defer func() { _ = otelMeters.Shutdown(b.Context()) }()

	cases := []struct {
		name string
		h    http.Handler
	}{
		{"bare", handler},
		{"alertengine", s.Instrument(handler)},
		{"promhttp", promhttpHandler(handler)},
		// otelhttp with a real metrics SDK (a manual reader, never collected during the
		// run) and no-op tracing: the cost of its metrics, as a service exporting them
		// would pay it.
		{"otelhttp", otelhttp.NewHandler(handler, "checkout",
			otelhttp.WithMeterProvider(otelMeters),
			otelhttp.WithTracerProvider(tracenoop.NewTracerProvider()))},
		{"victoriametrics", victoriaMetricsHandler(handler)},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) { benchHandler(b, tc.h) })
	}
}

// promhttpHandler is the usual client_golang pairing: a latency histogram and a request
// counter, both labelled by code and method.
func promhttpHandler(next http.Handler) http.Handler {
	reg := prometheus.NewRegistry()
	duration := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "http_request_duration_seconds",
		Help:    "Request latency.",
		Buckets: prometheus.DefBuckets,
	}, []string{"code", "method"})
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "http_requests_total",
		Help: "Requests.",
	}, []string{"code", "method"})
	reg.MustRegister(duration, requests)
	return promhttp.InstrumentHandlerDuration(duration, promhttp.InstrumentHandlerCounter(requests, next))
}

// victoriaMetricsHandler is VictoriaMetrics/metrics' documented idiom: a request counter
// and a latency histogram created once, updated per request. The library ships no
// middleware and captures no status, so it does less than the others.
func victoriaMetricsHandler(next http.Handler) http.Handler {
	set := vm.NewSet()
	requests := set.NewCounter(`http_requests_total{path="/checkout"}`)
	duration := set.NewHistogram(`http_request_duration_seconds{path="/checkout"}`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		next.ServeHTTP(w, r)
		requests.Inc()
		duration.UpdateDuration(start)
	})
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

var body = []byte("ok")

func tiny(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }

// benchHandler runs h serially and on b.RunParallel's goroutines (one per core).
func benchHandler(b *testing.B, h http.Handler) {
	b.Run("serial", func(b *testing.B) {
		w := &discardWriter{h: http.Header{}}
		r := httptest.NewRequest(http.MethodGet, "/checkout", nil)
		b.ReportAllocs()
		for b.Loop() {
			h.ServeHTTP(w, r)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			w := &discardWriter{h: http.Header{}}
			r := httptest.NewRequest(http.MethodGet, "/checkout", nil)
			for pb.Next() {
				h.ServeHTTP(w, r)
			}
		})
	})
}
