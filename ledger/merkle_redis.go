package ledger

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
	"golang.org/x/mod/sumdb/tlog"
)

// The Redis store keeps a tenant's Merkle tree in one hash, P{ae:T}:tree, written by the
// append script in the same atomic step as the entries it covers:
//
//	n        how many leaves the tree has
//	h<i>     the 32-byte stored hash at tlog stored-hash index i (written once)
//	s<seq>   the leaf of the entry with that seq
//	loss     "<leaf>:<seq>" of the latest loss marker, if any
//
// The hashes of an append are computed here, from the O(log n) roots of the tree's
// complete subtrees, and the script stores them only if the tail and the tree size are
// still those they were computed on.

func hashField(i int64) string { return "h" + strconv.FormatInt(i, 10) }

func parseStoredHash(v any, i int64) (tlog.Hash, error) {
	s, ok := v.(string)
	if !ok || len(s) != tlog.HashSize {
		return tlog.Hash{}, fmt.Errorf("%w: stored hash %d is missing", ErrNoTree, i)
	}
	var h tlog.Hash
	copy(h[:], s)
	return h, nil
}

// treeArgs computes the tree part of an append of entries on tail: the arguments the
// append script stores (see appendScript).
func (s *RedisStore) treeArgs(ctx context.Context, tenant string, tail Tail, entries []Entry) ([]any, error) {
	leaves, err := leafDatas(entries)
	if err != nil {
		return nil, err
	}
	k := s.keys(tenant)
	var n int64
	var front map[int64]tlog.Hash
	if c, ok := s.fronts.Load(tenant); ok {
		// The frontier this store saw after its last append: right unless another writer
		// appended since, which the script catches (the tail, then the tree size).
		n, front = c.(*treeFront).n, c.(*treeFront).front
	} else if n, front, err = s.readFront(ctx, k.tree, int64(tail.Seq)); err != nil {
		return nil, err
	} else {
		s.fronts.Store(tenant, &treeFront{n: n, front: front})
	}
	if n == 0 && tail.Seq > 0 {
		// A chain appended before the tree existed: build its tree once.
		if n, err = s.buildTree(ctx, tenant, tail); err != nil {
			return nil, err
		}
		if _, front, err = s.readFront(ctx, k.tree, n); err != nil {
			return nil, err
		}
		s.fronts.Store(tenant, &treeFront{n: n, front: front})
	}
	read := func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			h, ok := front[x]
			if !ok {
				return nil, fmt.Errorf("%w: stored hash %d is not a root of the tree of %d", ErrNoTree, x, n)
			}
			out[i] = h
		}
		return out, nil
	}
	hashes, ends, err := growTree(n, leaves, read)
	if err != nil {
		return nil, err
	}
	args := make([]any, 0, 2+len(ends)+len(hashes))
	args = append(args, strconv.FormatInt(n, 10), strconv.FormatInt(tlog.StoredHashIndex(0, n), 10))
	for _, e := range ends {
		args = append(args, strconv.FormatInt(e, 10))
	}
	for i := range hashes {
		args = append(args, hashes[i][:])
	}
	return args, nil
}

// treeFront is a tree's size and the roots of its complete subtrees.
type treeFront struct {
	n     int64
	front map[int64]tlog.Hash
}

// treeAppended remembers the frontier after an append (args: what treeArgs returned;
// res: the script's reply), or forgets it when the append did not go as computed.
func (s *RedisStore) treeAppended(tenant string, args []any, res []any) {
	if len(res) != 3 {
		s.fronts.Delete(tenant)
		return
	}
	appended, _ := res[0].(int64)
	code, _ := res[1].(int64)
	if code == 1 || code == 4 || appended == 0 {
		if code != 0 {
			s.fronts.Delete(tenant)
		}
		return
	}
	n, _ := strconv.ParseInt(args[0].(string), 10, 64)
	start, _ := strconv.ParseInt(args[1].(string), 10, 64)
	var old map[int64]tlog.Hash
	if c, ok := s.fronts.Load(tenant); ok && c.(*treeFront).n == n {
		old = c.(*treeFront).front
	}
	nends := 0 // after size and start: the ends (strings), then the hashes ([]byte)
	for nends < len(args)-2 {
		if _, ok := args[2+nends].(string); !ok {
			break
		}
		nends++
	}
	hashes := args[2+nends:]
	m := n + appended
	front := make(map[int64]tlog.Hash)
	for _, x := range treeFrontier(m) {
		if x >= start && x-start < int64(len(hashes)) {
			var h tlog.Hash
			copy(h[:], hashes[x-start].([]byte))
			front[x] = h
		} else if h, ok := old[x]; ok {
			front[x] = h
		} else {
			s.fronts.Delete(tenant) // not known here: read it next time
			return
		}
	}
	s.fronts.Store(tenant, &treeFront{n: m, front: front})
}

