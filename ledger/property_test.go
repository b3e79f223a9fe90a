package ledger_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/alertengine/alertengine/ledger"
)

// progress are the stage events that move an incident on; exits end it and are drawn
// rarely, so that random histories get deep enough to exercise execution.
var (
	progress = []ledger.Event{ledger.Propose, ledger.Validate, ledger.Authorize, ledger.Execute, ledger.Expire,
		ledger.WebhookFail, ledger.Reissue, ledger.Redrive}
	exits = []ledger.Event{ledger.Resolve, ledger.Recover, ledger.Reject}
)

// TestNoExecutionWithoutApproval drives random sequences of events by random actors at
// the ledger — legal or not, with or without an approval reference — and checks, over
// every resulting history: EXECUTED is never reached without an engineer's authorization
// carrying a consumed approval before it, and there is at most one execution per
// authorization.
func TestNoExecutionWithoutApproval(t *testing.T) {
	actors := []ledger.Actor{
		{Kind: ledger.ActorPolicy, ID: "gate"},
		{Kind: ledger.ActorAI, ID: "lens-a"},
		{Kind: ledger.ActorEngineer, ID: "tendai"},
		{Kind: ledger.ActorOrchestrator, ID: "executor"},
		{Kind: ledger.ActorSystem, ID: "system"},
	}
	ctx := context.Background()
	reachedExecuted := 0
	for seed := uint64(0); seed < 300; seed++ {
		r := rand.New(rand.NewPCG(seed, 42))
		l := newLedger(t, ledger.NewMemStore())
		open := ev("acme", "", ledger.Detect)
		open.Service = "checkout"
		first, err := l.Record(ctx, open)
		if err != nil {
			t.Fatal(err)
		}
		for step := 0; step < 80; step++ {
			var event ledger.Event
			switch n := r.IntN(100); {
			case n < 3:
				event = exits[r.IntN(len(exits))]
			case n < 75:
				event = progress[r.IntN(len(progress))]
			default:
				event = ledger.Events[r.IntN(len(ledger.Events))]
			}
			e := ledger.Entry{Tenant: "acme", Incident: first.Incident, Event: event,
				Actor: actors[r.IntN(len(actors))], Reason: fmt.Sprint("step ", step)}
			if r.IntN(2) == 0 {
				e.Approval = fmt.Sprintf("ap:%022d", r.IntN(3))
			}
			_, _ = l.Record(ctx, e) // refusals are part of the game
		}
		_, hist, err := l.Incident(ctx, "acme", first.Incident)
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		authorized := false
		executions := 0
		for _, e := range hist {
			switch e.To {
			case ledger.Authorized:
				if e.From == e.To {
					continue
				}
				if e.Actor.Kind != ledger.ActorEngineer || e.Approval == "" {
					t.Fatalf("seed %d: entry %d (%s) authorized by %+v without an approval", seed, e.Seq, e.Event, e.Actor)
				}
				authorized, executions = true, 0
			case ledger.Executed:
				if e.From == e.To {
					continue
				}
				if !authorized {
					t.Fatalf("seed %d: entry %d executed without an authorization before it", seed, e.Seq)
				}
				executions++
				reachedExecuted++
				if executions > 1 {
					t.Fatalf("seed %d: two executions for one authorization", seed)
				}
			}
		}
	}
	if reachedExecuted < 10 {
		t.Fatalf("only %d random histories reached EXECUTED: the property was hardly exercised", reachedExecuted)
	}
}
