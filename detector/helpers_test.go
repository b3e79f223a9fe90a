package detector

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/alertengine/alertengine/sdk"
)

// base is the start of bucket 0 in the tests.
var base = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// events collects what OnEvent receives.
type events struct {
	mu sync.Mutex
	l  []Event
}

func (e *events) add(_ context.Context, ev Event) { e.mu.Lock(); e.l = append(e.l, ev); e.mu.Unlock() }
func (e *events) all() []Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]Event(nil), e.l...)
}
func (e *events) of(k Kind) []Event {
	var out []Event
	for _, ev := range e.all() {
		if ev.Kind == k {
			out = append(out, ev)
		}
	}
	return out
}

// harness is one Redis (real when REDIS_URL is set, else embedded) with a fresh prefix,
// the ledger's Redis store on it, and any number of detector replicas.
type harness struct {
	t      testing.TB
	srv    *ledgertest.Server
	rdb    *redis.Client
	prefix string
	store  *ledger.RedisStore
	clock  *clock
	events *events
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	srv := ledgertest.NewServer(t)
	rdb := srv.Client(t)
	prefix := srv.Prefix(t)
	return &harness{
		t: t, srv: srv, rdb: rdb, prefix: prefix,
		store:  ledger.NewRedisStore(rdb, prefix),
		clock:  &clock{now: base},
		events: &events{},
	}
}

// defaultTenants: tenant acme, push service checkout.
func defaultTenants() []Tenant {
	return []Tenant{{ID: "acme", PolicyVersion: "policy-v7", Services: []Service{{Name: "checkout"}}}}
}

// replica starts a detector replica with its own Redis client and its own ledger (as a
// separate process would have) on the shared Redis.
// wholeWindowOnly turns off the FastWindow and the look-ahead (staysBad), so only
// OpenAfter evaluations of the whole window open an incident.
func wholeWindowOnly(o *Options) { o.FastWindow, o.noLookAhead = DefaultWindow, true }

func (h *harness) replica(name string, tenants []Tenant, tweak func(*Options)) *Detector {
	h.t.Helper()
	c := h.srv.Client(h.t)
	l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(c, h.prefix), Clock: h.clock.Now})
	if err != nil {
		h.t.Fatal(err)
	}
	o := Options{
		Redis: c, KeyPrefix: h.prefix, Ledger: l, Tenants: tenants,
		OnEvent: h.events.add, Clock: h.clock.Now, ReplicaID: name,
	}
	if tweak != nil {
		tweak(&o)
	}
	d, err := New(o)
	if err != nil {
		h.t.Fatal(err)
	}
	if err := d.EnsureGroups(context.Background()); err != nil {
		h.t.Fatal(err)
	}
	return d
}

// push ships one summary to the service's stream, as the SDK does.
func (h *harness) push(tenant, service string, s sdk.Summary) {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := h.rdb.XAdd(ctx, &redis.XAddArgs{Stream: sdk.StreamKey(h.prefix, tenant, service), Values: s.Fields()}).Err(); err != nil {
		h.t.Fatal(err)
	}
}

// pushBucket ships bucket i of raw samples as two instances' summaries.
func (h *harness) pushBucket(tenant, service string, i int, lat []float64, st []int) {
	h.t.Helper()
	bucket := base.Add(time.Duration(i) * time.Second)
	var la, lb []float64
	var sa, sb []int
	for j := range lat {
		if j%2 == 0 {
			la, sa = append(la, lat[j]), append(sa, st[j])
		} else {
			lb, sb = append(lb, lat[j]), append(sb, st[j])
		}
	}
	h.push(tenant, service, sdk.NewSummaryForTest(tenant, service, "pod-a", bucket, la, sa))
	h.push(tenant, service, sdk.NewSummaryForTest(tenant, service, "pod-b", bucket, lb, sb))
}

// tick is a time shortly after bucket i closed.
func tick(i int) time.Time {
	return base.Add(time.Duration(i+1)*time.Second + 250*time.Millisecond)
}

// bucketOf maps an evaluation time back to the bucket that just closed.
func bucketOf(at time.Time) int { return int(at.Sub(base)/time.Second) - 1 }

// step ingests and evaluates on d after bucket i closed.
func (h *harness) step(d *Detector, i int) {
	h.t.Helper()
	h.clock.Set(tick(i))
	ctx := context.Background()
	if _, err := d.Ingest(ctx); err != nil {
		h.t.Fatalf("bucket %d: ingest: %v", i, err)
	}
	if err := d.Evaluate(ctx, tick(i)); err != nil {
		h.t.Fatalf("bucket %d: evaluate: %v", i, err)
	}
}

// entries returns the tenant's whole ledger.
func (h *harness) entries(tenant string) []ledger.Entry {
	h.t.Helper()
	es, err := h.store.Range(context.Background(), tenant, 1, 0)
	if err != nil {
		h.t.Fatal(err)
	}
	return es
}

func (h *harness) entriesOf(tenant string, ev ledger.Event) []ledger.Entry {
	var out []ledger.Entry
	for _, e := range h.entries(tenant) {
		if e.Event == ev {
			out = append(out, e)
		}
	}
	return out
}

// constant builds n latencies of ms each and n statuses of code.
func constant(n int, ms float64, code int) ([]float64, []int) {
	lat := make([]float64, n)
	st := make([]int, n)
	for i := range lat {
		lat[i], st[i] = ms, code
	}
	return lat, st
}

func bucketIndexes(evs []Event) []int {
	out := []int{}
	for _, e := range evs {
		out = append(out, bucketOf(e.At))
	}
	return out
}

func describe(evs []Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("\n  bucket %d %s %s %s", bucketOf(e.At), e.Kind, e.Incident, e.Reason)
	}
	return s
}
