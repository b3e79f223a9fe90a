package pagerduty

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// Source is what the entries and events of this intake carry.
const Source detector.Source = "pagerduty"

// Routes of the intake: PagerDuty's own path, and one per tenant, where a routing key is
// looked up only among that tenant's.
const (
	Path          = "/v2/enqueue"
	TenantPattern = "/pagerduty/{tenant}/v2/enqueue"
)

// Key maps one routing key (an Events API v2 integration key) to the service its events
// are about.
type Key struct {
	// RoutingKey is the secret the sender puts in routing_key: at least 16 characters.
	// It is compared in constant time and never logged.
	RoutingKey      string
	Tenant, Service string
}

// Options configure the intake.
type Options struct {
	// Keys are the routing keys accepted; each names a tenant's watched service.
	Keys []Key
	// MaxBodyBytes bounds a request body (default MaxBody, PagerDuty's 512 KB).
	MaxBodyBytes int64
	// Rate is how many events a second one routing key may send in the long run
	// (default 2, PagerDuty's 120 a minute), Burst how many at once (default 120); past
	// that the event is refused with 429 and Retry-After, and the sender retries.
	Rate  float64
	Burst int
	// Logger; default the detector's.
	Logger *slog.Logger
}

// MinKeyLen is the shortest routing key accepted.
const MinKeyLen = 16

// Intake registers the intake on a detector (detector.Options.Intakes).
func Intake(o Options) detector.NewIntake {
	return func(d *detector.Detector) (detector.Intake, error) { return New(d, o) }
}

// Receiver is the Events API v2 intake.
type Receiver struct {
	d     *detector.Detector
	o     Options
	rdb   redis.UniversalClient
	log   *slog.Logger
	keys  []routingKey
	stats counters
	// latency of accepted events, by action.
	latency *prometheus.HistogramVec
}

type routingKey struct {
	digest          [32]byte
	tenant, service string
	// bucket limits the key's events (its own mutex).
	bucket *bucket
}

// New checks o against d's tenants and builds the intake.
func New(d *detector.Detector, o Options) (*Receiver, error) {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = MaxBody
	}
	if o.Rate <= 0 {
		o.Rate = 2
	}
	if o.Burst <= 0 {
		o.Burst = 120
	}
	if o.Logger == nil {
		o.Logger = d.Logger()
	}
	r := &Receiver{d: d, o: o, rdb: d.Redis(), log: o.Logger.With("source", Source),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "alertengine_detector_pagerduty_seconds",
			Help:    "Time to handle an accepted PagerDuty event, by action.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5}}, []string{"action"})}
	seen := map[[32]byte]bool{}
	for i, k := range o.Keys {
		t, ok := d.Tenant(k.Tenant)
		if !ok {
			return nil, fmt.Errorf("pagerduty: keys[%d]: unknown tenant %q", i, k.Tenant)
		}
		watched := false
		for _, s := range t.Services {
			watched = watched || s.Name == k.Service
		}
		if !watched {
			return nil, fmt.Errorf("pagerduty: keys[%d]: tenant %s does not watch service %q", i, k.Tenant, k.Service)
		}
		if len(k.RoutingKey) < MinKeyLen || strings.TrimSpace(k.RoutingKey) != k.RoutingKey {
			return nil, fmt.Errorf("pagerduty: keys[%d] (%s/%s): routing key shorter than %d characters or padded", i, k.Tenant, k.Service, MinKeyLen)
		}
		dg := sha256.Sum256([]byte(k.RoutingKey))
		if seen[dg] {
			return nil, fmt.Errorf("pagerduty: keys[%d] (%s/%s): routing key used twice", i, k.Tenant, k.Service)
		}
		seen[dg] = true
		r.keys = append(r.keys, routingKey{digest: dg, tenant: k.Tenant, service: k.Service, bucket: newBucket(o.Rate, o.Burst)})
	}
	return r, nil
}

// Source implements detector.Intake.
func (r *Receiver) Source() detector.Source { return Source }

// Routes implements detector.Intake: POST /v2/enqueue and POST /pagerduty/{tenant}/v2/enqueue.
func (r *Receiver) Routes() []detector.Route {
	h := r.Handler()
	return []detector.Route{
		{Pattern: "POST " + Path, Handler: h, MaxBody: r.o.MaxBodyBytes},
		{Pattern: "POST " + TenantPattern, Handler: h, MaxBody: r.o.MaxBodyBytes},
	}
}

