package main

import (
	"context"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/sdk"
)

// BenchmarkFaultToCard measures one chain through the real `bot serve` wiring: a service
// instrumented with the real SDK (middleware, 1 s buckets, its own shipper to Redis)
// serves about 100 requests a second, healthy for 6 to 7 s, then every request fails
// (HTTP 500) from a random instant of the second on; timed from the fault's start to the
// incident card reaching the chat (the detector's Run, the pipeline, the offline council,
// the card with its PNG chart, the Telegram adapter against the fake Bot API). One fresh bot and service per iteration;
// p50/p95/max over the iterations, and detected-p50-ms: fault → the DETECTED entry (the
// rest is the pipeline, the council and the card).
//
//	REDIS_URL=redis://127.0.0.1:6379 go test -run '^$' -bench FaultToCard -benchtime=5x -count=5 ./cmd/bot/
func BenchmarkFaultToCard(b *testing.B) {
	var lats, detected []time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		card, det := faultToCard(b)
		lats, detected = append(lats, card), append(detected, det)
	}
	reportLatency(b, lats, 0.50, 0.95, 1)
	slices.Sort(detected)
	b.ReportMetric(float64(detected[(len(detected)-1)/2].Microseconds())/1000, "detected-p50-ms")
}

// faultToCard runs one fault → card chain and returns how long it took, and how long
// until the DETECTED entry.
func faultToCard(b *testing.B) (card, detected time.Duration) {
	h := newHarness(b)
	h.start(false)
	ae := sdk.New(sdk.Options{Service: "payments", Tenant: "acme", RedisURL: h.redis.URL, KeyPrefix: h.prefix, Instance: "payments-1"})
	defer ae.Close()
	var failing atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pay", func(w http.ResponseWriter, r *http.Request) {
		if failing.Load() {
			http.Error(w, "payments backend down", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(ae.Instrument(mux))
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	for range 4 { // 4 clients, one request each 40 ms: about 100 a second
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(40 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				if resp, err := http.Get(srv.URL + "/pay"); err == nil {
					resp.Body.Close()
				}
			}
		}()
	}
	time.Sleep(6 * time.Second) // healthy traffic, so the detector has readings before the fault
	// Then up to a second more, so the fault starts at a random instant of the SDK's 1 s
	// bucket: without it every iteration's setup takes about as long as the last one's and
	// the faults all start at about the same phase.
	time.Sleep(rand.N(time.Second))
	if n := len(h.tg.Sent(groupID)); n != 0 {
		b.Fatalf("%d messages in the chat before the fault", n)
	}
	b.StartTimer()
	start := time.Now()
	failing.Store(true)
	m, err := h.tg.WaitForMessage(ctxT(b, 60*time.Second), groupID, func(m telegramtest.Message) bool {
		return strings.Contains(m.Text+m.Caption, "🚨")
	})
	if err != nil {
		b.Fatalf("no card: %v", err)
	}
	card = time.Since(start)
	b.StopTimer()
	for _, e := range h.history(b, incidentCode(b, m)) {
		if e.Event == ledger.Detect {
			return card, e.At.Sub(start)
		}
	}
	b.Fatal("the incident has no DETECTED entry")
	return card, 0
}
