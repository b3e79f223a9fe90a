// Package detectortest runs detectors against a real Redis for the tests of the detector's
// intakes: a fresh key prefix per test (ledger/ledgertest), the ledger's Redis store on
// it, a settable clock, the events the detector emits, and any number of replicas.
package detectortest

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/alertengine/alertengine/sdk"
)

// Base is the start of bucket 0 and the harness clock's first time.
var Base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Clock is a settable time source.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// Now is the clock's time.
func (c *Clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

// Set moves the clock.
func (c *Clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// Events collects what OnEvent receives.
type Events struct {
	mu sync.Mutex
	l  []detector.Event
}

// Add is an Options.OnEvent.
func (e *Events) Add(_ context.Context, ev detector.Event) {
	e.mu.Lock()
	e.l = append(e.l, ev)
	e.mu.Unlock()
}

// All are the events so far.
func (e *Events) All() []detector.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]detector.Event(nil), e.l...)
}

// Of are the events of kind k so far.
func (e *Events) Of(k detector.Kind) []detector.Event {
	var out []detector.Event
	for _, ev := range e.All() {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// Harness is one Redis with a fresh prefix, the ledger's store on it, and replicas.
type Harness struct {
	T      testing.TB
	Srv    *ledgertest.Server
	RDB    *redis.Client
	Prefix string
	Store  *ledger.RedisStore
	Clock  *Clock
	Events *Events
}

// New starts a harness.
func New(t testing.TB) *Harness {
	t.Helper()
	srv := ledgertest.NewServer(t)
	rdb := srv.Client(t)
	prefix := srv.Prefix(t)
	return &Harness{T: t, Srv: srv, RDB: rdb, Prefix: prefix, Store: ledger.NewRedisStore(rdb, prefix),
		Clock: &Clock{now: Base}, Events: &Events{}}
}

// Replica starts a detector replica with its own Redis client and its own ledger (as a
// separate process would have) on the shared Redis; tweak may change its options
// (register intakes, shorten periods).
func (h *Harness) Replica(name string, tenants []detector.Tenant, tweak func(*detector.Options)) *detector.Detector {
	h.T.Helper()
	c := h.Srv.Client(h.T)
	l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(c, h.Prefix), Clock: h.Clock.Now})
	if err != nil {
		h.T.Fatal(err)
	}
	o := detector.Options{Redis: c, KeyPrefix: h.Prefix, Ledger: l, Tenants: tenants,
		OnEvent: h.Events.Add, Clock: h.Clock.Now, ReplicaID: name}
	if tweak != nil {
		tweak(&o)
	}
	d, err := detector.New(o)
	if err != nil {
		h.T.Fatal(err)
	}
	if err := d.EnsureGroups(context.Background()); err != nil {
		h.T.Fatal(err)
	}
	return d
}

