package sdk

import (
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

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

// BenchmarkWindowP95 is the cost of the p95 /health/alerts reports: merging the 60
// one-second sketches of a window that holds 10^6 log-normal latencies.
func BenchmarkWindowP95(b *testing.B) {
	fc := newFakeClock(t0)
	s := newSDK(Options{Service: "bench", Tenant: "acme", Clock: fc.Now})
	defer s.Close()
	r := rand.New(rand.NewPCG(3, 5))
	start := t0.Unix()
	s.mu.Lock()
	for sec := range int64(windowSeconds) {
		for range 1_000_000 / windowSeconds {
			ms := math.Exp(math.Log(50) + 0.5*r.NormFloat64())
			s.record(start+sec, time.Duration(ms*float64(time.Millisecond)), routeOther, http.StatusOK)
		}
		s.collectLocked(start + sec)
	}
	s.mu.Unlock()
	b.ReportAllocs()
	for b.Loop() {
		s.mu.Lock()
		p95 := s.windowLocked(start+windowSeconds-1, windowSeconds).Quantile(0.95)
		s.mu.Unlock()
		if p95 == 0 {
			b.Fatal("empty window")
		}
	}
}

// BenchmarkRecord is the recording step alone (no HTTP, no clock): bin, shard, counters.
func BenchmarkRecord(b *testing.B) {
	s := New(Options{Service: "bench", Tenant: "acme"})
	defer s.Close()
	r := rand.New(rand.NewPCG(3, 5))
	lat := make([]time.Duration, 1024)
	for i := range lat {
		lat[i] = time.Duration(math.Exp(math.Log(50)+0.5*r.NormFloat64()) * float64(time.Millisecond))
	}
	sec := time.Now().Unix()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		s.record(sec, lat[i&1023], routeOther, http.StatusOK)
		i++
	}
}
