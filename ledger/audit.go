package ledger

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// TreeError names where a store's entries and its Merkle tree, or its tree and a signed
// checkpoint, part ways.
type TreeError struct {
	Leaf   int64  // 0-based leaf, -1 when the whole tree is at fault
	Seq    uint64 // the entry found at that leaf (0: none)
	Reason string
}

func (e *TreeError) Error() string {
	switch {
	case e.Leaf < 0:
		return "tree: " + e.Reason
	case e.Seq == 0:
		return fmt.Sprintf("leaf %d: %s", e.Leaf, e.Reason)
	}
	return fmt.Sprintf("leaf %d (entry seq %d): %s", e.Leaf, e.Seq, e.Reason)
}

// AuditTree checks a tenant's entries against the tree the store wrote as they were
// appended, and the tree against a signed checkpoint when cp is given: each entry's
// content must hash to its hash, and that hash must be the leaf recorded at its position;
// the tree must hold at least cp's entries, with cp's root. It names the first leaf that
// differs: an altered, deleted, swapped or inserted entry, or a truncated log.
func AuditTree(ctx context.Context, s Store, tenant string, cp *NoteCheckpoint) (tlog.Tree, error) {
	ts, ok := s.(TreeStore)
	if !ok {
		return tlog.Tree{}, fmt.Errorf("%w: this store keeps no tree", ErrNoTree)
	}
	head, err := TreeHead(ctx, ts, tenant)
	if err != nil {
		return head, err
	}
	if cp != nil {
		if head.N < cp.Tree.N {
			return head, &TreeError{Leaf: -1, Reason: fmt.Sprintf("truncated: the log has %d entries, a signed checkpoint has %d", head.N, cp.Tree.N) + lossHint(ctx, ts, tenant, head.N+1)}
		}
		at, err := TreeAt(ctx, ts, tenant, cp.Tree.N)
		if err != nil {
			return head, err
		}
		if at.Hash != cp.Tree.Hash {
			return head, &TreeError{Leaf: -1, Reason: fmt.Sprintf("the first %d entries have root %s, the signed checkpoint %s (history rewritten)", cp.Tree.N, at.Hash, cp.Tree.Hash) + lossHint(ctx, ts, tenant, cp.Tree.N)}
		}
	}
	var leaf int64
	for from := uint64(1); ; {
		page, err := s.Range(ctx, tenant, from, 4096)
		if err != nil {
			return head, err
		}
		if len(page) == 0 {
			break
		}
		idx := make([]int64, 0, len(page))
		for i := range page {
			if leaf+int64(i) < head.N {
				idx = append(idx, tlog.StoredHashIndex(0, leaf+int64(i)))
			}
		}
		recorded, err := ts.ReadHashes(ctx, tenant, idx)
		if err != nil {
			return head, err
		}
		for i := range page {
			e := &page[i]
			if leaf >= head.N {
				return head, &TreeError{Leaf: leaf, Seq: e.Seq, Reason: fmt.Sprintf("the tree has only %d leaves: this entry was inserted without being appended", head.N)}
			}
			h, err := e.ComputeHash()
			if err != nil || h != e.Hash {
				return head, &TreeError{Leaf: leaf, Seq: e.Seq, Reason: "content does not match its hash (altered)"}
			}
			lh, err := LeafHash(e.Hash)
			if err != nil || lh != recorded[i] {
				return head, &TreeError{Leaf: leaf, Seq: e.Seq, Reason: "not the entry the tree recorded at this leaf (altered, deleted, swapped or inserted)"}
			}
			leaf++
		}
		from = page[len(page)-1].Seq + 1
	}
	if leaf < head.N {
		return head, &TreeError{Leaf: leaf, Reason: fmt.Sprintf("missing: the tree has %d leaves, the log only %d entries (truncated)", head.N, leaf)}
	}
	return head, nil
}
