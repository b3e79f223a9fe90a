package alertmanager

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/detector/detectortest"
	"github.com/alertengine/alertengine/ledger"
)

// The detector's names, as the tests read them.
type (
	Tenant  = detector.Tenant
	Service = detector.Service
	Event   = detector.Event
	Kind    = detector.Kind
)

const (
	Opened     = detector.Opened
	Updated    = detector.Updated
	Recovered  = detector.Recovered
	Resolved   = detector.Resolved
	Suppressed = detector.Suppressed
)

var base = detectortest.Base

// testOptions are a replica's detector options and its receiver's body limit.
type testOptions struct {
	detector.Options
	MaxBodyBytes int64
}

type harness struct {
	*detectortest.Harness
	t      testing.TB
	rdb    *redis.Client
	prefix string
	store  *ledger.RedisStore
	clock  *detectortest.Clock
	events *events
}

type events struct{ *detectortest.Events }

func (e *events) all() []Event               { return e.All() }
func (e *events) of(k detector.Kind) []Event { return e.Of(k) }

func newHarness(t testing.TB) *harness {
	h := detectortest.New(t)
	return &harness{Harness: h, t: t, rdb: h.RDB, prefix: h.Prefix, store: h.Store, clock: h.Clock, events: &events{h.Events}}
}

// replica starts a detector replica with the Alertmanager receiver registered.
func (h *harness) replica(name string, tenants []Tenant, tweak func(*testOptions)) *detector.Detector {
	h.t.Helper()
	return h.Replica(name, tenants, func(o *detector.Options) {
		to := testOptions{Options: *o}
		if tweak != nil {
			tweak(&to)
		}
		*o = to.Options
		o.Intakes = append(o.Intakes, Intake(Options{MaxBodyBytes: to.MaxBodyBytes}))
	})
}

// rcv is the replica's Alertmanager receiver.
func rcv(d *detector.Detector) *Receiver { return d.Intake(Source).(*Receiver) }

func (h *harness) entries(tenant string) []ledger.Entry { return h.Entries(tenant) }
func (h *harness) entriesOf(tenant string, ev ledger.Event) []ledger.Entry {
	return h.EntriesOf(tenant, ev)
}
func (h *harness) stageMover() *ledger.Ledger { return h.StageMover() }
func (h *harness) move(l *ledger.Ledger, incident string, evs ...ledger.Event) {
	h.t.Helper()
	h.Move(l, "acme", incident, evs...)
}
func (h *harness) stage(incident string) ledger.Stage { h.t.Helper(); return h.Stage("acme", incident) }
func (h *harness) pushBucket(tenant, service string, i int, lat []float64, st []int) {
	h.PushBucket(tenant, service, i, lat, st)
}
func (h *harness) step(d *detector.Detector, i int) { h.Step(d, i) }

func constant(n int, ms float64, code int) ([]float64, []int) {
	return detectortest.Constant(n, ms, code)
}

// shortWindow keeps these tests short: a 2 s window heals 2 buckets after the fault.
func shortWindow(o *testOptions)     { o.Window = 2 * time.Second }
func (h *harness) redisDump() string { return h.RedisDump() }
