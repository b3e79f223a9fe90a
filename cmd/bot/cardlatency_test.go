package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/sdk"
)

// TestCardLatency measures the step after detection through the real `bot serve` wiring
// (the detector's Run, the pipeline, the offline council, the card with its PNG chart, the
// Telegram adapter against the fake Bot API, Redis): from the moment a service's SDK ships
// the first slow bucket (200 requests at 2.5 s, after three healthy ones) to the incident card reaching the chat.
// A measurement printed, not an assertion; it runs only when asked:
//
//	REDIS_URL=redis://127.0.0.1:6379 CARD_LATENCY_RUNS=5 go test -count=1 -run TestCardLatency -v ./cmd/bot/
func TestCardLatency(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("CARD_LATENCY_RUNS"))
	if runs <= 0 {
		testkit.Skip(t, "set CARD_LATENCY_RUNS=5 to measure")
	}
	var lats []time.Duration
	for i := range runs {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			h := newHarness(t)
			h.start(false)
			rc := h.redis.Client(t)
			key := sdk.StreamKey(h.prefix, "acme", "payments")
			bucket := func(ms float64) ([]float64, []int) {
				lat, codes := make([]float64, 200), make([]int, 200)
				for k := range lat {
					lat[k], codes[k] = ms, 200
				}
				return lat, codes
			}
			ctx := ctxT(t, 30*time.Second)
			// Ship as the SDK does: each bucket 0.1 s after it closes; three healthy ones
			// (80 ms, so a baseline is learned), then slow ones (2.5 s) until the card.
			var shipped time.Time
			stop := make(chan struct{})
			defer close(stop)
			errs := make(chan error, 1)
			first := make(chan time.Time, 1)
			go func() {
				for n := 0; ; n++ {
					next := time.Now().Truncate(time.Second).Add(time.Second + 100*time.Millisecond)
					select {
					case <-stop:
						return
					case <-time.After(time.Until(next)): // the producer's pace
					}
					ms := 80.0
					if n >= 3 {
						ms = 2500
					}
					lat, codes := bucket(ms)
					s := sdk.NewSummaryForTest("acme", "payments", "payments-1", next.Truncate(time.Second).Add(-time.Second), lat, codes)
					at := time.Now()
					if err := rc.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: s.Fields()}).Err(); err != nil {
						errs <- err
						return
					}
					if n == 3 {
						first <- at
					}
				}
			}()
			select {
			case shipped = <-first:
			case err := <-errs:
				t.Fatal(err)
			}
			m, err := h.tg.WaitForMessage(ctx, groupID, func(m telegramtest.Message) bool {
				return strings.Contains(m.Text+m.Caption, "🚨")
			})
			if err != nil {
				t.Fatalf("no card: %v", err)
			}
			took := time.Since(shipped)
			lats = append(lats, took)
			// Where the time went: the incident's ledger entries, by when they were made.
			var steps []string
			for _, e := range h.history(t, incidentCode(t, m)) {
				steps = append(steps, fmt.Sprintf("%s +%v", e.Event, e.At.Sub(shipped).Round(time.Millisecond)))
			}
			t.Logf("bucket shipped → card in chat: %v (%s)", took.Round(time.Millisecond), strings.Join(steps, ", "))
		})
	}
	slices.Sort(lats)
	fmt.Printf("bucket shipped → card in chat over %d runs: p50 %v, max %v\n", len(lats),
		lats[len(lats)/2].Round(time.Millisecond), lats[len(lats)-1].Round(time.Millisecond))
}
