package metrics

import (
	"github.com/alertengine/alertengine/commits"
	"github.com/prometheus/client_golang/prometheus"
)

// GitHub count what the GitHub webhook refused and accepted.
type GitHub struct {
	refused    *prometheus.CounterVec
	deliveries *prometheus.CounterVec
}

// NewGitHub registers the GitHub webhook's metrics on reg.
func NewGitHub(reg prometheus.Registerer) (*GitHub, error) {
	m := &GitHub{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_github_webhook_refused_total",
			Help: "GitHub webhook requests refused, by reason (bad_signature is a security event: a forged or misconfigured sender)."}, []string{"reason"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_github_deliveries_total",
			Help: "Authenticated GitHub deliveries, by event and outcome (stored, ignored, duplicate, malformed, failed)."}, []string{"event", "outcome"}),
	}
	for _, r := range []string{commits.RefusedSignature, commits.RefusedNoSecret, commits.RefusedTooLarge, commits.RefusedMalformed} {
		m.refused.WithLabelValues(r)
	}
	return m, Register(reg, m.refused, m.deliveries)
}

// Refused counts a refused request.
func (m *GitHub) Refused(reason string) { m.refused.WithLabelValues(reason).Inc() }

// Delivery counts an authenticated delivery; events the bot does not use count as
// "other" so a sender cannot grow the label set.
func (m *GitHub) Delivery(event, outcome string) {
	switch event {
	case "ping", "push", "deployment_status", "create":
	default:
		event = "other"
	}
	m.deliveries.WithLabelValues(event, outcome).Inc()
}

// WatchGitHubStats exports the commit-stats fetcher's counters on reg.
func WatchGitHubStats(reg prometheus.Registerer, s *commits.Stats) error {
	c := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "alertengine_github_stats_" + name, Help: help}, func() float64 { return float64(f()) })
	}
	return Register(reg,
		c("fetched_total", "Commits whose +/− counts were fetched from the GitHub API.", s.Fetched.Load),
		c("dropped_total", "Commits not fetched because the queue was full.", s.Dropped.Load),
		c("failed_total", "Commit stats fetches that failed or were skipped for the rate limit.", s.Failed.Load),
	)
}
