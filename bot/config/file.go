package config

import (
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"time"
)

// Defaults of the tenants file (docs/configuration.md, "Key reference").
const (
	DefaultApprovalTTL = 5 * time.Minute
	// MinPollInterval is the shortest poll_interval a polled service may ask for.
	MinPollInterval         = time.Second
	DefaultEscalateAfter    = 180 * time.Second
	DefaultIncidentsPerHour = 20
)

// DefaultRiskyPaths returns the risky_paths used when a tenant's policy does not set them:
// database migrations, SQL and query code, configuration, and dependency manifests.
func DefaultRiskyPaths() []string {
	return []string{
		"**/migrations/**", "**/*.sql", "**/db/**", "**/*query*",
		"**/config/**", "**/*.env",
		"**/go.mod", "**/go.sum", "**/package.json", "**/package-lock.json", "**/yarn.lock", "**/requirements*.txt",
		"**/poetry.lock", "**/Pipfile.lock", "**/Gemfile.lock", "**/Cargo.lock", "**/pom.xml",
	}
}

// File is the tenants file (docs/configuration.md, "Tenants file"), parsed, defaulted and
// validated.
type File struct {
	// Name is the file name as given to Load or Parse.
	Name    string
	Tenants []Tenant
}

// Tenant is one team: its services, chats, people, recovery webhook and policy.
type Tenant struct {
	ID       string
	Services []Service
	// Chats are where incident threads open, in the order of the channels, then of the
	// file.
	Chats        []Chat
	People       []Person
	Recovery     Recovery
	Policy       Policy
	Alertmanager Alertmanager
	// PagerDuty are the Events API v2 routing keys of the tenant's services.
	PagerDuty []PagerDutyKey
	// OTLP and Grafana are the bearer tokens of those intakes (unset: off for the tenant).
	OTLP, Grafana BearerIntake
	Limits        Limits
}

// PagerDutyKey is one PagerDuty Events API v2 routing key and the service its events open
// incidents on.
type PagerDutyKey struct {
	Service    string
	RoutingKey Secret
}

// BearerIntake is a detection intake authenticated by a bearer token.
type BearerIntake struct {
	Token Secret
}

// What measures a service (services[].source): its push stream from the Go SDK (the
// default, or polling when health_url is set) or OpenTelemetry metrics sent to /v1/metrics.
const (
	SourcePush = "push"
	SourceOTLP = "otlp"
)

// Service is a monitored service. HealthURL set means pull mode; empty means push mode (the
// Go SDK ships to Redis).
type Service struct {
	Name      string
	HealthURL string
	// PollInterval is how often HealthURL is polled (poll_interval, whole seconds, at least
	// MinPollInterval); 0: LOOP_INTERVAL_S.
	PollInterval time.Duration
	// AllowPrivateNetwork lets the health poller reach HealthURL (and same-origin
	// redirects from it) on loopback, private, link-local and other non-public addresses;
	// off, they are refused at dial time. In-cluster health URLs need it on.
	AllowPrivateNetwork bool
	// Repos are GitHub repositories (owner/name) whose commits are correlated with incidents.
	Repos []string
	// Source is what measures the service (source: push or otlp; "" is push, or polling
	// with HealthURL).
	Source string
}

// Role is what a person may do.
type Role string

// Roles.
const (
	RoleApprover Role = "approver"
	RoleViewer   Role = "viewer"
)

// Person is someone the bot talks to. An approver has at least one chat identity.
type Person struct {
	Name string
	Role Role
	// IDs are the person's ids by channel name (ids: {telegram: "123456789"}), in the form
	// the channel's transport uses; nil when none.
	IDs map[string]string
	// Phone is the E.164 number called for voice escalation, empty when unset.
	Phone string
	// GitHub is the person's GitHub login, empty when unset: commits they authored are
	// theirs for separation of duties.
	GitHub string
}

// Risk is how dangerous an action is; high-risk actions need two distinct approvers.
type Risk string

// Risks.
const (
	RiskLow  Risk = "low"
	RiskHigh Risk = "high"
)

// Action is something the tenant's recovery webhook can do.
type Action struct {
	Name string `json:"name"`
	Risk Risk   `json:"risk"`
}

// The bounds of recovery.timeout.
const (
	MinRecoveryTimeout = time.Second
	MaxRecoveryTimeout = 5 * time.Minute
)

// Recovery is the tenant's recovery webhook. A tenant without a recovery section has no
// actions: incidents are diagnosed and discussed, nothing can be executed.
type Recovery struct {
	URL    string
	Secret Secret
	// Actions are the only actions the webhook accepts and the AI may suggest.
	Actions             []Action
	AllowPrivateNetwork bool
	// Timeout bounds one call of the webhook, the receiver's own work included (the
	// timeout key, 1 s to 5 min; 0: the executor's default of 10 s). A receiver slower
	// than it is called again with the same Idempotency-Key.
	Timeout time.Duration
	// DefaultAction is offered when the diagnosis is below the confidence gate: the
	// default_action key, else the first low-risk action, else empty.
	DefaultAction string
}

// Policy are the tenant's detection and approval rules.
type Policy struct {
	MinScoreToAlert int
	ApprovalTTL     time.Duration
	EscalateAfter   time.Duration
	RiskyPaths      []string
	// RefuseSuspectApproval (refuse_suspect_approval, default true) refuses an approver's
	// press on an incident one of their own risky commits is suspected of.
	RefuseSuspectApproval bool
}

