package alertmanager

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/detector"
)

// Source is what the entries and events of this intake carry.
const Source = detector.SourceAlertmanager

// Path is the webhook's route.
const Path = "/alertmanager/webhook"

// BytesPerAlert is the body allowed per alert when Options.MaxBodyBytes is 0: a
// kube-prometheus alert (10 labels, 3 annotations, generatorURL) is about 840 bytes.
const BytesPerAlert = 2 << 10

// ExpiryInterval is how often Run forgets alerts not re-sent in time.
const ExpiryInterval = time.Minute

// Options configure the receiver. The tenants' tokens, max alerts and expiry are their
// detector.Tenant fields (AlertmanagerToken, AlertmanagerMaxAlerts,
// AlertmanagerExpireAfter).
type Options struct {
	// MaxBodyBytes caps a request body for every tenant; 0 (the default): BytesPerAlert
	// for each of the tenant's AlertmanagerMaxAlerts, at least 1 MiB (20 MiB for the
	// default 10,000 alerts).
	MaxBodyBytes int64
	Logger       *slog.Logger
}

// Intake registers the receiver on a detector (detector.Options.Intakes).
func Intake(o Options) detector.NewIntake {
	return func(d *detector.Detector) (detector.Intake, error) { return New(d, o) }
}

// Flavor is a sender of Alertmanager's webhook shape: Alertmanager itself, or another
// that posts the same body (Grafana's webhook contact point). A flavor gets the same
// group-state semantics, limits and outcomes under its own source, route, token, alert
// state and metrics.
type Flavor struct {
	// Source names the sender on entries and events; Title as people write it (the
	// reasons start with it in lower case, the thread's notes as it is).
	Source detector.Source
	Title  string
	// Path is the route; Versions the payload versions accepted.
	Path     string
	Versions []string
	// Token is the tenant's bearer token ("": the tenant takes no such webhook).
	Token func(t detector.Tenant) string
	// StateKey names the per-service Redis hash of the sender's alerts (beside the
	// detector's keys); Metric prefixes the counters' names.
	StateKey, Metric string
}

// AlertmanagerFlavor is Prometheus Alertmanager's: payload version 4, the tenant's
// AlertmanagerToken.
var AlertmanagerFlavor = Flavor{Source: Source, Title: "Alertmanager", Path: Path, Versions: []string{"4"},
	Token:    func(t detector.Tenant) string { return t.AlertmanagerToken },
	StateKey: "am", Metric: "alertengine_detector_alertmanager_"}

// Receiver is the Alertmanager webhook intake (or another flavor's).
type Receiver struct {
	d       *detector.Detector
	f       Flavor
	o       Options
	rdb     redis.UniversalClient
	log     *slog.Logger
	tenants []detector.Tenant
	stats   counters
}

// New builds the Alertmanager receiver of d's tenants.
func New(d *detector.Detector, o Options) (*Receiver, error) {
	return NewFlavor(d, AlertmanagerFlavor, o)
}

// NewFlavor builds the receiver of a sender of Alertmanager's shape.
func NewFlavor(d *detector.Detector, f Flavor, o Options) (*Receiver, error) {
	if o.Logger == nil {
		o.Logger = d.Logger()
	}
	return &Receiver{d: d, f: f, o: o, rdb: d.Redis(), log: o.Logger.With("source", f.Source), tenants: d.Tenants()}, nil
}

// Source implements detector.Intake.
func (am *Receiver) Source() detector.Source { return am.f.Source }

// Routes implements detector.Intake: POST /alertmanager/webhook (the flavor's path).
func (am *Receiver) Routes() []detector.Route {
	return []detector.Route{{Pattern: "POST " + am.f.Path, Handler: am.Handler(), MaxBody: am.MaxBody()}}
}

// Run forgets the alerts no notification re-sent in time (ExpireAlerts) every
// ExpiryInterval until ctx ends, if any tenant has an Alertmanager.
func (am *Receiver) Run(ctx context.Context) error {
	any := false
	for _, t := range am.tenants {
		any = any || am.f.Token(t) != ""
	}
	if !any {
		return nil
	}
	tick := time.NewTicker(ExpiryInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if err := am.ExpireAlerts(ctx, am.d.Now()); err != nil && ctx.Err() == nil {
			am.log.Warn("alertmanager expiry round failed", "err", err)
		}
	}
}

// Stats are the receiver's counters since New.
type Stats struct {
	Alerts, Duplicates uint64
	Unknown, Refused   uint64 // alerts for unknown services; refused requests (401/413/400)
	// RefusedBy counts the refused requests by reason (RefusedReasons).
	RefusedBy map[string]uint64
	// OverMax counts notifications with more alerts than the tenant's max alerts (the
	// rest were treated as truncated); Expired firing alerts forgotten because no
	// notification re-sent them within the expiry.
	OverMax, Expired uint64
}

type counters struct {
	alerts, duplicates, unknown, refused atomic.Uint64
	refusedBy                            [4]atomic.Uint64 // by RefusedReasons
	overMax, expired                     atomic.Uint64
}

// Stats returns the counters.
func (am *Receiver) Stats() Stats {
	c := &am.stats
	s := Stats{Alerts: c.alerts.Load(), Duplicates: c.duplicates.Load(), Unknown: c.unknown.Load(), Refused: c.refused.Load(),
		RefusedBy: map[string]uint64{}, OverMax: c.overMax.Load(), Expired: c.expired.Load()}
	for i, r := range RefusedReasons {
		s.RefusedBy[r] = c.refusedBy[i].Load()
	}
	return s
}

// Collectors implements detector.Intake: the receiver's counters, read at scrape time.
func (am *Receiver) Collectors() []prometheus.Collector {
	stat := func(name, help string, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: am.f.Metric + name, Help: help},
			func() float64 { return float64(f(am.Stats())) })
	}
	cs := []prometheus.Collector{
		stat("alerts_total", "Alerts received in accepted Alertmanager notifications.", func(s Stats) uint64 { return s.Alerts }),
		stat("expired_total", "Firing Alertmanager alerts forgotten because no notification re-sent them within the tenant's alertmanager.expire_after.",
			func(s Stats) uint64 { return s.Expired }),
		stat("over_max_total", "Alertmanager notifications with more alerts than the tenant's alertmanager.max_alerts; the alerts past it were treated as truncated.",
			func(s Stats) uint64 { return s.OverMax }),
	}
	// One series per reason, every one present from the start (0 until it happens).
	for _, reason := range RefusedReasons {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: am.f.Metric + "refused_total",
			Help:        "Alertmanager webhook requests refused, by reason: unauthorized (401), too_large (413: body over the tenant's limit), malformed (400: not a version 4 payload), unreadable (400: the body could not be read). Each is also logged at WARN with its group key and size.",
			ConstLabels: prometheus.Labels{"reason": reason}},
			func() float64 { return float64(am.Stats().RefusedBy[reason]) }))
	}
	return cs
}

// key is the service's alert state (see amStateScript).
func (am *Receiver) key(tenant, service string) string {
	return am.d.ServiceKey(tenant, service, am.f.StateKey)
}

func (am *Receiver) redisCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return am.d.RedisContext(ctx)
}
