package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// openIn opens an incident of service in tenant, then records n more entries on it, as a
// diagnosis and a conversation would.
func openIn(t *testing.T, l *ledger.Ledger, tenant, service string, n int) ledger.Entry {
	t.Helper()
	ctx := context.Background()
	e := ev(tenant, "", ledger.Detect)
	e.Service = service
	out, err := l.Record(ctx, e)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i++ {
		if _, err := l.Record(ctx, ev(tenant, out.Incident, ledger.Question)); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestIncidentCodesCountPerTenant: the Nth incident opened in a tenant's ledger is INC-N
// (in hex: INC-9, then INC-A), however many entries the incidents before it took, and
// each tenant counts on its own.
func TestIncidentCodesCountPerTenant(t *testing.T) {
	t.Parallel()
	for name, f := range factories {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := f(t, 1)[0]
			l := newLedger(t, st)
			var got, want []string
			for i := 1; i <= 11; i++ {
				got = append(got, openIn(t, l, "acme", fmt.Sprintf("svc%d", i), i%4).Incident)
				want = append(want, fmt.Sprintf("INC-%X", i))
				if i == 2 {
					if e := openIn(t, l, "beta", "checkout", 3); e.Incident != "INC-1" {
						t.Errorf("beta's first incident is %s, want INC-1 (tenants count on their own)", e.Incident)
					}
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("acme's incidents are %v, want %v", got, want)
			}
			tail, err := st.Tail(context.Background(), "acme")
			if err != nil || tail.LastCode != 11 {
				t.Fatalf("acme's tail %+v (%v), want its counter at 11", tail, err)
			}
		})
	}
}

// TestReplicasHandOutEachCodeOnce: replicas (each its own Ledger and, on Redis, its own
// client) opening incidents of one tenant at once, each with entries in between, hand
// out INC-1 … INC-N, each exactly once: no code twice, none skipped by the appends that
// lost the race.
func TestReplicasHandOutEachCodeOnce(t *testing.T) {
	t.Parallel()
	const replicas, each = 4, 8
	for name, f := range factories {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			stores := f(t, replicas)
			var mu sync.Mutex
			var codes []string
			var wg sync.WaitGroup
			errs := make(chan error, replicas*each)
			for r := 0; r < replicas; r++ {
				l := newLedger(t, stores[r])
				wg.Add(1)
				go func() {
					defer wg.Done()
					ctx := context.Background()
					for i := 0; i < each; i++ {
						e := ev("acme", "", ledger.Detect)
						e.Service = fmt.Sprintf("r%d-svc%d", r, i)
						out, err := l.Record(ctx, e)
						if err != nil {
							errs <- err
							return
						}
						if _, err := l.Record(ctx, ev("acme", out.Incident, ledger.Question)); err != nil {
							errs <- err
							return
						}
						mu.Lock()
						codes = append(codes, out.Incident)
						mu.Unlock()
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			sort.Slice(codes, func(i, j int) bool { return incidentNumber(t, codes[i]) < incidentNumber(t, codes[j]) })
			for i, c := range codes {
				if want := fmt.Sprintf("INC-%X", i+1); c != want {
					t.Fatalf("codes handed out: %v; position %d is %s, want %s", codes, i, c, want)
				}
			}
			ids, err := stores[0].Incidents(context.Background(), "acme")
			if err != nil || len(ids) != replicas*each {
				t.Fatalf("store lists %d incidents (%v), want %d", len(ids), err, replicas*each)
			}
		})
	}
}

// raw is an entry chained on prev by hand, as a store receives it.
func raw(t *testing.T, prev ledger.Tail, incident string, e ledger.Event, from, to ledger.Stage, service string) ledger.Entry {
	t.Helper()
	en := ev("acme", incident, e)
	en.Seq, en.PrevHash, en.From, en.To, en.Service = prev.Seq+1, prev.Hash, from, to, service
	en.At = time.Date(2026, 12, 6, 9, 0, 0, int(prev.Seq), time.UTC)
	h, err := en.ComputeHash()
	if err != nil {
		t.Fatal(err)
	}
	en.Hash = h
	return en
}

// TestStoreCounterMovesWithTheOpeningAppend: both stores keep the incident counter in the
// tail and move it only in the append that opens an incident, to that incident's code: a
// code not past it (or past the chain's code base) is refused, and an append that does
// not happen (a moved tail, a service already open) leaves it where it was, so the next
// code is neither used twice nor skipped.
func TestStoreCounterMovesWithTheOpeningAppend(t *testing.T) {
	t.Parallel()
	for name, f := range factories {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			st := f(t, 1)[0]
			tail := func() ledger.Tail {
				t.Helper()
				tl, err := st.Tail(ctx, "acme")
				if err != nil {
					t.Fatal(err)
				}
				return tl
			}
			appendOne := func(on ledger.Tail, e ledger.Entry) error {
				t.Helper()
				_, err := st.Append(ctx, "acme", on, []ledger.Entry{e})
				return err
			}
			if tl := tail(); tl.LastCode != 0 {
				t.Fatalf("empty chain's counter %d", tl.LastCode)
			}
			t0 := tail()
			if err := appendOne(t0, raw(t, t0, "INC-1", ledger.Detect, ledger.None, ledger.Detected, "checkout")); err != nil {
				t.Fatal(err)
			}
			t1 := tail()
			if err := appendOne(t1, raw(t, t1, "INC-1", ledger.Question, ledger.Detected, ledger.Detected, "")); err != nil {
				t.Fatal(err)
			}
			if tl := tail(); tl.Seq != 2 || tl.LastCode != 1 {
				t.Fatalf("after a question the tail is %+v, want seq 2, counter 1", tl)
			}
			// A replica on the stale tail loses the race: nothing appended, nothing counted.
			err := appendOne(t1, raw(t, t1, "INC-2", ledger.Detect, ledger.None, ledger.Detected, "search"))
			if !errors.Is(err, ledger.ErrConflict) {
				t.Fatalf("append on a stale tail: %v, want ErrConflict", err)
			}
			var ce *ledger.ConflictError
			if errors.As(err, &ce) && (ce.Tail.Seq != 2 || ce.Tail.LastCode != 1) {
				t.Fatalf("the conflict reports tail %+v, want seq 2, counter 1", ce.Tail)
			}
			t2 := tail()
			if t2.LastCode != 1 {
				t.Fatalf("a lost race moved the counter to %d", t2.LastCode)
			}
			// A code past the counter is taken (a chain restarted past a loss jumps).
			if err := appendOne(t2, raw(t, t2, "INC-5", ledger.Detect, ledger.None, ledger.Detected, "search")); err != nil {
				t.Fatal(err)
			}
			t3 := tail()
			if t3.LastCode != 5 {
				t.Fatalf("counter %d after INC-5 opened", t3.LastCode)
			}
			// One not past it is refused, even though no incident holds it.
			err = appendOne(t3, raw(t, t3, "INC-3", ledger.Detect, ledger.None, ledger.Detected, "payments"))
			if !errors.Is(err, ledger.ErrCodeUsed) {
				t.Fatalf("INC-3 after INC-5: %v, want ErrCodeUsed", err)
			}
			if tl := tail(); tl != t3 {
				t.Fatalf("a refused code moved the tail to %+v from %+v", tl, t3)
			}
			// A batch stopped by an open service keeps the prefix's code, not the refused one's.
			a := raw(t, t3, "INC-6", ledger.Detect, ledger.None, ledger.Detected, "payments")
			b := raw(t, ledger.Tail{Seq: a.Seq, Hash: a.Hash}, "INC-7", ledger.Detect, ledger.None, ledger.Detected, "checkout")
			n, err := st.Append(ctx, "acme", t3, []ledger.Entry{a, b})
			if n != 1 || !errors.Is(err, ledger.ErrServiceOpen) {
				t.Fatalf("batch with an open service: %d, %v", n, err)
			}
			t4 := tail()
			if t4.LastCode != 6 {
				t.Fatalf("counter %d after INC-6 opened and INC-7 was refused, want 6", t4.LastCode)
			}
			if err := appendOne(t4, raw(t, t4, "INC-7", ledger.Detect, ledger.None, ledger.Detected, "catalog")); err != nil {
				t.Fatalf("INC-7 after it was refused for its service: %v", err)
			}
			// A chain restarted past a loss: the code base counts as the counter when higher,
			// for every writer that reads the tail.
			if _, err := st.(ledger.BaseStore).ClaimBase(ctx, "acme", 0, 9); err != nil {
				t.Fatal(err)
			}
			t5 := tail()
			if t5.LastCode != 9 {
				t.Fatalf("counter %d under code base 9, want 9", t5.LastCode)
			}
			if err := appendOne(t5, raw(t, t5, "INC-9", ledger.Detect, ledger.None, ledger.Detected, "cart")); !errors.Is(err, ledger.ErrCodeUsed) {
				t.Fatalf("INC-9 on a chain whose code base is 9: %v, want ErrCodeUsed", err)
			}
			if err := appendOne(t5, raw(t, t5, "INC-A", ledger.Detect, ledger.None, ledger.Detected, "cart")); err != nil {
				t.Fatalf("INC-A past code base 9: %v", err)
			}
		})
	}
}

