package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The drill suite: each way of damaging a ledger an auditor must catch, caught by the
// Merkle tree, the signed checkpoint notes or a witness, naming what and where.

var (
	witnessKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	drillT0    = time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
)

type drillLog struct {
	t    *testing.T
	ctx  context.Context
	s    *ledger.MemStore
	ls   ledger.LogSigner
	key  note.Verifier
	inc  string // the incident with a whole lifecycle: detect … resolve
	size int
}

func logSigner(t testing.TB, key ed25519.PrivateKey) (ledger.LogSigner, note.Verifier) {
	t.Helper()
	s, vkey, err := ledger.NoteSigner("ledger.example", key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := ledger.ParseVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.LogSigner{Origin: "ledger.example", Signer: s, Verifier: vkey}, v
}

// newDrillLog records an incident detect→resolve interleaved with a second incident's
// questions: 12 entries.
func newDrillLog(t *testing.T) *drillLog {
	t.Helper()
	d := &drillLog{t: t, ctx: context.Background(), s: ledger.NewMemStore()}
	d.ls, d.key = logSigner(t, testKey)
	at := drillT0
	l, err := ledger.New(ledger.Options{Store: d.s, Clock: func() time.Time { at = at.Add(time.Second); return at }})
	if err != nil {
		t.Fatal(err)
	}
	rec := func(e ledger.Entry) ledger.Entry {
		out, err := l.Record(d.ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	open := ev("acme", "", ledger.Detect)
	open.Service = "checkout"
	d.inc = rec(open).Incident
	other := ev("acme", "", ledger.Detect)
	other.Service = "search"
	oid := rec(other).Incident
	for i, e := range pathTo[ledger.Resolved][1:] {
		rec(ev("acme", d.inc, e))
		q := ev("acme", oid, ledger.Question)
		q.Reason = fmt.Sprintf("question %d", i)
		rec(q)
	}
	d.size = 12
	return d
}

func (d *drillLog) bundle() *ledger.Bundle {
	d.t.Helper()
	b, err := ledger.BuildBundle(d.ctx, d.s, d.ls, "acme", d.inc, nil)
	if err != nil {
		d.t.Fatal(err)
	}
	return b
}

func (d *drillLog) head() *ledger.NoteCheckpoint {
	d.t.Helper()
	msg, _, err := d.ls.SignHead(d.ctx, d.s, "acme")
	if err != nil {
		d.t.Fatal(err)
	}
	cp, err := ledger.OpenCheckpointNote(msg, nil, d.key)
	if err != nil {
		d.t.Fatal(err)
	}
	return cp
}

func verifyBundle(t *testing.T, b *ledger.Bundle, opts ledger.BundleOptions) (ledger.BundleReport, error) {
	t.Helper()
	js, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.VerifyBundle(bytes.NewReader(js), opts)
}

func wantBundleError(t *testing.T, err error, pos int, seq uint64, what string) {
	t.Helper()
	var be *ledger.BundleError
	if !errors.As(err, &be) || be.Position != pos || (seq != 0 && be.Seq != seq) || !strings.Contains(err.Error(), what) {
		t.Fatalf("got %v; want bundle entry %d (seq %d) %q", err, pos, seq, what)
	}
}

func wantTreeError(t *testing.T, err error, leaf int64, seq uint64, what string) {
	t.Helper()
	var te *ledger.TreeError
	if !errors.As(err, &te) || te.Leaf != leaf || te.Seq != seq || !strings.Contains(err.Error(), what) {
		t.Fatalf("got %v; want leaf %d (seq %d) %q", err, leaf, seq, what)
	}
}

// rechain rewrites entries from position from on with every later prev_hash and hash
// recomputed, as a forger who controls the store would.
func rechain(t *testing.T, es []ledger.Entry, from int) []ledger.Entry {
	t.Helper()
	for i := from; i < len(es); i++ {
		es[i].Seq = uint64(i + 1)
		if i == 0 {
			es[i].PrevHash = ledger.GenesisHash
		} else {
			es[i].PrevHash = es[i-1].Hash
		}
		h, err := es[i].ComputeHash()
		if err != nil {
			t.Fatal(err)
		}
		es[i].Hash = h
	}
	return es
}

func TestBundleOfAnIntactIncidentVerifies(t *testing.T) {
	t.Parallel()
	d := newDrillLog(t)
	b := d.bundle()
	rep, err := verifyBundle(t, b, ledger.BundleOptions{Key: d.key})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Entries != 6 || rep.Tree.N != 12 || !rep.Pinned || rep.Folded.Stage != ledger.Resolved || rep.Origin != "ledger.example/acme" {
		t.Fatalf("report %+v", rep)
	}
	if _, err := ledger.AuditTree(d.ctx, d.s, "acme", d.head()); err != nil {
		t.Fatalf("intact store: %v", err)
	}
	// Signed by another key than the pinned one: refused.
	_, other := logSigner(t, witnessKey)
	if _, err := verifyBundle(t, b, ledger.BundleOptions{Key: other}); err == nil || !strings.Contains(err.Error(), "signed by none of the trusted keys") {
		t.Fatalf("bundle under another pinned key: %v", err)
	}
}

func TestBundleOfHashesOnlyNeverPasses(t *testing.T) {
	t.Parallel()
	d := newDrillLog(t)
	b := d.bundle()
	var e ledger.Entry
	if err := json.Unmarshal(b.Entries[0].Entry, &e); err != nil {
		t.Fatal(err)
	}
	b.Entries[0].Entry = json.RawMessage(`{"hash":"` + e.Hash + `"}`)
	_, err := verifyBundle(t, b, ledger.BundleOptions{Key: d.key})
	wantBundleError(t, err, 1, 0, "altered, or not an entry")
}

func TestDrillOneByteAltered(t *testing.T) {
	t.Parallel()
	t.Run("in a bundle", func(t *testing.T) {
		d := newDrillLog(t)
		b := d.bundle()
		raw := []byte(b.Entries[2].Entry)
		i := bytes.Index(raw, []byte(`"reason":"`)) + len(`"reason":"`)
		raw[i] ^= 0x01
		_, err := verifyBundle(t, b, ledger.BundleOptions{Key: d.key})
		wantBundleError(t, err, 3, 0, "hash does not match content")
	})
	t.Run("in the store, hash recomputed", func(t *testing.T) {
		d := newDrillLog(t)
		d.s.Tamper("acme", func(es []ledger.Entry) []ledger.Entry {
			es[4].Reason = "Approved by nobody"
			return rechain(t, es, 4)
		})
		_, err := ledger.AuditTree(d.ctx, d.s, "acme", nil)
		wantTreeError(t, err, 4, 5, "not the entry the tree recorded")
		// A bundle proved from the altered store does not verify either.
		_, err = verifyBundle(t, d.bundle(), ledger.BundleOptions{Key: d.key})
		wantBundleError(t, err, 3, 5, "inclusion proof fails")
	})
	t.Run("in the store, hash left", func(t *testing.T) {
		d := newDrillLog(t)
		d.s.Tamper("acme", func(es []ledger.Entry) []ledger.Entry { es[6].Reason += "!"; return es })
		_, err := ledger.AuditTree(d.ctx, d.s, "acme", nil)
		wantTreeError(t, err, 6, 7, "altered")
	})
}

func TestDrillEntryDeleted(t *testing.T) {
	t.Parallel()
	t.Run("from the store", func(t *testing.T) {
		d := newDrillLog(t)
		d.s.Tamper("acme", func(es []ledger.Entry) []ledger.Entry { return rechain(t, append(es[:5], es[6:]...), 5) })
		_, err := ledger.AuditTree(d.ctx, d.s, "acme", nil)
		wantTreeError(t, err, 5, 6, "not the entry the tree recorded")
	})
	t.Run("from a bundle", func(t *testing.T) {
		d := newDrillLog(t)
		b := d.bundle()
		b.Entries = append(b.Entries[:2], b.Entries[3:]...) // VALIDATED goes
		_, err := verifyBundle(t, b, ledger.BundleOptions{Key: d.key})
		if !errors.Is(err, ledger.ErrBadBundle) || !strings.Contains(err.Error(), "entry 7: recorded from VALIDATED but the incident was PROPOSED") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestDrillTwoSwapped(t *testing.T) {
	t.Parallel()
	t.Run("in the store", func(t *testing.T) {
		d := newDrillLog(t)
		d.s.Tamper("acme", func(es []ledger.Entry) []ledger.Entry {
			es[7], es[8] = es[8], es[7]
			return rechain(t, es, 7)
		})
		_, err := ledger.AuditTree(d.ctx, d.s, "acme", nil)
		wantTreeError(t, err, 7, 8, "not the entry the tree recorded")
	})
	t.Run("leaves swapped in a bundle", func(t *testing.T) {
		d := newDrillLog(t)
		b := d.bundle()
		b.Entries[1].Entry, b.Entries[2].Entry = b.Entries[2].Entry, b.Entries[1].Entry
		_, err := verifyBundle(t, b, ledger.BundleOptions{Key: d.key})
		wantBundleError(t, err, 2, 5, "is not at leaf 2")
	})
	t.Run("order swapped in a bundle", func(t *testing.T) {
		d := newDrillLog(t)
		b := d.bundle()
		b.Entries[3], b.Entries[4] = b.Entries[4], b.Entries[3]
		_, err := verifyBundle(t, b, ledger.BundleOptions{Key: d.key})
		wantBundleError(t, err, 5, 7, "reordered or duplicated")
	})
}

func TestDrillForgedEntryInserted(t *testing.T) {
	t.Parallel()
	t.Run("in a bundle", func(t *testing.T) {
		d := newDrillLog(t)
		b := d.bundle()
		var real ledger.Entry
		if err := json.Unmarshal(b.Entries[3].Entry, &real); err != nil {
			t.Fatal(err)
		}
		// A second approval by someone else, well-formed, its hash right: but never appended.
		forged := real
		forged.Actor.ID = "mallory"
		forged.Hash, _ = forged.ComputeHash()
		raw, _ := json.Marshal(forged)
		fe := b.Entries[3]
		fe.Entry = raw
		b.Entries[3] = fe
		_, err := verifyBundle(t, b, ledger.BundleOptions{Key: d.key})
		wantBundleError(t, err, 4, real.Seq, "inclusion proof fails")
	})
	t.Run("in the store", func(t *testing.T) {
		d := newDrillLog(t)
		d.s.Tamper("acme", func(es []ledger.Entry) []ledger.Entry {
			f := es[3]
			f.Actor.ID = "mallory"
			es = append(es[:4], append([]ledger.Entry{f}, es[4:]...)...)
			return rechain(t, es, 4)
		})
		_, err := ledger.AuditTree(d.ctx, d.s, "acme", nil)
		wantTreeError(t, err, 4, 5, "not the entry the tree recorded")
	})
	t.Run("appended to the stream only", func(t *testing.T) {
		d := newDrillLog(t)
		d.s.Tamper("acme", func(es []ledger.Entry) []ledger.Entry {
			f := es[len(es)-1]
			f.Reason = "forged"
			return rechain(t, append(es, f), len(es))
		})
		_, err := ledger.AuditTree(d.ctx, d.s, "acme", nil)
		wantTreeError(t, err, 12, 13, "inserted without being appended")
	})
}

func TestDrillTruncation(t *testing.T) {
	t.Parallel()
	t.Run("entries cut from the stream", func(t *testing.T) {
		d := newDrillLog(t)
		d.s.Tamper("acme", func(es []ledger.Entry) []ledger.Entry { return es[:9] })
		_, err := ledger.AuditTree(d.ctx, d.s, "acme", nil)
		wantTreeError(t, err, 9, 0, "the tree has 12 leaves, the log only 9 entries (truncated)")
	})
	t.Run("stream and tree cut, against a signed checkpoint", func(t *testing.T) {
		d := newDrillLog(t)
		signed := d.head()
		es, _ := d.s.Range(d.ctx, "acme", 1, 0)
		cut := rebuild(t, es[:9])
		_, err := ledger.AuditTree(d.ctx, cut, "acme", signed)
		wantTreeError(t, err, -1, 0, "truncated: the log has 9 entries, a signed checkpoint has 12")
		d2 := &drillLog{t: t, ctx: d.ctx, s: cut, ls: d.ls, key: d.key}
		err = ledger.CheckConsistency("ledger.example/acme", signed.Tree, d2.head().Tree, nil)
		var fe *ledger.ForkError
		if !errors.As(err, &fe) || !strings.Contains(err.Error(), "truncated: 12 entries were signed before, 9 now") {
			t.Fatalf("got %v", err)
		}
	})
}

// rebuild appends entries to a fresh store, as a forger who rewrote Redis would.
func rebuild(t *testing.T, es []ledger.Entry) *ledger.MemStore {
	t.Helper()
	s := ledger.NewMemStore()
	tail := ledger.Tail{Seq: 0, Hash: ledger.GenesisHash}
	for _, e := range es {
		if n, err := s.Append(context.Background(), "acme", tail, []ledger.Entry{e}); n != 1 || err != nil {
			t.Fatalf("rebuild seq %d: %d, %v", e.Seq, n, err)
		}
		tail = ledger.Tail{Seq: e.Seq, Hash: e.Hash}
	}
	return s
}

// rewritten is the drill log's history with one approval's approver changed, every later
// hash recomputed, and extra entries appended so it is larger than the original.
func rewritten(t *testing.T, d *drillLog, extra int) *drillLog {
	t.Helper()
	es, _ := d.s.Range(d.ctx, "acme", 1, 0)
	es[6].Actor.ID = "mallory"
	for i := 0; i < extra; i++ {
		q := es[len(es)-1]
		q.Reason = fmt.Sprintf("padding %d", i)
		es = append(es, q)
	}
	return &drillLog{t: t, ctx: d.ctx, s: rebuild(t, rechain(t, es, 6)), ls: d.ls, key: d.key, inc: d.inc}
}

func newWitness(t *testing.T, logKey note.Verifier) (*ledger.Witness, note.Verifier) {
	t.Helper()
	w, err := ledger.NewWitness("witness.example", witnessKey, []note.Verifier{logKey}, filepath.Join(t.TempDir(), "state.json"), func() time.Time { return drillT0 })
	if err != nil {
		t.Fatal(err)
	}
	v, err := ledger.ParseVerifier(w.VerifierKey())
	if err != nil {
		t.Fatal(err)
	}
	return w, v
}

func TestDrillFork(t *testing.T) {
	t.Parallel()
	d := newDrillLog(t)
	a := d.head()
	b := rewritten(t, d, 0).head() // same 12 entries, one changed: same size, another root
	if a.Tree.N != b.Tree.N || a.Tree.Hash == b.Tree.Hash {
		t.Fatalf("not a fork: %v %v", a.Tree, b.Tree)
	}
	_, _, err := ledger.VerifyConsistency(ledger.ConsistencyBundle{Format: ledger.ConsistencyFormat, Old: string(a.Raw), New: string(b.Raw)}, nil, d.key)
	var fe *ledger.ForkError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "fork: two checkpoints of the same size with different roots") {
		t.Fatalf("got %v", err)
	}
	w, wv := newWitness(t, d.key)
	cos, err := w.Cosign(ledger.ConsistencyBundle{Format: ledger.ConsistencyFormat, New: string(a.Raw)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.OpenCheckpointNote(cos, nil, d.key, wv); err != nil {
		t.Fatalf("cosigned checkpoint: %v", err)
	}
	_, err = w.Cosign(ledger.ConsistencyBundle{Format: ledger.ConsistencyFormat, New: string(b.Raw)})
	if !errors.Is(err, ledger.ErrWitnessRefused) || !strings.Contains(err.Error(), "fork") {
		t.Fatalf("witness on the fork: %v", err)
	}
	// Refusing did not move its state: the original still cosigns.
	if _, err := w.Cosign(ledger.ConsistencyBundle{Format: ledger.ConsistencyFormat, New: string(a.Raw)}); err != nil {
		t.Fatalf("witness after refusing: %v", err)
	}
}

func TestDrillHistoryRewrittenWithStolenKey(t *testing.T) {
	t.Parallel()
	d := newDrillLog(t)
	w, wv := newWitness(t, d.key)
	honest := d.head()
	cosigned, err := w.Cosign(ledger.ConsistencyBundle{Format: ledger.ConsistencyFormat, New: string(honest.Raw)})
	if err != nil {
		t.Fatal(err)
	}
	// The thief rewrites who approved, grows the log past the cosigned size and signs
	// with the stolen ledger key; its own bundle is consistent with its own tree.
	forged := rewritten(t, d, 3)
	fb := forged.bundle()
	if _, err := verifyBundle(t, fb, ledger.BundleOptions{Key: d.key}); err != nil {
		t.Fatalf("with only the (stolen) ledger key pinned the forgery passes, as expected: %v", err)
	}
	// A verifier pinning the witness refuses it: the witness never cosigned that tree.
	_, err = verifyBundle(t, fb, ledger.BundleOptions{Key: d.key, Witnesses: []note.Verifier{wv}})
	if err == nil || !strings.Contains(err.Error(), "no signature by witness.example") {
		t.Fatalf("forged bundle with the witness pinned: %v", err)
	}
	// And the witness will not cosign it: no proof from what it cosigned checks.
	fhead := forged.head()
	proof, err := ledger.ConsistencyProof(d.ctx, forged.s, "acme", 12, fhead.Tree.N)
	if err != nil {
		t.Fatal(err)
	}
	ps := make([]string, len(proof))
	for i := range proof {
		ps[i] = tlogB64(proof[i])
	}
	_, err = w.Cosign(ledger.ConsistencyBundle{Format: ledger.ConsistencyFormat, Old: string(cosigned), New: string(fhead.Raw), Proof: ps})
	if !errors.Is(err, ledger.ErrWitnessRefused) || !strings.Contains(err.Error(), "history rewritten") {
		t.Fatalf("witness on the rewritten history: %v", err)
	}
	// The rewritten store against the cosigned checkpoint: named.
	cp, err := ledger.OpenCheckpointNote(cosigned, nil, d.key, wv)
	if err != nil {
		t.Fatal(err)
	}
	_, err = ledger.AuditTree(d.ctx, forged.s, "acme", cp)
	wantTreeError(t, err, -1, 0, "history rewritten")
	// The honest log's next checkpoint, with its proof, is cosigned.
	ext := ev("acme", d.inc, ledger.Question)
	es, _ := d.s.Range(d.ctx, "acme", 1, 0)
	last := es[len(es)-1]
	ext.Seq, ext.PrevHash, ext.At, ext.From, ext.To = last.Seq+1, last.Hash, last.At.Add(time.Second), ledger.Resolved, ledger.Resolved
	ext.Hash, _ = ext.ComputeHash()
	if _, err := d.s.Append(d.ctx, "acme", ledger.Tail{Seq: last.Seq, Hash: last.Hash}, []ledger.Entry{ext}); err != nil {
		t.Fatal(err)
	}
	next := d.head()
	proof, _ = ledger.ConsistencyProof(d.ctx, d.s, "acme", 12, 13)
	ps = ps[:0]
	for i := range proof {
		ps = append(ps, tlogB64(proof[i]))
	}
	if _, err := w.Cosign(ledger.ConsistencyBundle{Format: ledger.ConsistencyFormat, Old: string(cosigned), New: string(next.Raw), Proof: ps}); err != nil {
		t.Fatalf("honest extension: %v", err)
	}
}

func tlogB64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }
