package ledger_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"golang.org/x/mod/sumdb/tlog"
)

// independentRoot recomputes the RFC 9162 root of entries with tlog from scratch, leaf
// data the 32-byte entry hash, without the store's tree.
func independentRoot(t *testing.T, entries []ledger.Entry) tlog.Hash {
	t.Helper()
	var stored []tlog.Hash
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = stored[x]
		}
		return out, nil
	})
	for i, e := range entries {
		d, err := ledger.LeafData(e.Hash)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := tlog.StoredHashes(int64(i), d, r)
		if err != nil {
			t.Fatal(err)
		}
		stored = append(stored, hs...)
	}
	h, err := tlog.TreeHash(int64(len(entries)), r)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func allEntries(t *testing.T, s ledger.Store, tenant string) []ledger.Entry {
	t.Helper()
	es, err := s.Range(context.Background(), tenant, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// TestMerkleTreeContract: both stores keep a tree whose root is the RFC 9162 root of the
// chain's entry hashes in order, whatever the batching of concurrent appends, and whose
// proofs verify with tlog's own checkers.
func TestMerkleTreeContract(t *testing.T) {
	t.Parallel()
	for name, f := range factories {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			stores := f(t, 3)
			var wg sync.WaitGroup
			for r := range stores {
				l := newLedger(t, stores[r])
				for w := 0; w < 4; w++ {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; i < 15; i++ {
							en := ev("acme", "", ledger.Detect)
							en.Service = fmt.Sprintf("svc-%d-%d-%d", r, w, i)
							if _, err := l.Record(ctx, en); err != nil {
								t.Error(err)
								return
							}
						}
					}()
				}
			}
			wg.Wait()
			ts := stores[0].(ledger.TreeStore)
			entries := allEntries(t, stores[0], "acme")
			head, err := ledger.TreeHead(ctx, ts, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if head.N != int64(len(entries)) || head.N != 180 {
				t.Fatalf("tree has %d leaves, chain %d entries, want 180", head.N, len(entries))
			}
			if want := independentRoot(t, entries); head.Hash != want {
				t.Fatalf("store's root %s, recomputed root %s", head.Hash, want)
			}
			for _, e := range entries {
				leaf, err := ts.LeafIndex(ctx, "acme", e.Seq)
				if err != nil || leaf != int64(e.Seq-1) {
					t.Fatalf("leaf of seq %d: %d, %v", e.Seq, leaf, err)
				}
				p, err := ledger.InclusionProof(ctx, ts, "acme", leaf, head.N)
				if err != nil {
					t.Fatal(err)
				}
				lh, _ := ledger.LeafHash(e.Hash)
				if err := tlog.CheckRecord(p, head.N, head.Hash, leaf, lh); err != nil {
					t.Fatalf("inclusion of seq %d: %v", e.Seq, err)
				}
			}
			for _, old := range []int64{1, 7, 64, 100, 179} {
				p, err := ledger.ConsistencyProof(ctx, ts, "acme", old, head.N)
				if err != nil {
					t.Fatal(err)
				}
				oldRoot := independentRoot(t, entries[:old])
				if err := tlog.CheckTree(p, head.N, head.Hash, old, oldRoot); err != nil {
					t.Fatalf("consistency %d→%d: %v", old, head.N, err)
				}
			}
		})
	}
}

// TestMerkleTreePartialAppend: an append refused half way stores the tree of exactly the
// entries it kept.
func TestMerkleTreePartialAppend(t *testing.T) {
	t.Parallel()
	for name, f := range factories {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := f(t, 1)[0]
			l := newLedger(t, s)
			for i := 0; i < 3; i++ {
				en := ev("acme", "", ledger.Detect)
				en.Service = fmt.Sprintf("svc-%d", i)
				if _, err := l.Record(ctx, en); err != nil {
					t.Fatal(err)
				}
			}
			tail, _ := s.Tail(ctx, "acme")
			mk := func(seq uint64, prev string, from ledger.Stage, svc string) ledger.Entry {
				e := ev("acme", ledger.IncidentID(seq), ledger.Detect)
				e.Seq, e.PrevHash, e.From, e.To, e.Service = seq, prev, from, ledger.Detected, svc
				e.At = e.At.Add(1)
				h, err := e.ComputeHash()
				if err != nil {
					t.Fatal(err)
				}
				e.Hash = h
				return e
			}
			a := mk(4, tail.Hash, ledger.None, "svc-new")
			b := mk(5, a.Hash, ledger.Detected, "svc-other") // wrong: incident 5 does not exist
			n, err := s.Append(ctx, "acme", tail, []ledger.Entry{a, b})
			if n != 1 || err == nil {
				t.Fatalf("append: %d, %v; want 1 and a stage conflict", n, err)
			}
			entries := allEntries(t, s, "acme")
			head, err := ledger.TreeHead(ctx, s.(ledger.TreeStore), "acme")
			if err != nil {
				t.Fatal(err)
			}
			if head.N != 4 || len(entries) != 4 || head.Hash != independentRoot(t, entries) {
				t.Fatalf("tree %d leaves for %d entries (root match %v)", head.N, len(entries), head.Hash == independentRoot(t, entries))
			}
		})
	}
}

// TestRedisTreeBuiltForOldChain: a chain appended before the tree existed gets its tree
// on its next append, equal to the tree it would have had.
func TestRedisTreeBuiltForOldChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := ledgertest.NewServer(t)
	c := srv.Client(t)
	s := ledger.NewRedisStore(c, srv.Prefix(t))
	l := newLedger(t, s)
	record := func(i int) {
		en := ev("acme", "", ledger.Detect)
		en.Service = fmt.Sprintf("svc-%d", i)
		if _, err := l.Record(ctx, en); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 37; i++ {
		record(i)
	}
	if err := c.Del(ctx, s.TreeKey("acme")).Err(); err != nil {
		t.Fatal(err)
	}
	record(99)
	entries := allEntries(t, s, "acme")
	head, err := ledger.TreeHead(ctx, s, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if head.N != 38 || head.Hash != independentRoot(t, entries) {
		t.Fatalf("rebuilt tree: %d leaves, root matches %v", head.N, head.Hash == independentRoot(t, entries))
	}
}