// readFront reads the tree size and the roots of its complete subtrees, guessing the size
// (the tail's seq, right unless seqs were skipped) to do it in one round trip.
func (s *RedisStore) readFront(ctx context.Context, key string, guess int64) (int64, map[int64]tlog.Hash, error) {
	for try := 0; try < 2; try++ {
		idx := treeFrontier(guess)
		fields := make([]string, 0, 1+len(idx))
		fields = append(fields, "n")
		for _, x := range idx {
			fields = append(fields, hashField(x))
		}
		v, err := s.c.HMGet(ctx, key, fields...).Result()
		if err != nil {
			return 0, nil, fmt.Errorf("read tree: %w", err)
		}
		n := int64(0)
		if ns, ok := v[0].(string); ok {
			if n, err = strconv.ParseInt(ns, 10, 64); err != nil || n < 0 {
				return 0, nil, fmt.Errorf("read tree: bad size %q", ns)
			}
		}
		if n != guess {
			guess = n
			continue
		}
		front := make(map[int64]tlog.Hash, len(idx))
		for i, x := range idx {
			h, err := parseStoredHash(v[i+1], x)
			if err != nil {
				return 0, nil, err
			}
			front[x] = h
		}
		return n, front, nil
	}
	// Appends moved the tree while it was read: the caller's tail is stale too.
	return 0, nil, ErrConflict
}

// buildTree builds the tree of a chain that has none, from its entries; it returns its size.
func (s *RedisStore) buildTree(ctx context.Context, tenant string, tail Tail) (int64, error) {
	k := s.keys(tenant)
	var hashes []tlog.Hash
	var leaves int64
	read := func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	}
	var last Tail
	for from := uint64(1); ; {
		page, err := s.Range(ctx, tenant, from, 5000)
		if err != nil {
			return 0, err
		}
		if len(page) == 0 {
			break
		}
		datas, err := leafDatas(page)
		if err != nil {
			return 0, err
		}
		pipe := s.c.Pipeline()
		for i := range page {
			hs, _, err := growTree(leaves, datas[i:i+1], read)
			if err != nil {
				return 0, err
			}
			start := int64(len(hashes))
			hashes = append(hashes, hs...)
			f := make([]any, 0, 2*len(hs)+2)
			for j := range hs {
				f = append(f, hashField(start+int64(j)), hs[j][:])
			}
			f = append(f, "s"+strconv.FormatUint(page[i].Seq, 10), leaves)
			pipe.HSet(ctx, k.tree, f...)
			leaves++
		}
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, fmt.Errorf("write tree: %w", err)
		}
		last = Tail{Seq: page[len(page)-1].Seq, Hash: page[len(page)-1].Hash}
		from = last.Seq + 1
	}
	if !last.Same(tail) {
		return 0, ErrConflict // the caller reads the tail again, its counter with it
	}
	// Every hash written is a function of the entries before it, so a concurrent builder
	// writes the same values; the size is set only if the chain did not move meanwhile.
	ok, err := setTreeSizeScript.Run(ctx, s.c, []string{k.tail, k.tree}, strconv.FormatUint(tail.Seq, 10), tail.Hash, leaves).Int()
	if err != nil {
		return 0, fmt.Errorf("write tree size: %w", err)
	}
	if ok == 0 {
		return 0, ErrConflict
	}
	return leaves, nil
}

var setTreeSizeScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'seq') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'hash') ~= ARGV[2] then return 0 end
local n = redis.call('HGET', KEYS[2], 'n')
if n and n ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[2], 'n', ARGV[3])
return 1
`)

// TreeSize implements TreeStore.
func (s *RedisStore) TreeSize(ctx context.Context, tenant string) (int64, error) {
	v, err := s.c.HGet(ctx, s.keys(tenant).tree, "n").Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read tree size: %w", err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("read tree size: bad size %q", v)
	}
	return n, nil
}

// ReadHashes implements TreeStore: one HMGET.
func (s *RedisStore) ReadHashes(ctx context.Context, tenant string, indexes []int64) ([]tlog.Hash, error) {
	if len(indexes) == 0 {
		return nil, nil
	}
	fields := make([]string, len(indexes))
	for i, x := range indexes {
		fields[i] = hashField(x)
	}
	v, err := s.c.HMGet(ctx, s.keys(tenant).tree, fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("read tree hashes: %w", err)
	}
	out := make([]tlog.Hash, len(indexes))
	for i := range v {
		if out[i], err = parseStoredHash(v[i], indexes[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// LeafIndex implements TreeStore.
func (s *RedisStore) LeafIndex(ctx context.Context, tenant string, seq uint64) (int64, error) {
	v, err := s.c.HGet(ctx, s.keys(tenant).tree, "s"+strconv.FormatUint(seq, 10)).Result()
	if errors.Is(err, redis.Nil) {
		return 0, fmt.Errorf("%w: entry %d has no leaf", ErrNoTree, seq)
	}
	if err != nil {
		return 0, fmt.Errorf("read leaf of %d: %w", seq, err)
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read leaf of %d: bad index %q", seq, v)
	}
	return n, nil
}

// TreeKey returns the key of a tenant's Merkle tree (for tests that damage it).
func (s *RedisStore) TreeKey(tenant string) string { return s.keys(tenant).tree }

// LossLeaf implements LossLeafStore.
func (s *RedisStore) LossLeaf(ctx context.Context, tenant string) (int64, uint64, bool, error) {
	v, err := s.c.HGet(ctx, s.keys(tenant).tree, "loss").Result()
	if errors.Is(err, redis.Nil) {
		return 0, 0, false, nil
	}
	if err != nil {
		return 0, 0, false, fmt.Errorf("read loss marker's leaf: %w", err)
	}
	l, q, _ := strings.Cut(v, ":")
	leaf, err1 := strconv.ParseInt(l, 10, 64)
	seq, err2 := strconv.ParseUint(q, 10, 64)
	if err1 != nil || err2 != nil {
		return 0, 0, false, fmt.Errorf("read loss marker's leaf: bad value %q", v)
	}
	return leaf, seq, true, nil
}
