package ledger

import (
	"math"
	"strconv"
	"strings"
)

// Evidence is what a detection entry (DETECTED, an update, RECOVERED, RESOLVED written by
// the detector) says about the service: the numbers of a judged reading, or the alert
// that opened it. It is stored as the entry's Data (Evidence.Data) and read back with
// EvidenceOf, so the writer and its readers share one list of keys; the stored form is
// plain string pairs, which the entry's hash covers as it always did.
type Evidence struct {
	// Source is the input the evidence came from ("push", "pull", "alertmanager",
	// "pagerduty", "otlp"…).
	Source string

	// Judged: the entry carries a health score (a judged reading), so the numbers below
	// are measurements. An alert's entry has none.
	Judged bool
	// Score is the health score 0..100; P95Ms the p95 latency; ErrorRate the 5xx share
	// (0..1); BaselineP95Ms the learned normal p95 (0: none yet).
	Score, P95Ms, ErrorRate, BaselineP95Ms float64
	// AnomalyRatio is p95 over the baseline; Slope the trend's slope; Trend improving,
	// stable or degrading.
	AnomalyRatio, Slope float64
	Trend               string
	SampleSize          uint64
	// Window says what was measured ("10s ending …", "endpoint https://…").
	Window string
	// MinScore is the tenant's threshold; Evaluations the streak on this side of it.
	MinScore    float64
	Evaluations int
	// RateOfChange names a sudden change ("sudden latency spike"); Unreachable why the
	// service could not be measured (its score of 0 is then no measurement).
	RateOfChange, Unreachable string

	// Severity is the alert's severity as its sender wrote it ("critical", "warning").
	Severity string
	// AlertName names the alert (alertname, a PagerDuty summary's class…).
	AlertName string
	// Links are the alert's links to look at, by name ("generator_url", "dashboard_url",
	// "panel_url", "silence_url", "external_url", "link_1"…), as sent.
	Links map[string]string
}

// Keys of a detection entry's data.
const (
	evSource       = "source"
	evScore        = "score"
	evP95          = "p95_ms"
	evErrorRate    = "error_rate"
	evBaseline     = "baseline_p95_ms"
	evAnomaly      = "anomaly_ratio"
	evTrend        = "trend"
	evSlope        = "slope"
	evSamples      = "sample_size"
	evWindow       = "window"
	evMinScore     = "min_score"
	evEvaluations  = "evaluations"
	evRateOfChange = "rate_of_change"
	evUnreachable  = "unreachable"
	evSeverity     = "severity"
	evAlertName    = "alertname"
)

// linkSuffix marks a data key that is a link ("generator_url", "dashboard_url").
const linkSuffix = "_url"

// Data encodes the evidence as an entry's data: a judged reading's numbers with the
// precision the detector has always written (score and p95 to a tenth, the error rate to
// four places), an alert's severity, name and links. Empty values are left out.
func (ev Evidence) Data() map[string]string {
	m := map[string]string{}
	set := func(k, v string) {
		if v != "" {
			m[k] = v
		}
	}
	f := func(x float64, prec int) string { return strconv.FormatFloat(x, 'f', prec, 64) }
	set(evSource, ev.Source)
	if ev.Judged {
		m[evScore] = f(ev.Score, 1)
		m[evP95] = f(ev.P95Ms, 1)
		m[evErrorRate] = f(ev.ErrorRate, 4)
		m[evBaseline] = f(ev.BaselineP95Ms, 1)
		m[evAnomaly] = f(ev.AnomalyRatio, 2)
		m[evTrend] = ev.Trend
		m[evSlope] = f(ev.Slope, 2)
		m[evSamples] = strconv.FormatUint(ev.SampleSize, 10)
		m[evWindow] = ev.Window
		m[evMinScore] = f(ev.MinScore, 1)
		m[evEvaluations] = strconv.Itoa(ev.Evaluations)
	}
	set(evRateOfChange, ev.RateOfChange)
	set(evUnreachable, ev.Unreachable)
	set(evSeverity, ev.Severity)
	set(evAlertName, ev.AlertName)
	for k, v := range ev.Links {
		if strings.HasSuffix(k, linkSuffix) {
			set(k, v)
		}
	}
	return m
}

// EvidenceOf reads the evidence of a detection entry. Numbers that are missing, not
// numbers, negative or not finite read as 0 (an error rate is at most 1), so a reader
// never shows what was not measured; Judged is false for an entry without a score.
func EvidenceOf(e Entry) Evidence {
	d := e.Data
	num := func(k string) float64 {
		v, err := strconv.ParseFloat(d[k], 64)
		if err != nil || v < 0 || math.IsNaN(v) || math.IsInf(v, 0) {
			return 0
		}
		return v
	}
	ev := Evidence{Source: d[evSource], Trend: d[evTrend], Window: d[evWindow], RateOfChange: d[evRateOfChange],
		Unreachable: d[evUnreachable], Severity: d[evSeverity], AlertName: d[evAlertName]}
	if s, err := strconv.ParseFloat(d[evScore], 64); err == nil && !math.IsNaN(s) && !math.IsInf(s, 0) {
		ev.Judged, ev.Score = true, s
	}
	ev.P95Ms, ev.ErrorRate, ev.BaselineP95Ms = num(evP95), min(num(evErrorRate), 1), num(evBaseline)
	ev.AnomalyRatio, ev.MinScore = num(evAnomaly), num(evMinScore)
	if s, err := strconv.ParseFloat(d[evSlope], 64); err == nil && !math.IsNaN(s) && !math.IsInf(s, 0) {
		ev.Slope = s
	}
	if n, err := strconv.ParseUint(d[evSamples], 10, 64); err == nil {
		ev.SampleSize = n
	} else {
		ev.SampleSize = uint64(num(evSamples))
	}
	if n, err := strconv.Atoi(d[evEvaluations]); err == nil && n >= 0 {
		ev.Evaluations = n
	}
	for k, v := range d {
		if strings.HasSuffix(k, linkSuffix) && v != "" {
			if ev.Links == nil {
				ev.Links = map[string]string{}
			}
			ev.Links[k] = v
		}
	}
	return ev
}
