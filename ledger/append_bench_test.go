package ledger_test

import (
	"context"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// BenchmarkAppendMem: one precomputed entry per MemStore.Append: the store's own cost of
// an append (stage index, incident index and, with the tree, its stored hashes).
func BenchmarkAppendMem(b *testing.B) {
	ctx := context.Background()
	s := ledger.NewMemStore()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	es := make([]ledger.Entry, b.N+1)
	prev := ledger.GenesisHash
	for i := range es {
		e := ev("acme", ledger.IncidentID(1), ledger.Question)
		e.From, e.To = ledger.Detected, ledger.Detected
		if i == 0 {
			e = ev("acme", ledger.IncidentID(1), ledger.Detect)
			e.To = ledger.Detected
		}
		e.Seq, e.PrevHash, e.At = uint64(i+1), prev, at.Add(time.Duration(i))
		e.Hash, _ = e.ComputeHash()
		prev = e.Hash
		es[i] = e
	}
	b.ResetTimer()
	for i := range es {
		tail := ledger.Tail{Seq: uint64(i), Hash: es[i].PrevHash}
		if n, err := s.Append(ctx, "acme", tail, es[i:i+1]); n != 1 || err != nil {
			b.Fatal(n, err)
		}
	}
}
