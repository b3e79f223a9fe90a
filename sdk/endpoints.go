package sdk

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/alertengine/alertengine/sdk/health"
)

// serveEndpoint answers the SDK's own endpoints. They are read-only and not recorded.
func (s *SDK) serveEndpoint(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		s.writeJSON(w, http.StatusMethodNotAllowed, errorResponse{Error: "method not allowed"})
		return
	}
	switch r.URL.Path {
	case pathHealth:
		s.writeJSON(w, http.StatusOK, s.healthReport())
	case pathHistory:
		minutes := historyMinutes
		if v := r.URL.Query().Get("minutes"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > historyMinutes {
				s.writeJSON(w, http.StatusBadRequest, errorResponse{Error: "minutes must be an integer from 1 to 60"})
				return
			}
			minutes = n
		}
		s.writeJSON(w, http.StatusOK, s.history(minutes))
	case pathIngestion:
		s.writeJSON(w, http.StatusOK, s.ingestion())
	case pathStatus:
		s.writeJSON(w, http.StatusOK, s.status())
	}
}

type errorResponse struct {
	Error string `json:"error"`
}

func (s *SDK) writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("alertengine sdk: write response", "err", err)
	}
}

// refreshLocked drains the seconds that are over, so an endpoint never lags the clock by
// more than the grace.
func (s *SDK) refreshLocked() int64 {
	now := s.clock()
	s.collectLocked(drainableUpTo(now))
	return now.Unix()
}

// HealthResponse is the body of GET /health/alerts; the same shape as the Python SDK's.
type healthResponse struct {
	Status      string          `json:"status"`
	HealthScore healthScoreJSON `json:"health_score"`
	Metrics     healthMetrics   `json:"metrics"`
	Alerts      []alert         `json:"alerts"`
	Timestamp   int64           `json:"timestamp"`
	Service     string          `json:"service_name"`
	Tenant      string          `json:"tenant"`
	Instance    string          `json:"instance_id"`
	// WindowEnd is the unix second the judged window ends with (inclusive).
	WindowEnd     int64  `json:"window_end"`
	WindowSeconds int    `json:"window_seconds"`
	Reason        string `json:"reason,omitempty"`
	Note          string `json:"note,omitempty"`
}

type healthScoreJSON struct {
	Score      float64           `json:"score"`
	Status     string            `json:"status"`
	Trend      string            `json:"trend"`
	TrendSlope float64           `json:"trend_slope"`
	Components health.Components `json:"components"`
}

type healthMetrics struct {
	OverallP95Ms    float64 `json:"overall_p95_ms"`
	P50Ms           float64 `json:"p50_ms"`
	P99Ms           float64 `json:"p99_ms"`
	ErrorRate       float64 `json:"error_rate"`
	ClientErrorRate float64 `json:"client_error_rate"`
	AnomalyScore    float64 `json:"anomaly_score"`
	SampleSize      uint64  `json:"sample_size"`
	// Baseline is null until a healthy window has been learned.
	Baseline *baselineJSON `json:"baseline"`
}

type baselineJSON struct {
	P95Ms     float64 `json:"p95_ms"`
	ErrorRate float64 `json:"error_rate"`
	Windows   int     `json:"windows"`
}

func (s *SDK) healthReport() healthResponse {
	s.mu.Lock()
	now := s.refreshLocked()
	j := s.judgeLocked(s.lastSec)
	slope, trend := health.Trend(s.scores)
	base := s.baseline
	s.mu.Unlock()

	resp := healthResponse{
		Status: j.status,
		HealthScore: healthScoreJSON{
			Score:      j.score.Score,
			Status:     j.score.Status,
			Trend:      trend,
			TrendSlope: round(slope, 2),
			Components: health.Components{
				Latency: round(j.score.Components.Latency, 1),
				Errors:  round(j.score.Components.Errors, 1),
				Anomaly: round(j.score.Components.Anomaly, 1),
			},
		},
		Metrics: healthMetrics{
			OverallP95Ms:    round(j.p95, 1),
			P50Ms:           round(j.p50, 1),
			P99Ms:           round(j.p99, 1),
			ErrorRate:       round(j.errorRate, 4),
			ClientErrorRate: round(j.clientErrorRate, 4),
			AnomalyScore:    round(j.anomaly, 3),
			SampleSize:      j.n,
		},
		Alerts:        j.alerts,
		Timestamp:     now,
		Service:       s.opts.Service,
		Tenant:        s.opts.Tenant,
		Instance:      s.opts.Instance,
		WindowEnd:     j.last,
		WindowSeconds: windowSeconds,
		Note:          j.note,
	}
	if !j.judged {
		resp.Reason = "insufficient_data"
	}
	if base.Samples > 0 {
		resp.Metrics.Baseline = &baselineJSON{P95Ms: round(base.P95Ms, 1), ErrorRate: round(base.ErrorRate, 4), Windows: base.Samples}
	}
	for i := range resp.Alerts {
		resp.Alerts[i].Value = round(resp.Alerts[i].Value, 4)
		resp.Alerts[i].Threshold = round(resp.Alerts[i].Threshold, 4)
	}
	return resp
}

// historyResponse is the body of GET /metrics/history: per-minute aggregates, newest
// first, the current (incomplete) minute included.
type historyResponse struct {
	Service string       `json:"service"`
	Minutes int          `json:"minutes"`
	Metrics []minuteJSON `json:"metrics"`
}

