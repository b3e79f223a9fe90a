package approval_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
)

var secret = []byte(strings.Repeat("s", 32))

type fixture struct {
	svc      *approval.Service
	led      *ledger.Ledger
	rc       *redis.Client
	prefix   string
	incident string
	now      time.Time
}

// newFixture opens an incident and brings it to VALIDATED, as the pipeline would.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	rc, prefix := ledgertest.Redis(t)
	return newFixtureOn(t, rc, rc, prefix)
}

// newFixtureOn is newFixture with the approvals on rc and the ledger's store on ledgerRC
// (the same client, or one whose replies a fault proxy holds or drops).
func newFixtureOn(t *testing.T, rc, ledgerRC *redis.Client, prefix string) *fixture {
	t.Helper()
	f := &fixture{rc: rc, prefix: prefix, now: time.Now()}
	led, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(ledgerRC, prefix)})
	if err != nil {
		t.Fatal(err)
	}
	f.led = led
	f.svc = f.service(t, rc)
	ctx := context.Background()
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	e, err := led.Record(ctx, ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout", Actor: policy, Reason: "p95 up"})
	if err != nil {
		t.Fatal(err)
	}
	f.incident = e.Incident
	for _, ev := range []ledger.Event{ledger.Propose, ledger.Validate} {
		if _, err := led.Record(ctx, ledger.Entry{Tenant: "acme", Incident: f.incident, Event: ev, Actor: policy, Action: "restart_workers"}); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) service(t *testing.T, rc redis.UniversalClient) *approval.Service {
	s, err := approval.New(approval.Options{Redis: rc, KeyPrefix: f.prefix, Secret: secret, Ledger: f.led, Clock: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (f *fixture) issue(t *testing.T, offers ...approval.Offer) []string {
	t.Helper()
	if len(offers) == 0 {
		offers = []approval.Offer{{Action: "restart_workers"}}
	}
	for i := range offers {
		offers[i].Tenant, offers[i].Incident, offers[i].PolicyVersion, offers[i].Evidence = "acme", f.incident, "pol-1", "card-hash"
	}
	refs, err := f.svc.Issue(context.Background(), 5*time.Minute, offers...)
	if err != nil {
		t.Fatal(err)
	}
	return refs
}

var (
	tendai = approval.Presser{Tenant: "acme", Name: "tendai", Approver: true, Channel: "telegram", UserID: "1"}
	rudo   = approval.Presser{Tenant: "acme", Name: "rudo", Approver: true, Channel: "telegram", UserID: "2"}
	viewer = approval.Presser{Tenant: "acme", Name: "vimbai", Approver: false, Channel: "telegram", UserID: "3"}
	pol    = approval.Policy{Version: "pol-1"}
)

func (f *fixture) history(t *testing.T) []ledger.Entry {
	_, h, err := f.led.Incident(context.Background(), "acme", f.incident)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func count(h []ledger.Entry, ev ledger.Event) int {
	n := 0
	for _, e := range h {
		if e.Event == ev {
			n++
		}
	}
	return n
}

func TestApproverAuthorizesOnce(t *testing.T) {
	f := newFixture(t)
	ref := f.issue(t)[0]
	if len(ref) > 64 || !approval.ValidRef(ref) || len(ref) != 25 {
		t.Fatalf("reference %q: want ap: + 22 characters", ref)
	}
	res, err := f.svc.Redeem(context.Background(), ref, tendai, pol)
	if err != nil || res.Status != approval.Authorized || res.Entry.To != ledger.Authorized {
		t.Fatalf("redeem: %+v, %v", res, err)
	}
	if res.Entry.Approval != ref || res.Entry.Evidence != "card-hash" || res.Entry.Actor.ID != "tendai" || res.Entry.Actor.Kind != ledger.ActorEngineer {
		t.Fatalf("AUTHORIZED entry does not carry who, what and what they saw: %+v", res.Entry)
	}
	_, err = f.svc.Redeem(context.Background(), ref, rudo, pol)
	var ue *approval.UsedError
	if !errors.As(err, &ue) || ue.By != "tendai" || approval.Explain(err, "acme") != "Already approved by tendai." {
		t.Fatalf("second press: %v", err)
	}
}

func TestNonApproverIsRefusedAndTheApprovalStaysPending(t *testing.T) {
	f := newFixture(t)
	ref := f.issue(t)[0]
	unlinked := approval.Presser{Tenant: "acme", Channel: "telegram", UserID: "99"}
	for _, p := range []approval.Presser{viewer, unlinked} {
		_, err := f.svc.Redeem(context.Background(), ref, p, pol)
		if !errors.Is(err, approval.ErrNotApprover) || approval.Explain(err, "acme") != "You are not an approver for acme." {
			t.Fatalf("%+v: %v", p, err)
		}
	}
	h := f.history(t)
	if count(h, ledger.RefusedPress) != 2 || count(h, ledger.Authorize) != 0 {
		t.Fatalf("refusals not audited or something authorized: %+v", h)
	}
	if res, err := f.svc.Redeem(context.Background(), ref, tendai, pol); err != nil || res.Status != approval.Authorized {
		t.Fatalf("approver after refusals: %v", err)
	}
}

func TestUsedAndExpiredPressesAreAuditedDistinctly(t *testing.T) {
	f := newFixture(t)
	refs := f.issue(t, approval.Offer{Action: "restart_workers"}, approval.Offer{Action: "rollback"})
	ctx := context.Background()
	if _, err := f.svc.Redeem(ctx, refs[0], tendai, pol); err != nil {
		t.Fatal(err)
	}
	f.now = f.now.Add(time.Second)
	if _, err := f.svc.Redeem(ctx, refs[0], rudo, pol); !errors.Is(err, approval.ErrUsed) {
		t.Fatalf("+1 s: %v", err)
	}
	f.now = f.now.Add(6 * time.Minute)
	if _, err := f.svc.Redeem(ctx, refs[0], rudo, pol); !errors.Is(err, approval.ErrUsed) {
		t.Fatalf("consumed, after the TTL: %v", err)
	}
	f.now = f.now.Add(-6 * time.Minute)
	_, err := f.svc.Redeem(ctx, refs[1], rudo, pol)
	var ue *approval.UsedError
	if !errors.As(err, &ue) || !ue.Voided {
		t.Fatalf("sibling of the approved option: %v, want voided", err)
	}
	// After the TTL: Redis has dropped the token (emulated by deleting it, as the TTL does).
	fresh := newFixture(t)
	ref := fresh.issue(t)[0]
	iter := fresh.rc.Scan(ctx, 0, fresh.prefix+"*tok:"+ref, 10).Iterator()
	for iter.Next(ctx) {
		fresh.rc.Del(ctx, iter.Val())
	}
	_, err = fresh.svc.Redeem(ctx, ref, tendai, pol)
	if !errors.Is(err, approval.ErrExpired) || !strings.Contains(approval.Explain(err, "acme"), "expired") {
		t.Fatalf("after TTL: %v", err)
	}
	h := append(f.history(t), fresh.history(t)...)
	reasons := map[string]bool{}
	for _, e := range h {
		if e.Event == ledger.RefusedPress {
			reasons[e.Reason] = true
		}
	}
	if len(reasons) != 4 {
		t.Fatalf("want four distinct audited refusals (used, used after the TTL, voided, expired), got %v", reasons)
	}
	if n := count(f.history(t), ledger.Authorize); n != 1 {
		t.Fatalf("%d authorizations", n)
	}
}

func TestJWTTable(t *testing.T) {
	rsaKey, _ := rsa.GenerateKey(rand.Reader, 2048)
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, tc := range []struct {
		name  string
		token func(f *fixture, ref string) string
	}{
		{"alg none", func(f *fixture, ref string) string {
			return sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, f.claims(ref))
		}},
		{"RS256 token (HS/RS confusion)", func(f *fixture, ref string) string { return sign(jwt.SigningMethodRS256, rsaKey, f.claims(ref)) }},
		{"HS512", func(f *fixture, ref string) string { return sign(jwt.SigningMethodHS512, secret, f.claims(ref)) }},
		{"missing exp", func(f *fixture, ref string) string {
			c := f.claims(ref)
			delete(c, "exp")
			return sign(jwt.SigningMethodHS256, secret, c)
		}},
		{"wrong aud", func(f *fixture, ref string) string {
			c := f.claims(ref)
			c["aud"] = []string{"globex"}
			return sign(jwt.SigningMethodHS256, secret, c)
		}},
		{"tampered action hash", func(f *fixture, ref string) string {
			c := f.claims(ref)
			c["act"] = approval.ActionHash("rollback")
			return sign(jwt.SigningMethodHS256, secret, c)
		}},
		{"another secret", func(f *fixture, ref string) string {
			return sign(jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), f.claims(ref))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			ref := f.issue(t)[0]
			f.plant(t, ref, tc.token(f, ref))
			_, err := f.svc.Redeem(context.Background(), ref, tendai, pol)
			if !errors.Is(err, approval.ErrInvalidToken) {
				t.Fatalf("%s: %v, want refused", tc.name, err)
			}
			if h := f.history(t); count(h, ledger.Authorize) != 0 {
				t.Fatal("authorized with a bad token")
			}
		})
	}
	t.Run("unknown and foreign references read the same", func(t *testing.T) {
		f := newFixture(t)
		ref := f.issue(t)[0]
		foreign := approval.Presser{Tenant: "globex", Name: "tendai", Approver: true, Channel: "telegram", UserID: "1"}
		_, errForeign := f.svc.Redeem(context.Background(), ref, foreign, pol)
		_, errUnknown := f.svc.Redeem(context.Background(), "ap:AAAAAAAAAAABBBBBBBBBBB", foreign, pol)
		if !errors.Is(errForeign, approval.ErrUnknown) || !errors.Is(errUnknown, approval.ErrUnknown) ||
			approval.Explain(errForeign, "globex") != approval.Explain(errUnknown, "globex") {
			t.Fatalf("foreign %v / unknown %v", errForeign, errUnknown)
		}
		if res, err := f.svc.Redeem(context.Background(), ref, tendai, pol); err != nil || res.Status != approval.Authorized {
			t.Fatalf("the foreign press consumed the approval: %v", err)
		}
	})
}

func (f *fixture) claims(ref string) jwt.MapClaims {
	return jwt.MapClaims{"aud": []string{"acme"}, "sub": f.incident, "exp": f.now.Add(time.Minute).Unix(), "jti": ref,
		"act": approval.ActionHash("restart_workers"), "pv": "pol-1", "risk": "low"}
}

// plant replaces the stored token of ref, as an attacker with write access to Redis would.
func (f *fixture) plant(t *testing.T, ref, token string) {
	ctx := context.Background()
	iter := f.rc.Scan(ctx, 0, f.prefix+"*tok:"+ref, 10).Iterator()
	n := 0
	for iter.Next(ctx) {
		f.rc.Set(ctx, iter.Val(), token, time.Minute)
		n++
	}
	if n != 1 {
		t.Fatalf("found %d token keys", n)
	}
}

func TestHighRiskNeedsTwoDistinctApprovers(t *testing.T) {
	f := newFixture(t)
	ref := f.issue(t, approval.Offer{Action: "rollback", HighRisk: true})[0]
	ctx := context.Background()
	res, err := f.svc.Redeem(ctx, ref, tendai, pol)
	if err != nil || res.Status != approval.Partial {
		t.Fatalf("first approver: %+v %v", res, err)
	}
	if _, err := f.svc.Redeem(ctx, ref, tendai, pol); !errors.Is(err, approval.ErrSameApprover) {
		t.Fatalf("same approver twice: %v", err)
	}
	res, err = f.svc.Redeem(ctx, ref, rudo, pol)
	if err != nil || res.Status != approval.Authorized || len(res.By) != 2 {
		t.Fatalf("second approver: %+v %v", res, err)
	}
	in, _, _ := f.led.Incident(ctx, "acme", f.incident)
	if in.Stage != ledger.Authorized || len(in.ApprovedBy) != 2 {
		t.Fatalf("incident %+v", in)
	}
}

func TestSeparationOfDutiesAndPolicyVersion(t *testing.T) {
	f := newFixture(t)
	ref := f.issue(t)[0]
	ctx := context.Background()
	if _, err := f.svc.Redeem(ctx, ref, tendai, approval.Policy{Version: "pol-1", SuspectsOf: func(context.Context, string) []string { return []string{"tendai"} }}); !errors.Is(err, approval.ErrSelfApproval) {
		t.Fatalf("self-approval: %v", err)
	}
	if _, err := f.svc.Redeem(ctx, ref, rudo, approval.Policy{Version: "pol-2"}); !errors.Is(err, approval.ErrPolicyChanged) {
		t.Fatalf("policy changed: %v", err)
	}
	if res, err := f.svc.Redeem(ctx, ref, rudo, pol); err != nil || res.Status != approval.Authorized {
		t.Fatalf("refusals must not consume: %v", err)
	}
}

func TestIncidentRecoveredBeforePress(t *testing.T) {
	f := newFixture(t)
	ref := f.issue(t)[0]
	ctx := context.Background()
	if _, err := f.led.Record(ctx, ledger.Entry{Tenant: "acme", Incident: f.incident, Event: ledger.Recover, Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Redeem(ctx, ref, tendai, pol); !errors.Is(err, approval.ErrIncidentMoved) {
		t.Fatalf("press after recovery: %v", err)
	}
}

func TestConcurrentPressesAcrossReplicasHaveOneWinner(t *testing.T) {
	f := newFixture(t)
	ref := f.issue(t)[0]
	services := []*approval.Service{f.svc, f.service(t, f.rc)}
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, used := 0, 0
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := tendai
			if i%2 == 1 {
				p = rudo
			}
			_, err := services[i%2].Redeem(context.Background(), ref, p, pol)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, approval.ErrUsed), errors.Is(err, approval.ErrIncidentMoved):
				used++
			default:
				t.Errorf("unexpected: %v", err)
			}
		}(i)
	}
	wg.Wait()
	if wins != 1 || used != 199 {
		t.Fatalf("wins %d, refused %d", wins, used)
	}
	// 199 refusals by two people: each person's 1st, 10th and 100th of a kind are
	// recorded, with the count.
	if h := f.history(t); count(h, ledger.Authorize) != 1 || count(h, ledger.RefusedPress) < 2 || count(h, ledger.RefusedPress) > 8 {
		t.Fatalf("ledger: %d authorizations, %d audited refusals", count(h, ledger.Authorize), count(h, ledger.RefusedPress))
	}
}

// flakyStore fails the next appends that carry an authorization, either before storing
// them (lost) or after (stored, but the caller is told it failed: a timeout).
type flakyStore struct {
	ledger.Store
	mu        sync.Mutex
	failures  int
	afterSave bool
}

func (f *flakyStore) Append(ctx context.Context, tenant string, tail ledger.Tail, entries []ledger.Entry) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range entries {
		if e.Event == ledger.Authorize && f.failures > 0 {
			f.failures--
			if f.afterSave {
				f.Store.Append(ctx, tenant, tail, entries)
			}
			return 0, errors.New("redis: i/o timeout")
		}
	}
	return f.Store.Append(ctx, tenant, tail, entries)
}

