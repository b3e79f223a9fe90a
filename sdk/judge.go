package sdk

import (
	"fmt"
	"math"

	"github.com/alertengine/alertengine/sdk/health"
)

// Status of /health/alerts.
const (
	statusOK       = "ok"
	statusWarning  = "warning"
	statusCritical = "critical"
)

// Absolute alert thresholds. They sit on breakpoints of the health curves: a warning
// where a component has lost 40–50 points, critical where it reaches 0 (or, for the
// anomaly, 40).
const (
	p95WarningMs      = 1000.0 // LatencyCurve: 60
	p95CriticalMs     = 3000.0 // LatencyCurve: 0
	errorRateWarning  = 0.05   // ErrorCurve: 50
	errorRateCritical = 0.20   // ErrorCurve: 0
	anomalyWarning    = 3.0    // AnomalyCurve: 40
	anomalyCritical   = 6.0    // AnomalyCurve: 0
)

// Values of an alert's triggered_by.
const (
	byAbsolute     = "absolute_threshold"
	byBaseline     = "learned_baseline"
	byRateOfChange = "rate_of_change"
)

// Alert is one entry of /health/alerts' alerts.
type alert struct {
	Type             string  `json:"type"`
	Severity         string  `json:"severity"`
	Message          string  `json:"message"`
	ReasonForTrigger string  `json:"reason_for_trigger"`
	TriggeredBy      string  `json:"triggered_by"`
	Value            float64 `json:"value"`
	Threshold        float64 `json:"threshold"`
}

// judgement is the verdict on one window.
type judgement struct {
	last                       int64 // last second of the window
	judged                     bool
	n                          uint64
	p50, p95, p99              float64
	errorRate, clientErrorRate float64
	anomaly                    float64
	score                      health.Score
	status                     string
	alerts                     []alert
	note                       string
}

// judgeLocked judges the windowSeconds-long window ending with second last.
func (s *SDK) judgeLocked(last int64) judgement {
	w := s.windowLocked(last, windowSeconds)
	j := judgement{
		last:      last,
		n:         w.Count(),
		p50:       w.Quantile(0.50),
		p95:       w.Quantile(0.95),
		p99:       w.Quantile(0.99),
		errorRate: w.ErrorRate(),
		anomaly:   1,
		status:    statusOK,
		alerts:    []alert{},
	}
	if j.n > 0 {
		j.clientErrorRate = float64(w.Errors4xx()) / float64(j.n)
	}
	if j.n < uint64(s.opts.MinSamples) {
		j.score = health.Score{Score: 100, Status: health.StatusHealthy, Components: health.Components{Latency: 100, Errors: 100, Anomaly: 100}}
		j.note = fmt.Sprintf("%d requests in the last %d s, fewer than the %d needed to judge: not judged", j.n, windowSeconds, s.opts.MinSamples)
		return j
	}
	j.judged = true
	j.anomaly = s.baseline.AnomalyRatio(j.p95, j.errorRate)
	j.score = health.Compute(j.p95, j.errorRate, j.anomaly)
	switch j.score.Status {
	case health.StatusCritical:
		j.status = statusCritical
	case health.StatusDegraded:
		j.status = statusWarning
	}
	window := fmt.Sprintf("over the last %d s (%d requests)", windowSeconds, j.n)

	if sev, thr := severity(j.p95, p95WarningMs, p95CriticalMs); sev != "" {
		j.add(alert{
			Type: "latency_spike", Severity: sev, TriggeredBy: byAbsolute, Value: j.p95, Threshold: thr,
			Message:          fmt.Sprintf("P95 latency %.0f ms exceeds the %s threshold of %.0f ms", j.p95, sev, thr),
			ReasonForTrigger: fmt.Sprintf("overall_p95_ms %.1f ≥ %.0f %s", j.p95, thr, window),
		})
	}
	if sev, thr := severity(j.errorRate, errorRateWarning, errorRateCritical); sev != "" {
		j.add(alert{
			Type: "error_anomaly", Severity: sev, TriggeredBy: byAbsolute, Value: j.errorRate, Threshold: thr,
			Message:          fmt.Sprintf("5xx error rate %.1f%% exceeds the %s threshold of %.0f%%", 100*j.errorRate, sev, 100*thr),
			ReasonForTrigger: fmt.Sprintf("error_rate %.4f ≥ %.2f %s (4xx not counted)", j.errorRate, thr, window),
		})
	}
	if sev, thr := severity(j.anomaly, anomalyWarning, anomalyCritical); sev != "" {
		j.add(alert{
			Type: "anomaly", Severity: sev, TriggeredBy: byBaseline, Value: j.anomaly, Threshold: thr,
			Message: fmt.Sprintf("Traffic is %.1f× its learned normal (P95 %.0f ms vs %.0f ms, errors %.1f%% vs %.1f%%)",
				j.anomaly, j.p95, s.baseline.P95Ms, 100*j.errorRate, 100*s.baseline.ErrorRate),
			ReasonForTrigger: fmt.Sprintf("anomaly_score %.2f ≥ %.0f against a baseline learned from %d healthy windows %s",
				j.anomaly, thr, s.baseline.Samples, window),
		})
	}

	// Rate of change: the last evalEvery seconds against the evalEvery before them.
	recent := s.windowLocked(last, evalEvery)
	prev := s.windowLocked(last-evalEvery, evalEvery)
	if recent.Count() >= uint64(s.opts.MinSamples) && prev.Count() >= uint64(s.opts.MinSamples) {
		p0, p1 := prev.Quantile(0.95), recent.Quantile(0.95)
		e0, e1 := prev.ErrorRate(), recent.ErrorRate()
		ch := health.RateOfChange(p0, p1, e0, e1)
		between := fmt.Sprintf("between the %d s windows ending %d s ago and now", evalEvery, evalEvery)
		if ch.LatencySpike {
			j.add(alert{
				Type: "latency_spike", Severity: statusWarning, TriggeredBy: byRateOfChange, Value: p1, Threshold: p0,
				Message:          fmt.Sprintf("Sudden P95 latency jump: %.0f ms → %.0f ms", p0, p1),
				ReasonForTrigger: fmt.Sprintf("p95 ×%.1f (≥ ×%.0f and +%.0f ms ≥ %.0f ms) %s", p1/p0, health.SpikeFactor, p1-p0, health.SpikeMinDeltaMs, between),
			})
		}
		if ch.ErrorSpike {
			j.add(alert{
				Type: "error_anomaly", Severity: statusWarning, TriggeredBy: byRateOfChange, Value: e1, Threshold: e0,
				Message:          fmt.Sprintf("Sudden 5xx error rate jump: %.1f%% → %.1f%%", 100*e0, 100*e1),
				ReasonForTrigger: fmt.Sprintf("error rate +%.1f points (≥ %.0f) %s", 100*(e1-e0), 100*health.ErrorJump, between),
			})
		}
	}
	return j
}

// add appends an alert and raises the status to its severity.
func (j *judgement) add(a alert) {
	j.alerts = append(j.alerts, a)
	if a.Severity == statusCritical || j.status == statusCritical {
		j.status = statusCritical
	} else {
		j.status = statusWarning
	}
}

// severity classifies v against a warning and a critical threshold.
func severity(v, warning, critical float64) (string, float64) {
	switch {
	case v >= critical:
		return statusCritical, critical
	case v >= warning:
		return statusWarning, warning
	}
	return "", 0
}

// round to the given number of decimals, for JSON.
func round(v float64, decimals int) float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0
	}
	p := math.Pow(10, float64(decimals))
	return math.Round(v*p) / p
}
