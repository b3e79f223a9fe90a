package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Incident bundles. `bot prove` writes one incident's entries in full, each with its
// inclusion proof against a checkpoint note of the tenant's tree; `bot verify --bundle`
// checks it offline, re-deriving every entry's hash from its content (so a bundle of
// hashes alone never passes) and every proof hash through tlog.CheckRecord.

// BundleFormat names the incident bundle's format.
const BundleFormat = "alertengine-incident-bundle/v1"

// MaxBundleSize bounds the bundle a verifier reads.
const MaxBundleSize = 32 << 20

// Bundle is an incident's entries with their inclusion proofs.
type Bundle struct {
	Format     string        `json:"format"`
	Tenant     string        `json:"tenant"`
	Incident   string        `json:"incident"`
	Checkpoint string        `json:"checkpoint"` // the signed checkpoint note
	Verifier   string        `json:"verifier"`   // the ledger key's verifier string (unpinned checks)
	Entries    []BundleEntry `json:"entries"`
}

// BundleEntry is one entry (its stored form), its leaf and its inclusion proof.
type BundleEntry struct {
	Leaf  int64           `json:"leaf"`
	Entry json.RawMessage `json:"entry"`
	Proof []string        `json:"proof"`
}

// LogSigner signs a tenant's checkpoint notes.
type LogSigner struct {
	Origin   string      // the origin's first part: notes are for "<Origin>/<tenant>"
	Signer   note.Signer // the ledger key as a note signer
	Verifier string      // its verifier string
}

// SignHead signs the tenant's current tree head.
func (s LogSigner) SignHead(ctx context.Context, ts TreeStore, tenant string) ([]byte, tlog.Tree, error) {
	tree, err := TreeHead(ctx, ts, tenant)
	if err != nil {
		return nil, tree, err
	}
	msg, err := SignCheckpointNote(s.Signer, s.Origin, tenant, tree)
	return msg, tree, err
}

// BuildBundle proves an incident's entries against a checkpoint note: against, when
// given (a checkpoint of this log, e.g. one witnesses cosigned, whose root must be the
// store's tree at its size), else a newly signed one. Entries appended after the
// checkpoint are left out.
func BuildBundle(ctx context.Context, s Store, ls LogSigner, tenant, incident string, against []byte) (*Bundle, error) {
	ts, ok := s.(TreeStore)
	if !ok {
		return nil, fmt.Errorf("%w: this store keeps no tree", ErrNoTree)
	}
	hist, err := s.History(ctx, tenant, incident)
	if err != nil {
		return nil, err
	}
	if len(hist) == 0 {
		return nil, fmt.Errorf("no incident %s for tenant %s", incident, tenant)
	}
	msg, tree, err := against, tlog.Tree{}, error(nil)
	if against == nil {
		msg, tree, err = ls.SignHead(ctx, ts, tenant)
	} else {
		tree, err = ls.checkOwn(ctx, ts, tenant, against)
	}
	if err != nil {
		return nil, err
	}
	b := &Bundle{Format: BundleFormat, Tenant: tenant, Incident: incident, Checkpoint: string(msg), Verifier: ls.Verifier}
	for _, e := range hist {
		leaf, err := ts.LeafIndex(ctx, tenant, e.Seq)
		if err != nil {
			return nil, err
		}
		if leaf >= tree.N {
			continue // appended after the head was read
		}
		p, err := InclusionProof(ctx, ts, tenant, leaf, tree.N)
		if err != nil {
			return nil, err
		}
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		b.Entries = append(b.Entries, BundleEntry{Leaf: leaf, Entry: raw, Proof: encodeProof(p)})
	}
	return b, nil
}

// BundleOptions says which keys a bundle's checkpoint must be signed by.
type BundleOptions struct {
	// Key is the pinned ledger key; nil uses the bundle's own verifier string (not pinned).
	Key note.Verifier
	// Witnesses must each have cosigned the checkpoint.
	Witnesses []note.Verifier
}

// BundleReport is what a verified bundle proved.
type BundleReport struct {
	Tenant, Incident string
	Entries          int
	Tree             tlog.Tree
	Origin           string
	Pinned           bool
	Witnesses        []string
	Folded           Incident // the incident the entries fold into
}

