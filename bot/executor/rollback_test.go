package executor_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest/redisfault"
)

// TestRollbackDoesNotCallTheWebhookAgain: Redis is restarted from an append-only file
// copied after the approval was queued but before it ran, so the incident reads AUTHORIZED
// again and its outbox entry is pending again. The executor, which kept the executed key
// in the file beside the checkpoint, does not call the recovery webhook a second time: it
// records a security entry naming when it ran, and reports a refusal the thread is told.
func TestRollbackDoesNotCallTheWebhookAgain(t *testing.T) {
	t.Parallel()
	srv := redisfault.StartServer(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: 5})
	t.Cleanup(func() { _ = rc.Close() })
	l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(rc, "t")})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ledger.NewExecutedFile(ledger.ExecutedPath(filepath.Join(t.TempDir(), "checkpoints.json")))
	if err != nil {
		t.Fatal(err)
	}
	v := &env{t: t, rdb: rc, prefix: "t", ledger: l, targets: map[string]executor.Target{}, logs: &syncBuffer{}}
	h := newWebhook(t)
	v.setTarget(tenant, executor.Target{URL: h.srv.URL, Secret: secret, AllowPrivateNetwork: true})
	withKeys := func(o *executor.Options) { o.Executed = keys }

	id, _ := v.authorize("checkout", "restart_workers")
	b := v.newBot(withKeys)
	x, err := b.Prepare(context.Background(), tenant, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Enqueue(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	before := srv.Snapshot()
	stop := b.start(t)
	if o := b.outcome(t); o.Kind != executor.Executed {
		t.Fatalf("first delivery: %+v", o)
	}
	stop()

	srv.RestartFrom(before)
	if in, _ := v.incident(id); in.Stage != ledger.Authorized {
		t.Fatalf("after the rollback the incident is %s, want AUTHORIZED again (the fault did not happen)", in.Stage)
	}
	again := v.newBot(withKeys)
	again.start(t)
	o := again.outcome(t)
	if o.Kind != executor.Refused || !strings.Contains(o.Reason, "already ran") {
		t.Fatalf("delivery after the rollback: %+v, want it refused as already run", o)
	}
	if calls := h.Calls(); len(calls) != 1 {
		t.Fatalf("webhook called %d times, want once", len(calls))
	}
	_, hist := v.incident(id)
	sec := entries(hist, ledger.Security)
	if len(sec) != 1 || sec[0].Data["idempotency_key"] != x.IdempotencyKey || !strings.Contains(sec[0].Reason, "not called again") {
		t.Fatalf("security entries %+v, want one naming the key it refused", sec)
	}
	if n := len(entries(hist, ledger.Execute)); n != 0 {
		t.Errorf("%d execute entries on the rolled-back chain, want none written by the refusal", n)
	}
	if n, p := v.outboxLen(); n != 0 || p != 0 {
		t.Errorf("outbox holds %d entries, %d pending; want the refused copy settled", n, p)
	}
}
