// Package demo is the world `bot demo` runs the bot against: a demo service instrumented
// by the real SDK middleware (push mode, through Redis, like any Go service), synthetic
// traffic that keeps it busy, a fault the console can inject and clear, and the
// service's own recovery webhook, which checks the bot's signature and really clears the
// fault. Nothing here is inside the bot: the bot sees a service, its metrics and its
// webhook, exactly as in production. It is used only by `bot demo`.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/sdk"
)

// ErrInvalidOptions wraps every problem Options.Validate finds.
var ErrInvalidOptions = errors.New("demo: invalid options")

// Options configure the demo service. Zero values take the defaults named.
type Options struct {
	Tenant, Service string
	// RedisURL and KeyPrefix are where the SDK pushes its summaries (the bot's Redis).
	RedisURL, KeyPrefix string
	// RecoverySecret is the tenant's recovery.secret: the webhook refuses calls not
	// signed with it.
	RecoverySecret string
	// Actions are the recovery actions the webhook accepts (each clears the fault).
	Actions []string
	// Rate is the synthetic traffic, requests per second (default 40).
	Rate int
	// Healthy and Slow are how long a request takes without and with the fault (default
	// 8 ms and 900 ms).
	Healthy, Slow time.Duration
	// ErrorShare is the share of requests that fail with 500 once the fault has settled
	// (default 0.25). The fault starts at full strength: its first Rate requests (a
	// second of traffic) all fail, as a connection pool does when it runs dry at once.
	// So the first windows the detector judges already show the 5xx next to the
	// latency, whatever second the spike falls in (see Outcome).
	ErrorShare float64
	// Timeout bounds each synthetic request (default 5 s).
	Timeout time.Duration
	Clock   func() time.Time
	Logger  *slog.Logger
}