// Run implements detector.Intake: nothing to run.
func (r *Receiver) Run(context.Context) error { return nil }

// Reasons an event is refused, the label of alertengine_detector_pagerduty_refused_total.
const (
	RefusedUnknownKey  = "unknown_key"  // 400: no routing key, or one no tenant has
	RefusedTooLarge    = "too_large"    // 413: body over MaxBodyBytes
	RefusedInvalid     = "invalid"      // 400: not a valid event
	RefusedRateLimited = "rate_limited" // 429: the key sent more than Burst at once
	RefusedUnreadable  = "unreadable"   // 400: the body could not be read
	RefusedNotRecorded = "not_recorded" // 500: the store failed; the sender retries
)

// RefusedReasons lists every refusal reason.
var RefusedReasons = []string{RefusedUnknownKey, RefusedTooLarge, RefusedInvalid, RefusedRateLimited, RefusedUnreadable, RefusedNotRecorded}

// Stats are the intake's counters since New.
type Stats struct {
	// Accepted counts events answered 202, by action; Duplicates the triggers of an
	// alert already open and the acknowledgements and resolves that changed nothing.
	Accepted   map[string]uint64
	Duplicates uint64
	// Refused counts refused events by reason (RefusedReasons).
	Refused map[string]uint64
}

type counters struct {
	accepted   [3]atomic.Uint64 // trigger, acknowledge, resolve
	duplicates atomic.Uint64
	refused    [6]atomic.Uint64 // by RefusedReasons
}

var actions = []string{Trigger, Acknowledge, Resolve}

// Stats returns the counters.
func (r *Receiver) Stats() Stats {
	s := Stats{Accepted: map[string]uint64{}, Refused: map[string]uint64{}, Duplicates: r.stats.duplicates.Load()}
	for i, a := range actions {
		s.Accepted[a] = r.stats.accepted[i].Load()
	}
	for i, reason := range RefusedReasons {
		s.Refused[reason] = r.stats.refused[i].Load()
	}
	return s
}

// Collectors implements detector.Intake.
func (r *Receiver) Collectors() []prometheus.Collector {
	cs := []prometheus.Collector{r.latency,
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "alertengine_detector_pagerduty_duplicates_total",
			Help: "PagerDuty events accepted that changed nothing: a trigger of an alert already open, a repeated acknowledgement, a resolve of an unknown dedup_key."},
			func() float64 { return float64(r.stats.duplicates.Load()) })}
	for i, a := range actions {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "alertengine_detector_pagerduty_accepted_total",
			Help: "PagerDuty Events API v2 events accepted (202), by action.", ConstLabels: prometheus.Labels{"action": a}},
			func() float64 { return float64(r.stats.accepted[i].Load()) }))
	}
	for i, reason := range RefusedReasons {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "alertengine_detector_pagerduty_refused_total",
			Help:        "PagerDuty Events API v2 events refused, by reason: unknown_key (400), too_large (413), invalid (400), rate_limited (429), unreadable (400), not_recorded (500).",
			ConstLabels: prometheus.Labels{"reason": reason}},
			func() float64 { return float64(r.stats.refused[i].Load()) }))
	}
	return cs
}

// response is the body PagerDuty answers with.
type response struct {
	Status   string   `json:"status"`
	Message  string   `json:"message"`
	DedupKey string   `json:"dedup_key,omitempty"`
	Errors   []string `json:"errors,omitempty"`
}

func reply(w http.ResponseWriter, code int, res response) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(res)
}