// TestCodesContinueAfterTheLostChainsCodes: a store that comes back empty loses the
// counter with the chain; the restarted chain's codes continue right after the highest
// code the checkpoint file knows the lost chain may have shown (what it reserved ahead:
// at most MaxCodeBlock codes, however many seqs it reserved), not after a number of
// entries, and never repeat one.
func TestCodesContinueAfterTheLostChainsCodes(t *testing.T) {
	for _, block := range []int{1, ledger.DefaultReserveBlock} {
		t.Run(fmt.Sprintf("reserve %d", block), func(t *testing.T) { testCodesAfterLoss(t, block) })
	}
}

func testCodesAfterLoss(t *testing.T, block int) {
	ctx := context.Background()
	sink, _ := newSink(t)
	mk := func(st ledger.Store, seen *losses) *ledger.Ledger {
		l, err := ledger.New(ledger.Options{Store: st, Signer: sinkKey, Sink: sink, ReserveBlock: block, OnLoss: seen.add})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	l1 := mk(ledger.NewMemStore(), &losses{})
	var highest uint64
	for i, svc := range []string{"checkout", "search", "payments"} {
		e := openIn(t, l1, "acme", svc, 3)
		if want := fmt.Sprintf("INC-%d", i+1); e.Incident != want {
			t.Fatalf("incident %d is %s, want %s", i+1, e.Incident, want)
		}
		highest = incidentNumber(t, e.Incident)
	}
	if err := l1.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	mark, err := sink.Load(ctx, "acme")
	if reach := highest + uint64(min(block, ledger.MaxCodeBlock)); err != nil || mark.Checkpoint.Codes < highest || mark.Checkpoint.Codes > reach {
		t.Fatalf("the file's checkpoint states codes through %d (%v), want %d to %d (the last opened, and those reserved past it)", mark.Checkpoint.Codes, err, highest, reach)
	}

	wiped := ledger.NewMemStore()
	seen := &losses{}
	l2 := mk(wiped, seen)
	var le *ledger.LossError
	if err := l2.Check(ctx, "acme"); !errors.As(err, &le) {
		t.Fatalf("Check of the wiped store: %v", err)
	}
	next := openIn(t, l2, "acme", "catalog", 0)
	if want := ledger.IncidentID(mark.Checkpoint.Codes + 1); next.Incident != want {
		t.Fatalf("first incident after the loss is %s, want %s (right after the lost chain's codes, through INC-%X)", next.Incident, want, mark.Checkpoint.Codes)
	}
	if got := seen.all(); len(got) != 1 || got[0].Base != mark.Checkpoint.Codes {
		t.Fatalf("OnLoss saw %+v, want one loss whose codes start after INC-%X", got, mark.Checkpoint.Codes)
	}
	if then := openIn(t, l2, "acme", "search", 0); incidentNumber(t, then.Incident) != incidentNumber(t, next.Incident)+1 {
		t.Fatalf("second incident after the loss is %s, want the one after %s", then.Incident, next.Incident)
	}
	// The marker carries the codes its checkpoint signed; the restarted chain verifies.
	es := chainOf(t, wiped, "acme")
	m, err := ledger.ParseLossMarker(&es[0])
	if err != nil || m.Checkpoint.Codes != mark.Checkpoint.Codes {
		t.Fatalf("loss marker: %+v, %v; want it to carry codes through %d", m, err, mark.Checkpoint.Codes)
	}
	exportVerifies(t, wiped, "acme")
}

// TestRolledBackRedisCodesContinuePastTheLostOnes: Redis restarted from an older
// append-only file brings its incident counter back with the chain; incidents opened
// after that continue past the codes people saw before the rollback, and after it in
// sequence.
func TestRolledBackRedisCodesContinuePastTheLostOnes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, rc := restartableRedis(t)
	sink, _ := newSink(t)
	st := ledger.NewRedisStore(rc, "t")
	l, err := ledger.New(ledger.Options{Store: st, Signer: sinkKey, Sink: sink, ReserveBlock: 1})
	if err != nil {
		t.Fatal(err)
	}
	shown := map[string]bool{openIn(t, l, "acme", "checkout", 2).Incident: true}
	before := srv.Snapshot()
	for _, svc := range []string{"search", "payments"} {
		shown[openIn(t, l, "acme", svc, 2).Incident] = true
	}
	if err := l.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	srv.RestartFrom(before)
	if tl, err := st.Tail(ctx, "acme"); err != nil || tl.LastCode != 1 {
		t.Fatalf("rolled-back tail %+v (%v), want the counter back at 1", tl, err)
	}
	a := openIn(t, l, "acme", "catalog", 1)
	b := openIn(t, l, "acme", "cart", 0)
	if shown[a.Incident] || shown[b.Incident] {
		t.Fatalf("after the rollback %s and %s were opened; %v were shown before it", a.Incident, b.Incident, shown)
	}
	// INC-1…INC-3 shown, one more reserved: the chain restarts after INC-4.
	if a.Incident != "INC-5" || b.Incident != "INC-6" {
		t.Fatalf("after the rollback %s, %s were opened, want INC-5, INC-6", a.Incident, b.Incident)
	}
}

