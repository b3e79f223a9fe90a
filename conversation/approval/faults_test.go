package approval_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/alertengine/alertengine/ledger/ledgertest/redisfault"
)

// TestLateReplyToTheAuthorizationIsStillAnApproval: Redis stores the AUTHORIZED entry but
// its reply is late; the client times out and sends the append again, which finds the
// incident already AUTHORIZED. That authorization is this press's own: the presser is told
// it was approved, and no refused press is recorded after it.
func TestLateReplyToTheAuthorizationIsStillAnApproval(t *testing.T) {
	t.Parallel()
	srv := ledgertest.NewServer(t)
	rc, prefix := srv.Client(t), srv.Prefix(t)
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := redisfault.Start(t, opt.Addr)
	opt.Addr, opt.ReadTimeout, opt.MaxRetries = proxy.Addr(), 300*time.Millisecond, 3
	slow := redis.NewClient(opt)
	t.Cleanup(func() { _ = slow.Close() })

	f := newFixtureOn(t, rc, slow, prefix)
	ctx := context.Background()
	ref := f.issue(t)[0]
	// The append carrying this approval's reference gets its reply late, once.
	held := proxy.Hold(redisfault.Any(redisfault.Command("evalsha", ref), redisfault.Command("eval", ref)), 1)
	defer held.Release()

	res, err := f.svc.Redeem(ctx, ref, tendai, pol)
	select {
	case <-held.Reached():
	default:
		t.Fatal("the authorization's reply was never held: the fault did not happen")
	}
	if err != nil {
		t.Fatalf("press whose authorization was stored: %v (%q)", err, approval.Explain(err, "acme"))
	}
	if res.Status != approval.Authorized || res.Entry.Approval != ref || res.Entry.To != ledger.Authorized {
		t.Fatalf("result %+v, want this press's authorization", res)
	}
	h := f.history(t)
	if n := count(h, ledger.Authorize); n != 1 {
		t.Errorf("%d AUTHORIZED entries, want 1", n)
	}
	if n := count(h, ledger.RefusedPress); n != 0 {
		t.Errorf("%d refused presses recorded after the press's own authorization, want none", n)
	}
}

// TestRedisRollbackDoesNotRunAnApprovalTwice: Redis is restarted from an append-only file
// copied before the press, so the incident reads VALIDATED and its approval unconsumed
// again. Pressing that approval again — on the replica that saw the press, on one that
// ran beside it and never saw the press (it learns of the loss from the shared checkpoint
// file before it would authorize), or on one started after the rollback — is refused with the reason, and no second AUTHORIZED entry
// is written: the executor gets nothing to run twice.
func TestRedisRollbackDoesNotRunAnApprovalTwice(t *testing.T) {
	t.Parallel()
	srv := redisfault.StartServer(t)
	rc := redis.NewClient(&redis.Options{Addr: srv.Addr(), MaxRetries: 5})
	t.Cleanup(func() { _ = rc.Close() })
	_, signer, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	sink, err := ledger.NewFileSink(filepath.Join(t.TempDir(), "checkpoints.json"), signer.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	guarded := func() *ledger.Ledger {
		l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(rc, "t"), Signer: signer, Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	f := &fixture{rc: rc, prefix: "t", now: time.Now(), led: guarded()}
	f.svc = f.service(t, rc)
	ctx := context.Background()
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	e, err := f.led.Record(ctx, ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout", Actor: policy, Reason: "p95 up"})
	if err != nil {
		t.Fatal(err)
	}
	f.incident = e.Incident
	for _, ev := range []ledger.Event{ledger.Propose, ledger.Validate} {
		if _, err := f.led.Record(ctx, ledger.Entry{Tenant: "acme", Incident: f.incident, Event: ev, Actor: policy, Action: "restart_workers"}); err != nil {
			t.Fatal(err)
		}
	}
	ref := f.issue(t)[0]
	// A replica running since before the press: it checked the chain at its start, then
	// never saw the press another replica took.
	early := &fixture{prefix: "t", now: f.now, led: guarded()}
	if err := early.led.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	earlySvc := early.service(t, rc)
	before := srv.Snapshot()

	if res, err := f.svc.Redeem(ctx, ref, tendai, pol); err != nil || res.Status != approval.Authorized {
		t.Fatalf("first press: %+v, %v", res, err)
	}
	if err := f.led.Check(ctx, "acme"); err != nil { // the guard's periodic check: the sink covers the press
		t.Fatal(err)
	}
	srv.RestartFrom(before)

	later := &fixture{prefix: "t", now: f.now, led: guarded()}
	for _, c := range []struct {
		name string
		svc  *approval.Service
		by   approval.Presser
	}{{"a replica running since before the press", earlySvc, rudo}, {"the same replica", f.svc, rudo},
		{"a replica started after", later.service(t, rc), tendai}, {"the same replica again", f.svc, rudo}} {
		name := c.name
		_, err := c.svc.Redeem(ctx, ref, c.by, pol)
		if !errors.Is(err, ledger.ErrFenced) {
			t.Errorf("%s: press of the rolled-back approval: %v, want it refused as fenced", name, err)
			continue
		}
		if msg := approval.Explain(err, "acme"); !strings.Contains(msg, "Nothing was run") || !strings.Contains(msg, "operator") {
			t.Errorf("%s: the presser reads %q", name, msg)
		}
	}
	h := f.history(t)
	if n := count(h, ledger.Authorize); n != 0 {
		t.Errorf("%d AUTHORIZED entries on the rolled-back chain, want none (the first was lost, no second may be written)", n)
	}
	if n := count(h, ledger.RefusedPress); n == 0 {
		t.Error("the refused presses were not recorded")
	}
}
