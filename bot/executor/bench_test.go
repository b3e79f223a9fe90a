package executor_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
)

// BenchmarkExecute measures the latency from Enqueue to the recovery webhook receiving the
// signed call, one execution at a time (each waits for the previous one's outcome), through
// the Redis of REDIS_URL (embedded miniredis when unset), a real ledger and a loopback
// webhook. Run it with -benchtime=1000x for the p50/p99 over 1,000 executions.
func BenchmarkExecute(b *testing.B) {
	ctx := context.Background()
	v := newEnv(b)
	h := newWebhook(b)
	v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
	bot := v.newBot(func(o *executor.Options) { o.Poll = time.Second })
	xs := make([]executor.Execution, b.N)
	for i := range xs {
		id, _ := v.authorize(fmt.Sprintf("svc-%d", i), "restart_workers")
		x, err := bot.Prepare(ctx, tenant, id)
		if err != nil {
			b.Fatal(err)
		}
		xs[i] = x
	}
	bot.start(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range xs {
		start := time.Now()
		if err := bot.Enqueue(ctx, xs[i]); err != nil {
			b.Fatal(err)
		}
		select {
		case c := <-h.got:
			lat = append(lat, time.Since(start))
			if c.Key != xs[i].IdempotencyKey || c.SigErr != nil {
				b.Fatalf("call %d: key %q, signature %v", i, c.Key, c.SigErr)
			}
		case <-time.After(waitTimeout):
			b.Fatal("no call")
		}
		if o := bot.outcome(b); o.Kind != executor.Executed {
			b.Fatalf("outcome %+v", o)
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	q := func(p float64) float64 { return float64(lat[int(p*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
}

// BenchmarkRedriveAfterCrash measures, with the default lease and reclaim cadence, how
// long after a replica dies with an execution in flight (claimed, about to call) another
// replica's call reaches the recovery webhook, with the same idempotency key. Each
// iteration takes several seconds of real time; run it with -benchtime=5x:
//
//	REDIS_URL=redis://127.0.0.1:6379 go test -run '^$' -bench RedriveAfterCrash -benchtime=5x ./bot/executor/
func BenchmarkRedriveAfterCrash(b *testing.B) {
	var lat []time.Duration
	for i := 0; i < b.N; i++ {
		v := newEnv(b)
		h := newWebhook(b)
		v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
		died := make(chan time.Time, 1)
		first := v.newBot(func(o *executor.Options) {
			o.Consumer, o.Lease, o.ReclaimEvery = "bot-a", 0, 0 // the defaults
			o.OnClaim = func(ctx context.Context, _ executor.Execution) { died <- time.Now(); <-ctx.Done() }
		})
		id, _ := v.authorize(fmt.Sprintf("svc-%d", i), "restart_workers")
		x, err := first.Prepare(context.Background(), tenant, id)
		if err != nil {
			b.Fatal(err)
		}
		if err := first.Enqueue(context.Background(), x); err != nil {
			b.Fatal(err)
		}
		stopFirst := first.start(b)
		var diedAt time.Time
		select {
		case diedAt = <-died:
		case <-time.After(waitTimeout):
			b.Fatal("the first bot never claimed the execution")
		}
		stopFirst() // its heartbeat stops with it: as dead as a killed process
		second := v.newBot(func(o *executor.Options) { o.Consumer = "bot-b" })
		stopSecond := second.start(b)
		select {
		case c := <-h.got:
			lat = append(lat, time.Since(diedAt))
			if c.Key != x.IdempotencyKey {
				b.Fatalf("re-driven with key %q, want %q", c.Key, x.IdempotencyKey)
			}
		case <-time.After(3 * executor.DefaultLease):
			b.Fatal("not re-driven")
		}
		if o := second.outcome(b); o.Kind != executor.Executed {
			b.Fatalf("outcome %+v", o)
		}
		stopSecond()
	}
	slices.Sort(lat)
	b.ReportMetric(lat[len(lat)-1].Seconds(), "max-s")
	b.ReportMetric(lat[len(lat)/2].Seconds(), "p50-s")
}
