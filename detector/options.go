package detector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
)

// ErrInvalidOptions wraps every problem Options.Validate finds.
var ErrInvalidOptions = errors.New("detector: invalid options")

// Options configure a Detector. Zero durations and counts take the defaults named on
// each field.
type Options struct {
	// Redis holds the shared state of every replica: stream consumer groups, windows,
	// gates, baselines, leases, the incidents-per-hour counters and the Alertmanager
	// delivery log. Required.
	Redis redis.UniversalClient
	// KeyPrefix is put before every key the detector reads or writes, the SDK's metric
	// streams included (sdk.StreamKey(KeyPrefix, tenant, service)).
	KeyPrefix string
	// Ledger records the decisions. Required.
	Ledger *ledger.Ledger
	// Tenants and their services. At least one.
	Tenants []Tenant
	// OnEvent receives every decision after its ledger entry is durable (see Event). It is
	// called synchronously from the evaluation or the HTTP handler: it must return quickly.
	// Nil: events are only logged.
	OnEvent func(context.Context, Event)
	// Clock is the time source of decisions; default time.Now.
	Clock  func() time.Time
	Logger *slog.Logger
	// ReplicaID names this replica in consumer groups and leases; default host-pid-random.
	// Two live replicas must never share one.
	ReplicaID string

	// Window is the sliding window judged by an evaluation (default 10 s, whole seconds).
	// In push mode one evaluation judges each second's window, as soon as its last bucket
	// is complete.
	Window time.Duration
	// FastWindow is the newest part of the window (default 5 s, whole seconds) that, when it
	// alone holds at least FastMinSamples requests (default 100) and scores 20 points under
	// the tenant's threshold, opens an incident at once instead of after OpenAfter evaluations
	// of the whole window: a service with that much traffic has enough slow requests to
	// make the evidence solid, and waiting for them to fill a tenth of the window, then
	// for a second evaluation, costs up to two seconds of detection. Push mode only; a
	// FastWindow of Window or more turns it off. Recovery is judged on the whole window.
	FastWindow     time.Duration
	FastMinSamples int
	// MaxEvalDelay is how long after a bucket closes its window waits for instances that
	// shipped the previous bucket but not this one yet (default 2.5 s; the SDK ships a
	// bucket about 0.1 s after it closes, and an early part of a bucket does not count).
	// A window is judged as soon as it is complete; this only bounds the wait for an
	// instance that died or went idle.
	MaxEvalDelay time.Duration
	// ReadInterval is how often Run reads the metric streams and checks which windows are
	// complete (default 100 ms).
	ReadInterval time.Duration
	// ReadCount caps the entries read from one stream per read (default 256).
	ReadCount int64
	// ClaimIdle is how long an entry may stay pending with a consumer before another
	// replica claims it with XAUTOCLAIM (default 30 s).
	ClaimIdle time.Duration
	// LeaseTTL is how long a replica keeps the evaluation of a push service without
	// renewing it (default 5 s); another replica takes over after that.
	LeaseTTL time.Duration
	// PollInterval is the pull-mode period, LOOP_INTERVAL_S (default 5 s).
	PollInterval time.Duration
	// PollTimeout bounds one HTTP poll (default 3 s, at most PollInterval).
	PollTimeout time.Duration
	// RedisTimeout bounds every Redis call (default 2 s).
	RedisTimeout time.Duration
	// MinSamples is the fewest requests in a window that are judged (default 20).
	MinSamples int
	// OpenAfter is how many consecutive evaluations under the tenant's threshold open an
	// incident (default 2); RecoverAfter how many consecutive healthy ones close it
	// (default 3).
	OpenAfter, RecoverAfter int
	// noLookAhead turns off staysBad's early opening (tests compare the policy with and
	// without it).
	noLookAhead bool

	// Intakes are the inputs besides the built-in push path, one line each:
	// alertmanager.Intake(…), poll.Intake(…), pagerduty.Intake(…)… (see Intake).
	Intakes []NewIntake
}

