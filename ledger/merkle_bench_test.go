package ledger_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// bigLog is a MemStore with 10⁶ entries: one whole incident (detect … resolve) among
// questions of another, built once for the Merkle benchmarks.
var bigLog = sync.OnceValues(func() (*ledger.MemStore, string) {
	const n = 1_000_000
	ctx := context.Background()
	s := ledger.NewMemStore()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	tail := ledger.Tail{Seq: 0, Hash: ledger.GenesisHash}
	batch := make([]ledger.Entry, 0, 1000)
	stage := map[string]ledger.Stage{}
	inc := ledger.IncidentID(500_000)
	path := pathTo[ledger.Resolved]
	for seq := uint64(1); seq <= n; seq++ {
		var e ledger.Entry
		switch {
		case seq == 1:
			e = ev("acme", ledger.IncidentID(1), ledger.Detect)
			e.Service = "search"
		case seq >= 500_000 && seq < 500_000+uint64(len(path))*1000 && (seq-500_000)%1000 == 0:
			e = ev("acme", inc, path[(seq-500_000)/1000])
			if e.Event == ledger.Detect {
				e.Service = "checkout"
			}
		default:
			e = ev("acme", ledger.IncidentID(1), ledger.Question)
		}
		to, err := ledger.Next(stage[e.Incident], e.Event)
		if err != nil {
			panic(fmt.Sprintf("seq %d: %v", seq, err))
		}
		e.Seq, e.From, e.To, e.PrevHash = seq, stage[e.Incident], to, tail.Hash
		e.At = at.Add(time.Duration(seq) * time.Millisecond)
		stage[e.Incident] = to
		if e.Hash, err = e.ComputeHash(); err != nil {
			panic(err)
		}
		tail = ledger.Tail{Seq: seq, Hash: e.Hash}
		batch = append(batch, e)
		if len(batch) == cap(batch) || seq == n {
			prev := ledger.Tail{Seq: batch[0].Seq - 1, Hash: batch[0].PrevHash}
			if k, err := s.Append(ctx, "acme", prev, batch); err != nil || k != len(batch) {
				panic(fmt.Sprintf("append at %d: %d, %v", seq, k, err))
			}
			batch = batch[:0]
		}
	}
	return s, inc
})

// BenchmarkInclusionProof1M: an inclusion proof of one entry in a tree of 10⁶ entries,
// from the stored hashes (O(log n) reads), and its size.
func BenchmarkInclusionProof1M(b *testing.B) {
	s, _ := bigLog()
	ctx := context.Background()
	head, err := ledger.TreeHead(ctx, s, "acme")
	if err != nil || head.N != 1_000_000 {
		b.Fatal(head.N, err)
	}
	var size int
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p, err := ledger.InclusionProof(ctx, s, "acme", int64(i*7919)%head.N, head.N)
		if err != nil {
			b.Fatal(err)
		}
		size = len(p) * 32
	}
	b.ReportMetric(float64(size), "proof-bytes")
}

// BenchmarkVerifyBundle1M: `bot verify --bundle` of a whole incident (6 entries) proved in
// a tree of 10⁶ entries: decode, re-derive every hash, check every proof, fold.
func BenchmarkVerifyBundle1M(b *testing.B) {
	s, inc := bigLog()
	ls, key := logSigner(b, testKey)
	bundle, err := ledger.BuildBundle(context.Background(), s, ls, "acme", inc, nil)
	if err != nil {
		b.Fatal(err)
	}
	data, _ := json.Marshal(bundle)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := ledger.VerifyBundle(bytes.NewReader(data), ledger.BundleOptions{Key: key})
		if err != nil || rep.Entries != 6 {
			b.Fatal(rep, err)
		}
	}
	b.ReportMetric(float64(len(data)), "bundle-bytes")
}
