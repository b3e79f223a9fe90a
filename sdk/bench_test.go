package sdk

import (
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The middleware benchmarks share a tiny handler, a reused request and a reused
// ResponseWriter, so what is measured is the wrapper. Run them together:
//
//	go test -run '^$' -bench 'Bare|SDK|Promhttp|Floor' -benchmem -benchtime=1s -count=5 ./sdk/

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

var body = []byte("ok")

func tiny(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(body) }

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

func BenchmarkBare(b *testing.B) {
	benchHandler(b, http.HandlerFunc(tiny))
}

func BenchmarkSDK(b *testing.B) {
	s := New(Options{Service: "bench", Tenant: "acme"})
	defer s.Close()
	benchHandler(b, s.Instrument(http.HandlerFunc(tiny)))
}

func BenchmarkPromhttp(b *testing.B) {
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
	h := promhttp.InstrumentHandlerDuration(duration,
		promhttp.InstrumentHandlerCounter(requests, http.HandlerFunc(tiny)))
	benchHandler(b, h)
}

// BenchmarkFloor is the least any instrumentation can cost: one atomic counter.
func BenchmarkFloor(b *testing.B) {
	var n atomic.Uint64
	next := http.HandlerFunc(tiny)
	benchHandler(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		next.ServeHTTP(w, r)
	}))
}