// Handler serves the Events API v2. The body is read up to MaxBodyBytes (413 past it),
// decoded and checked (400 "invalid event" with the problems in "errors"); the routing
// key is compared in constant time with every configured one, and one that matches none
// — or, on the per-tenant path, none of that tenant's — is answered like any invalid
// event, without saying whether a tenant exists. A key over its rate gets 429 with
// Retry-After and nothing is recorded; an accepted event gets 202
// {"status":"success","message":"Event processed","dedup_key":…} once it is recorded
// (500 if it could not be: the sender retries, and a repeated trigger records nothing
// twice).
func (r *Receiver) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		start := time.Now()
		if req.ContentLength > r.o.MaxBodyBytes {
			r.refuse(RefusedTooLarge, "", req.ContentLength, "body over the limit")
			reply(w, http.StatusRequestEntityTooLarge, response{Status: "invalid event", Message: fmt.Sprintf("Request body over %d bytes", r.o.MaxBodyBytes)})
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, r.o.MaxBodyBytes))
		var big *http.MaxBytesError
		switch {
		case errors.As(err, &big):
			r.refuse(RefusedTooLarge, "", req.ContentLength, "body over the limit")
			reply(w, http.StatusRequestEntityTooLarge, response{Status: "invalid event", Message: fmt.Sprintf("Request body over %d bytes", r.o.MaxBodyBytes)})
			return
		case err != nil:
			r.refuse(RefusedUnreadable, "", req.ContentLength, "could not read the body")
			reply(w, http.StatusBadRequest, response{Status: "invalid event", Message: "Could not read the request body"})
			return
		}
		ev, perr := Parse(body)
		var key *routingKey
		if perr == nil || ev.RoutingKey != "" {
			key = r.lookup(ev.RoutingKey, req.PathValue("tenant"))
		}
		if perr == nil && key == nil {
			// Raw bodies are never logged: they carry the routing key.
			r.refuse(RefusedUnknownKey, "", int64(len(body)), "routing key matches no tenant's", "remote", req.RemoteAddr)
			reply(w, http.StatusBadRequest, response{Status: "invalid event", Message: "Event object is invalid",
				Errors: []string{"'routing_key' is invalid"}})
			return
		}
		var inv *InvalidError
		if errors.As(perr, &inv) {
			r.refuse(RefusedInvalid, "", int64(len(body)), inv.Error())
			reply(w, http.StatusBadRequest, response{Status: "invalid event", Message: "Event object is invalid", Errors: inv.Problems})
			return
		}
		if wait := key.bucket.take(time.Now()); wait > 0 {
			r.refuse(RefusedRateLimited, key.tenant, int64(len(body)), "rate limited", "service", key.service)
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			reply(w, http.StatusTooManyRequests, response{Status: "throttle event", Message: "Requests for this routing key are arriving too quickly; retry later"})
			return
		}
		if ev.EventAction == Trigger && ev.DedupKey == "" {
			ev.DedupKey = newDedupKey()
		}
		// Once accepted, an event is handled to the end even if the sender hangs up: every
		// call below has its own timeout.
		if err := r.handle(context.WithoutCancel(req.Context()), key, ev); err != nil {
			key.bucket.give()
			r.stats.refused[5].Add(1)
			r.log.Error("pagerduty event not recorded", "tenant", key.tenant, "service", key.service, "action", ev.EventAction, "err", err)
			reply(w, http.StatusInternalServerError, response{Status: "error", Message: "The event could not be recorded; retry"})
			return
		}
		for i, a := range actions {
			if a == ev.EventAction {
				r.stats.accepted[i].Add(1)
			}
		}
		r.latency.WithLabelValues(ev.EventAction).Observe(time.Since(start).Seconds())
		reply(w, http.StatusAccepted, response{Status: "success", Message: "Event processed", DedupKey: ev.DedupKey})
	})
}

// lookup finds the routing key among every configured one (or tenant's only), comparing
// each digest in constant time.
func (r *Receiver) lookup(raw, tenant string) *routingKey {
	if raw == "" {
		return nil
	}
	got := sha256.Sum256([]byte(raw))
	var match *routingKey
	for i := range r.keys {
		k := &r.keys[i]
		if subtle.ConstantTimeCompare(got[:], k.digest[:]) == 1 && (tenant == "" || tenant == k.tenant) {
			match = k
		}
	}
	return match
}

// refuse counts and logs a refused event (one WARN line; never the body or the key).
func (r *Receiver) refuse(reason, tenant string, size int64, why string, args ...any) {
	for i, x := range RefusedReasons {
		if x == reason {
			r.stats.refused[i].Add(1)
		}
	}
	attrs := append([]any{"reason", reason, "tenant", tenant, "bytes", size, "why", ledger.ClipText(why)}, args...)
	r.log.Warn("pagerduty event refused", attrs...)
}

func newDedupKey() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// bucket is a token bucket: burst tokens, refilled at rate a second.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// take takes a token at now, or says how long until one is there.
func (b *bucket) take(now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return 0
	}
	return time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}

// give returns a token taken by an event that was not accepted after all.
func (b *bucket) give() {
	b.mu.Lock()
	b.tokens = min(b.burst, b.tokens+1)
	b.mu.Unlock()
}
