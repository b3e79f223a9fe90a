package claim_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger/claim"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/alertengine/alertengine/ledger/ledgertest/redisfault"
)

func claims(t testing.TB, rdb redis.Cmdable, lease time.Duration) *claim.Claims {
	t.Helper()
	c, err := claim.New(claim.Options{Redis: rdb, Lease: lease, Keep: time.Hour, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func take(t *testing.T, c *claim.Claims, key string) (*claim.Claim, claim.Outcome) {
	t.Helper()
	cl, out, err := c.Take(t.Context(), key)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	return cl, out
}

// TestOneHandlerAtATime: a second replica is told Busy while the first handles, Handled
// once it is done, and gets the delivery when the first gave it up unhandled.
func TestOneHandlerAtATime(t *testing.T) {
	t.Parallel()
	rdb, prefix := ledgertest.Redis(t)
	a, b := claims(t, rdb, time.Minute), claims(t, rdb, time.Minute)

	first, out := take(t, a, prefix+"done")
	if out != claim.Mine {
		t.Fatalf("first take: %v, want mine", out)
	}
	if _, out := take(t, b, prefix+"done"); out != claim.Busy {
		t.Errorf("while held: %v, want busy", out)
	}
	if err := first.Done(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := first.Done(t.Context()); err != nil {
		t.Errorf("Done again (a retried call): %v", err)
	}
	if _, out := take(t, b, prefix+"done"); out != claim.Handled {
		t.Errorf("after done: %v, want handled", out)
	}
	if ttl := rdb.TTL(t.Context(), prefix+"done").Val(); ttl < 59*time.Minute {
		t.Errorf("a handled delivery is remembered for %v, want the Keep of 1 h", ttl)
	}

	failed, _ := take(t, a, prefix+"failed")
	if err := failed.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	again, out := take(t, b, prefix+"failed")
	if out != claim.Mine {
		t.Fatalf("after release: %v, want mine (the redelivery is handled)", out)
	}
	// A late Release of the first holder must not free the new holder's claim.
	if err := failed.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, out := take(t, a, prefix+"failed"); out != claim.Busy {
		t.Errorf("a stale release freed another holder's claim: %v", out)
	}
	_ = again.Done(t.Context())
}

// TestLapsedLeaseLetsARedeliveryIn: a holder that died frees the delivery after its
// lease; if it comes back and says Done, it learns another handler took over.
func TestLapsedLeaseLetsARedeliveryIn(t *testing.T) {
	t.Parallel()
	srv := ledgertest.NewServer(t)
	rdb, prefix := srv.Client(t), srv.Prefix(t)
	dead := claims(t, rdb, time.Millisecond)
	live := claims(t, rdb, time.Minute)
	gone, _ := take(t, dead, prefix+"k")
	if srv.Embedded {
		srv.Mini.FastForward(time.Second) // the embedded server's clock moves only when told
	}
	var out claim.Outcome
	var cl *claim.Claim
	// Wait for the 1 ms lease to lapse on the server's clock.
	deadline := time.Now().Add(5 * time.Second)
	for out = claim.Busy; out == claim.Busy && time.Now().Before(deadline); {
		cl, out = take(t, live, prefix+"k")
	}
	if out != claim.Mine {
		t.Fatalf("after the lease lapsed: %v, want mine", out)
	}
	if err := gone.Done(t.Context()); !errors.Is(err, claim.ErrLost) {
		t.Errorf("Done by the lapsed holder: %v, want ErrLost", err)
	}
	if err := cl.Done(t.Context()); err != nil {
		t.Errorf("Done by the new holder: %v", err)
	}
}

// TestSlowReplyKeepsTheClaim: Redis applies the claim but its reply is late; the client
// times out and sends the claim again, which finds the claim taken — by itself. The
// delivery is still this handler's, not dropped as somebody else's.
func TestSlowReplyKeepsTheClaim(t *testing.T) {
	t.Parallel()
	srv := ledgertest.NewServer(t)
	prefix := srv.Prefix(t)
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := redisfault.Start(t, opt.Addr)
	opt.Addr, opt.ReadTimeout, opt.MaxRetries = proxy.Addr(), 200*time.Millisecond, 3
	rdb := redis.NewClient(opt)
	t.Cleanup(func() { _ = rdb.Close() })
	key := prefix + "slow"
	held := proxy.Hold(redisfault.Any(redisfault.Command("evalsha", key), redisfault.Command("eval", key)), 1)
	defer held.Release()

	c := claims(t, rdb, time.Minute)
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	cl, out, err := c.Take(ctx, key)
	if err != nil {
		t.Fatalf("Take: %v", err)
	}
	select {
	case <-held.Reached():
	default:
		t.Fatal("the first claim's reply was never held: the fault did not happen")
	}
	if out != claim.Mine {
		t.Fatalf("Take after a late reply: %v, want mine (the retry found its own claim)", out)
	}
	if err := cl.Done(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	rdb, _ := ledgertest.Redis(t)
	for _, o := range []claim.Options{
		{Lease: time.Second, Keep: time.Hour},
		{Redis: rdb, Keep: time.Hour},
		{Redis: rdb, Lease: time.Hour, Keep: time.Minute},
	} {
		if _, err := claim.New(o); err == nil {
			t.Errorf("New(%+v): no error", o)
		}
	}
}

// TestPausedRedisDoesNotHoldTheDelivery: Redis is stopped (SIGSTOP) while a claim is
// taken; the handler gives up on it (the sender will redeliver). When Redis resumes and
// applies the abandoned claim, it is undone too, so the redelivery is handled at once
// rather than refused as busy for a whole lease.
func TestPausedRedisDoesNotHoldTheDelivery(t *testing.T) {
	t.Parallel()
	srv := redisfault.StartServer(t)
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = rdb.Close() })
	c, err := claim.New(claim.Options{Redis: rdb, Lease: time.Minute, Keep: time.Hour, Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := rdb.Ping(t.Context()).Err(); err != nil { // connected before the pause
		t.Fatal(err)
	}
	srv.Pause()
	t0 := time.Now()
	_, _, err = c.Take(t.Context(), "paused")
	t.Logf("Take on a stopped Redis gave up after %v", time.Since(t0).Round(time.Millisecond))
	if err == nil {
		srv.Resume()
		t.Fatal("Take answered while Redis was stopped")
	}
	srv.Resume()
	// The abandoned claim and its undoing are applied once Redis runs again.
	deadline := time.Now().Add(5 * time.Second)
	for {
		cl, out, err := c.Take(t.Context(), "paused")
		if err == nil && out == claim.Mine {
			_ = cl.Done(t.Context())
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after Redis resumed: %v, %v; want the redelivery handled, not busy for the lease", out, err)
		}
	}
}
