package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/alertengine/alertengine/bot/metrics"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// MaxBody is the largest request body an endpoint accepts unless mounted with its own
// limit (HandleLimit, HandleOwnLimit); larger ones get 413.
const MaxBody = 1 << 20

// Check is one readiness condition: nil when satisfied.
type Check struct {
	Name  string
	Check func(ctx context.Context) error
	// Optional: a failure is reported under "degraded" and the bot stays ready (a chat
	// platform that is down).
	Optional bool
}

// ServerOptions configure the HTTP server.
type ServerOptions struct {
	Addr   string
	Logger *slog.Logger
	// Ready lists what /readyz checks, each bounded by CheckTimeout.
	Ready        []Check
	CheckTimeout time.Duration
	// Registry receives the bot's metrics; /metrics exposes it.
	Registry *prometheus.Registry
}

// Validate checks the options.
func (o *ServerOptions) Validate() error {
	if o.Addr == "" {
		return errors.New("server: no listen address")
	}
	if o.Registry == nil {
		return errors.New("server: no metrics registry")
	}
	return nil
}

// Server is the bot's HTTP surface: health, readiness, metrics, and the routes the
// pipeline and the adapters mount.
type Server struct {
	opts     ServerOptions
	mux      *http.ServeMux
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// NewServer builds the server with /healthz, /readyz and /metrics mounted.
func NewServer(opts ServerOptions) (*Server, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.CheckTimeout == 0 {
		opts.CheckTimeout = 2 * time.Second
	}
	s := &Server{
		opts: opts,
		mux:  http.NewServeMux(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "alertengine_http_requests_total", Help: "HTTP requests served, by route and status code.",
		}, []string{"route", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "alertengine_http_request_duration_seconds", Help: "HTTP request latency, by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
	}
	if err := metrics.Register(opts.Registry, s.requests, s.duration, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})); err != nil {
		return nil, fmt.Errorf("register metrics: %w", err)
	}
	s.Handle("GET /healthz", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}))
	s.Handle("GET /readyz", http.HandlerFunc(s.readyz))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(opts.Registry, promhttp.HandlerOpts{}))
	return s, nil
}

// Handle mounts h at pattern with the body limit and request metrics.
func (s *Server) Handle(pattern string, h http.Handler) { s.HandleLimit(pattern, h, MaxBody) }

// HandleLimit is Handle with a route's own body limit (the GitHub webhook's is larger).
func (s *Server) HandleLimit(pattern string, h http.Handler, maxBody int64) {
	route := pattern
	s.mux.Handle(pattern, promhttp.InstrumentHandlerDuration(s.duration.MustCurryWith(prometheus.Labels{"route": route}),
		promhttp.InstrumentHandlerCounter(s.requests.MustCurryWith(prometheus.Labels{"route": route}), limitBody(h, maxBody))))
}

// HandleOwnLimit mounts h at pattern with request metrics and no body limit of the
// server's: h bounds its body itself, and logs and counts what it refuses (the
// Alertmanager webhook, whose limit is per tenant and known only after authentication).
func (s *Server) HandleOwnLimit(pattern string, h http.Handler) {
	s.mux.Handle(pattern, promhttp.InstrumentHandlerDuration(s.duration.MustCurryWith(prometheus.Labels{"route": pattern}),
		promhttp.InstrumentHandlerCounter(s.requests.MustCurryWith(prometheus.Labels{"route": pattern}), h)))
}

// Handler returns the root handler.
func (s *Server) Handler() http.Handler { return s.mux }

// limitBody answers 413 to a declared oversize body and caps any other at MaxBody, so a
// handler reading past it gets an error (*http.MaxBytesError) it must answer with 413.
// maxBody is a whole number of MiB.
func limitBody(h http.Handler, maxBody int64) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > maxBody {
			writeJSON(w, http.StatusRequestEntityTooLarge, map[string]string{"error": fmt.Sprintf("request body over %d MiB", maxBody>>20)})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxBody)
		h.ServeHTTP(w, r)
	})
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	failed, degraded := map[string]string{}, map[string]string{}
	for _, c := range s.opts.Ready {
		ctx, cancel := context.WithTimeout(r.Context(), s.opts.CheckTimeout)
		err := c.Check(ctx)
		cancel()
		if err == nil {
			continue
		}
		s.opts.Logger.Warn("readiness check failed", "check", c.Name, "optional", c.Optional, "err", err)
		if c.Optional {
			degraded[c.Name] = "unavailable"
		} else {
			failed[c.Name] = "unavailable"
		}
	}
	switch {
	case len(failed) > 0:
		writeJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "not ready", "failed": failed})
	case len(degraded) > 0:
		writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "degraded": degraded})
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	}
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Run listens on the configured address and serves until ctx ends, then shuts down
// gracefully, letting in-flight requests finish for up to 10 s.
func (s *Server) Run(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", s.opts.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.opts.Logger.Info("listening", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(shut); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}
