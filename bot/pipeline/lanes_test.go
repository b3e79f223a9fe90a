package pipeline

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"testing/synctest"
	"time"
)

// Twenty incidents detected together, each taking 2 s to diagnose (two LLM lenses in
// parallel, 2 s each): every one is presented 2 s later, not one after the other.
func TestLanesHandleIncidentsConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLanes(DefaultConcurrency, DefaultConcurrencyPerTenant)
		start := time.Now()
		var mu sync.Mutex
		var took []time.Duration
		for i := range 20 {
			l.submit(t.Context(), "acme", fmt.Sprintf("INC-%d", i), func() {
				time.Sleep(2 * time.Second) // the lenses
				mu.Lock()
				took = append(took, time.Since(start))
				mu.Unlock()
			})
		}
		l.wait()
		if len(took) != 20 {
			t.Fatalf("%d incidents handled, want 20", len(took))
		}
		for i, d := range took {
			if d > 3*time.Second {
				t.Errorf("incident %d presented after %v, want within 3 s", i, d)
			}
		}
	})
}

// An incident whose LLM hangs holds its own lane only.
func TestLanesAHungIncidentDelaysNoOther(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLanes(4, 2)
		release, hung := make(chan struct{}), make(chan struct{})
		l.submit(t.Context(), "acme", "INC-HUNG", func() { close(hung); <-release })
		<-hung
		done := make(chan string, 10)
		for i := range 10 {
			id := fmt.Sprintf("INC-%d", i)
			l.submit(t.Context(), "acme", id, func() { time.Sleep(time.Second); done <- id })
		}
		start := time.Now()
		for range 10 {
			<-done
		}
		// One slot of the tenant's two is held by the hung incident: the other ten go
		// through the remaining one, a second each.
		if d := time.Since(start); d != 10*time.Second {
			t.Errorf("the other incidents took %v, want 10 s (one free slot, 1 s each)", d)
		}
		close(release)
		l.wait()
	})
}

// One incident's detections run one at a time, in the order they came.
func TestLanesKeepAnIncidentsOrder(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newLanes(8, 8)
		var mu sync.Mutex
		var got []int
		running := false
		for i := range 6 {
			l.submit(t.Context(), "acme", "INC-1", func() {
				mu.Lock()
				if running {
					t.Error("two steps of one incident ran at once")
				}
				running = true
				mu.Unlock()
				time.Sleep(time.Duration(6-i) * time.Second) // earlier steps are slower
				mu.Lock()
				running = false
				got = append(got, i)
				mu.Unlock()
			})
		}
		l.wait()
		for i, v := range got {
			if v != i {
				t.Fatalf("steps ran in the order %v, want 0..5", got)
			}
		}
		if len(got) != 6 {
			t.Fatalf("%d steps ran, want 6", len(got))
		}
	})
}

// The bounds hold: per tenant and overall.
func TestLanesAreBounded(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		const all, perTenant = 3, 2
		l := newLanes(all, perTenant)
		var mu sync.Mutex
		now := map[string]int{}
		total, maxTotal := 0, 0
		maxOf := map[string]int{}
		for _, tenant := range []string{"acme", "globex"} {
			for i := range 10 {
				l.submit(t.Context(), tenant, fmt.Sprintf("INC-%d", i), func() {
					mu.Lock()
					now[tenant]++
					total++
					maxOf[tenant] = max(maxOf[tenant], now[tenant])
					maxTotal = max(maxTotal, total)
					mu.Unlock()
					time.Sleep(time.Second)
					mu.Lock()
					now[tenant]--
					total--
					mu.Unlock()
				})
			}
		}
		l.wait()
		if maxTotal != all {
			t.Errorf("at most %d detections handled at once, want %d", maxTotal, all)
		}
		for tenant, m := range maxOf {
			if m > perTenant {
				t.Errorf("%s: %d handled at once, want at most %d", tenant, m, perTenant)
			}
		}
	})
}

// Once the pipeline stops, what is still queued is dropped (the sweep of the next run
// picks it up); what runs finishes.
func TestLanesDropQueuedWorkAtShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		l := newLanes(1, 1)
		started := make(chan struct{})
		finished, ran := false, 0
		l.submit(ctx, "acme", "INC-1", func() {
			close(started)
			time.Sleep(time.Second)
			finished = true
		})
		<-started
		for i := range 3 {
			l.submit(ctx, "acme", fmt.Sprintf("INC-%d", i+2), func() { ran++ })
		}
		synctest.Wait() // the three wait for the one slot
		cancel()
		l.wait()
		if !finished || ran != 0 {
			t.Errorf("running work finished: %v; queued work that ran after shutdown: %d, want 0", finished, ran)
		}
	})
}
