package ledger

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// The Merkle tree. Beside the hash chain, every store keeps an RFC 9162 Merkle tree over a
// tenant's entries, in append order: leaf i is the i-th entry appended (0-based), and its
// data is the entry's 32-byte hash, so the leaf hash is SHA-256(0x00 ‖ entry hash). The
// chain names the entry that broke; the tree proves that one entry belongs to a signed
// tree head (inclusion) and that a later head extends an earlier one (consistency), each
// in O(log n) hashes. The tree is kept as golang.org/x/mod/sumdb/tlog's stored hashes:
// every hash of a complete subtree, indexed by tlog.StoredHashIndex, written once and
// never changed, so a proof reads O(log n) of them.

// ErrNoTree: the store keeps no Merkle tree for this tenant (yet).
var ErrNoTree = errors.New("no Merkle tree")

// TreeStore is implemented by stores that keep each tenant's Merkle tree beside the chain,
// updated in the same atomic step as the append.
type TreeStore interface {
	// TreeSize returns how many leaves the tenant's tree has.
	TreeSize(ctx context.Context, tenant string) (int64, error)
	// ReadHashes returns the stored hashes at the given tlog stored-hash indexes.
	ReadHashes(ctx context.Context, tenant string, indexes []int64) ([]tlog.Hash, error)
	// LeafIndex returns the leaf of the entry with sequence number seq (ErrNoTree if the
	// entry has no leaf).
	LeafIndex(ctx context.Context, tenant string, seq uint64) (int64, error)
}

// LossLeafStore is implemented by tree stores that note where the latest loss marker sits
// in the tree. A loss does not restart the tree: its leaves are the entries present, in
// append order, the marker among them, and no leaf is made up for a lost seq. So a tree
// head signed before a loss that covers leaves the store lost is not a prefix of the tree
// after it, and no consistency proof from it exists: provers refuse it naming the marker.
type LossLeafStore interface {
	// LossLeaf returns the leaf and seq of the tenant's latest loss marker; ok false: none.
	LossLeaf(ctx context.Context, tenant string) (leaf int64, seq uint64, ok bool, err error)
}

// lossHint says, when the tenant's tree holds a loss marker at or below leaf n, that a
// tree head of n leaves from before the loss cannot be consistent with the tree after it.
func lossHint(ctx context.Context, ts TreeStore, tenant string, n int64) string {
	ll, ok := ts.(LossLeafStore)
	if !ok {
		return ""
	}
	leaf, seq, ok, err := ll.LossLeaf(ctx, tenant)
	if err != nil || !ok || leaf >= n {
		return ""
	}
	return fmt.Sprintf("; the log continues past a ledger loss at its loss marker (entry %d, leaf %d): a checkpoint signed before the loss covers entries the store lost, and no later checkpoint extends it", seq, leaf)
}

// LeafData is the data of an entry's leaf: its hash as 32 bytes.
func LeafData(entryHash string) ([]byte, error) {
	b, err := hex.DecodeString(entryHash)
	if err != nil || len(b) != tlog.HashSize {
		return nil, fmt.Errorf("%w: hash is not 64 hex digits", ErrBadEntry)
	}
	return b, nil
}

// LeafHash is the Merkle leaf hash of an entry hash: SHA-256(0x00 ‖ hash bytes).
func LeafHash(entryHash string) (tlog.Hash, error) {
	b, err := LeafData(entryHash)
	if err != nil {
		return tlog.Hash{}, err
	}
	return tlog.RecordHash(b), nil
}

// leafDatas decodes the leaf data of a batch, so a store refuses a malformed hash before
// it changes anything.
func leafDatas(entries []Entry) ([][]byte, error) {
	out := make([][]byte, len(entries))
	for i := range entries {
		b, err := LeafData(entries[i].Hash)
		if err != nil {
			return nil, fmt.Errorf("entry %d: %w", entries[i].Seq, err)
		}
		out[i] = b
	}
	return out, nil
}

