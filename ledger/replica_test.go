package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/alertengine/alertengine/ledger"
)

// TestReplicaBesideARollbackNumbersPastTheLostChain: two replicas share a Redis and a
// checkpoint file. Redis is restarted from an older append-only file; the replica that
// wrote the lost entries finds the loss and restarts the chain. The other one, which never
// saw those entries, learns of it from the file before it opens an incident — so its
// incident code comes from the restarted chain, past every code the lost chain may have
// used — and before it would authorize an incident from before the loss.
func TestReplicaBesideARollbackNumbersPastTheLostChain(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	srv, rc := restartableRedis(t)
	sink, _ := newSink(t)
	replica := func() *ledger.Ledger {
		l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(rc, "t"), Signer: sinkKey, Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	a, b := replica(), replica()
	first := open(t, a, "checkout")
	if err := b.Check(ctx, "acme"); err != nil { // b starts: the chain is whole
		t.Fatal(err)
	}
	before := srv.Snapshot()
	for _, e := range []ledger.Event{ledger.Propose, ledger.Validate} {
		if _, err := a.Record(ctx, ev("acme", first.Incident, e)); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Check(ctx, "acme"); err != nil { // the file covers a's entries
		t.Fatal(err)
	}
	srv.RestartFrom(before)

	second := open(t, a, "search") // a finds the loss at this append and restarts the chain
	base := a.Base("acme")
	if base == 0 {
		t.Fatal("the replica that wrote the lost entries did not restart the chain")
	}
	if got := incidentNumber(t, second.Incident); got <= base {
		t.Fatalf("a opened %s after the loss, want a code past INC-%X", second.Incident, base)
	}
	third := open(t, b, "payments")
	if got := incidentNumber(t, third.Incident); got <= base {
		t.Errorf("the other replica opened %s after the loss, want a code past INC-%X (the restarted chain's)", third.Incident, base)
	}
	if _, err := b.Record(ctx, ev("acme", first.Incident, ledger.Propose)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Record(ctx, ev("acme", first.Incident, ledger.Validate)); !errors.Is(err, ledger.ErrFenced) {
		t.Errorf("the other replica validated %s, from before the loss: %v, want ErrFenced", first.Incident, err)
	}
}

func incidentNumber(t *testing.T, id string) uint64 {
	t.Helper()
	var n uint64
	for _, c := range id[len("INC-"):] {
		n *= 16
		switch {
		case c >= '0' && c <= '9':
			n += uint64(c - '0')
		case c >= 'A' && c <= 'F':
			n += uint64(c-'A') + 10
		default:
			t.Fatalf("bad incident id %q", id)
		}
	}
	return n
}