// BundleError names the bundle entry that failed (1-based position, and its seq).
type BundleError struct {
	Position int
	Seq      uint64
	Reason   string
}

func (e *BundleError) Error() string {
	if e.Seq == 0 {
		return fmt.Sprintf("bundle entry %d: %s", e.Position, e.Reason)
	}
	return fmt.Sprintf("bundle entry %d (seq %d): %s", e.Position, e.Seq, e.Reason)
}

// ErrBadBundle is the cause of a bundle that is not even well-formed.
var ErrBadBundle = errors.New("bad bundle")

// VerifyBundle reads and verifies an incident bundle offline.
func VerifyBundle(r io.Reader, opts BundleOptions) (BundleReport, error) {
	data, err := io.ReadAll(io.LimitReader(r, MaxBundleSize+1))
	if err != nil {
		return BundleReport{}, fmt.Errorf("read bundle: %w", err)
	}
	if len(data) > MaxBundleSize {
		return BundleReport{}, fmt.Errorf("%w: larger than %d bytes", ErrBadBundle, MaxBundleSize)
	}
	var b Bundle
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return BundleReport{}, fmt.Errorf("%w: %v", ErrBadBundle, err)
	}
	if b.Format != BundleFormat {
		return BundleReport{}, fmt.Errorf("%w: format %q, want %s", ErrBadBundle, b.Format, BundleFormat)
	}
	rep := BundleReport{Tenant: b.Tenant, Incident: b.Incident, Pinned: opts.Key != nil}
	key := opts.Key
	if key == nil {
		if key, err = ParseVerifier(b.Verifier); err != nil {
			return rep, fmt.Errorf("%w: its verifier: %w", ErrBadBundle, err)
		}
	}
	required := append([]note.Verifier{key}, opts.Witnesses...)
	cp, err := OpenCheckpointNote([]byte(b.Checkpoint), nil, required...)
	if err != nil {
		return rep, fmt.Errorf("checkpoint: %w", err)
	}
	rep.Tree, rep.Origin = cp.Tree, cp.Origin
	for _, w := range opts.Witnesses {
		rep.Witnesses = append(rep.Witnesses, w.Name())
	}
	if cp.Tenant != b.Tenant {
		return rep, fmt.Errorf("%w: checkpoint is for tenant %q, bundle for %q", ErrBadBundle, cp.Tenant, b.Tenant)
	}
	if len(b.Entries) == 0 {
		return rep, fmt.Errorf("%w: no entries", ErrBadBundle)
	}
	entries := make([]Entry, 0, len(b.Entries))
	var lastLeaf int64 = -1
	for i, be := range b.Entries {
		bad := func(seq uint64, format string, args ...any) error {
			return &BundleError{Position: i + 1, Seq: seq, Reason: fmt.Sprintf(format, args...)}
		}
		e, err := DecodeEntry(be.Entry)
		if err != nil {
			return rep, bad(0, "%v (altered, or not an entry)", err)
		}
		switch {
		case e.Tenant != b.Tenant:
			return rep, bad(e.Seq, "belongs to tenant %q, not %q", e.Tenant, b.Tenant)
		case e.Incident != b.Incident:
			return rep, bad(e.Seq, "belongs to incident %s, not %s", e.Incident, b.Incident)
		case be.Leaf < 0 || be.Leaf >= cp.Tree.N:
			return rep, bad(e.Seq, "leaf %d is outside the signed tree of %d entries", be.Leaf, cp.Tree.N)
		case be.Leaf <= lastLeaf:
			return rep, bad(e.Seq, "leaf %d is not after the previous entry's leaf %d (reordered or duplicated)", be.Leaf, lastLeaf)
		}
		lastLeaf = be.Leaf
		proof, err := decodeProof(be.Proof)
		if err != nil {
			return rep, bad(e.Seq, "%v", err)
		}
		lh, err := LeafHash(e.Hash)
		if err != nil {
			return rep, bad(e.Seq, "%v", err)
		}
		if err := tlog.CheckRecord(proof, cp.Tree.N, cp.Tree.Hash, be.Leaf, lh); err != nil {
			return rep, bad(e.Seq, "is not at leaf %d of the signed tree of %d entries: inclusion proof fails (%v)", be.Leaf, cp.Tree.N, err)
		}
		entries = append(entries, e)
	}
	in, err := Fold(entries)
	if err != nil {
		return rep, fmt.Errorf("%w: the entries do not make a whole incident (one missing?): %w", ErrBadBundle, err)
	}
	rep.Entries, rep.Folded = len(entries), in
	return rep, nil
}