// Tenant is one tenant's detection policy.
type Tenant struct {
	// ID is [a-z0-9-]{1,32}.
	ID string
	// PolicyVersion names the policy in force; it is recorded on every decision.
	PolicyVersion string
	// MinScoreToAlert is the health score under which an evaluation is bad
	// (policy.min_score_to_alert; default 70).
	MinScoreToAlert float64
	// IncidentsPerHour caps the incidents the detector opens for the tenant in any
	// sliding hour, across replicas (limits.incidents_per_hour; default 20, -1 for no cap).
	IncidentsPerHour int
	// AlertmanagerToken is the bearer token the tenant's Alertmanager sends; empty: the
	// tenant accepts no Alertmanager webhook.
	AlertmanagerToken string
	// AlertmanagerMaxAlerts is how many alerts of one notification are acted on
	// (alertmanager.max_alerts; default 10,000); the rest are treated as truncated, as
	// Alertmanager's own max_alerts does.
	AlertmanagerMaxAlerts int
	// AlertmanagerExpireAfter is how long a firing alert is believed without being sent
	// again (alertmanager.expire_after; default 12 h, three times Alertmanager's default
	// repeat_interval): Alertmanager re-sends a firing group at every repeat_interval, so an
	// alert missing for longer was resolved unseen, and the incident it holds is closed.
	AlertmanagerExpireAfter time.Duration
	Services                []Service
}

// Service is one watched service. With a HealthURL it is polled (pull mode, by the
// detector/poll intake); with a Source other than push, that intake feeds it (an OTLP
// exporter, say); otherwise its SDK pushes summaries to sdk.StreamKey(KeyPrefix, tenant,
// Name) (push mode). Alert intakes (Alertmanager, PagerDuty…) may address any service.
type Service struct {
	Name      string
	HealthURL string
	// Source is the intake that measures the service ("": push, or pull with a HealthURL).
	Source Source
	// PollInterval is this service's poll period (whole seconds, at least 1 s); 0:
	// Options.PollInterval.
	PollInterval time.Duration
	// AllowPrivateNetwork lets polls of HealthURL reach loopback, private, link-local and
	// other non-public addresses (services.allow_private_network). Off, such an address
	// is refused at dial time, as the executor refuses recovery URLs (detector/netguard):
	// a health URL, or a redirect from it, cannot make the poller fetch the bot's own
	// network. In-cluster health URLs need it on.
	AllowPrivateNetwork bool
}

// Pushed reports whether the service's measurements come from the SDK's stream.
func (s Service) Pushed() bool {
	return s.HealthURL == "" && (s.Source == "" || s.Source == SourcePush)
}

// Defaults.
const (
	DefaultWindow           = 10 * time.Second
	DefaultFastWindow       = 5 * time.Second
	DefaultFastMinSamples   = 100
	DefaultMaxEvalDelay     = 2500 * time.Millisecond
	DefaultReadInterval     = 100 * time.Millisecond
	DefaultReadCount        = 256
	DefaultClaimIdle        = 30 * time.Second
	DefaultLeaseTTL         = 5 * time.Second
	DefaultPollInterval     = 5 * time.Second
	DefaultPollTimeout      = 3 * time.Second
	DefaultRedisTimeout     = 2 * time.Second
	DefaultMinSamples       = 20
	DefaultOpenAfter        = 2
	DefaultRecoverAfter     = 3
	DefaultMinScoreToAlert  = 70.0
	DefaultIncidentsPerHour = 20
	// DefaultMaxAlerts is the default AlertmanagerMaxAlerts.
	DefaultMaxAlerts = 10_000
	// DefaultAlertmanagerExpireAfter is the default AlertmanagerExpireAfter.
	DefaultAlertmanagerExpireAfter = 12 * time.Hour
	// MaxMaxAlerts bounds AlertmanagerMaxAlerts.
	MaxMaxAlerts = 100_000
)

