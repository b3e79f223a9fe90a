package agent_test

import (
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
)

func percentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(q float64) float64 {
		return float64(d[min(len(d)-1, int(q*float64(len(d))))].Microseconds()) / 1000
	}
	b.ReportMetric(at(0.50), "p50-ms")
	b.ReportMetric(at(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkRequestToCard: an agent's POST /v1/approvals until its answer, by which time
// the card is in the chat (real Redis, the real engine, an in-memory chat).
func BenchmarkRequestToCard(b *testing.B) {
	w := newWorld(b)
	var d []time.Duration
	for i := 0; b.Loop(); i++ {
		start := time.Now()
		code, st := w.request(acmeSecret, scaleUp("bench-"+strconv.Itoa(i)))
		d = append(d, time.Since(start))
		if code != http.StatusCreated {
			b.Fatalf("POST: %d %v", code, st)
		}
		if _, ok := w.tg.find(st["incident"].(string)); !ok {
			b.Fatal("no card")
		}
	}
	percentiles(b, d)
}

// BenchmarkPressToAnswer: an approver's press until the agent's waiting long-poll answers
// approved, with the gate's default poll interval.
func BenchmarkPressToAnswer(b *testing.B) {
	w := newWorldPoll(b, 0)
	var d []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		_, st := w.request(acmeSecret, scaleUp("press-"+strconv.Itoa(i)))
		card := w.card(st["incident"].(string))
		got := make(chan time.Time, 1)
		go func() {
			_, a := w.call("GET", "/v1/approvals/"+st["id"].(string)+"?wait=10s", acmeSecret, nil)
			if a["status"] != agent.Approved {
				b.Errorf("answer %v", a)
			}
			got <- time.Now()
		}()
		time.Sleep(30 * time.Millisecond)
		b.StartTimer()
		start := time.Now()
		w.press(approverUser, card, "Approve")
		d = append(d, (<-got).Sub(start))
	}
	percentiles(b, d)
}