func TestFailedAuthorizationGivesTheApprovalBack(t *testing.T) {
	for _, afterSave := range []bool{false, true} {
		t.Run(map[bool]string{false: "append lost", true: "append stored, reply lost"}[afterSave], func(t *testing.T) {
			f := newFixture(t)
			flaky := &flakyStore{Store: ledger.NewRedisStore(f.rc, f.prefix), failures: 1, afterSave: afterSave}
			led, err := ledger.New(ledger.Options{Store: flaky})
			if err != nil {
				t.Fatal(err)
			}
			f.led = led
			f.svc = f.service(t, f.rc)
			refs := f.issue(t, approval.Offer{Action: "restart_workers"}, approval.Offer{Action: "rollback"})
			ctx := context.Background()
			res, err := f.svc.Redeem(ctx, refs[0], tendai, pol)
			in, _, _ := f.led.Incident(ctx, "acme", f.incident)
			if afterSave {
				if err != nil || res.Status != approval.Authorized || in.Stage != ledger.Authorized {
					t.Fatalf("stored authorization reported as failed: %+v %v, stage %s", res, err, in.Stage)
				}
				return
			}
			if err == nil || in.Stage != ledger.Validated {
				t.Fatalf("lost append: %v, stage %s", err, in.Stage)
			}
			// Given back: the sibling is not voided, and the same option can be approved again.
			if _, err := f.svc.Redeem(ctx, refs[1], rudo, approval.Policy{Version: "pol-0"}); !errors.Is(err, approval.ErrPolicyChanged) {
				t.Fatalf("sibling after the give-back: %v (want it pending, refused only for the policy)", err)
			}
			if res, err := f.svc.Redeem(ctx, refs[0], tendai, pol); err != nil || res.Status != approval.Authorized {
				t.Fatalf("second press after the give-back: %+v %v", res, err)
			}
		})
	}
}

