package council

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
)

// ErrNoEvidence is returned by an offline lens for a snapshot without any numbers to
// reason from (an Alertmanager alert without metrics): it says nothing rather than guess.
var ErrNoEvidence = errors.New("no numbers to reason from")

// Rules is an offline lens: deterministic rules over the snapshot that cite the numbers
// they used. RulesA looks at latency and databases first, RulesB at the network and
// dependencies first; on the same snapshot they can reach different conclusions, which is
// a real dissent.
type Rules struct {
	name  string
	order []rule
}

// RulesA is the offline lens A (latency and databases first).
func RulesA() *Rules {
	return &Rules{name: "rules-a", order: []rule{deployRegression, databaseLatency, trafficSurge, gatewayErrors, latencyOnly, errorsOnlyConfig, latencyAndErrors, afterDeploy}}
}

// RulesB is the offline lens B (network and dependencies first).
func RulesB() *Rules {
	return &Rules{name: "rules-b", order: []rule{gatewayErrors, trafficSurge, deployRegression, errorsOnlyDependency, latencyAndErrorsUpstream, latencyOnly, afterDeploy}}
}

// Name implements Lens.
func (r *Rules) Name() string { return r.name }

// Diagnose implements Lens: the first rule that matches decides.
func (r *Rules) Diagnose(ctx context.Context, s Snapshot) (Reply, error) {
	if err := ctx.Err(); err != nil {
		return Reply{}, err
	}
	f := featuresOf(s)
	if !f.haveNumbers {
		return Reply{}, ErrNoEvidence
	}
	d, ok := Diagnosis{}, false
	if f.tooFew {
		d, ok = Diagnosis{Category: Unknown, Confidence: 0.2, Cause: "too few requests to judge the service",
			Evidence: []string{fmt.Sprintf("%.0f requests in the window", f.requests)}, Checks: []string{"whether the service receives its normal traffic"}}, true
	}
	for _, rl := range r.order {
		if ok {
			break
		}
		d, ok = rl(s, f)
	}
	if !ok {
		d = Diagnosis{Category: Unknown, Confidence: 0.3, Cause: "no rule explains the numbers",
			Evidence: f.cite(), Checks: []string{"the service's own logs around " + s.At.UTC().Format("15:04 UTC")}}
	}
	d.SuggestedAction = r.action(s, d.Category)
	if d.Evidence == nil {
		d.Evidence = []string{}
	}
	if len(d.Evidence) > maxItems {
		d.Evidence = d.Evidence[:maxItems]
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return Reply{}, fmt.Errorf("encode diagnosis: %w", err)
	}
	return Reply{Diagnosis: d, Raw: raw}, nil
}

// action picks the tenant action whose name fits the category, else the policy default.
func (r *Rules) action(s Snapshot, c Category) string {
	words := map[Category][]string{
		DeployRegression:   {"rollback", "revert"},
		Database:           {"restart_workers", "restart", "pool", "db"},
		ResourceExhaustion: {"restart", "scale", "workers"},
		TrafficSurge:       {"scale", "shed", "rate"},
		Dependency:         {"failover", "circuit", "fallback", "bypass"},
		Configuration:      {"rollback", "config", "revert"},
	}[c]
	for _, w := range words {
		for _, a := range s.Actions {
			if strings.Contains(a.Name, w) {
				return a.Name
			}
		}
	}
	if s.hasAction(s.DefaultAction) {
		return s.DefaultAction
	}
	return NoAction
}

// features are the facts the rules test.
type features struct {
	haveNumbers  bool
	tooFew       bool
	p95, base    float64
	latencyUp    bool // p95 ≥ 1.5× the baseline (or ≥ 1 s without one)
	latencyRatio float64
	errRate      float64
	errorsUp     bool // 5xx share ≥ 5%
	requests     float64
	baseRequests float64
	trafficRatio float64
	gateway      uint64 // 502/503/504
	total5xx     uint64
	risky        *Commit
	recent       *Commit
	deployed     bool
}

// minRequests is the fewest requests in a window the rules judge; healthyScore the
// health score from which a reading counts as normal.
const (
	minRequests  = 20
	healthyScore = 70
)

