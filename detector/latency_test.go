package detector

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/sdk"
)

// detection is the first Opened event of a service and when it arrived.
type detection struct {
	service string
	at      time.Time
}

// latencyDetector builds a detector for runs push-mode services of tenant acme that
// reports each service's first Opened event, with its arrival time, on the channel.
func latencyDetector(t testing.TB, h *harness, runs int) (*Detector, Tenant, <-chan detection) {
	t.Helper()
	tenant := Tenant{ID: "acme", PolicyVersion: "policy-v7", IncidentsPerHour: -1}
	for i := 0; i < runs; i++ {
		tenant.Services = append(tenant.Services, Service{Name: fmt.Sprintf("svc-%02d", i)})
	}
	c := h.srv.Client(t)
	l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(c, h.prefix)})
	if err != nil {
		t.Fatal(err)
	}
	out := make(chan detection, runs)
	var mu sync.Mutex
	seen := map[string]bool{}
	d, err := New(Options{
		Redis: c, KeyPrefix: h.prefix, Ledger: l, Tenants: []Tenant{tenant},
		OnEvent: func(_ context.Context, e Event) {
			if e.Kind != Opened {
				return
			}
			at := time.Now()
			mu.Lock()
			defer mu.Unlock()
			if !seen[e.Service] {
				seen[e.Service] = true
				out <- detection{e.Service, at}
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return d, tenant, out
}

// latencyRun is one service of a real-time detection run.
type latencyRun struct {
	service    string
	spike      time.Time     // start of the first bucket with slow requests
	offset     time.Duration // requests finishing after spike+offset are slow
	phase      time.Duration // a bucket is shipped this long after it closes
	firstSlow  time.Time     // when the first slow request finished
	detectedAt time.Time     // when OnEvent received the Opened event
}

// measureDetection drives Run in real time. Per service a producer ships one summary a
// second, as the SDK ships a closed 1 s bucket (50 requests, p95 about 80 ms): at the
// bucket's close, or with shipPhase at a fixed random phase after it (the SDK flushes on
// its own unaligned 1 s ticker). After warmup healthy buckets (plus 0 to 3, to stagger
// the services) the requests become slow (2.5 s, no errors) from a random instant inside
// that bucket on. It returns, per service, when the first slow request finished and when
// OnEvent got the Opened event (the DETECTED entry is durable before it). Nothing is
// simulated on the detector side: real timers, real stream consumer, real Redis, ledger.
func measureDetection(t testing.TB, runs, warmup int, shipPhase bool, seed uint64) []latencyRun {
	t.Helper()
	h := newHarness(t)
	d, tenant, detections := latencyDetector(t, h, runs)
	var mu sync.Mutex
	detected := map[string]time.Time{}
	all := make(chan struct{})
	go func() {
		for ev := range detections {
			mu.Lock()
			detected[ev.service] = ev.at
			if len(detected) == runs {
				close(all)
			}
			mu.Unlock()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := d.EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	rng := rand.New(rand.NewPCG(seed, 1))
	start := time.Now().Truncate(time.Second).Add(time.Second)
	plan := make([]latencyRun, runs)
	for i := range plan {
		plan[i].service = tenant.Services[i].Name
		plan[i].spike = start.Add(time.Duration(warmup+i%4) * time.Second) // healthy buckets first
		plan[i].offset = time.Duration(rng.Float64() * float64(time.Second))
		if shipPhase {
			plan[i].phase = time.Duration(rng.Float64() * float64(time.Second))
		}
	}
	const perBucket = 50
	// One producer per service: bucket b is shipped at b + 1 s + phase.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := range plan {
		p := &plan[i]
		prng := rand.New(rand.NewPCG(seed, uint64(i)+2))
		wg.Add(1)
		go func() {
			defer wg.Done()
			for bucket := start; ; bucket = bucket.Add(time.Second) {
				tm := time.NewTimer(time.Until(bucket.Add(time.Second + p.phase)))
				select {
				case <-tm.C:
				case <-stop:
					tm.Stop()
					return
				}
				lat := make([]float64, perBucket)
				for j := range lat {
					at := bucket.Add(time.Duration(j+1) * time.Second / perBucket) // request j finishes here
					if !bucket.Before(p.spike) && (bucket.After(p.spike) || at.Sub(bucket) > p.offset) {
						lat[j] = 2500 * math.Exp(0.1*prng.NormFloat64())
						if p.firstSlow.IsZero() {
							p.firstSlow = at
						}
					} else {
						lat[j] = 40 * math.Exp(0.42*prng.NormFloat64())
					}
				}
				s := sdk.NewSummaryForTest("acme", p.service, "pod-1", bucket, lat, nil)
				if err := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: sdk.StreamKey(h.prefix, "acme", p.service), Values: s.Fields()}).Err(); err != nil && ctx.Err() == nil {
					t.Errorf("ship: %v", err)
				}
			}
		}()
	}
	deadline := time.NewTimer(time.Duration(warmup+30) * time.Second)
	defer deadline.Stop()
	select {
	case <-all:
	case <-deadline.C:
	}
	close(stop)
	wg.Wait()
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(detected) != runs {
		t.Fatalf("only %d of %d spikes detected within 30 s", len(detected), runs)
	}
	for i := range plan {
		plan[i].detectedAt = detected[plan[i].service]
	}
	return plan
}

// TestRunDetectsInRealTime: the whole push path under Run, on the wall clock, detects a
// spike after it starts (how soon is BenchmarkDetectionLatency's to say).
func TestRunDetectsInRealTime(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "real time")
	}
	runs := measureDetection(t, 1, 2, false, 1)
	if !runs[0].detectedAt.After(runs[0].firstSlow) {
		t.Fatalf("detected at %v, not after the first slow request at %v", runs[0].detectedAt, runs[0].firstSlow)
	}
}

// BenchmarkDetectionLatency measures push-mode detection latency over 20 spikes per
// iteration (one per service, all in one detector, spikes staggered over 4 s, random
// instant inside the bucket), from the first slow request to the Opened event (after the
// DETECTED entry is durable); p50, p95 and max over every spike of every iteration. Each
// iteration is about 15 s of real time (12 healthy buckets first, so the window is full of
// normal traffic when the spike starts):
//
//	REDIS_URL=redis://127.0.0.1:6379 go test -run '^$' -bench DetectionLatency -benchtime=1x -count=5 ./detector/
func BenchmarkDetectionLatency(b *testing.B) {
	const services = 20
	for _, mode := range []struct {
		name  string
		phase bool
	}{{"shipped-at-close", false}, {"shipped-at-random-phase", true}} {
		b.Run(mode.name, func(b *testing.B) {
			var ds []time.Duration
			for i := 0; i < b.N; i++ {
				for _, r := range measureDetection(b, services, 12, mode.phase, 20260301+uint64(i)) {
					ds = append(ds, r.detectedAt.Sub(r.firstSlow))
				}
			}
			slices.Sort(ds)
			q := func(p float64) float64 {
				return float64(ds[int(math.Ceil(p*float64(len(ds))))-1].Microseconds()) / 1000
			}
			b.ReportMetric(q(0.5), "p50-ms")
			b.ReportMetric(q(0.95), "p95-ms")
			b.ReportMetric(q(1), "max-ms")
		})
	}
}
