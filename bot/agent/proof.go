package agent

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/alertengine/alertengine/ledger"
)

// checkpoint signs the tenant's tree head as a checkpoint note and proves the entry seq
// in it.
func (g *Gate) checkpoint(ctx context.Context, tenant string, seq uint64) (*TreeRef, error) {
	leaf, err := g.o.Trees.LeafIndex(ctx, tenant, seq)
	if err != nil {
		return nil, err
	}
	msg, tree, err := g.note.SignHead(ctx, g.o.Trees, tenant)
	if err != nil {
		return nil, err
	}
	if leaf >= tree.N {
		return nil, fmt.Errorf("entry %d (leaf %d) is not in the tree of %d leaves", seq, leaf, tree.N)
	}
	p, err := ledger.InclusionProof(ctx, g.o.Trees, tenant, leaf, tree.N)
	if err != nil {
		return nil, err
	}
	proof := make([]string, len(p))
	for i := range p {
		proof[i] = base64.StdEncoding.EncodeToString(p[i][:])
	}
	return &TreeRef{Size: uint64(tree.N), Root: tree.Hash.String(), Note: string(msg), Leaf: leaf, Proof: proof}, nil
}

// ErrReceiptProof: the receipt's checkpoint or inclusion proof does not hold.
var ErrReceiptProof = errors.New("receipt's ledger proof fails")

// Proven is what a receipt's ledger proof established.
type Proven struct {
	// Present is false for a receipt that carries no checkpoint and proof (issued before
	// receipts carried them, or by a gate whose store keeps no tree).
	Present bool
	// Origin is the checkpoint note's origin line; Size its tree size; Leaf the decision
	// entry's leaf.
	Origin string
	Size   int64
	Leaf   int64
}

// VerifyProof checks what a receipt cites in the ledger: its checkpoint is a note signed
// by pub for the receipt's tenant, of the tree the receipt names, and the decision entry
// (r.Ledger.Hash) is at r.Checkpoint.Leaf of that tree (tlog.CheckRecord). A receipt
// without a checkpoint proves nothing and is not an error: Present is false.
func VerifyProof(r Receipt, pub ed25519.PublicKey) (Proven, error) {
	c := r.Checkpoint
	if c == nil || (c.Note == "" && len(c.Proof) == 0) {
		return Proven{}, nil
	}
	fail := func(format string, a ...any) (Proven, error) {
		return Proven{Present: true}, rerr(ErrReceiptProof, format, a...)
	}
	if c.Note == "" {
		return fail("the receipt cites a tree of %d entries but carries no signed checkpoint", c.Size)
	}
	first, _, _ := strings.Cut(c.Note, "\n")
	i := strings.LastIndexByte(first, '/')
	if i <= 0 {
		return fail("checkpoint: origin %q does not end in /<tenant>", clip(first, 80))
	}
	vkey, err := note.NewEd25519VerifierKey(first[:i], pub)
	if err != nil {
		return fail("checkpoint: %v", err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return fail("checkpoint: %v", err)
	}
	cp, err := ledger.OpenCheckpointNote([]byte(c.Note), []note.Verifier{v})
	if err != nil {
		return fail("checkpoint not signed by key %s: %v", KeyID(pub), strings.TrimPrefix(err.Error(), ledger.ErrBadNote.Error()+": "))
	}
	p := Proven{Present: true, Origin: cp.Origin, Size: cp.Tree.N, Leaf: c.Leaf}
	switch {
	case cp.Tenant != r.Tenant:
		return p, rerr(ErrReceiptProof, "checkpoint is of tenant %s, the receipt of %s", cp.Tenant, r.Tenant)
	case uint64(cp.Tree.N) != c.Size || cp.Tree.Hash.String() != c.Root:
		return p, rerr(ErrReceiptProof, "checkpoint's tree (%d entries, root %s) is not the one the receipt names (%d, %s)", cp.Tree.N, cp.Tree.Hash, c.Size, c.Root)
	case c.Leaf < 0 || c.Leaf >= cp.Tree.N:
		return p, rerr(ErrReceiptProof, "leaf %d is outside the checkpoint's tree of %d entries", c.Leaf, cp.Tree.N)
	}
	if len(c.Proof) > 64 {
		return p, rerr(ErrReceiptProof, "inclusion proof of %d hashes is longer than any tree's", len(c.Proof))
	}
	proof := make(tlog.RecordProof, len(c.Proof))
	for i, s := range c.Proof {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return p, rerr(ErrReceiptProof, "inclusion proof hash %d is not 32 bytes of base64", i+1)
		}
		copy(proof[i][:], b)
	}
	lh, err := ledger.LeafHash(r.Ledger.Hash)
	if err != nil {
		return p, rerr(ErrReceiptProof, "ledger entry hash %q: %v", clip(r.Ledger.Hash, 80), err)
	}
	if err := tlog.CheckRecord(proof, cp.Tree.N, cp.Tree.Hash, c.Leaf, lh); err != nil {
		return p, rerr(ErrReceiptProof, "ledger entry %d (hash %s) is not at leaf %d of the signed tree of %d entries: inclusion proof fails", r.Ledger.Seq, clip(r.Ledger.Hash, 16), c.Leaf, cp.Tree.N)
	}
	return p, nil
}
