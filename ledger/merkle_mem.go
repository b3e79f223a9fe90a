package ledger

import (
	"context"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// memTree is a tenant's Merkle tree in a MemStore.
type memTree struct {
	hashes []tlog.Hash      // stored hashes, by tlog stored-hash index
	leaves int64            // leaves appended
	leafOf map[uint64]int64 // entry seq → leaf
	// lossLeaf, lossSeq: the latest loss marker's leaf and seq (lossSeq 0: none).
	lossLeaf int64
	lossSeq  uint64
}

func (t *memTree) read(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x < 0 || x >= int64(len(t.hashes)) {
			return nil, fmt.Errorf("%w: stored hash %d is not written", ErrNoTree, x)
		}
		out[i] = t.hashes[x]
	}
	return out, nil
}

// add appends the leaf of entry seq. Its data was checked before the append began.
func (t *memTree) add(seq uint64, data []byte) {
	hs, _, err := growTree(t.leaves, [][]byte{data}, t.read)
	if err != nil {
		panic(fmt.Sprintf("ledger: in-memory tree is inconsistent: %v", err)) // only reads what this tree wrote
	}
	t.hashes = append(t.hashes, hs...)
	if t.leafOf == nil {
		t.leafOf = map[uint64]int64{}
	}
	t.leafOf[seq] = t.leaves
	t.leaves++
}

// TreeSize implements TreeStore.
func (m *MemStore) TreeSize(ctx context.Context, tenant string) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tenant(tenant).merkle.leaves, nil
}

// ReadHashes implements TreeStore.
func (m *MemStore) ReadHashes(ctx context.Context, tenant string, indexes []int64) ([]tlog.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tenant(tenant).merkle.read(indexes)
}

// LeafIndex implements TreeStore.
func (m *MemStore) LeafIndex(ctx context.Context, tenant string, seq uint64) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, ok := m.tenant(tenant).merkle.leafOf[seq]
	if !ok {
		return 0, fmt.Errorf("%w: entry %d has no leaf", ErrNoTree, seq)
	}
	return i, nil
}

// TamperTree gives tests direct access to a tenant's stored tree hashes, to damage them.
func (m *MemStore) TamperTree(tenant string, f func(hashes []tlog.Hash) []tlog.Hash) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.tenant(tenant)
	mt.merkle.hashes = f(mt.merkle.hashes)
}

// LossLeaf implements LossLeafStore.
func (m *MemStore) LossLeaf(ctx context.Context, tenant string) (int64, uint64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	t := &m.tenant(tenant).merkle
	return t.lossLeaf, t.lossSeq, t.lossSeq != 0, nil
}
