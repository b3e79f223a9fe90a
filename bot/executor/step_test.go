package executor_test

import (
	"context"
	"testing"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/ledger"
)

// TestDrainHandlesWaitingEntriesOnTheCallersGoroutine: Drain delivers what is in the
// outbox now, retrying through Options.Sleep, and returns once the outbox is empty.
func TestDrainHandlesWaitingEntriesOnTheCallersGoroutine(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	hook := newWebhook(t, status(503), status(200))
	v.setTarget(tenant, executor.Target{URL: hook.srv.URL, Secret: secret, AllowPrivateNetwork: true})
	b := v.newBot(nil)
	ctx := context.Background()
	if n, err := b.Drain(ctx); err != nil || n != 0 {
		t.Fatalf("empty outbox: Drain = %d, %v", n, err)
	}
	id, _ := v.authorize("checkout", "restart_workers")
	x, err := b.Prepare(ctx, tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Enqueue(ctx, x); err != nil {
		t.Fatal(err)
	}
	n, err := b.Drain(ctx)
	if err != nil || n != 1 {
		t.Fatalf("Drain = %d, %v; want 1 entry handled", n, err)
	}
	// Returned only after the outcome: no waiting needed.
	if in, _ := v.incident(id); in.Stage != ledger.Executed {
		t.Fatalf("after Drain the incident is %s, want EXECUTED", in.Stage)
	}
	if got := b.sleeps.get(); len(got) != 1 {
		t.Errorf("slept %v, want one backoff between the 503 and the 200", got)
	}
	if o := b.outcome(t); o.Kind != executor.Executed {
		t.Errorf("outcome %s, want executed", o.Kind)
	}
	if entries, pending := v.outboxLen(); entries != 0 || pending != 0 {
		t.Errorf("outbox has %d entries, %d pending after Drain", entries, pending)
	}
}
