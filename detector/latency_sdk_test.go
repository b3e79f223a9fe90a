package detector

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/sdk"
)

// TestDetectionLatencyRealSDK measures push-mode detection latency end to end with the
// real SDK: per service, the SDK's Instrument middleware wraps a handler that answers in
// about 80 ms, driven at 50 requests a second, and ships its own 1 s summaries to Redis;
// after 12 s the handler starts answering in 2.5 s (no errors). Latency is from the
// moment the first slow request finished (when the SDK records it) to the Opened event
// (after the DETECTED entry is durable). Real time, real Redis, real detector Run.
// A measurement printed, not an assertion; it runs only when asked:
//
//	REDIS_URL=redis://127.0.0.1:6379 DETECTOR_LATENCY_RUNS=20 go test -count=1 -run TestDetectionLatencyRealSDK -v ./detector/
func TestDetectionLatencyRealSDK(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("DETECTOR_LATENCY_RUNS"))
	if runs <= 0 {
		testkit.Skip(t, "set DETECTOR_LATENCY_RUNS=20 to measure")
	}
	h := newHarness(t)
	d, tenant, detections := latencyDetector(t, h, runs)
	detected := map[string]time.Time{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go d.Run(ctx)

	type service struct {
		slow      atomic.Bool
		firstSlow atomic.Int64 // unix ns when the first slow request finished
		handler   http.Handler
	}
	svcs := make([]*service, runs)
	for i := range svcs {
		s := &service{}
		ae := sdk.New(sdk.Options{Service: tenant.Services[i].Name, Tenant: "acme", RedisURL: h.srv.URL, KeyPrefix: h.prefix, Instance: "pod-1"})
		t.Cleanup(func() { ae.Close() })
		mux := http.NewServeMux()
		mux.HandleFunc("GET /pay", func(w http.ResponseWriter, r *http.Request) {
			if s.slow.Load() {
				time.Sleep(2500 * time.Millisecond)
				s.firstSlow.CompareAndSwap(0, time.Now().Add(time.Millisecond).UnixNano()) // ≈ when the middleware records it
				return
			}
			time.Sleep(80 * time.Millisecond)
		})
		s.handler = ae.Instrument(mux)
		svcs[i] = s
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, s := range svcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(20 * time.Millisecond) // 50 requests a second
			defer tick.Stop()
			switchAt := time.Now().Add(12*time.Second + time.Duration(i%4)*250*time.Millisecond)
			for {
				select {
				case <-stop:
					return
				case now := <-tick.C:
					if now.After(switchAt) {
						s.slow.Store(true)
					}
					go s.handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/pay", nil))
				}
			}
		}()
	}
	timeout := time.After(90 * time.Second)
	for len(detected) < runs {
		select {
		case ev := <-detections:
			detected[ev.service] = ev.at
		case <-timeout:
			t.Fatalf("only %d of %d services detected", len(detected), runs)
		}
	}
	close(stop)
	wg.Wait()
	var ds []time.Duration
	for i, s := range svcs {
		lat := detected[tenant.Services[i].Name].Sub(time.Unix(0, s.firstSlow.Load()))
		ds = append(ds, lat)
	}
	slices.Sort(ds)
	q := func(p float64) time.Duration { return ds[int(math.Ceil(p*float64(len(ds))))-1].Round(time.Millisecond) }
	fmt.Printf("real SDK: detection latency over %d runs (first slow request recorded → DETECTED): p50 %v, p95 %v, min %v, max %v\n",
		len(ds), q(0.5), q(0.95), ds[0].Round(time.Millisecond), ds[len(ds)-1].Round(time.Millisecond))
}
