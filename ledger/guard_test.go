package ledger_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// losses records what OnLoss reported.
type losses struct {
	mu  sync.Mutex
	got []ledger.LossError
}

func (l *losses) add(e ledger.LossError) { l.mu.Lock(); l.got = append(l.got, e); l.mu.Unlock() }
func (l *losses) all() []ledger.LossError {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]ledger.LossError(nil), l.got...)
}

func guarded(t *testing.T, st ledger.Store, sink ledger.CheckpointSink, seen *losses) *ledger.Ledger {
	t.Helper()
	opts := ledger.Options{Store: st, OnLoss: seen.add}
	if sink != nil {
		opts.Signer, opts.Sink = sinkKey, sink
	}
	l, err := ledger.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func open(t *testing.T, l *ledger.Ledger, service string) ledger.Entry {
	t.Helper()
	e := ev("acme", "", ledger.Detect)
	e.Service = service
	out, err := l.Record(context.Background(), e)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestLossAgainstTheSink: a store that comes back empty (Redis restarted without
// persistence) is a loss naming both sizes; the chain restarts with codes past every code
// the lost chain reserved, including those opened after its last checkpoint; a verify of
// the new chain keeps reporting the loss; a later process does not report it again.
func TestLossAgainstTheSink(t *testing.T) {
	ctx := context.Background()
	sink, _ := newSink(t)
	seen := &losses{}
	l1 := guarded(t, ledger.NewMemStore(), sink, seen)
	used := map[string]bool{}
	a := open(t, l1, "checkout")
	used[a.Incident] = true
	if _, err := l1.Record(ctx, ev("acme", a.Incident, ledger.Recover)); err != nil { // terminal: a checkpoint
		t.Fatal(err)
	}
	for _, svc := range []string{"payments", "search"} { // opened after the last checkpoint
		used[open(t, l1, svc).Incident] = true
	}
	if err := l1.Check(ctx, "acme"); err != nil { // also brings the sink up to the tail: 4
		t.Fatalf("intact chain: %v", err)
	}

	wiped := ledger.NewMemStore()
	l2 := guarded(t, wiped, sink, seen)
	err := l2.Check(ctx, "acme")
	var le *ledger.LossError
	if !errors.As(err, &le) || !errors.Is(err, ledger.ErrLost) {
		t.Fatalf("Check on a wiped store: %v, want a *LossError", err)
	}
	if le.Entries != 0 || le.Checkpoint.Size != 4 || !strings.Contains(err.Error(), "chain has 0 entries but its last checkpoint") || !strings.Contains(err.Error(), "had 4") {
		t.Fatalf("loss %q (entries %d, checkpoint %d), want both sizes named", err, le.Entries, le.Checkpoint.Size)
	}
	if got := seen.all(); len(got) != 1 || got[0].Tenant != "acme" {
		t.Fatalf("OnLoss saw %+v, want one loss of acme", got)
	}
	next := open(t, l2, "checkout")
	if used[next.Incident] {
		t.Fatalf("the first incident after the loss reuses %s", next.Incident)
	}
	if len(next.Incident) > len("INC-")+4 {
		t.Fatalf("code %s is not short", next.Incident)
	}
	used[next.Incident] = true
	if err := l2.Check(ctx, "acme"); err != nil {
		t.Fatalf("second Check reports the loss again: %v", err)
	}

	mark, err := sink.Load(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	_, verr := ledger.VerifyStoreMark(ctx, wiped, "acme", sinkKey.Public().(ed25519.PublicKey), mark)
	// The present chain holds the loss marker and the incident opened after it.
	if !errors.As(verr, &le) || !le.Restarted || !strings.Contains(verr.Error(), "had 4 entries, the present chain has 2") {
		t.Fatalf("verify of the restarted chain: %v, want the loss reported with both sizes", verr)
	}

	// Another process on the restarted chain: no new loss, codes continue uniquely.
	l3 := guarded(t, wiped, sink, seen)
	if err := l3.Check(ctx, "acme"); err != nil {
		t.Fatalf("a new process on the restarted chain: %v", err)
	}
	for i := 0; i < 3; i++ {
		e := open(t, l3, fmt.Sprintf("svc%d", i))
		if used[e.Incident] {
			t.Fatalf("code %s repeats", e.Incident)
		}
		used[e.Incident] = true
	}
	if got := seen.all(); len(got) != 1 {
		t.Fatalf("%d losses reported, want 1", len(got))
	}
	// The old codes that survive in the restarted chain still resolve.
	if in, _, err := l3.Incident(ctx, "acme", next.Incident); err != nil || in.ID != next.Incident {
		t.Fatalf("incident %s: %v", next.Incident, err)
	}
}

// TestLossWhileRunning: Redis loses everything under a running Ledger. The next append
// notices (its tail is shorter than the chain this Ledger wrote), reports the loss once,
// and opens the incident under a code never used before, with and without a sink.
func TestLossWhileRunning(t *testing.T) {
	for _, withSink := range []bool{true, false} {
		t.Run(fmt.Sprintf("sink=%v", withSink), func(t *testing.T) {
			m := miniredis.RunT(t)
			c := redis.NewClient(&redis.Options{Addr: m.Addr()})
			t.Cleanup(func() { c.Close() })
			var sink ledger.CheckpointSink
			if withSink {
				sink, _ = newSink(t)
			}
			seen := &losses{}
			l := guarded(t, ledger.NewRedisStore(c, "p:"), sink, seen)
			used := map[string]bool{}
			for i := 0; i < 5; i++ {
				used[open(t, l, fmt.Sprintf("svc%d", i)).Incident] = true
			}
			m.FlushAll() // the server restarted without persistence (our own miniredis)
			e := open(t, l, "svc0")
			if used[e.Incident] {
				t.Fatalf("after the loss the new incident reuses %s", e.Incident)
			}
			got := seen.all()
			if len(got) != 1 || got[0].Entries != 0 || got[0].Checkpoint.Size != 5 {
				t.Fatalf("OnLoss saw %+v, want one loss: 0 entries against 5", got)
			}
			used[e.Incident] = true
			if e2 := open(t, l, "svc1"); used[e2.Incident] {
				t.Fatalf("code %s repeats", e2.Incident)
			}
			if len(seen.all()) != 1 {
				t.Fatal("the loss was reported more than once")
			}
		})
	}
}

// TestCodesPastUncoveredEntries: entries the sink's checkpoint does not cover yet (it is
// written at most once per SinkInterval) still had their codes reserved, so after a loss
// the new chain's codes skip them too.
func TestCodesPastUncoveredEntries(t *testing.T) {
	ctx := context.Background()
	sink, _ := newSink(t)
	l1, err := ledger.New(ledger.Options{Store: ledger.NewMemStore(), Signer: sinkKey, Sink: sink, SinkInterval: time.Hour, ReserveBlock: 4})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	for i := 0; i < 6; i++ { // codes 1..6: the reservations reach 1+4 then 6+4
		used[open(t, l1, fmt.Sprintf("svc%d", i)).Incident] = true
	}
	m, _ := sink.Load(ctx, "acme")
	if m.Checkpoint.Size >= 6 {
		t.Fatalf("the sink covers %d entries: the test needs uncovered ones", m.Checkpoint.Size)
	}
	seen := &losses{}
	l2 := guarded(t, ledger.NewMemStore(), sink, seen)
	if err := l2.Check(ctx, "acme"); !errors.Is(err, ledger.ErrLost) {
		t.Fatalf("Check: %v", err)
	}
	for i := 0; i < 6; i++ {
		if e := open(t, l2, fmt.Sprintf("svc%d", i)); used[e.Incident] {
			t.Fatalf("code %s of an uncovered lost entry is used again", e.Incident)
		}
	}
}

// TestReplacedChainIsALoss: a chain as long as its checkpoint but whose entry at that
// size is not the signed one (Redis restored from another deployment, a forged chain) is
// a loss too, and verify names it.
func TestReplacedChainIsALoss(t *testing.T) {
	ctx := context.Background()
	sink, _ := newSink(t)
	l1 := guarded(t, ledger.NewMemStore(), sink, &losses{})
	for _, svc := range []string{"a", "b", "c"} {
		open(t, l1, svc)
	}
	if err := l1.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	other := ledger.NewMemStore()
	lo := newLedger(t, other)
	for _, svc := range []string{"x", "y", "z", "w", "v"} {
		e := ev("acme", "", ledger.Detect)
		e.Service = svc
		if _, err := lo.Record(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	mark, _ := sink.Load(ctx, "acme")
	_, verr := ledger.VerifyStoreMark(ctx, other, "acme", sinkKey.Public().(ed25519.PublicKey), mark)
	var le *ledger.LossError
	if !errors.As(verr, &le) || !le.Differs || !strings.Contains(verr.Error(), "chain has 5 entries but entry 3 is not the one its last checkpoint") {
		t.Fatalf("verify of a replaced chain: %v", verr)
	}
	seen := &losses{}
	if err := guarded(t, other, sink, seen).Check(ctx, "acme"); !errors.As(err, &le) || !le.Differs || len(seen.all()) != 1 {
		t.Fatalf("Check of a replaced chain: %v", err)
	}
}

// TestFailoverKeepsNoRepeatedCodes: a failover to a replica that lacks the newest entries
// but kept the chain's code base (a restarted chain's) shrinks the tail under a running
// Ledger: a loss, and the base is raised past the lost codes rather than kept.
func TestFailoverKeepsNoRepeatedCodes(t *testing.T) {
	ctx := context.Background()
	st := ledger.NewMemStore()
	if _, err := st.ClaimBase(ctx, "acme", 0, 100); err != nil {
		t.Fatal(err)
	}
	seen := &losses{}
	l := guarded(t, st, nil, seen)
	used := map[string]bool{}
	for i := 0; i < 5; i++ {
		used[open(t, l, fmt.Sprintf("svc%d", i)).Incident] = true
	}
	st.Tamper("acme", func(es []ledger.Entry) []ledger.Entry { return es[:3] }) // the replica had 3
	e := open(t, l, "new")
	if used[e.Incident] {
		t.Fatalf("after the failover the new incident reuses %s", e.Incident)
	}
	if got := seen.all(); len(got) != 1 || got[0].Entries != 3 || got[0].Checkpoint.Size != 5 {
		t.Fatalf("OnLoss saw %+v, want 3 entries against 5", got)
	}
	if b, _ := st.Base(ctx, "acme"); b < 105 {
		t.Fatalf("code base %d after the failover, want at least 105 (codes up to INC-69 were used)", b)
	}
}
