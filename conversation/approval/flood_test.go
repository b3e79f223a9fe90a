package approval_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/ledger"
)

// TestStrangersPressingDoNotGrowTheLedger: 500 presses of a real Approve button by 50
// strangers (not people of the tenant), then 300 by one viewer: the ledger gets each
// sender's 1st and 10th (and the viewer's 100th) refusal, each with the count so far and
// the time of the first; the metrics hook sees all 800; the approval stays pending and an
// approver's press still authorizes.
func TestStrangersPressingDoNotGrowTheLedger(t *testing.T) {
	f := newFixture(t)
	var mu sync.Mutex
	seen, recorded := 0, 0
	svc, err := approval.New(approval.Options{Redis: f.rc, KeyPrefix: f.prefix, Secret: secret, Ledger: f.led, Clock: func() time.Time { return f.now },
		OnRefusal: func(tenant string, rec bool) {
			mu.Lock()
			defer mu.Unlock()
			seen++
			if rec {
				recorded++
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	f.svc = svc
	ref := f.issue(t)[0]
	ctx := context.Background()
	var wg sync.WaitGroup
	for s := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := approval.Presser{Tenant: "acme", Channel: "telegram", UserID: strconv.Itoa(9000 + s)}
			for range 10 {
				if _, err := f.svc.Redeem(ctx, ref, p, pol); !errors.Is(err, approval.ErrNotApprover) {
					t.Errorf("stranger's press: %v", err)
				}
			}
		}()
	}
	wg.Wait()
	for range 300 {
		if _, err := f.svc.Redeem(ctx, ref, viewer, pol); !errors.Is(err, approval.ErrNotApprover) {
			t.Fatalf("viewer's press: %v", err)
		}
	}
	byActor := map[string][]ledger.Entry{}
	for _, e := range f.history(t) {
		if e.Event == ledger.RefusedPress {
			byActor[e.Actor.ID] = append(byActor[e.Actor.ID], e)
		}
	}
	if len(byActor) != 51 {
		t.Fatalf("%d senders in the audit, want 51", len(byActor))
	}
	total := 0
	for who, es := range byActor {
		total += len(es)
		want := []string{"1", "10"}
		if who == "vimbai" {
			want = []string{"1", "10", "100"}
		}
		if len(es) != len(want) {
			t.Fatalf("%s: %d entries, want %d", who, len(es), len(want))
		}
		for i, e := range es {
			if e.Data["count"] != want[i] || e.Data["since"] != f.now.UTC().Format(time.RFC3339) || e.Data["kind"] != "not_approver" {
				t.Errorf("%s entry %d: data %v", who, i, e.Data)
			}
		}
	}
	if total != 50*2+3 || seen != 800 || recorded != total {
		t.Fatalf("%d entries, hook saw %d refusals (%d recorded)", total, seen, recorded)
	}
	if res, err := f.svc.Redeem(ctx, ref, tendai, pol); err != nil || res.Status != approval.Authorized {
		t.Fatalf("the approver after the flood: %v", err)
	}
}
