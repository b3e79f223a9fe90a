package executor_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/ledger"
)

// TestLostLeaseStopsTheCall: when another consumer holds the execution's lease (this one
// was paused or cut off from Redis past the lease), the call in flight is abandoned, so
// two calls for one approval are never in flight, and nothing is recorded by the loser.
func TestLostLeaseStopsTheCall(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	arrived, aborted := make(chan struct{}, 1), make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.ReadAll(r.Body) // so the server notices when the client goes away
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
			aborted <- struct{}{}
		case <-time.After(waitTimeout):
		}
	}))
	defer srv.Close()
	v.setTarget("acme", executor.Target{URL: srv.URL, Secret: "s", AllowPrivateNetwork: true})
	b := v.newBot(func(o *executor.Options) { o.Lease = 600 * time.Millisecond; o.AttemptTimeout = waitTimeout })
	b.start(t)
	inc, _ := v.authorize("checkout", "restart_workers")
	x, err := b.Prepare(context.Background(), "acme", inc)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Enqueue(context.Background(), x); err != nil {
		t.Fatal(err)
	}
	select {
	case <-arrived:
	case <-time.After(waitTimeout):
		t.Fatal("the call never arrived")
	}
	// Another consumer takes the lease over.
	ctx := context.Background()
	iter := v.rdb.Scan(ctx, 0, v.prefix+"*inflight*", 10).Iterator()
	n := 0
	for iter.Next(ctx) {
		until := time.Now().Add(time.Minute).UnixMilli()
		v.rdb.Set(ctx, iter.Val(), "another-consumer/1-0|"+strconv.FormatInt(until, 10), time.Minute)
		n++
	}
	if n != 1 {
		t.Fatalf("found %d lease keys", n)
	}
	select {
	case <-aborted:
	case <-time.After(waitTimeout):
		t.Fatalf("the call went on after the lease was lost; logs:\n%s", v.logs.String())
	}
	in, _ := v.incident(inc)
	if in.Stage != ledger.Authorized {
		t.Fatalf("the consumer that lost the lease recorded %s", in.Stage)
	}
}

// TestStoppedConsumerLeavesTheGroup: a bot that stops with nothing pending leaves no
// consumer name behind in the outbox group (each restart would otherwise add one).
func TestStoppedConsumerLeavesTheGroup(t *testing.T) {
	t.Parallel()
	v := newEnv(t)
	hook := newWebhook(t, status(400))
	v.setTarget("acme", executor.Target{URL: hook.srv.URL, Secret: "s", AllowPrivateNetwork: true})
	b := v.newBot(func(o *executor.Options) { o.Consumer = "leaving-bot" })
	stop := b.start(t)
	ctx := context.Background()
	inc, _ := v.authorize("checkout", "restart_workers")
	x, err := b.Prepare(ctx, "acme", inc)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Enqueue(ctx, x); err != nil {
		t.Fatal(err)
	}
	b.outcome(t) // settled (the signature secret does not matter here): nothing pending
	key := v.prefix + "ae:outbox"
	names := func() []string {
		cs, err := v.rdb.XInfoConsumers(ctx, key, "executor").Result()
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range cs {
			out = append(out, c.Name)
		}
		return out
	}
	if n := names(); len(n) != 1 || n[0] != "leaving-bot" {
		t.Fatalf("consumers while running: %v", n)
	}
	stop()
	if n := names(); len(n) != 0 {
		t.Fatalf("consumers after a clean stop: %v", n)
	}
}
