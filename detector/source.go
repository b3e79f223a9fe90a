package detector

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
)

// Source names where a signal comes from: it is recorded on every entry the detector
// writes (data "source") and on every Event. The list is open: each input declares its
// own (the built-in push path is SourcePush; the others live in the packages under
// detector/ that feed the detector).
type Source string

// Sources known to the core and to the inputs that ship with it.
const (
	// SourcePush: the Go SDK's summaries on the service's Redis stream (built in).
	SourcePush Source = "push"
	// SourcePull: the service's /health/alerts endpoint, polled (detector/poll).
	SourcePull Source = "pull"
	// SourceAlertmanager: Prometheus Alertmanager's webhook (detector/alertmanager).
	SourceAlertmanager Source = "alertmanager"
)

// Intake is one detection input besides the built-in push path: an HTTP intake, a loop
// that polls, or both. It feeds the detector through the two entry points every input
// reduces to — Observe (a measurement of a service, judged by the gate) and Alert (an
// alert someone else already decided, which opens, updates or closes an incident) — and
// owns its parsing, authentication, limits and counters.
//
// An Intake is built by a NewIntake listed in Options.Intakes: the Detector builds it
// in New, runs its Run in Detector.Run, and lists its routes in Detector.Routes for the
// HTTP server to mount.
type Intake interface {
	// Source names the intake (and the evidence it records).
	Source() Source
	// Routes are the HTTP routes the intake serves; none for an intake that only runs a
	// loop. Every handler bounds and reads its request body itself.
	Routes() []Route
	// Run does the intake's periodic work until ctx ends and returns ctx's error; an
	// intake with nothing to run returns nil at once. A failed round is logged and
	// retried by the intake itself: Run returns only when ctx ends.
	Run(ctx context.Context) error
	// Collectors are the intake's metrics (accepted, refused by reason…), for the bot's
	// registry.
	Collectors() []prometheus.Collector
}

// Route is one HTTP route of an intake.
type Route struct {
	// Pattern is a net/http ServeMux pattern with its method: "POST /v2/enqueue".
	Pattern string
	// Handler bounds its body itself (limits may be per tenant, known only after
	// authentication): the server must not cut it below MaxBody.
	Handler http.Handler
	// MaxBody is the largest body the handler accepts from anyone, in bytes.
	MaxBody int64
}

// NewIntake builds an intake on the detector being created (its tenants, Redis, clock and
// logger are ready; nothing runs yet).
type NewIntake func(d *Detector) (Intake, error)

// Routes are the routes of every intake, in Options.Intakes order.
func (d *Detector) Routes() []Route {
	var out []Route
	for _, in := range d.intakes {
		out = append(out, in.Routes()...)
	}
	return out
}

// Intake returns the intake registered under src (nil if none).
func (d *Detector) Intake(src Source) Intake {
	for _, in := range d.intakes {
		if in.Source() == src {
			return in
		}
	}
	return nil
}

// Collectors are the metrics of every intake.
func (d *Detector) Collectors() []prometheus.Collector {
	var out []prometheus.Collector
	for _, in := range d.intakes {
		out = append(out, in.Collectors()...)
	}
	return out
}

// buildIntakes runs Options.Intakes in order.
func (d *Detector) buildIntakes() error {
	seen := map[Source]bool{SourcePush: true}
	for i, mk := range d.opts.Intakes {
		in, err := mk(d)
		if err != nil {
			return fmt.Errorf("%w: intakes[%d]: %w", ErrInvalidOptions, i, err)
		}
		if seen[in.Source()] {
			return fmt.Errorf("%w: intakes[%d]: source %q registered twice", ErrInvalidOptions, i, in.Source())
		}
		seen[in.Source()] = true
		d.intakes = append(d.intakes, in)
	}
	return nil
}

// Tenant returns the tenant's policy as the detector applies it (defaults filled in).
func (d *Detector) Tenant(id string) (Tenant, bool) {
	t, ok := d.tenants[id]
	if !ok {
		return Tenant{}, false
	}
	return *t, true
}

// Tenants are every tenant's policy, defaults filled in, in Options order.
func (d *Detector) Tenants() []Tenant { return append([]Tenant(nil), d.opts.Tenants...) }

// Redis is the client the detector keeps its shared state on, for intakes that keep
// their own (always under ServiceKey or TenantKey).
func (d *Detector) Redis() redis.UniversalClient { return d.rdb }

// ServiceKey names an intake's Redis key for one service, beside the detector's own:
// "<prefix>ae:det:{tenant/service}:what", so a script touching it and the service's other
// keys stays on one Redis Cluster slot.
func (d *Detector) ServiceKey(tenant, service, what string) string {
	return d.keys.service(tenant, service, what)
}

// TenantKey names an intake's Redis key for a whole tenant: "<prefix>ae:det:{tenant}:what".
func (d *Detector) TenantKey(tenant, what string) string {
	return d.keys.prefix + "ae:det:{" + tenant + "}:" + what
}

// RedisContext bounds one Redis call as the detector's own are (Options.RedisTimeout).
func (d *Detector) RedisContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return d.redisCtx(ctx)
}

// Options are the detector's options as it applies them (defaults filled in).
func (d *Detector) Options() Options { return d.opts }

// Now is the detector's clock (Options.Clock).
func (d *Detector) Now() time.Time { return d.opts.Clock() }

// Logger is the detector's logger, for intakes given none of their own.
func (d *Detector) Logger() *slog.Logger { return d.log }

// ReplicaID is this replica's name in consumer groups and leases.
func (d *Detector) ReplicaID() string { return d.opts.ReplicaID }

// watches reports whether the tenant watches the service.
func (t *Tenant) watches(service string) bool {
	for _, s := range t.Services {
		if s.Name == service {
			return true
		}
	}
	return false
}

// Stage is an incident's stage in the ledger (ledger.None if unknown), for intakes that
// remember which incident an alert holds and must know whether it is still open.
func (d *Detector) Stage(ctx context.Context, tenant, incident string) (ledger.Stage, error) {
	ctx, cancel := d.ledgerCtx(ctx)
	defer cancel()
	return d.ledger.Store().Stage(ctx, tenant, incident)
}
