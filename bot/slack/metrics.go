package slack

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the adapter's own: what Slack refused, what came in and what became of it.
type metrics struct {
	apiErrors *prometheus.CounterVec
	events    *prometheus.CounterVec
	refused   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		apiErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_slack_api_errors_total",
			Help: "Slack Web API calls that failed, by method and Slack's error (ratelimited for a 429, transport when Slack was not reached)."}, []string{"method", "error"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_slack_events_total",
			Help: "Events from Slack by kind (message, press, command) and outcome (handled, duplicate, refused, failed)."}, []string{"kind", "outcome"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_slack_requests_refused_total",
			Help: "HTTP requests refused before reaching the bot, by reason (signature, stale, unsigned)."}, []string{"reason"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.apiErrors, m.events, m.refused} {
		if err := reg.Register(c); err != nil {
			var already prometheus.AlreadyRegisteredError
			if errors.As(err, &already) {
				return nil, fmt.Errorf("slack metrics: registered twice: %w", err)
			}
			return nil, fmt.Errorf("slack metrics: %w", err)
		}
	}
	return m, nil
}

// kind names an event for the metrics.
func (ev *event) kind() string {
	switch {
	case ev.press != nil:
		return "press"
	case len(ev.key) > 4 && ev.key[:4] == "cmd:":
		return "command"
	}
	return "message"
}
