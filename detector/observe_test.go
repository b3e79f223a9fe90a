package detector

import (
	"context"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// TestObserveJudgesLikeAPoll: readings handed to Observe go through the gate's hysteresis:
// two bad ones open one incident, three healthy ones recover it, and a second reading in
// the same second counts nothing.
func TestObserveJudgesLikeAPoll(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", defaultTenants(), nil)
	ctx := context.Background()
	good := Health{P95Ms: 120, ErrorRate: 0.001, SampleSize: 200}
	bad := Health{P95Ms: 4000, ErrorRate: 0.3, SampleSize: 200}
	at := base
	observe := func(r Health) {
		t.Helper()
		at = at.Add(5 * time.Second)
		h.clock.Set(at)
		if err := d.Observe(ctx, "acme", "checkout", at, r, "test reading"); err != nil {
			t.Fatal(err)
		}
	}
	observe(good)
	observe(bad)
	if err := d.Observe(ctx, "acme", "checkout", at, bad, "same second"); err != nil {
		t.Fatal(err)
	}
	if n := len(h.entriesOf("acme", ledger.Detect)); n != 0 {
		t.Fatalf("one bad reading (counted once) opened %d incidents; the gate wants two", n)
	}
	observe(bad)
	if n := len(h.entriesOf("acme", ledger.Detect)); n != 1 {
		t.Fatalf("two bad readings opened %d incidents, want 1", n)
	}
	observe(good)
	observe(good)
	if n := len(h.entriesOf("acme", ledger.Recover)); n != 0 {
		t.Fatalf("recovered after 2 healthy readings; the gate wants 3")
	}
	observe(good)
	if n := len(h.entriesOf("acme", ledger.Recover)); n != 1 {
		t.Fatalf("three healthy readings recovered %d incidents, want 1", n)
	}
	if err := d.Observe(ctx, "acme", "nosuch", at, good, ""); err == nil {
		t.Error("a reading of an unknown service was accepted")
	}
}