// Alertmanager configures the tenant's Prometheus Alertmanager intake.
type Alertmanager struct {
	// Token is the bearer token this tenant's Alertmanager sends; empty disables the intake
	// for this tenant.
	Token Secret
	// MaxAlerts (max_alerts, default 10,000) is how many alerts of one notification are
	// acted on; the body may be 2 KiB per alert. Alerts past it are treated as truncated.
	MaxAlerts int
	// ExpireAfter (expire_after, default 12h) is how long a firing alert is believed
	// without Alertmanager re-sending it.
	ExpireAfter time.Duration
}

// Limits bound what a tenant can cause.
type Limits struct {
	IncidentsPerHour int
}

// Tenant returns the tenant with the given id.
func (f *File) Tenant(id string) (*Tenant, bool) {
	for i := range f.Tenants {
		if f.Tenants[i].ID == id {
			return &f.Tenants[i], true
		}
	}
	return nil, false
}

// TenantByAlertmanagerToken returns the tenant whose alertmanager.token is token. Every
// tenant's token is compared in constant time.
func (f *File) TenantByAlertmanagerToken(token string) (*Tenant, bool) {
	found := -1
	for i := range f.Tenants {
		t := f.Tenants[i].Alertmanager.Token
		if t.IsSet() && subtle.ConstantTimeCompare([]byte(t.Reveal()), []byte(token)) == 1 {
			found = i
		}
	}
	if found < 0 || token == "" {
		return nil, false
	}
	return &f.Tenants[found], true
}

// LogValue implements slog.LogValuer: the file name and tenant ids.
func (f *File) LogValue() slog.Value {
	ids := make([]string, len(f.Tenants))
	for i, t := range f.Tenants {
		ids[i] = t.ID
	}
	return slog.GroupValue(slog.String("file", f.Name), slog.Any("tenants", ids))
}

// PersonByGitHub returns the person with the given GitHub login (case-insensitive).
func (t Tenant) PersonByGitHub(login string) (Person, bool) {
	if login == "" {
		return Person{}, false
	}
	for _, p := range t.People {
		if p.GitHub != "" && strings.EqualFold(p.GitHub, login) {
			return p, true
		}
	}
	return Person{}, false
}

// Person returns the person with the given name.
func (t Tenant) Person(name string) (Person, bool) {
	for _, p := range t.People {
		if p.Name == name {
			return p, true
		}
	}
	return Person{}, false
}

// PersonByID returns the person whose id on channel is id.
func (t Tenant) PersonByID(channel, id string) (Person, bool) {
	if id == "" {
		return Person{}, false
	}
	for _, p := range t.People {
		if p.IDs[channel] == id {
			return p, true
		}
	}
	return Person{}, false
}

// ChatsOn returns the ids of the tenant's chats on channel, in file order.
func (t Tenant) ChatsOn(channel string) []string {
	var out []string
	for _, c := range t.Chats {
		if c.Channel == channel {
			out = append(out, c.ID)
		}
	}
	return out
}

// Approvers returns the people with role approver, in file order.
func (t Tenant) Approvers() []Person {
	var out []Person
	for _, p := range t.People {
		if p.Role == RoleApprover {
			out = append(out, p)
		}
	}
	return out
}

// Service returns the service with the given name.
func (t Tenant) Service(name string) (Service, bool) {
	for _, s := range t.Services {
		if s.Name == name {
			return s, true
		}
	}
	return Service{}, false
}

// Action returns the recovery action with the given name.
func (t Tenant) Action(name string) (Action, bool) {
	for _, a := range t.Recovery.Actions {
		if a.Name == name {
			return a, true
		}
	}
	return Action{}, false
}

// PolicyVersion identifies the tenant's policy: "pol-" and 10 hex digits of SHA-256 over the
// canonical JSON of the policy, the recovery actions and the default action. Equal policies
// give equal versions however they are spelled (180s and 3m, any order of risky_paths or
// actions); any change of a value gives a different one. The ledger records it with every
// decision.
func (t Tenant) PolicyVersion() string {
	paths := slices.Clone(t.Policy.RiskyPaths)
	slices.Sort(paths)
	paths = slices.Compact(paths)
	actions := slices.Clone(t.Recovery.Actions)
	slices.SortFunc(actions, func(a, b Action) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Risk, b.Risk))
	})
	canonical := struct {
		V               int      `json:"v"`
		MinScoreToAlert int      `json:"min_score_to_alert"`
		ApprovalTTL     int64    `json:"approval_ttl_ns"`
		EscalateAfter   int64    `json:"escalate_after_ns"`
		RiskyPaths      []string `json:"risky_paths"`
		Actions         []Action `json:"actions"`
		DefaultAction   string   `json:"default_action"`
		// Only when switched off, so the versions of existing policies stay what they were.
		SuspectsMayApprove bool `json:"suspects_may_approve,omitempty"`
	}{
		V:                  1,
		MinScoreToAlert:    t.Policy.MinScoreToAlert,
		ApprovalTTL:        int64(t.Policy.ApprovalTTL),
		EscalateAfter:      int64(t.Policy.EscalateAfter),
		RiskyPaths:         paths,
		Actions:            actions,
		DefaultAction:      t.Recovery.DefaultAction,
		SuspectsMayApprove: !t.Policy.RefuseSuspectApproval,
	}
	b, _ := json.Marshal(canonical) // cannot fail: ints, strings and slices of them
	sum := sha256.Sum256(b)
	return "pol-" + hex.EncodeToString(sum[:5])
}
