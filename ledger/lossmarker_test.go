package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest/redisfault"
)

var pubKey = sinkKey.Public().(ed25519.PublicKey)

// chainOf reads a tenant's whole chain.
func chainOf(t *testing.T, s ledger.Store, tenant string) []ledger.Entry {
	t.Helper()
	es, err := s.Range(context.Background(), tenant, 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

// wantMarker checks that es[at] is the loss marker that continues cp after a chain whose
// last kept entry had seq kept: seq past everything cp covered or reserved, prev_hash its
// tail, the lost range named; and that the entry after it follows it.
func wantMarker(t *testing.T, es []ledger.Entry, at int, cp ledger.Checkpoint, kept uint64) ledger.LossMarker {
	t.Helper()
	if at >= len(es) {
		t.Fatalf("chain has %d entries, want a loss marker at position %d", len(es), at+1)
	}
	m := es[at]
	want := max(cp.Size, cp.Reserved, kept) + 1
	if m.Event != ledger.Loss || m.Seq != want || m.PrevHash != cp.TailHash || m.Incident != "" || m.Actor.Kind != ledger.ActorSystem {
		t.Fatalf("entry after the loss: %s seq %d prev %.16s incident %q; want the loss marker at seq %d (checkpoint %d entries, reserved %d, kept %d) chained on the checkpoint's tail %.16s",
			m.Event, m.Seq, m.PrevHash, m.Incident, want, cp.Size, cp.Reserved, kept, cp.TailHash)
	}
	lm, err := ledger.ParseLossMarker(&m)
	if err != nil {
		t.Fatal(err)
	}
	if lm.LostFrom != kept+1 || lm.LostTo != want-1 || lm.Checkpoint.Size != cp.Size || lm.Checkpoint.Signature != cp.Signature || !lm.Checkpoint.At.Equal(cp.At) {
		t.Fatalf("marker states %+v, want entries %d–%d lost and the checkpoint %+v", lm, kept+1, want-1, cp)
	}
	if at+1 < len(es) && (es[at+1].Seq != m.Seq+1 || es[at+1].PrevHash != m.Hash) {
		t.Fatalf("the entry after the marker has seq %d, want %d chained on it", es[at+1].Seq, m.Seq+1)
	}
	return lm
}

// exportVerifies exports the chain, checks the export offline with the public key alone,
// and returns its report.
func exportVerifies(t *testing.T, s ledger.Store, tenant string) (ledger.Report, []byte) {
	t.Helper()
	var buf bytes.Buffer
	if _, err := ledger.ExportJSONL(context.Background(), s, tenant, sinkKey, time.Now(), &buf); err != nil {
		t.Fatalf("export across the loss: %v", err)
	}
	rep, err := ledger.VerifyExport(bytes.NewReader(buf.Bytes()), pubKey)
	if err != nil {
		t.Fatalf("offline verify of the export across the loss: %v", err)
	}
	return rep, buf.Bytes()
}

// TestWipeThenLossMarker: Redis comes back empty. A new process's first append is the
// loss marker at the seq past everything the checkpoint file's checkpoint covered or
// reserved, chained on that checkpoint's tail; the incident after it follows. The chain
// verifies (in the store and exported, offline), the Merkle tree holds the marker as a
// leaf, and a consistency proof from a tree head signed before the wipe is refused.
func TestWipeThenLossMarker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	_, rc := restartableRedis(t)
	sink, _ := newSink(t)
	store := ledger.NewRedisStore(rc, "t")
	l1 := guarded(t, store, sink, &losses{})
	first := open(t, l1, "checkout")
	for _, e := range []ledger.Event{ledger.Propose, ledger.Validate, ledger.Authorize, ledger.Execute} {
		if _, err := l1.Record(ctx, ev("acme", first.Incident, e)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l1.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	ls, _ := logSigner(t, sinkKey)
	oldHead, _, err := ls.SignHead(ctx, store, "acme")
	if err != nil {
		t.Fatal(err)
	}
	mark, err := sink.Load(ctx, "acme")
	if err != nil || mark == nil || mark.Checkpoint.Size != 5 {
		t.Fatalf("the checkpoint file before the wipe: %+v, %v; want 5 entries covered", mark, err)
	}
	cp := mark.Checkpoint

	if err := rc.FlushAll(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	seen := &losses{}
	l2 := guarded(t, store, sink, seen) // a process started after the wipe
	next := open(t, l2, "search")
	if len(seen.all()) != 1 {
		t.Fatalf("%d losses reported, want 1", len(seen.all()))
	}
	es := chainOf(t, store, "acme")
	if len(es) != 2 {
		t.Fatalf("chain after the wipe has %d entries, want the marker and the new incident", len(es))
	}
	wantMarker(t, es, 0, cp, 0)
	if es[1].Incident != next.Incident || es[1].Seq <= cp.Size || es[1].Seq <= cp.Reserved {
		t.Fatalf("the new incident's entry has seq %d, want past %d and %d", es[1].Seq, cp.Size, cp.Reserved)
	}

	rep, err := ledger.VerifyStore(ctx, store, "acme", pubKey)
	if err != nil || rep.Entries != 2 || rep.Size != es[1].Seq || len(rep.Losses) != 1 {
		t.Fatalf("verify after the wipe: %+v, %v; want 2 entries, size %d, one loss marker", rep, err, es[1].Seq)
	}
	xrep, _ := exportVerifies(t, store, "acme")
	if xrep.Entries != 2 || xrep.Size != es[1].Seq || len(xrep.Losses) != 1 || xrep.Losses[0].Seq != es[0].Seq {
		t.Fatalf("export report %+v", xrep)
	}
	in, hist, err := l2.Incident(ctx, "acme", next.Incident)
	if err != nil || len(hist) != 1 {
		t.Fatalf("the new incident's history: %d entries, %v; want its detect only (the marker is in no incident)", len(hist), err)
	}
	var md bytes.Buffer
	if err := ledger.WriteReport(&md, in, hist, rep, nil); err != nil {
		t.Fatal(err)
	}
	wantLine := fmt.Sprintf("Loss marker at entry %d: entries 1–%d lost; continues the checkpoint signed", es[0].Seq, es[0].Seq-1)
	if !strings.Contains(md.String(), wantLine) {
		t.Fatalf("the report does not say where the chain continues past the loss (%q):\n%s", wantLine, md.String())
	}

	// The tree covers the entries present: the marker is leaf 0, nothing is fabricated
	// for the lost seqs; the old head cannot be proved to extend into the new tree.
	ts := ledger.TreeStore(store)
	if n, err := ts.TreeSize(ctx, "acme"); err != nil || n != 2 {
		t.Fatalf("tree after the wipe has %d leaves (%v), want 2", n, err)
	}
	if leaf, err := ts.LeafIndex(ctx, "acme", es[0].Seq); err != nil || leaf != 0 {
		t.Fatalf("marker's leaf: %d, %v; want 0", leaf, err)
	}
	b, err := ledger.BuildBundle(ctx, store, ls, "acme", next.Incident, nil)
	if err != nil {
		t.Fatal(err)
	}
	var bb bytes.Buffer
	if err := json.NewEncoder(&bb).Encode(b); err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.VerifyBundle(&bb, ledger.BundleOptions{}); err != nil {
		t.Fatalf("bundle of the incident opened after the wipe: %v", err)
	}
	newHead, _, err := ls.SignHead(ctx, store, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.ProveConsistency(ctx, store, ls, oldHead, newHead); err == nil || !strings.Contains(err.Error(), "loss") {
		t.Fatalf("consistency proof from a head signed before the wipe: %v, want a refusal that names the loss", err)
	}
}

// TestRollbackThenLossMarker: Redis restarted from an older append-only file, under a
// running replica and beside a new one. The next append — whichever replica makes it — is
// the one loss marker, past the seqs the lost chain covered; the entries kept stay as they
// were; the incident from before the loss stays fenced past the marker until an operator
// accepts the loss; the chain verifies and its export verifies offline.
func TestRollbackThenLossMarker(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, rc := restartableRedis(t)
	sink, _ := newSink(t)
	store := ledger.NewRedisStore(rc, "t")
	a := guarded(t, store, sink, &losses{})
	first := open(t, a, "checkout")
	for _, e := range []ledger.Event{ledger.Propose, ledger.Validate} {
		if _, err := a.Record(ctx, ev("acme", first.Incident, e)); err != nil {
			t.Fatal(err)
		}
	}
	before := srv.Snapshot() // 3 entries: VALIDATED
	kept := chainOf(t, store, "acme")
	for _, e := range []ledger.Event{ledger.Authorize, ledger.Execute} {
		if _, err := a.Record(ctx, ev("acme", first.Incident, e)); err != nil {
			t.Fatal(err)
		}
	}
	open(t, a, "payments")
	if err := a.Check(ctx, "acme"); err != nil { // the file covers all 6
		t.Fatal(err)
	}
	mark, err := sink.Load(ctx, "acme")
	if err != nil || mark.Checkpoint.Size != 6 {
		t.Fatalf("checkpoint file: %+v, %v; want 6 entries covered", mark, err)
	}
	cp := mark.Checkpoint
	srv.RestartFrom(before)

	b := guarded(t, store, sink, &losses{}) // a replica started after the rollback
	// The running replica's next append finds the loss and writes the marker first.
	if _, err := a.Record(ctx, ev("acme", first.Incident, ledger.Authorize)); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("authorize of %s again after the rollback: %v, want ErrFenced", first.Incident, err)
	}
	refused, err := b.Record(ctx, ev("acme", first.Incident, ledger.RefusedPress))
	if err != nil {
		t.Fatal(err)
	}
	next := open(t, a, "search")
	es := chainOf(t, store, "acme")
	for i, e := range kept {
		if es[i].Hash != e.Hash {
			t.Fatalf("entry %d kept from before the loss changed", e.Seq)
		}
	}
	lm := wantMarker(t, es, len(kept), cp, uint64(len(kept)))
	if len(es) != len(kept)+3 || es[len(kept)+1].Hash != refused.Hash || es[len(kept)+2].Hash != next.Hash {
		t.Fatalf("after the rollback: %d entries, want %d kept, one marker, the refused press and the new incident", len(es), len(kept))
	}
	if refused.Seq <= cp.Size || refused.Seq <= cp.Reserved {
		t.Fatalf("the first entry after the rollback has seq %d: reuses a seq the checkpoint (%d, reserved %d) covered", refused.Seq, cp.Size, cp.Reserved)
	}
	for _, l := range []*ledger.Ledger{a, b} {
		if _, err := l.Record(ctx, ev("acme", first.Incident, ledger.Authorize)); !errors.Is(err, ledger.ErrFenced) {
			t.Errorf("authorize of %s past the marker: %v, want ErrFenced", first.Incident, err)
		}
	}
	if _, err := ledger.VerifyStore(ctx, store, "acme", pubKey); err != nil {
		t.Fatalf("verify across the rollback: %v", err)
	}
	xrep, _ := exportVerifies(t, store, "acme")
	if len(xrep.Losses) != 1 || xrep.Losses[0].LostFrom != lm.LostFrom || xrep.Entries != uint64(len(es)) {
		t.Fatalf("export report %+v", xrep)
	}
	mark, _ = sink.Load(ctx, "acme")
	if _, err := ledger.VerifyStoreMark(ctx, store, "acme", pubKey, mark); !errors.Is(err, ledger.ErrLost) {
		t.Fatalf("verify against the checkpoint file before acceptance: %v, want the loss reported", err)
	}
	if _, _, err := b.AcceptLoss(ctx, "acme", "tendai", "receiver log shows the action ran once"); err != nil {
		t.Fatal(err)
	}
	mark, _ = sink.Load(ctx, "acme")
	if _, err := ledger.VerifyStoreMark(ctx, store, "acme", pubKey, mark); err != nil {
		t.Fatalf("verify after acceptance: %v", err)
	}
	// No second marker: a new process finds the chain past the lost seqs.
	c := guarded(t, store, sink, &losses{})
	open(t, c, "queue")
	markers := 0
	for _, e := range chainOf(t, store, "acme") {
		if e.Event == ledger.Loss {
			markers++
		}
	}
	if markers != 1 {
		t.Fatalf("%d loss markers, want 1", markers)
	}
}

// TestMarkerWrittenByTheNextProcess: the process that found the loss stops before its next
// append. The next process to append writes the marker: the checkpoint file, not memory,
// says one is due.
func TestMarkerWrittenByTheNextProcess(t *testing.T) {
	ctx := context.Background()
	sink, _ := newSink(t)
	l1 := guarded(t, ledger.NewMemStore(), sink, &losses{})
	for _, svc := range []string{"a", "b", "c"} {
		open(t, l1, svc)
	}
	if err := l1.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	mark, _ := sink.Load(ctx, "acme")
	wiped := ledger.NewMemStore()
	if err := guarded(t, wiped, sink, &losses{}).Check(ctx, "acme"); !errors.Is(err, ledger.ErrLost) {
		t.Fatalf("check after the wipe: %v", err)
	}
	open(t, guarded(t, wiped, sink, &losses{}), "d")
	es := chainOf(t, wiped, "acme")
	wantMarker(t, es, 0, mark.Checkpoint, 0)
	if _, err := ledger.VerifyStore(ctx, wiped, "acme", pubKey); err != nil {
		t.Fatal(err)
	}
}

// relink recomputes prev_hash (except a loss marker's) and hash of es from position from
// on, keeping seqs: what a forger who controls the store does after changing an entry.
func relink(t *testing.T, es []ledger.Entry, from int) []ledger.Entry {
	t.Helper()
	for i := from; i < len(es); i++ {
		if es[i].Event != ledger.Loss {
			es[i].PrevHash = ledger.GenesisHash
			if i > 0 {
				es[i].PrevHash = es[i-1].Hash
			}
		}
		h, err := es[i].ComputeHash()
		if err != nil {
			t.Fatal(err)
		}
		es[i].Hash = h
	}
	return es
}

// verifyBoth verifies es in a store and as an export signed by the ledger key, and
// returns both errors.
func verifyBoth(t *testing.T, es []ledger.Entry) (store, export error) {
	t.Helper()
	s := ledger.NewMemStore()
	s.Tamper("acme", func([]ledger.Entry) []ledger.Entry { return es })
	_, store = ledger.VerifyStore(context.Background(), s, "acme", pubKey)
	var buf bytes.Buffer
	hashes := make([]string, 0, len(es))
	for _, e := range es {
		for uint64(len(hashes))+1 < e.Seq {
			hashes = append(hashes, ledger.GenesisHash)
		}
		hashes = append(hashes, e.Hash)
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(append(b, '\n'))
	}
	last := es[len(es)-1]
	cp := ledger.SignCheckpoint(sinkKey, "acme", last.Seq, last.Hash, time.Now(), hashes)
	b, _ := json.Marshal(map[string]any{"checkpoint": cp})
	buf.Write(append(b, '\n'))
	_, export = ledger.VerifyExport(&buf, pubKey)
	return store, export
}

// wantRefused checks that both verifications fail naming entry seq and saying what.
func wantRefused(t *testing.T, es []ledger.Entry, seq uint64, what string) {
	t.Helper()
	st, ex := verifyBoth(t, es)
	for i, err := range []error{st, ex} {
		var ve *ledger.VerifyError
		if !errors.As(err, &ve) || ve.Entry != seq || !strings.Contains(ve.Reason, what) {
			t.Errorf("%s verify: %v; want entry %d refused: %q", [2]string{"store", "export"}[i], err, seq, what)
		}
	}
}

// TestForgedJumpsAreRefused: a chain across a real loss verifies in the store and as an
// export; the same chain with the jump forged, the marker altered, signed by another key,
// or placed where nothing was lost, fails naming the entry.
func TestForgedJumpsAreRefused(t *testing.T) {
	ctx := context.Background()
	sink, _ := newSink(t)
	l1 := guarded(t, ledger.NewMemStore(), sink, &losses{})
	first := open(t, l1, "checkout")
	for _, e := range []ledger.Event{ledger.Propose, ledger.Validate, ledger.Authorize} {
		if _, err := l1.Record(ctx, ev("acme", first.Incident, e)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l1.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	whole := chainOf(t, l1.Store(), "acme") // 4 entries, all covered
	// The store keeps the first two; the next process continues past the loss.
	kept := ledger.NewMemStore()
	if _, err := kept.Append(ctx, "acme", ledger.Tail{Seq: 0, Hash: ledger.GenesisHash}, whole[:2]); err != nil {
		t.Fatal(err)
	}
	l2 := guarded(t, kept, sink, &losses{})
	for i := 0; i < 2; i++ {
		if _, err := l2.Record(ctx, ev("acme", first.Incident, ledger.Question)); err != nil {
			t.Fatal(err)
		}
	}
	good := chainOf(t, kept, "acme") // 1, 2, marker, question, question
	if st, ex := verifyBoth(t, good); st != nil || ex != nil {
		t.Fatalf("the chain across the loss: store %v, export %v", st, ex)
	}
	mk := good[2]
	if mk.Event != ledger.Loss {
		t.Fatalf("entry 3 is %s, want the marker", mk.Event)
	}
	fresh := func() []ledger.Entry {
		es := append([]ledger.Entry(nil), good...)
		for i := range es {
			d := map[string]string{}
			for k, v := range es[i].Data {
				d[k] = v
			}
			es[i].Data = d
		}
		return es
	}

	t.Run("jump without a marker", func(t *testing.T) {
		es := fresh()
		es[2].Event, es[2].Data, es[2].Incident, es[2].Actor, es[2].Reason = ledger.Notice, nil, first.Incident, system, "nothing to see"
		es[2].From, es[2].To = ledger.Validated, ledger.Validated
		wantRefused(t, relink(t, es, 2), 3, "missing (the next entry present has seq "+strconv.FormatUint(mk.Seq, 10))
	})
	t.Run("marker altered", func(t *testing.T) {
		es := fresh()
		at, _ := time.Parse(time.RFC3339Nano, es[2].Data["checkpoint_at"])
		es[2].Data["checkpoint_at"] = at.Add(time.Second).UTC().Format(time.RFC3339Nano)
		wantRefused(t, relink(t, es, 2), mk.Seq, "signature does not verify")
	})
	t.Run("marker's checkpoint signed by another key", func(t *testing.T) {
		es := fresh()
		lm, _ := ledger.ParseLossMarker(&es[2])
		forged := ledger.SignCheckpoint(forgerKey, "acme", lm.Checkpoint.Size, lm.Checkpoint.TailHash, lm.Checkpoint.At, nil)
		es[2].Data["checkpoint_key"], es[2].Data["checkpoint_signature"] = forged.PublicKey, forged.Signature
		// Re-signed for the ledger's key the rest is sound: only the marker's key is wrong.
		st, ex := verifyBoth(t, relink(t, es, 2))
		for i, err := range []error{st, ex} {
			var ve *ledger.VerifyError
			// Pinned (the store's check) the key is refused; unpinned, its signature over
			// the marker's checkpoint does not verify (the forger cannot sign it as stated).
			if !errors.As(err, &ve) || ve.Entry != mk.Seq || !strings.Contains(ve.Reason, "another key") && !strings.Contains(ve.Reason, "does not verify") {
				t.Errorf("%s verify: %v; want entry %d refused for its key", [2]string{"store", "export"}[i], err, mk.Seq)
			}
		}
	})
	t.Run("marker where nothing was lost", func(t *testing.T) {
		// The whole chain, then the same marker: its checkpoint's tail is entry 4, still there.
		es := append([]ledger.Entry(nil), whole...)
		m := good[2]
		m.Seq = 5
		m.Data = map[string]string{}
		for k, v := range good[2].Data {
			m.Data[k] = v
		}
		lm, _ := ledger.ParseLossMarker(&good[2])
		m.Data["lost_from"] = "5"
		m.Data["lost_to"] = strconv.FormatUint(lm.Checkpoint.Reserved, 10)
		m.Seq = lm.Checkpoint.Reserved + 1
		es = relink(t, append(es, m), 4)
		wantRefused(t, es, m.Seq, "nothing was lost")
	})
	t.Run("marker's seq short of its checkpoint", func(t *testing.T) {
		es := fresh()
		es[2].Seq = 4
		es[2].Data["lost_to"] = "3"
		for i := 3; i < len(es); i++ {
			es[i].Seq = uint64(i + 2)
		}
		wantRefused(t, relink(t, es, 2), 4, "seq 4, but the first seq past its checkpoint")
	})
	if t.Failed() {
		for _, e := range good {
			t.Logf("%d %s %.12s→%.12s", e.Seq, e.Event, e.PrevHash, e.Hash)
		}
	}
}

// restartableRedis starts a redis-server the test may stop, roll back and restart, and a
// client that retries across a restart.
func restartableRedis(t *testing.T) (*redisfault.Server, *redis.Client) {
	t.Helper()
	srv := redisfault.StartServer(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: 5})
	t.Cleanup(func() { _ = rc.Close() })
	return srv, rc
}