// Validate checks the options.
func (o *Options) Validate() error {
	var errs []error
	if o.Tenant == "" || o.Service == "" {
		errs = append(errs, errors.New("tenant and service are required"))
	}
	if o.RedisURL == "" {
		errs = append(errs, errors.New("no Redis URL for the SDK"))
	}
	if len(o.RecoverySecret) < 16 {
		errs = append(errs, errors.New("recovery secret shorter than 16 bytes"))
	}
	if len(o.Actions) == 0 {
		errs = append(errs, errors.New("no recovery actions"))
	}
	if o.Rate < 0 || o.Rate > 1000 || o.Healthy < 0 || o.Slow < 0 || o.ErrorShare < 0 || o.ErrorShare > 1 || o.Timeout < 0 {
		errs = append(errs, errors.New("rate must be 0 to 1000 per second, durations not negative, error share within 0..1"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
	}
	return nil
}

// Recovery is one call of the recovery webhook the service accepted.
type Recovery struct {
	Incident, Action, IdempotencyKey string
	ApprovedBy                       []string
}

// Service is the demo service.
type Service struct {
	o       Options
	sdk     *sdk.SDK
	handler http.Handler
	faulty  atomic.Bool
	served  atomic.Uint64 // requests served since the fault was injected
	mu      sync.Mutex
	done    map[string]Recovery // by idempotency key: a retried call is answered, not redone
	calls   chan Recovery
}

// New returns the service; Serve and Drive run it.
func New(o Options) (*Service, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Rate == 0 {
		o.Rate = 40
	}
	if o.Healthy == 0 {
		o.Healthy = 8 * time.Millisecond
	}
	if o.Slow == 0 {
		o.Slow = 900 * time.Millisecond
	}
	if o.ErrorShare == 0 {
		o.ErrorShare = 0.25
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Service{o: o, done: map[string]Recovery{}, calls: make(chan Recovery, 16)}
	s.sdk = sdk.New(sdk.Options{Service: o.Service, Tenant: o.Tenant, RedisURL: o.RedisURL, KeyPrefix: o.KeyPrefix, Instance: "demo-1", Logger: o.Logger})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /checkout", s.checkout)
	app := s.sdk.Instrument(mux)
	// The recovery webhook is the service's operations endpoint, outside the
	// instrumented business traffic.
	root := http.NewServeMux()
	root.HandleFunc("POST /recover", s.recover)
	root.Handle("/", app)
	s.handler = root
	return s, nil
}

// Spike injects the fault: requests turn slow and a share of them fail.
func (s *Service) Spike() {
	if !s.faulty.Load() {
		s.served.Store(0)
	}
	if !s.faulty.Swap(true) {
		s.o.Logger.Info("demo: fault injected", "service", s.o.Service)
	}
}

// Recover clears the fault by hand.
func (s *Service) Recover() {
	if s.faulty.Swap(false) {
		s.o.Logger.Info("demo: fault cleared", "service", s.o.Service)
	}
}

// Faulty reports whether the fault is injected.
func (s *Service) Faulty() bool { return s.faulty.Load() }

// Recoveries delivers each recovery call the webhook accepted (once per idempotency key);
// a full channel drops the notice, never the recovery.
func (s *Service) Recoveries() <-chan Recovery { return s.calls }

// Handler is the service's HTTP surface: the instrumented business endpoint, the SDK's
// endpoints (/health/alerts, /metrics/history, …) and POST /recover.
func (s *Service) Handler() http.Handler { return s.handler }

// Outcome is what the n-th request since the fault was injected (n from 1) meets: it
// is slow, and it fails if it is among the first Rate (the pool ran dry at once) or,
// after them, one in every 1/ErrorShare. Deterministic, so every demo run's fault has
// the same shape.
func (s *Service) Outcome(n uint64) (wait time.Duration, fail bool) {
	if n <= uint64(s.o.Rate) {
		return s.o.Slow, true
	}
	if s.o.ErrorShare <= 0 {
		return s.o.Slow, false
	}
	every := uint64(math.Round(1 / s.o.ErrorShare))
	return s.o.Slow, every > 0 && n%every == 0
}

func (s *Service) checkout(w http.ResponseWriter, r *http.Request) {
	wait, fail := s.o.Healthy, false
	if s.faulty.Load() {
		wait, fail = s.Outcome(s.served.Add(1))
	}
	wait += time.Duration(rand.Int64N(int64(wait)/4 + 1)) // some jitter
	t := time.NewTimer(wait)                              // the service's work, simulated
	defer t.Stop()
	select {
	case <-t.C:
	case <-r.Context().Done():
		return
	}
	if fail {
		http.Error(w, "database connection pool exhausted", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// recover is the recovery webhook: a call signed with the recovery secret, for a known
// action, clears the fault.
func (s *Service) recover(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err != nil {
		http.Error(w, "unreadable body", http.StatusBadRequest)
		return
	}
	if err := executor.VerifySignature(s.o.RecoverySecret, r.Header.Get("X-AlertEngine-Signature"), body, s.o.Clock(), 5*time.Minute); err != nil {
		s.o.Logger.Warn("demo: recovery call refused", "reason", "bad signature")
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	var ex executor.Execution
	if err := json.Unmarshal(body, &ex); err != nil {
		http.Error(w, "not a recovery call", http.StatusBadRequest)
		return
	}
	known := false
	for _, a := range s.o.Actions {
		known = known || a == ex.Action
	}
	if !known || ex.Tenant != s.o.Tenant {
		http.Error(w, "unknown action", http.StatusUnprocessableEntity)
		return
	}
	key := r.Header.Get("Idempotency-Key")
	s.mu.Lock()
	_, seen := s.done[key]
	rec := Recovery{Incident: ex.Incident, Action: ex.Action, IdempotencyKey: key, ApprovedBy: ex.ApprovedBy}
	if !seen {
		if len(s.done) > 1000 {
			clear(s.done)
		}
		s.done[key] = rec
	}
	s.mu.Unlock()
	if !seen {
		s.Recover()
		s.o.Logger.Info("demo: recovery ran", "incident", ex.Incident, "action", ex.Action, "approved_by", ex.ApprovedBy)
		select {
		case s.calls <- rec:
		default:
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// Serve serves the service on ln until ctx ends.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("demo service: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shut)
	return nil
}

// Drive sends the synthetic traffic, Rate requests a second to baseURL/checkout, until
// ctx ends. At most 4×Rate requests are in flight.
func (s *Service) Drive(ctx context.Context, baseURL string) error {
	client := &http.Client{Timeout: s.o.Timeout}
	t := time.NewTicker(time.Second / time.Duration(s.o.Rate))
	defer t.Stop()
	slots := make(chan struct{}, 4*s.o.Rate)
	var wg sync.WaitGroup
	defer wg.Wait()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		select {
		case slots <- struct{}{}:
		default:
			continue // the service is saturated: skip this tick
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, baseURL+"/checkout", nil)
			if err != nil {
				return
			}
			if resp, err := client.Do(req); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			}
		}()
	}
}

// Close stops the SDK's shipper.
func (s *Service) Close() error { return s.sdk.Close() }