// HashReader returns a tlog.HashReader over a tenant's stored tree.
func HashReader(ctx context.Context, ts TreeStore, tenant string) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		return ts.ReadHashes(ctx, tenant, idx)
	})
}

// TreeHead returns the tenant's current tree size and root hash.
func TreeHead(ctx context.Context, ts TreeStore, tenant string) (tlog.Tree, error) {
	n, err := ts.TreeSize(ctx, tenant)
	if err != nil {
		return tlog.Tree{}, err
	}
	return TreeAt(ctx, ts, tenant, n)
}

// TreeAt returns the root of the tenant's tree as it was at n leaves.
func TreeAt(ctx context.Context, ts TreeStore, tenant string, n int64) (tlog.Tree, error) {
	if n == 0 {
		return tlog.Tree{N: 0, Hash: EmptyTreeHash()}, nil
	}
	h, err := tlog.TreeHash(n, HashReader(ctx, ts, tenant))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("tree hash at %d: %w", n, err)
	}
	return tlog.Tree{N: n, Hash: h}, nil
}

// EmptyTreeHash is the RFC 9162 root of an empty tree: SHA-256 of nothing.
func EmptyTreeHash() tlog.Hash {
	return tlog.Hash{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
		0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}
}

// InclusionProof proves that leaf is in the tenant's tree of size n.
func InclusionProof(ctx context.Context, ts TreeStore, tenant string, leaf, n int64) (tlog.RecordProof, error) {
	p, err := tlog.ProveRecord(n, leaf, HashReader(ctx, ts, tenant))
	if err != nil {
		return nil, fmt.Errorf("prove leaf %d in tree %d: %w", leaf, n, err)
	}
	return p, nil
}

// ConsistencyProof proves that the tenant's tree of size n extends its tree of size old.
func ConsistencyProof(ctx context.Context, ts TreeStore, tenant string, old, n int64) (tlog.TreeProof, error) {
	p, err := tlog.ProveTree(n, old, HashReader(ctx, ts, tenant))
	if err != nil {
		return nil, fmt.Errorf("prove tree %d extends %d: %w", n, old, err)
	}
	return p, nil
}

// treeFrontier lists the stored-hash indexes appending leaf n needs to read: the roots of
// the complete subtrees of a tree of n leaves.
func treeFrontier(n int64) []int64 {
	var idx []int64
	for level := 0; n>>level > 0; level++ {
		if (n>>level)&1 == 1 {
			idx = append(idx, tlog.StoredHashIndex(level, (n>>level)-1))
		}
	}
	return idx
}

// growTree computes the stored hashes of appending leaves (from leaf n on), reading earlier
// hashes through read; it returns all of them, contiguous from StoredHashIndex(0, n), and
// ends[i], the end of leaf n+i's hashes (its successor's start).
func growTree(n int64, leaves [][]byte, read func(idx []int64) ([]tlog.Hash, error)) ([]tlog.Hash, []int64, error) {
	start := tlog.StoredHashIndex(0, n)
	var out []tlog.Hash
	ends := make([]int64, len(leaves))
	r := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		res := make([]tlog.Hash, len(idx))
		var miss []int64
		for i, x := range idx {
			if x >= start {
				if x-start >= int64(len(out)) {
					return nil, fmt.Errorf("tree hash %d not yet written", x)
				}
				res[i] = out[x-start]
			} else {
				miss = append(miss, x)
			}
		}
		if len(miss) > 0 {
			got, err := read(miss)
			if err != nil {
				return nil, err
			}
			j := 0
			for i, x := range idx {
				if x < start {
					res[i] = got[j]
					j++
				}
			}
		}
		return res, nil
	})
	for i, d := range leaves {
		hs, err := tlog.StoredHashes(n+int64(i), d, r)
		if err != nil {
			return nil, nil, fmt.Errorf("tree leaf %d: %w", n+int64(i), err)
		}
		out = append(out, hs...)
		ends[i] = start + int64(len(out))
	}
	return out, ends, nil
}