type minuteJSON struct {
	BucketTS        int64       `json:"bucket_ts"`
	Complete        bool        `json:"complete"`
	Count           uint64      `json:"count"`
	Errors5xx       uint64      `json:"errors_5xx"`
	Errors4xx       uint64      `json:"errors_4xx"`
	ErrorRate       float64     `json:"error_rate"`
	ClientErrorRate float64     `json:"client_error_rate"`
	P50Ms           float64     `json:"p50_ms"`
	P95Ms           float64     `json:"p95_ms"`
	P99Ms           float64     `json:"p99_ms"`
	AvgLatencyMs    float64     `json:"avg_latency_ms"`
	MaxLatencyMs    float64     `json:"max_latency_ms"`
	Routes          []routeJSON `json:"routes"`
}

type routeJSON struct {
	Path         string  `json:"path"`
	Count        uint64  `json:"count"`
	Errors5xx    uint64  `json:"errors_5xx"`
	Errors4xx    uint64  `json:"errors_4xx"`
	AvgLatencyMs float64 `json:"avg_latency_ms"`
	MaxLatencyMs float64 `json:"max_latency_ms"`
}

func (s *SDK) history(n int) historyResponse {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refreshLocked()
	names := s.routes.Load().names
	resp := historyResponse{Service: s.opts.Service, Minutes: n, Metrics: []minuteJSON{}}
	current := s.lastSec / 60
	for k := int64(0); k < int64(n); k++ {
		m := &s.minutes[mod(current-k, historyMinutes)]
		if m.min != current-k || m.count == 0 {
			continue
		}
		row := minuteJSON{
			BucketTS:  m.min * 60,
			Complete:  m.min < current || (s.lastSec+1)%60 == 0,
			Count:     m.count,
			Errors5xx: m.e5xx,
			Errors4xx: m.e4xx,
			ErrorRate: round(float64(m.e5xx)/float64(m.count), 4),
			// A quantile is a bin's representative value, within 1 % of a latency
			// seen; never report one above the exact maximum.
			P50Ms:        round(min(quantile(m.sketch, 0.50), float64(m.maxMicros)/1000), 1),
			P95Ms:        round(min(quantile(m.sketch, 0.95), float64(m.maxMicros)/1000), 1),
			P99Ms:        round(min(quantile(m.sketch, 0.99), float64(m.maxMicros)/1000), 1),
			AvgLatencyMs: round(float64(m.sumMicros)/1000/float64(m.count), 3),
			MaxLatencyMs: round(float64(m.maxMicros)/1000, 3),
			Routes:       []routeJSON{},
		}
		row.ClientErrorRate = round(float64(m.e4xx)/float64(m.count), 4)
		for id, ra := range m.routes {
			if ra.count == 0 || id >= len(names) {
				continue
			}
			row.Routes = append(row.Routes, routeJSON{
				Path:         names[id],
				Count:        ra.count,
				Errors5xx:    ra.e5xx,
				Errors4xx:    ra.e4xx,
				AvgLatencyMs: round(float64(ra.sumMicros)/1000/float64(ra.count), 3),
				MaxLatencyMs: round(float64(ra.maxMicros)/1000, 3),
			})
		}
		resp.Metrics = append(resp.Metrics, row)
	}
	return resp
}

// ingestionResponse is the body of GET /metrics/ingestion.
type ingestionResponse struct {
	Mode           string      `json:"mode"`
	Stream         string      `json:"stream,omitempty"`
	Enqueued       uint64      `json:"enqueued"`
	Shipped        uint64      `json:"shipped"`
	Dropped        uint64      `json:"dropped"`
	Buffered       int         `json:"buffered"`
	BufferCapacity int         `json:"buffer_capacity"`
	LastShippedAt  *int64      `json:"last_shipped_at"`
	LastError      string      `json:"last_error"`
	LastErrorAt    *int64      `json:"last_error_at"`
	CircuitBreaker breakerJSON `json:"circuit_breaker"`
}

type breakerJSON struct {
	// State is closed, open or half_open; disabled in memory mode.
	State         string `json:"state"`
	FailureCount  int    `json:"failure_count"`
	BufferSize    int    `json:"buffer_size"`
	DroppedEvents uint64 `json:"dropped_events"`
	OpenedAt      *int64 `json:"opened_at"`
	NextProbeAt   *int64 `json:"next_probe_at"`
}

func (s *SDK) ingestion() ingestionResponse {
	s.mu.Lock()
	s.refreshLocked()
	s.mu.Unlock()
	if s.ship == nil {
		return ingestionResponse{
			Mode:           "memory",
			LastError:      s.urlProblem,
			CircuitBreaker: breakerJSON{State: "disabled"},
		}
	}
	return s.ship.stats()
}

// statusResponse is the body of GET /__alertengine/status. It never carries credentials.
type statusResponse struct {
	Service       string            `json:"service"`
	Tenant        string            `json:"tenant"`
	Instance      string            `json:"instance"`
	Mode          string            `json:"mode"`
	Version       string            `json:"version"`
	Stream        string            `json:"stream,omitempty"`
	RedisAddr     string            `json:"redis_addr,omitempty"`
	WindowSeconds int               `json:"window_seconds"`
	MinSamples    int               `json:"min_samples"`
	Routes        int               `json:"routes"`
	Ingestion     ingestionResponse `json:"ingestion"`
}

func (s *SDK) status() statusResponse {
	resp := statusResponse{
		Service:       s.opts.Service,
		Tenant:        s.opts.Tenant,
		Instance:      s.opts.Instance,
		Mode:          s.mode,
		Version:       Version,
		WindowSeconds: windowSeconds,
		MinSamples:    s.opts.MinSamples,
		Routes:        len(s.routes.Load().names),
		Ingestion:     s.ingestion(),
	}
	if s.ship != nil {
		resp.Stream = s.ship.key
		resp.RedisAddr = s.ship.addr
	}
	return resp
}
