package approval_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/alertengine/alertengine/ledger/ledgertest/redisfault"
)

// TestPressesUnderRedisFaultsTellTheTruth is a property over random faults: three
// replicas press the same approval while one reply, chosen at random among every Redis
// command of the presses, is held back past the client's timeout (or its connection cut
// after Redis applied it). Whatever the fault:
//   - at most one AUTHORIZED entry, carrying the approval (so the executor, whose key is
//     derived from it, has one action to run);
//   - a press told "approved" is the one the ledger names; a press told "already approved
//     by X" names the approver the ledger recorded;
//   - no press is told "nothing was run" while the ledger holds an authorization;
//   - every press ends in an answer: authorized, a refusal (recorded in the ledger), or a
//     failure after which the approval was given back and the ledger has no authorization.
func TestPressesUnderRedisFaultsTellTheTruth(t *testing.T) {
	t.Parallel()
	srv := ledgertest.NewServer(t)
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for seed := uint64(1); seed <= 12; seed++ {
		rng := rand.New(rand.NewPCG(seed, 24))
		proxy := redisfault.Start(t, opt.Addr)
		po := *opt
		po.Addr, po.ReadTimeout, po.MaxRetries = proxy.Addr(), 150*time.Millisecond, 2
		rc := redis.NewClient(&po)
		prefix := srv.Prefix(t)
		f := newFixtureOn(t, rc, rc, prefix)
		ctx := context.Background()
		ref := f.issue(t)[0]

		// The fault: the k-th command from now on (any replica) loses its reply.
		k := int64(1 + rng.IntN(14))
		var n atomic.Int64
		pick := func([]string) bool { return n.Add(1) == k }
		var held *redisfault.Held
		if rng.IntN(2) == 0 {
			held = proxy.Hold(pick, 1)
		} else {
			proxy.Cut(pick, 1)
		}
		pressers := []approval.Presser{tendai, rudo, {Tenant: "acme", Name: "chipo", Approver: true, Channel: "whatsapp", UserID: "+263771000001"}}
		type outcome struct {
			by  string
			res approval.Result
			err error
		}
		out := make([]outcome, len(pressers))
		var wg sync.WaitGroup
		for i, p := range pressers {
			svc := f.service(t, rc) // a replica of its own
			wg.Add(1)
			go func() {
				defer wg.Done()
				res, err := svc.Redeem(ctx, ref, p, pol)
				out[i] = outcome{p.Name, res, err}
			}()
		}
		wg.Wait()
		if held != nil {
			held.Release()
		}

		direct := srv.Client(t)
		ld, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(direct, prefix)})
		if err != nil {
			t.Fatal(err)
		}
		_, hist, err := ld.Incident(ctx, "acme", f.incident)
		if err != nil {
			t.Fatal(err)
		}
		var auth []ledger.Entry
		refused := map[string]int{}
		for _, en := range hist {
			switch en.Event {
			case ledger.Authorize:
				auth = append(auth, en)
			case ledger.RefusedPress:
				refused[en.Actor.ID]++
			}
		}
		if len(auth) > 1 {
			t.Fatalf("seed %d: %d AUTHORIZED entries for one approval", seed, len(auth))
		}
		if len(auth) == 1 && auth[0].Approval != ref {
			t.Fatalf("seed %d: the authorization carries %q, not the approval %q", seed, auth[0].Approval, ref)
		}
		winners := 0
		for _, o := range out {
			var ue *approval.UsedError
			switch {
			case o.err == nil:
				winners++
				if len(auth) != 1 || auth[0].Actor.ID != o.by {
					t.Errorf("seed %d: %s was told it approved; the ledger's authorizations: %+v", seed, o.by, auth)
				}
			case errors.As(o.err, &ue):
				if len(auth) == 1 && ue.By != auth[0].Actor.ID {
					t.Errorf("seed %d: %s read %q, but the ledger says %s approved", seed, o.by, approval.Explain(o.err, "acme"), auth[0].Actor.ID)
				}
				if refused[o.by] == 0 {
					t.Errorf("seed %d: %s's refusal (%v) is not recorded", seed, o.by, o.err)
				}
			case errors.Is(o.err, approval.ErrIncidentMoved):
				if len(auth) == 1 {
					t.Errorf("seed %d: %s read %q while the ledger holds an authorization", seed, o.by, approval.Explain(o.err, "acme"))
				}
			case errors.Is(o.err, approval.ErrOutcomeUnknown):
				// Said as unknown: true whatever the ledger holds.
			case errors.Is(o.err, approval.ErrExpired), errors.Is(o.err, approval.ErrUnknown):
				t.Errorf("seed %d: %s read %q for a live approval", seed, o.by, approval.Explain(o.err, "acme"))
			default:
				// A failure: "Something went wrong; nothing was run." must be true.
				if len(auth) == 1 && auth[0].Actor.ID == o.by {
					t.Errorf("seed %d: %s was told nothing ran, but the ledger holds its authorization", seed, o.by)
				}
			}
		}
		if winners > 1 {
			t.Errorf("seed %d: %d presses told they approved", seed, winners)
		}
		var said []string
		for _, o := range out {
			switch {
			case o.err == nil:
				said = append(said, o.by+": approved")
			case !refusal(o.err):
				said = append(said, o.by+": something went wrong, the press did nothing")
			default:
				said = append(said, o.by+": "+approval.Explain(o.err, "acme"))
			}
		}
		t.Logf("seed %d: fault at command %d (%s); %d authorization(s); %q", seed, k, map[bool]string{true: "held", false: "cut"}[held != nil], len(auth), said)
	}
}

// refusal mirrors what the engine explains to the presser (anything else is "something
// went wrong").
func refusal(err error) bool {
	var ue *approval.UsedError
	return errors.As(err, &ue) || errors.Is(err, approval.ErrExpired) || errors.Is(err, approval.ErrIncidentMoved) ||
		errors.Is(err, approval.ErrNotApprover) || errors.Is(err, approval.ErrUnknown) || errors.Is(err, ledger.ErrFenced)
}
