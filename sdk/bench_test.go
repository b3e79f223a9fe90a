package sdk

import (
	"math"
	"math/rand/v2"
	"net/http"
	"testing"
	"time"
)

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
			s.record(uint32(sec), start+sec, time.Duration(ms*float64(time.Millisecond)), routeOther, http.StatusOK)
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
		s.record(uint32(i), sec, lat[i&1023], routeOther, http.StatusOK)
		i++
	}
}