// Validate checks the options as given (zero values mean defaults).
func (o *Options) Validate() error {
	var errs []error
	bad := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%w: %s", ErrInvalidOptions, fmt.Sprintf(format, args...)))
	}
	if o.Redis == nil {
		bad("no Redis client")
	}
	if o.Ledger == nil {
		bad("no ledger")
	}
	if len(o.Tenants) == 0 {
		bad("no tenants")
	}
	for name, d := range map[string]time.Duration{
		"Window": o.Window, "FastWindow": o.FastWindow, "MaxEvalDelay": o.MaxEvalDelay, "ReadInterval": o.ReadInterval,
		"ClaimIdle": o.ClaimIdle, "LeaseTTL": o.LeaseTTL, "PollInterval": o.PollInterval, "PollTimeout": o.PollTimeout,
		"RedisTimeout": o.RedisTimeout,
	} {
		if d < 0 {
			bad("%s is negative", name)
		}
	}
	if o.Window%time.Second != 0 {
		bad("Window %v is not whole seconds", o.Window)
	}
	if o.FastWindow%time.Second != 0 {
		bad("FastWindow %v is not whole seconds", o.FastWindow)
	}
	if o.ReadCount < 0 || o.MinSamples < 0 || o.FastMinSamples < 0 || o.OpenAfter < 0 || o.RecoverAfter < 0 {
		bad("negative count")
	}
	if o.PollInterval > 0 && o.PollTimeout > o.PollInterval {
		bad("PollTimeout %v exceeds PollInterval %v", o.PollTimeout, o.PollInterval)
	}
	seenTenant := map[string]bool{}
	seenToken := map[string]string{}
	for i, t := range o.Tenants {
		if !ledger.ValidTenant(t.ID) {
			bad("tenants[%d]: id %q is not [a-z0-9-]{1,32}", i, t.ID)
		}
		if seenTenant[t.ID] {
			bad("tenants[%d]: duplicate tenant %q", i, t.ID)
		}
		seenTenant[t.ID] = true
		if t.MinScoreToAlert < 0 || t.MinScoreToAlert > 100 {
			bad("tenant %s: min score to alert %v outside 0..100", t.ID, t.MinScoreToAlert)
		}
		if t.IncidentsPerHour < -1 {
			bad("tenant %s: incidents per hour %d (use -1 for no cap)", t.ID, t.IncidentsPerHour)
		}
		if t.AlertmanagerMaxAlerts < 0 || t.AlertmanagerMaxAlerts > MaxMaxAlerts {
			bad("tenant %s: Alertmanager max alerts %d outside 1..%d", t.ID, t.AlertmanagerMaxAlerts, MaxMaxAlerts)
		}
		if t.AlertmanagerExpireAfter < 0 {
			bad("tenant %s: Alertmanager expire after %v is negative", t.ID, t.AlertmanagerExpireAfter)
		}
		if t.AlertmanagerToken != "" {
			if other, dup := seenToken[t.AlertmanagerToken]; dup {
				bad("tenants %s and %s share an Alertmanager token", other, t.ID)
			}
			seenToken[t.AlertmanagerToken] = t.ID
		}
		seenSvc := map[string]bool{}
		for j, s := range t.Services {
			if s.Name == "" || len(s.Name) > 256 || containsControl(s.Name) {
				bad("tenant %s: services[%d]: name %q must be 1 to 256 printable bytes", t.ID, j, s.Name)
			}
			if seenSvc[s.Name] {
				bad("tenant %s: duplicate service %q", t.ID, s.Name)
			}
			seenSvc[s.Name] = true
			if s.PollInterval != 0 && (s.PollInterval < time.Second || s.PollInterval%time.Second != 0) {
				bad("tenant %s: service %s: poll interval %v is not whole seconds of at least 1 s", t.ID, s.Name, s.PollInterval)
			}
			if s.HealthURL != "" {
				u, err := url.Parse(s.HealthURL)
				if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					bad("tenant %s: service %s: health URL %q is not an absolute http(s) URL", t.ID, s.Name, s.HealthURL)
				}
			}
		}
	}
	return errors.Join(errs...)
}

func containsControl(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return true
		}
	}
	return false
}

// withDefaults returns o with every zero value replaced by its default.
func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.Window, DefaultWindow)
	def(&o.FastWindow, DefaultFastWindow)
	def(&o.MaxEvalDelay, DefaultMaxEvalDelay)
	def(&o.ReadInterval, DefaultReadInterval)
	def(&o.ClaimIdle, DefaultClaimIdle)
	def(&o.LeaseTTL, DefaultLeaseTTL)
	def(&o.PollInterval, DefaultPollInterval)
	def(&o.PollTimeout, min(DefaultPollTimeout, o.PollInterval))
	def(&o.RedisTimeout, DefaultRedisTimeout)
	if o.ReadCount == 0 {
		o.ReadCount = DefaultReadCount
	}
	if o.MinSamples == 0 {
		o.MinSamples = DefaultMinSamples
	}
	if o.FastMinSamples == 0 {
		o.FastMinSamples = DefaultFastMinSamples
	}
	if o.OpenAfter == 0 {
		o.OpenAfter = DefaultOpenAfter
	}
	if o.RecoverAfter == 0 {
		o.RecoverAfter = DefaultRecoverAfter
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	tenants := make([]Tenant, len(o.Tenants))
	for i, t := range o.Tenants {
		if t.MinScoreToAlert == 0 {
			t.MinScoreToAlert = DefaultMinScoreToAlert
		}
		if t.IncidentsPerHour == 0 {
			t.IncidentsPerHour = DefaultIncidentsPerHour
		}
		if t.AlertmanagerMaxAlerts == 0 {
			t.AlertmanagerMaxAlerts = DefaultMaxAlerts
		}
		if t.AlertmanagerExpireAfter == 0 {
			t.AlertmanagerExpireAfter = DefaultAlertmanagerExpireAfter
		}
		t.Services = append([]Service(nil), t.Services...)
		tenants[i] = t
	}
	o.Tenants = tenants
	return o
}
