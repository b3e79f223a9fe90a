package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alertengine/alertengine/council"
)

// Council export how the diagnostic council performs: its wall time and each lens
// call's outcome. It implements council.Observer.
type Council struct {
	latency  prometheus.Histogram
	lenses   *prometheus.CounterVec
	lensTime *prometheus.HistogramVec
}

// NewCouncil registers the council's metrics on reg.
func NewCouncil(reg prometheus.Registerer) (*Council, error) {
	m := &Council{
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "alertengine_council_duration_seconds",
			Help:    "Wall time of one council diagnosis (both lenses, run concurrently, fallbacks included).",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}}),
		lenses: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_council_lens_outcomes_total",
			Help: "Lens calls by lens (model or rules-a/rules-b) and outcome (ok, timeout, invalid, http_error, no_evidence)."}, []string{"lens", "outcome"}),
		lensTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "alertengine_council_lens_duration_seconds",
			Help:    "Duration of one lens call, retries included, by lens.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60}}, []string{"lens"}),
	}
	return m, Register(reg, m.latency, m.lenses, m.lensTime)
}

// LensDone implements council.Observer.
func (m *Council) LensDone(lens string, o council.Outcome, took time.Duration) {
	m.lenses.WithLabelValues(lens, string(o)).Inc()
	m.lensTime.WithLabelValues(lens).Observe(took.Seconds())
}

// CouncilDone implements council.Observer.
func (m *Council) CouncilDone(took time.Duration) { m.latency.Observe(took.Seconds()) }