func featuresOf(s Snapshot) features {
	f := features{p95: s.P95Ms, errRate: s.ErrorRate, requests: s.Requests, base: s.BaselineP95Ms, baseRequests: s.BaselineRequests}
	f.haveNumbers = s.P95Ms > 0 || s.ErrorRate > 0 || len(s.Readings) > 0 || s.Requests > 0
	// No learned baseline: the healthy recent readings (score ≥ 70) stand in for normal:
	// their mean p95, and their busiest window's traffic (the readings of the first window
	// after watching began cover only part of it, so a mean would understate normal
	// traffic and call the first incident's ordinary load a surge).
	var healthyP95, healthyReqs float64
	n := 0
	for _, r := range s.Readings {
		if r.Score >= healthyScore && r.P95Ms > 0 {
			healthyP95 += r.P95Ms
			healthyReqs = max(healthyReqs, float64(r.Requests))
			n++
		}
	}
	if f.base == 0 && n > 0 {
		f.base = healthyP95 / float64(n)
	}
	if f.baseRequests == 0 && n > 0 {
		f.baseRequests = healthyReqs
	}
	if f.requests > 0 && f.requests < minRequests {
		f.tooFew = true
	}
	if f.base > 0 {
		f.latencyRatio = f.p95 / f.base
		f.latencyUp = f.latencyRatio >= 1.5 && f.p95-f.base >= 30
	} else {
		f.latencyUp = f.p95 >= 1000
	}
	f.errorsUp = f.errRate >= 0.05
	if f.baseRequests > 0 {
		f.trafficRatio = f.requests / f.baseRequests
	}
	codes := make([]int, 0, len(s.Statuses5xx))
	for c := range s.Statuses5xx {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	for _, c := range codes {
		n := s.Statuses5xx[c]
		f.total5xx += n
		if c == 502 || c == 503 || c == 504 {
			f.gateway += n
		}
	}
	for i := range s.Commits {
		c := &s.Commits[i]
		if f.recent == nil {
			f.recent = c
		}
		if c.Risky != "" && f.risky == nil {
			f.risky = c
		}
	}
	f.deployed = f.recent != nil || len(s.Deploys) > 0
	return f
}

func (f features) latency() string {
	if f.base > 0 {
		return fmt.Sprintf("p95 %s is %.1f× the baseline %s", ms(f.p95), f.latencyRatio, ms(f.base))
	}
	return fmt.Sprintf("p95 %s (no baseline learned)", ms(f.p95))
}

func (f features) errors() string { return fmt.Sprintf("5xx rate %s", pct(f.errRate)) }

func (f features) cite() []string {
	out := []string{f.latency(), f.errors()}
	if f.trafficRatio > 0 {
		out = append(out, fmt.Sprintf("traffic %.0f requests per window, %.1f× the baseline %.0f", f.requests, f.trafficRatio, f.baseRequests))
	}
	return out
}

func ms(v float64) string {
	if v >= 1000 {
		return fmt.Sprintf("%.1f s", v/1000)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func pct(r float64) string { return fmt.Sprintf("%.1f%%", r*100) }

func commitLine(c *Commit) string {
	l := fmt.Sprintf("commit %s %q by %s", shortSHA(c.SHA), clip(firstLine(c.Message), 60), c.Author)
	if c.Risky != "" {
		l += " (" + c.Risky + ")"
	}
	return l
}

func shortSHA(s string) string {
	if len(s) > 7 {
		return s[:7]
	}
	return s
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	return strings.TrimSpace(s)
}

// A rule reports a diagnosis when its conditions hold.
type rule func(s Snapshot, f features) (Diagnosis, bool)

func deployRegression(_ Snapshot, f features) (Diagnosis, bool) {
	if f.risky == nil || !f.latencyUp || !f.errorsUp {
		return Diagnosis{}, false
	}
	return Diagnosis{Category: DeployRegression, Confidence: 0.8,
		Cause:    fmt.Sprintf("regression from commit %s, which %s", shortSHA(f.risky.SHA), f.risky.Risky),
		Evidence: []string{f.latency(), f.errors(), commitLine(f.risky)},
		Checks:   []string{"the diff of " + shortSHA(f.risky.SHA), "whether errors started at its deploy"}}, true
}

func databaseLatency(s Snapshot, f features) (Diagnosis, bool) {
	if !f.latencyUp || !s.hint("database") || f.gateway*2 > f.total5xx && f.total5xx > 0 {
		return Diagnosis{}, false
	}
	conf := 0.7
	if f.errorsUp {
		conf = 0.65
	}
	return Diagnosis{Category: Database, Confidence: conf,
		Cause:    "database connection pool or slow queries holding requests",
		Evidence: []string{f.latency(), f.errors(), "the service is database-backed (tenant hint)"},
		Checks:   []string{"connection pool wait time and active connections", "slow query log"}}, true
}

func trafficSurge(_ Snapshot, f features) (Diagnosis, bool) {
	// Under load a smaller latency rise counts: 1.2× the baseline.
	if f.trafficRatio < 3 || !f.latencyUp && !(f.base > 0 && f.latencyRatio >= 1.2) {
		return Diagnosis{}, false
	}
	return Diagnosis{Category: TrafficSurge, Confidence: math.Min(0.9, 0.6+f.trafficRatio/50),
		Cause:    fmt.Sprintf("traffic surge: %.1f× the normal load", f.trafficRatio),
		Evidence: []string{fmt.Sprintf("traffic %.0f requests per window, %.1f× the baseline %.0f", f.requests, f.trafficRatio, f.baseRequests), f.latency()},
		Checks:   []string{"where the extra requests come from", "whether autoscaling kept up"}}, true
}

func gatewayErrors(_ Snapshot, f features) (Diagnosis, bool) {
	if f.total5xx == 0 || f.gateway*2 <= f.total5xx {
		return Diagnosis{}, false
	}
	share := float64(f.gateway) / float64(f.total5xx)
	return Diagnosis{Category: Dependency, Confidence: math.Min(0.9, 0.5+share*0.4),
		Cause:    "an upstream dependency failing: gateway errors dominate",
		Evidence: []string{fmt.Sprintf("%d of %d 5xx answers are 502/503/504 (%.0f%%)", f.gateway, f.total5xx, share*100), f.errors()},
		Checks:   []string{"the health of the services behind the gateway", "upstream timeouts in the proxy logs"}}, true
}

func latencyOnly(s Snapshot, f features) (Diagnosis, bool) {
	if !f.latencyUp || f.errorsUp || f.deployed {
		return Diagnosis{}, false
	}
	if s.hint("database") {
		return Diagnosis{Category: Database, Confidence: 0.6, Cause: "slow database: latency up, errors flat, nothing deployed",
			Evidence: []string{f.latency(), f.errors(), "no commit or deploy correlated"},
			Checks:   []string{"slow query log", "connection pool wait time"}}, true
	}
	return Diagnosis{Category: ResourceExhaustion, Confidence: 0.65, Cause: "resource exhaustion: latency up, errors flat, nothing deployed",
		Evidence: []string{f.latency(), f.errors(), "no commit or deploy correlated"},
		Checks:   []string{"CPU, memory and worker saturation", "garbage collection pauses"}}, true
}

func errorsOnlyConfig(_ Snapshot, f features) (Diagnosis, bool) {
	if !f.errorsUp || f.latencyUp {
		return Diagnosis{}, false
	}
	return Diagnosis{Category: Configuration, Confidence: 0.55, Cause: "requests failing fast at normal latency: a configuration or feature flag",
		Evidence: []string{f.errors(), f.latency()},
		Checks:   []string{"recent configuration or feature-flag changes", "the error messages of the 5xx answers"}}, true
}

func errorsOnlyDependency(_ Snapshot, f features) (Diagnosis, bool) {
	if !f.errorsUp || f.latencyUp {
		return Diagnosis{}, false
	}
	return Diagnosis{Category: Dependency, Confidence: 0.55, Cause: "a dependency refusing requests: errors at normal latency",
		Evidence: []string{f.errors(), f.latency()},
		Checks:   []string{"the dependencies' status pages and error logs", "connection refusals in the service's logs"}}, true
}

func latencyAndErrors(s Snapshot, f features) (Diagnosis, bool) {
	if !f.latencyUp || !f.errorsUp {
		return Diagnosis{}, false
	}
	return Diagnosis{Category: ResourceExhaustion, Confidence: 0.6, Cause: "the service is saturated: slow and failing together",
		Evidence: []string{f.latency(), f.errors()},
		Checks:   []string{"CPU, memory and worker saturation", "queue depth"}}, true
}

func latencyAndErrorsUpstream(_ Snapshot, f features) (Diagnosis, bool) {
	if !f.latencyUp || !f.errorsUp {
		return Diagnosis{}, false
	}
	return Diagnosis{Category: Dependency, Confidence: 0.6, Cause: "an upstream timing out: slow and failing together",
		Evidence: []string{f.latency(), f.errors()},
		Checks:   []string{"upstream latency and timeouts", "the dependency's own health"}}, true
}

func afterDeploy(_ Snapshot, f features) (Diagnosis, bool) {
	if !f.deployed || !f.latencyUp && !f.errorsUp {
		return Diagnosis{}, false
	}
	ev := []string{f.latency(), f.errors()}
	if f.recent != nil {
		ev = append(ev, commitLine(f.recent))
	} else {
		ev = append(ev, "a deploy is correlated")
	}
	return Diagnosis{Category: DeployRegression, Confidence: 0.5, Cause: "degraded after a change was deployed",
		Evidence: ev, Checks: []string{"what the last deploy changed", "whether the numbers moved at the deploy"}}, true
}