// TestFenceHoldsTheLostChainsLastCode: without a checkpoint file, a failover that drops
// the newest incident restarts the chain with its code base at that incident's code (the
// highest the Ledger saw); that incident is from before the loss and is fenced like the
// others, while the next one opened is not.
func TestFenceHoldsTheLostChainsLastCode(t *testing.T) {
	ctx := context.Background()
	st := ledger.NewMemStore()
	l := guarded(t, st, nil, &losses{})
	open(t, l, "checkout")
	last := open(t, l, "search")
	st.Tamper("acme", func(es []ledger.Entry) []ledger.Entry { return es[:1] }) // the replica had 1
	if _, err := l.Record(ctx, ev("acme", last.Incident, ledger.Propose)); err != nil {
		t.Fatal(err)
	}
	if b := l.Base("acme"); b != incidentNumber(t, last.Incident) {
		t.Fatalf("code base %d after the loss, want %d (the last code the lost chain used)", b, incidentNumber(t, last.Incident))
	}
	if _, err := l.Record(ctx, ev("acme", last.Incident, ledger.Validate)); !errors.Is(err, ledger.ErrFenced) {
		t.Fatalf("validate of %s, opened before the loss: %v, want ErrFenced", last.Incident, err)
	}
	fresh := open(t, l, "payments")
	if fresh.Incident != "INC-3" {
		t.Fatalf("incident after the loss is %s, want INC-3", fresh.Incident)
	}
	if _, err := l.Record(ctx, ev("acme", fresh.Incident, ledger.Propose)); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Record(ctx, ev("acme", fresh.Incident, ledger.Validate)); err != nil {
		t.Fatalf("validate of %s, opened after the loss: %v", fresh.Incident, err)
	}
}

