package ledger_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// BenchmarkFileSinkSave measures one checkpoint file write: read, merge, temporary file,
// fsync, rename, fsync of the directory (ten tenants in the file).
func BenchmarkFileSinkSave(b *testing.B) {
	ctx := context.Background()
	s, err := ledger.NewFileSink(filepath.Join(b.TempDir(), "checkpoints.json"), sinkKey.Public().(ed25519.PublicKey))
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if err := s.Save(ctx, markOf(sinkKey, fmt.Sprintf("tenant-%d", i), 100)); err != nil {
			b.Fatal(err)
		}
	}
	m := markOf(sinkKey, "tenant-0", 200)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := s.Save(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendRedisWithSink is BenchmarkAppendRedis's one-replica cases with the
// checkpoint file on: the cost of keeping the last checkpoint outside Redis.
func BenchmarkAppendRedisWithSink(b *testing.B) {
	for _, writers := range []int{1, 8} {
		b.Run(fmt.Sprintf("writers=%d", writers), func(b *testing.B) {
			srv := ledgertest.NewServer(b)
			prefix := srv.Prefix(b)
			ctx := context.Background()
			sink, err := ledger.NewFileSink(filepath.Join(b.TempDir(), "checkpoints.json"), sinkKey.Public().(ed25519.PublicKey))
			if err != nil {
				b.Fatal(err)
			}
			l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(srv.Client(b), prefix), Signer: sinkKey, Sink: sink})
			if err != nil {
				b.Fatal(err)
			}
			incidents := make([]string, writers)
			for w := range incidents {
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
						if _, err := l.Record(ctx, ev("bench", incidents[w], ledger.Question)); err != nil {
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

// BenchmarkOpenIncidentSink measures opening an incident (a detect) with and without the
// checkpoint file: with it, the append first re-reads the file and the chain's tail to
// find a loss another replica signed, so the cost of that check shows here.
func BenchmarkOpenIncidentSink(b *testing.B) {
	for _, withSink := range []bool{false, true} {
		b.Run(fmt.Sprintf("sink=%v", withSink), func(b *testing.B) {
			srv := ledgertest.NewServer(b)
			o := ledger.Options{Store: ledger.NewRedisStore(srv.Client(b), srv.Prefix(b))}
			if withSink {
				sink, err := ledger.NewFileSink(filepath.Join(b.TempDir(), "checkpoints.json"), sinkKey.Public().(ed25519.PublicKey))
				if err != nil {
					b.Fatal(err)
				}
				o.Signer, o.Sink = sinkKey, sink
			}
			l, err := ledger.New(o)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				en := ev("bench", "", ledger.Detect)
				en.Service = fmt.Sprintf("svc-%d", i)
				if _, err := l.Record(ctx, en); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
