package metrics

import (
	"errors"
	"strconv"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/detector"
	"github.com/prometheus/client_golang/prometheus"
)

// Pipeline counts what the pipeline handles: detections, authorizations, executions and
// failed tries (pipeline.Observer).
type Pipeline struct {
	detections     *prometheus.CounterVec
	authorizations *prometheus.CounterVec
	executions     *prometheus.CounterVec
	handleFailures prometheus.Counter
}

// NewPipeline registers the pipeline's metrics on reg.
func NewPipeline(reg prometheus.Registerer) (*Pipeline, error) {
	m := &Pipeline{
		detections: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_detections_total",
			Help: "Detector decisions handled by the pipeline, by tenant and kind (opened, updated, recovered, resolved, suppressed)."}, []string{"tenant", "kind"}),
		authorizations: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_authorizations_total",
			Help: "Approvals that authorized a recovery, by tenant."}, []string{"tenant"}),
		executions: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_executions_total",
			Help: "Recovery webhook executions settled, by tenant and outcome (executed, failed, skipped)."}, []string{"tenant", "outcome"}),
		handleFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "alertengine_pipeline_failures_total",
			Help: "Detections whose handling (proposal, presentation in chat) failed an attempt; retried with backoff."}),
	}
	return m, Register(reg, m.detections, m.authorizations, m.executions, m.handleFailures)
}

// WatchDetector exports the detector's own counters on reg, read at scrape time.
func WatchDetector(reg prometheus.Registerer, d *detector.Detector) error {
	stat := func(name, help string, f func(detector.Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "alertengine_detector_" + name, Help: help},
			func() float64 { return float64(f(d.Stats())) })
	}
	err := Register(reg,
		stat("evaluations_total", "Windows judged by this replica.", func(s detector.Stats) uint64 { return s.Evaluations }),
		stat("skipped_total", "Windows with too few requests to judge.", func(s detector.Stats) uint64 { return s.Skipped }),
		stat("summaries_total", "SDK summaries read from the streams.", func(s detector.Stats) uint64 { return s.Summaries }),
		stat("invalid_summaries_total", "Stream entries refused as malformed.", func(s detector.Stats) uint64 { return s.InvalidSummaries }),
		stat("poll_errors_total", "Unreachable or malformed health endpoints (pull mode).", func(s detector.Stats) uint64 { return s.PollErrors }),
		stat("suppressed_total", "Detections over a tenant's incidents-per-hour limit.", func(s detector.Stats) uint64 { return s.Suppressed }),
	)
	if err != nil {
		return err
	}
	// Each intake's own counters (accepted, refused by reason…).
	return Register(reg, d.Collectors()...)
}

// Register registers each collector on reg; one registered already is no error (a
// registry shared by components built twice, as tests do).
func Register(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			var are prometheus.AlreadyRegisteredError
			if !errors.As(err, &are) {
				return err
			}
		}
	}
	return nil
}

// Detection counts a detection the pipeline took.
func (m *Pipeline) Detection(ev detector.Event) {
	if m != nil {
		m.detections.WithLabelValues(ev.Tenant, string(ev.Kind)).Inc()
	}
}

// Authorized counts an authorization handed to the executor.
func (m *Pipeline) Authorized(tenant string) {
	if m != nil {
		m.authorizations.WithLabelValues(tenant).Inc()
	}
}

// Execution counts a settled execution.
func (m *Pipeline) Execution(o executor.Outcome) {
	if m != nil {
		m.executions.WithLabelValues(o.Execution.Tenant, string(o.Kind)).Inc()
	}
}

// HandleFailed counts a failed try at handling a detection.
func (m *Pipeline) HandleFailed() {
	if m != nil {
		m.handleFailures.Inc()
	}
}

// Floods count what the bot bounds against floods from people outside a tenant (or
// inside it): refused presses and throttled questions.
type Floods struct {
	refusals  *prometheus.CounterVec
	throttled *prometheus.CounterVec
}

// NewFloods registers the flood counters on reg.
func NewFloods(reg prometheus.Registerer) (*Floods, error) {
	m := &Floods{
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_refused_presses_total",
			Help: "Refused approval presses on an incident, by tenant and whether the press got its own ledger entry (recorded: the sender's 1st, 10th, 100th… of a kind in the window; not recorded: only counted)."},
			[]string{"tenant", "recorded"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_questions_throttled_total",
			Help: "Follow-up questions neither answered nor recorded, by tenant and the bound reached (sender: the asker's hourly limit; thread: the thread's replies of the hour)."},
			[]string{"tenant", "bound"}),
	}
	return m, Register(reg, m.refusals, m.throttled)
}

// Refusal counts a refused press (approval.Options.OnRefusal).
func (m *Floods) Refusal(tenant string, recorded bool) {
	m.refusals.WithLabelValues(tenant, strconv.FormatBool(recorded)).Inc()
}

// Throttled counts a question over a bound (conversation.Options.OnThrottled).
func (m *Floods) Throttled(tenant, bound string) {
	m.throttled.WithLabelValues(tenant, bound).Inc()
}