// legacy reads a file written by the version before the incident counter (which numbered
// an incident by the chain's code base plus the seq that opened it): testdata/legacy holds
// a tenant's export before a loss (INC-1, INC-5), its export after the loss (a loss
// marker, then INC-10 on code base 7), and the checkpoint file that version left. They
// were made by that version's own Ledger (commit 753e592: a MemStore, a FileSink, sinkKey,
// ReserveBlock 4, the store then replaced by an empty one), not by hand.
func legacy(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "legacy", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestExportsOfTheSeqNumberedVersionStillVerify: codes are data in the entries, never
// recomputed: exports made before the counter verify as they did, loss marker included.
func TestExportsOfTheSeqNumberedVersionStillVerify(t *testing.T) {
	pub := sinkKey.Public().(ed25519.PublicKey)
	for _, name := range []string{"before-loss.jsonl", "after-loss.jsonl"} {
		rep, err := ledger.VerifyExport(bytes.NewReader(legacy(t, name)), pub)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "after-loss.jsonl" && len(rep.Losses) != 1 {
			t.Fatalf("%s: %d loss markers, want 1", name, len(rep.Losses))
		}
	}
}

// TestCheckpointFileOfTheSeqNumberedVersion: a checkpoint file written before the counter
// loads, and a loss judged against it restarts the codes past everything that version may
// have handed out: its code base plus the larger of its size and reserved seq.
func TestCheckpointFileOfTheSeqNumberedVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "checkpoints.json")
	if err := os.WriteFile(path, legacy(t, "checkpoints.json"), 0o600); err != nil {
		t.Fatal(err)
	}
	sink, err := ledger.NewFileSink(path, sinkKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	m, err := sink.Load(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	cp := m.Checkpoint
	if cp.Codes != 0 || cp.Base != 7 || cp.Size != 10 || cp.Reserved != 13 {
		t.Fatalf("the old file's checkpoint reads %+v", cp)
	}
	if got := cp.CodeBound(); got != 20 {
		t.Fatalf("old checkpoint's codes reach %d, want 20 (base 7 + reserved seq 13)", got)
	}
	l, err := ledger.New(ledger.Options{Store: ledger.NewMemStore(), Signer: sinkKey, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	var le *ledger.LossError
	if err := l.Check(ctx, "acme"); !errors.As(err, &le) {
		t.Fatalf("Check of an empty store against the old file: %v", err)
	}
	e := openIn(t, l, "acme", "checkout", 0)
	if e.Incident != "INC-15" {
		t.Fatalf("first incident after the loss is %s, want INC-15 (past INC-14, the old version's reach)", e.Incident)
	}
}

// TestChainOfTheSeqNumberedVersionNumbersPastIt: a Redis chain written by the version
// before the counter (its tail keeps no counter) counts as its code base plus its seq, so
// the first incident the new version opens is past every code on it, and the next ones
// follow in sequence.
func TestChainOfTheSeqNumberedVersionNumbersPastIt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv := ledgertest.NewServer(t)
	rc, prefix := srv.Client(t), srv.Prefix(t)
	st := ledger.NewRedisStore(rc, prefix)
	var es []ledger.Entry
	for _, line := range bytes.Split(bytes.TrimSpace(legacy(t, "after-loss.jsonl")), []byte("\n")) {
		if e, err := ledger.DecodeEntry(line); err == nil {
			es = append(es, e)
		}
	}
	if len(es) != 3 || es[1].Incident != "INC-10" {
		t.Fatalf("the old export holds %d entries", len(es))
	}
	if n, err := st.Append(ctx, "acme", ledger.Tail{Hash: ledger.GenesisHash}, es); n != 3 || err != nil {
		t.Fatalf("load the old chain: %d, %v", n, err)
	}
	if _, err := st.ClaimBase(ctx, "acme", 0, 7); err != nil {
		t.Fatal(err)
	}
	// What the older version's append left: a tail without the counter.
	if err := rc.HDel(ctx, prefix+"{ae:acme}:tail", "code", "code_at").Err(); err != nil {
		t.Fatal(err)
	}
	if tl, err := st.Tail(ctx, "acme"); err != nil || tl.LastCode != 17 {
		t.Fatalf("old chain's tail %+v (%v), want counter 17 (base 7 + seq 10)", tl, err)
	}
	l := newLedger(t, st)
	a := openIn(t, l, "acme", "search", 2)
	b := openIn(t, l, "acme", "catalog", 0)
	if a.Incident != "INC-12" || b.Incident != "INC-13" {
		t.Fatalf("incidents opened on the old chain: %s, %s; want INC-12, INC-13", a.Incident, b.Incident)
	}
}

// TestReplicaThatMissedTheLossNumbersPastIt: a replica that judged the chain before the
// newest incidents were opened (so its own view never shrank) and keeps no checkpoint
// file opens an incident after another replica found a failover's loss and restarted the
// chain, before that one opened anything: the store's tail reports the restarted chain's
// code base, so the code continues past the lost ones instead of reusing one people saw.
func TestReplicaThatMissedTheLossNumbersPastIt(t *testing.T) {
	ctx := context.Background()
	st := ledger.NewMemStore()
	a, b := guarded(t, st, nil, &losses{}), guarded(t, st, nil, &losses{})
	first := open(t, a, "checkout")
	if err := b.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	open(t, a, "search")
	open(t, a, "payments") // INC-2, INC-3: shown, then lost
	st.Tamper("acme", func(es []ledger.Entry) []ledger.Entry { return es[:1] })
	if _, err := a.Record(ctx, ev("acme", first.Incident, ledger.Propose)); err != nil {
		t.Fatal(err)
	}
	if base := a.Base("acme"); base != 3 {
		t.Fatalf("code base %d after the loss, want 3", base)
	}
	if e := open(t, b, "catalog"); e.Incident != "INC-4" {
		t.Fatalf("the other replica opened %s after the loss, want INC-4 (INC-2 and INC-3 were shown)", e.Incident)
	}
}
