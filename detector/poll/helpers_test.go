package poll

import (
	"fmt"
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
	Health  = detector.Health
)

const (
	Opened              = detector.Opened
	Updated             = detector.Updated
	Recovered           = detector.Recovered
	Resolved            = detector.Resolved
	SourcePull          = detector.SourcePull
	UnreachableAfter    = detector.UnreachableAfter
	DefaultPollInterval = detector.DefaultPollInterval
	DefaultMinSamples   = detector.DefaultMinSamples
)

var base = detectortest.Base

type harness struct {
	*detectortest.Harness
	t      testing.TB
	rdb    *redis.Client
	prefix string
	store  *ledger.RedisStore
	clock  *detectortest.Clock
	events *detectortest.Events
}

func newHarness(t testing.TB) *harness {
	h := detectortest.New(t)
	return &harness{Harness: h, t: t, rdb: h.RDB, prefix: h.Prefix, store: h.Store, clock: h.Clock, events: h.Events}
}

// replica starts a detector replica with the poller registered.
func (h *harness) replica(name string, tenants []Tenant, tweak func(*detector.Options)) *detector.Detector {
	h.t.Helper()
	return h.Replica(name, tenants, func(o *detector.Options) {
		if tweak != nil {
			tweak(o)
		}
		o.Intakes = append(o.Intakes, Intake(Options{}))
	})
}

// pl is the replica's poller.
func pl(d *detector.Detector) *Poller { return d.Intake(detector.SourcePull).(*Poller) }

func (h *harness) entries(tenant string) []ledger.Entry { return h.Entries(tenant) }
func (h *harness) entriesOf(tenant string, ev ledger.Event) []ledger.Entry {
	return h.EntriesOf(tenant, ev)
}
func (h *harness) redisDump() string { return h.RedisDump() }

func describe(evs []Event) string {
	s := ""
	for _, e := range evs {
		s += fmt.Sprintf("\n  %s %s %s %s", e.At.Format(time.RFC3339), e.Kind, e.Incident, e.Reason)
	}
	return s
}
