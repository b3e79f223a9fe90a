package ledger_test

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// BenchmarkAppendRedis measures appends/s to one tenant against the Redis of REDIS_URL
// (embedded miniredis when unset), with 1 and 8 concurrent writers, each writer with its
// Ledger either shared (one replica, group commit) or its own (one replica each, with its
// own Redis client: every append races the others on the chain tail).
func BenchmarkAppendRedis(b *testing.B) {
	for _, tc := range []struct {
		writers, replicas int
	}{{1, 1}, {8, 1}, {8, 8}} {
		writers, replicas := tc.writers, tc.replicas
		b.Run(fmt.Sprintf("writers=%d/replicas=%d", writers, replicas), func(b *testing.B) {
			srv := ledgertest.NewServer(b)
			prefix := srv.Prefix(b)
			ctx := context.Background()
			reps := make([]*ledger.Ledger, replicas)
			for r := range reps {
				l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(srv.Client(b), prefix)})
				if err != nil {
					b.Fatal(err)
				}
				reps[r] = l
			}
			ledgers := make([]*ledger.Ledger, writers)
			incidents := make([]string, writers)
			for w := range ledgers {
				l := reps[w%replicas]
				ledgers[w] = l
				en := ev("bench", "", ledger.Detect)
				en.Service = fmt.Sprintf("svc-%d", w)
				out, err := l.Record(ctx, en)
				if err != nil {
					b.Fatal(err)
				}
				incidents[w] = out.Incident
			}
			var next atomic.Int64
			b.ResetTimer()
			var wg sync.WaitGroup
			for w := 0; w < writers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for next.Add(1) <= int64(b.N) {
						if _, err := ledgers[w].Record(ctx, ev("bench", incidents[w], ledger.Question)); err != nil {
							b.Error(err)
							return
						}
					}
				}(w)
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "appends/s")
		})
	}
}

// BenchmarkVerifyExport measures verification of a 100,000-entry export.
func BenchmarkVerifyExport(b *testing.B) {
	const n = 100000
	data := buildExport(b, n)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := ledger.VerifyExport(bytes.NewReader(data), nil)
		if err != nil || rep.Entries != n {
			b.Fatal(rep, err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entries/s")
}
