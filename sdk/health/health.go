// Package health is the health-score arithmetic shared by the SDK (which serves
// /health/alerts) and the detector (which judges pushed summaries): the composite score,
// its piecewise-linear components, the learned baseline, anomaly, trend and rate of change.
// It is pure arithmetic on plain numbers: no clock, no I/O.
package health

import "math"

// Status of a score.
const (
	StatusHealthy  = "healthy"
	StatusDegraded = "degraded"
	StatusCritical = "critical"
)

// Trend labels.
const (
	TrendImproving = "improving"
	TrendStable    = "stable"
	TrendDegrading = "degrading"
)

// Weights of the composite score.
const (
	WeightLatency = 0.5
	WeightErrors  = 0.3
	WeightAnomaly = 0.2
)

// Score thresholds: a score at or above HealthyAt is healthy, at or above DegradedAt is
// degraded, below it critical.
const (
	HealthyAt  = 70.0
	DegradedAt = 40.0
)

// Point is a breakpoint of a piecewise-linear curve: at input X the component is Y.
type Point struct{ X, Y float64 }

// Curves mapping a measurement to a 0..100 component. Between breakpoints the value is
// interpolated linearly; beyond the ends it is clamped.
var (
	// LatencyCurve maps p95 in milliseconds.
	LatencyCurve = []Point{{300, 100}, {1000, 60}, {2000, 20}, {3000, 0}}
	// ErrorCurve maps the 5xx share (0..1).
	ErrorCurve = []Point{{0.01, 100}, {0.05, 50}, {0.20, 0}}
	// AnomalyCurve maps the anomaly ratio (see Baseline.AnomalyRatio).
	AnomalyCurve = []Point{{1.5, 100}, {3, 40}, {6, 0}}
)

// Interpolate evaluates the piecewise-linear curve c at x.
func Interpolate(c []Point, x float64) float64 {
	if len(c) == 0 || math.IsNaN(x) {
		return 0
	}
	if x <= c[0].X {
		return c[0].Y
	}
	for i := 1; i < len(c); i++ {
		if x <= c[i].X {
			a, b := c[i-1], c[i]
			return a.Y + (b.Y-a.Y)*(x-a.X)/(b.X-a.X)
		}
	}
	return c[len(c)-1].Y
}

// Components are the three 0..100 terms of the score.
type Components struct {
	Latency float64 `json:"latency"`
	Errors  float64 `json:"errors"`
	Anomaly float64 `json:"anomaly"`
}

// Score is a composite health score.
type Score struct {
	Score      float64    `json:"score"`
	Status     string     `json:"status"`
	Components Components `json:"components"`
}

// Compute returns the composite score of one window:
// 0.5·latency(p95) + 0.3·errors(errorRate) + 0.2·anomaly(ratio), rounded to 0.1.
func Compute(p95Ms, errorRate, anomalyRatio float64) Score {
	c := Components{
		Latency: Interpolate(LatencyCurve, p95Ms),
		Errors:  Interpolate(ErrorCurve, errorRate),
		Anomaly: Interpolate(AnomalyCurve, anomalyRatio),
	}
	s := WeightLatency*c.Latency + WeightErrors*c.Errors + WeightAnomaly*c.Anomaly
	s = math.Round(s*10) / 10
	return Score{Score: s, Status: StatusOf(s), Components: c}
}

// StatusOf classifies a score.
func StatusOf(score float64) string {
	switch {
	case score >= HealthyAt:
		return StatusHealthy
	case score >= DegradedAt:
		return StatusDegraded
	default:
		return StatusCritical
	}
}

// Baseline is the learned normal of a service: an exponential moving average of p95 and
// error rate, updated only on healthy windows so an incident never teaches itself as normal.
type Baseline struct {
	P95Ms     float64 `json:"p95_ms"`
	ErrorRate float64 `json:"error_rate"`
	// Samples counts the windows folded in; 0 means no baseline yet.
	Samples int `json:"samples"`
}

// Alpha is the EMA weight of a new healthy window.
const Alpha = 0.1

// Learn folds a healthy window into b. The first window seeds the average.
func (b Baseline) Learn(p95Ms, errorRate float64) Baseline {
	if b.Samples == 0 {
		return Baseline{P95Ms: p95Ms, ErrorRate: errorRate, Samples: 1}
	}
	return Baseline{
		P95Ms:     b.P95Ms + Alpha*(p95Ms-b.P95Ms),
		ErrorRate: b.ErrorRate + Alpha*(errorRate-b.ErrorRate),
		Samples:   b.Samples + 1,
	}
}

// ErrorAnomalyGain converts error-rate excess over the baseline into ratio units: 5 extra
// points of 5xx weigh like a doubled p95.
const ErrorAnomalyGain = 20.0

// AnomalyRatio says how far a window is from the learned normal, in "times normal":
// the larger of p95/baseline p95 and 1 + 20·(error rate − baseline error rate). Without a
// baseline it is 1: nothing is anomalous before normal is known.
func (b Baseline) AnomalyRatio(p95Ms, errorRate float64) float64 {
	if b.Samples == 0 {
		return 1
	}
	r := 1.0
	if b.P95Ms > 0 {
		r = p95Ms / b.P95Ms
	}
	return math.Max(r, 1+ErrorAnomalyGain*(errorRate-b.ErrorRate))
}

// TrendWindow is how many recent scores the trend looks at.
const TrendWindow = 10

// TrendThreshold is the slope (score points per evaluation) beyond which the trend is
// improving or degrading.
const TrendThreshold = 1.0

// Trend is the least-squares slope of the last TrendWindow scores (oldest first) and its
// label. Fewer than 3 scores are stable.
func Trend(scores []float64) (slope float64, label string) {
	if len(scores) > TrendWindow {
		scores = scores[len(scores)-TrendWindow:]
	}
	n := float64(len(scores))
	if len(scores) < 3 {
		return 0, TrendStable
	}
	var sx, sy, sxx, sxy float64
	for i, y := range scores {
		x := float64(i)
		sx += x
		sy += y
		sxx += x * x
		sxy += x * y
	}
	slope = (n*sxy - sx*sy) / (n*sxx - sx*sx)
	switch {
	case slope > TrendThreshold:
		return slope, TrendImproving
	case slope < -TrendThreshold:
		return slope, TrendDegrading
	}
	return slope, TrendStable
}

// Rate-of-change thresholds: a sudden spike is flagged even while the absolute score is
// still healthy.
const (
	// SpikeFactor: p95 at least this many times the previous window's …
	SpikeFactor = 2.0
	// SpikeMinDeltaMs: … and at least this many milliseconds higher.
	SpikeMinDeltaMs = 100.0
	// ErrorJump: error rate up by at least this share (0.05 = 5 points) since the previous window.
	ErrorJump = 0.05
)

// Change describes what moved suddenly between two consecutive windows.
type Change struct {
	LatencySpike bool
	ErrorSpike   bool
}

// RateOfChange compares a window with the previous one.
func RateOfChange(prevP95Ms, p95Ms, prevErrorRate, errorRate float64) Change {
	return Change{
		LatencySpike: prevP95Ms > 0 && p95Ms >= SpikeFactor*prevP95Ms && p95Ms-prevP95Ms >= SpikeMinDeltaMs,
		ErrorSpike:   errorRate-prevErrorRate >= ErrorJump,
	}
}