// Serve puts d's HTTP routes (its intakes') behind a test server, closed when the test
// ends.
func (h *Harness) Serve(d *detector.Detector) *httptest.Server {
	mux := http.NewServeMux()
	for _, r := range d.Routes() {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	h.T.Cleanup(srv.Close)
	return srv
}

// Entries is the tenant's whole ledger.
func (h *Harness) Entries(tenant string) []ledger.Entry {
	h.T.Helper()
	es, err := h.Store.Range(context.Background(), tenant, 1, 0)
	if err != nil {
		h.T.Fatal(err)
	}
	return es
}

// EntriesOf are the tenant's entries of event ev.
func (h *Harness) EntriesOf(tenant string, ev ledger.Event) []ledger.Entry {
	var out []ledger.Entry
	for _, e := range h.Entries(tenant) {
		if e.Event == ev {
			out = append(out, e)
		}
	}
	return out
}

// Push ships one summary to the service's stream, as the SDK does.
func (h *Harness) Push(tenant, service string, s sdk.Summary) {
	h.T.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.RDB.XAdd(ctx, &redis.XAddArgs{Stream: sdk.StreamKey(h.Prefix, tenant, service), Values: s.Fields()}).Err(); err != nil {
		h.T.Fatal(err)
	}
}

// PushBucket ships bucket i of raw samples (ms, HTTP status) as two instances' summaries.
func (h *Harness) PushBucket(tenant, service string, i int, lat []float64, st []int) {
	h.T.Helper()
	bucket := Base.Add(time.Duration(i) * time.Second)
	var la, lb []float64
	var sa, sb []int
	for j := range lat {
		if j%2 == 0 {
			la, sa = append(la, lat[j]), append(sa, st[j])
		} else {
			lb, sb = append(lb, lat[j]), append(sb, st[j])
		}
	}
	h.Push(tenant, service, sdk.NewSummaryForTest(tenant, service, "pod-a", bucket, la, sa))
	h.Push(tenant, service, sdk.NewSummaryForTest(tenant, service, "pod-b", bucket, lb, sb))
}

// Tick is a time shortly after bucket i closed.
func Tick(i int) time.Time { return Base.Add(time.Duration(i+1)*time.Second + 250*time.Millisecond) }

// Step ingests and evaluates on d after bucket i closed.
func (h *Harness) Step(d *detector.Detector, i int) {
	h.T.Helper()
	h.Clock.Set(Tick(i))
	ctx := context.Background()
	if _, err := d.Ingest(ctx); err != nil {
		h.T.Fatalf("bucket %d: ingest: %v", i, err)
	}
	if err := d.Evaluate(ctx, Tick(i)); err != nil {
		h.T.Fatalf("bucket %d: evaluate: %v", i, err)
	}
}

// Constant builds n latencies of ms each and n statuses of code.
func Constant(n int, ms float64, code int) ([]float64, []int) {
	lat := make([]float64, n)
	st := make([]int, n)
	for i := range lat {
		lat[i], st[i] = ms, code
	}
	return lat, st
}

// StageMover is a ledger on the harness's store that moves incidents along the
// pipeline's stages, as the other packages would.
func (h *Harness) StageMover() *ledger.Ledger {
	h.T.Helper()
	l, err := ledger.New(ledger.Options{Store: h.Store, Clock: h.Clock.Now})
	if err != nil {
		h.T.Fatal(err)
	}
	return l
}

// Move records evs on the incident of tenant, each by the party that would cause it.
func (h *Harness) Move(l *ledger.Ledger, tenant, incident string, evs ...ledger.Event) {
	h.T.Helper()
	for _, ev := range evs {
		e := ledger.Entry{Tenant: tenant, Incident: incident, Event: ev, Actor: ledger.Actor{Kind: ledger.ActorOrchestrator, ID: "pipeline"},
			Reason: "test", PolicyVersion: "policy-v7"}
		switch ev {
		case ledger.Propose:
			e.Actor, e.Action, e.Confidence = ledger.Actor{Kind: ledger.ActorAI, ID: "lens-a"}, "restart_workers", 0.8
		case ledger.Authorize:
			e.Actor, e.Approval = ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai", Channel: "telegram"}, "ap:0123456789abcdefghijkl"
		case ledger.Reject:
			e.Actor = ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai", Channel: "telegram"}
		}
		if _, err := l.Record(context.Background(), e); err != nil {
			h.T.Fatalf("move %s by %s: %v", incident, ev, err)
		}
	}
}

// Stage is the incident's stage.
func (h *Harness) Stage(tenant, incident string) ledger.Stage {
	h.T.Helper()
	s, err := h.Store.Stage(context.Background(), tenant, incident)
	if err != nil {
		h.T.Fatal(err)
	}
	return s
}

// RedisDump is every value under the harness's prefix, one per line ("key value"):
// strings, hashes, lists, sets, sorted sets and streams.
func (h *Harness) RedisDump() string {
	h.T.Helper()
	ctx := context.Background()
	var b strings.Builder
	iter := h.RDB.Scan(ctx, 0, h.Prefix+"*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		typ, err := h.RDB.Type(ctx, k).Result()
		if err != nil {
			h.T.Fatal(err)
		}
		var vals []string
		switch typ {
		case "string":
			vals = []string{h.RDB.Get(ctx, k).Val()}
		case "hash":
			for f, v := range h.RDB.HGetAll(ctx, k).Val() {
				vals = append(vals, f, v)
			}
		case "list":
			vals = h.RDB.LRange(ctx, k, 0, -1).Val()
		case "set":
			vals = h.RDB.SMembers(ctx, k).Val()
		case "zset":
			vals = h.RDB.ZRange(ctx, k, 0, -1).Val()
		case "stream":
			for _, m := range h.RDB.XRange(ctx, k, "-", "+").Val() {
				for f, v := range m.Values {
					vals = append(vals, f, fmt.Sprint(v))
				}
			}
		}
		for _, v := range vals {
			fmt.Fprintf(&b, "%s %s\n", k, v)
		}
	}
	if err := iter.Err(); err != nil {
		h.T.Fatal(err)
	}
	return b.String()
}