func TestSuspectsComeFromTheApprovalsIncident(t *testing.T) {
	f := newFixture(t)
	ref := f.issue(t)[0]
	var asked string
	pol := approval.Policy{Version: "pol-1", SuspectsOf: func(_ context.Context, incident string) []string {
		asked = incident
		return []string{"tendai"}
	}}
	if _, err := f.svc.Redeem(context.Background(), ref, tendai, pol); !errors.Is(err, approval.ErrSelfApproval) || asked != f.incident {
		t.Fatalf("self-approval: %v (asked about %q, want %q)", err, asked, f.incident)
	}
}

// dyingStore ends the goroutine that appends an authorization before anything is stored,
// as a process killed between consuming the approval and recording it would.
type dyingStore struct{ ledger.Store }

func (d dyingStore) Append(ctx context.Context, tenant string, tail ledger.Tail, entries []ledger.Entry) (int, error) {
	for _, e := range entries {
		if e.Event == ledger.Authorize {
			runtime.Goexit()
		}
	}
	return d.Store.Append(ctx, tenant, tail, entries)
}

// A replica that died after consuming tendai's approval but before recording it left the
// approval used and nothing authorized. The redelivered press (tendai's again) finishes
// the authorization instead of answering "already approved by tendai" while nothing runs;
// anyone else's press is still refused as used.
func TestPressResumesAnApprovalItsOwnDeadPressConsumed(t *testing.T) {
	f := newFixture(t)
	refs := f.issue(t)
	dying, err := ledger.New(ledger.Options{Store: dyingStore{ledger.NewRedisStore(f.rc, f.prefix)}})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := approval.New(approval.Options{Redis: f.rc, KeyPrefix: f.prefix, Secret: secret, Ledger: dying, Clock: func() time.Time { return f.now }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = svc.Redeem(context.Background(), refs[0], tendai, pol) // ends inside the append
		t.Error("Redeem returned: the append did not end its goroutine")
	}()
	<-done
	if n := count(f.history(t), ledger.Authorize); n != 0 {
		t.Fatalf("%d authorizations recorded by the dead press", n)
	}
	ctx := context.Background()
	var ue *approval.UsedError
	// Just consumed: a live press may still be recording it, so a second press of
	// tendai's (a double tap, a concurrent replica) is answered as used.
	if _, err := f.svc.Redeem(ctx, refs[0], tendai, pol); !errors.As(err, &ue) || ue.By != "tendai" {
		t.Fatalf("tendai's press right after the consume: %v, want used by tendai", err)
	}
	// 20 s later (past any live append), the dead press is taken as abandoned.
	used, err := f.rc.Keys(ctx, f.prefix+"*used:"+refs[0]).Result()
	if err != nil || len(used) != 1 {
		t.Fatalf("used mark %v %v", used, err)
	}
	left := f.rc.PTTL(ctx, used[0]).Val()
	f.rc.PExpire(ctx, used[0], left-20*time.Second)
	_, err = f.svc.Redeem(ctx, refs[0], rudo, pol)
	if !errors.As(err, &ue) || ue.By != "tendai" {
		t.Fatalf("another approver's press of the consumed approval: %v, want used by tendai", err)
	}
	res, err := f.svc.Redeem(ctx, refs[0], tendai, pol)
	if err != nil || res.Status != approval.Authorized || res.Entry.Approval != refs[0] || res.Entry.Actor.ID != "tendai" {
		t.Fatalf("tendai's redelivered press: %+v, %v; want it to finish the authorization", res, err)
	}
	h := f.history(t)
	if n := count(h, ledger.Authorize); n != 1 {
		t.Fatalf("%d authorizations, want 1", n)
	}
	if _, err := f.svc.Redeem(ctx, refs[0], tendai, pol); !errors.As(err, &ue) || ue.By != "tendai" {
		t.Fatalf("a press after the authorization: %v, want used by tendai", err)
	}
	if n := count(f.history(t), ledger.Authorize); n != 1 {
		t.Fatalf("%d authorizations after a third press, want 1", n)
	}
}