// ProveConsistency proves that checkpoint note newNote extends oldNote, both of this log
// (signed by ls), from the store's tree. A note whose root is not the store's tree at its
// size is refused: the store and that checkpoint disagree (a fork, or a rewritten store).
func ProveConsistency(ctx context.Context, s Store, ls LogSigner, oldNote, newNote []byte) (*ConsistencyBundle, error) {
	ts, ok := s.(TreeStore)
	if !ok {
		return nil, fmt.Errorf("%w: this store keeps no tree", ErrNoTree)
	}
	cur, err := ParseCheckpointText(noteText(newNote))
	if err != nil {
		return nil, fmt.Errorf("new checkpoint: %w", err)
	}
	var trees [2]tlog.Tree
	for i, msg := range [][]byte{oldNote, newNote} {
		if trees[i], err = ls.checkOwn(ctx, ts, cur.Tenant, msg); err != nil {
			return nil, fmt.Errorf("%s checkpoint: %w", [2]string{"old", "new"}[i], err)
		}
	}
	old, n := trees[0], trees[1]
	if old.N > n.N {
		return nil, fmt.Errorf("the old checkpoint (%d entries) is larger than the new one (%d)", old.N, n.N)
	}
	var proof tlog.TreeProof
	if old.N < n.N {
		if proof, err = ConsistencyProof(ctx, ts, cur.Tenant, old.N, n.N); err != nil {
			return nil, err
		}
	}
	return &ConsistencyBundle{Format: ConsistencyFormat, Old: string(oldNote), New: string(newNote), Proof: encodeProof(proof)}, nil
}

// checkOwn checks that msg is a checkpoint note of this log for tenant whose root is the
// store's tree at its size, and returns that tree.
func (ls LogSigner) checkOwn(ctx context.Context, ts TreeStore, tenant string, msg []byte) (tlog.Tree, error) {
	v, err := ParseVerifier(ls.Verifier)
	if err != nil {
		return tlog.Tree{}, err
	}
	cp, err := OpenCheckpointNote(msg, nil, v)
	if err != nil {
		return tlog.Tree{}, err
	}
	if cp.Origin != ls.Origin+"/"+tenant {
		return tlog.Tree{}, fmt.Errorf("%w: checkpoint of %s, not %s/%s", ErrBadNote, cp.Origin, ls.Origin, tenant)
	}
	n, err := ts.TreeSize(ctx, tenant)
	if err != nil {
		return tlog.Tree{}, err
	}
	if cp.Tree.N > n {
		return tlog.Tree{}, &TreeError{Leaf: -1, Reason: fmt.Sprintf("truncated: the log has %d entries, a signed checkpoint has %d", n, cp.Tree.N) + lossHint(ctx, ts, tenant, n+1)}
	}
	at, err := TreeAt(ctx, ts, tenant, cp.Tree.N)
	if err != nil {
		return tlog.Tree{}, err
	}
	if at.Hash != cp.Tree.Hash {
		return tlog.Tree{}, &TreeError{Leaf: -1, Reason: fmt.Sprintf("the first %d entries have root %s, the signed checkpoint %s (history rewritten)", cp.Tree.N, at.Hash, cp.Tree.Hash) + lossHint(ctx, ts, tenant, cp.Tree.N)}
	}
	return cp.Tree, nil
}

// noteText is the text of a note, before its blank line and signatures.
func noteText(msg []byte) string {
	text, _, _ := strings.Cut(string(msg), "\n\n")
	return text + "\n"
}
