package council

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/fixtures"
)

var t0 = time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)

// window summarises buckets [from, from+n) of a scenario as the detector would: exact
// p95 over every sample, 5xx share, 5xx by status code, and the request count.
func window(t *testing.T, sc fixtures.MetricScenario, from, n int) (p95, errRate float64, requests uint64, codes map[int]uint64) {
	t.Helper()
	var lat []float64
	var errs uint64
	codes = map[int]uint64{}
	for i := from; i < from+n && i < len(sc.Buckets); i++ {
		l, st := sc.Samples(i)
		lat = append(lat, l...)
		for _, c := range st {
			if c >= 500 {
				errs++
				codes[c]++
			}
		}
	}
	if len(lat) == 0 {
		t.Fatalf("%s: no samples in buckets %d..%d", sc.Name, from, from+n)
	}
	slices.Sort(lat)
	p95 = lat[int(math.Ceil(0.95*float64(len(lat))))-1]
	return p95, float64(errs) / float64(len(lat)), uint64(len(lat)), codes
}

// scenarioSnapshot is the snapshot of a scenario's detection at bucket at: the baseline
// learned over the first 60 s (none when baseline is false), readings of the 10 s windows
// before, and the detection window of n buckets.
func scenarioSnapshot(t *testing.T, name string, at, n int, baseline bool) Snapshot {
	t.Helper()
	sc, err := fixtures.Scenario(name)
	if err != nil {
		t.Fatal(err)
	}
	p95, er, reqs, codes := window(t, sc, at, n)
	s := Snapshot{Tenant: "acme", Service: "checkout", Incident: "INC-1", Reason: "health below 70", At: t0.Add(time.Duration(at) * time.Second),
		P95Ms: p95, ErrorRate: er, Requests: float64(reqs), Statuses5xx: codes,
		Actions: []Action{{Name: "restart_workers"}, {Name: "rollback", HighRisk: true}, {Name: "failover_db"}}, DefaultAction: "restart_workers"}
	if baseline {
		bp, _, _, _ := window(t, sc, 0, 60)
		_, _, br, _ := window(t, sc, 0, n)
		s.BaselineP95Ms, s.BaselineRequests = bp, float64(br)
		for w := max(0, at-30); w+10 <= at; w += 10 {
			rp, re, rr, _ := window(t, sc, w, 10)
			s.Readings = append(s.Readings, Reading{At: t0.Add(time.Duration(w+10) * time.Second), P95Ms: rp, ErrorRate: re, Requests: rr})
		}
	}
	return s
}

var riskyCommit = Commit{SHA: "a1b2c3d4e5f6", Message: "Fix checkout query isolation level", Author: "john", At: t0.Add(-3 * time.Minute),
	Additions: 12, Deletions: 3, Risky: "touched database/query files"}

// TestRulesOnFixtures: the offline lenses reach the expected category for every metric
// scenario of fixtures/, and cite the numbers they used.
func TestRulesOnFixtures(t *testing.T) {
	tests := []struct {
		name, scenario string
		at, n          int
		noBaseline     bool
		hints          []string
		commits        []Commit
		wantA, wantB   Category
		cite           string // a number the evidence must cite
	}{
		{name: "steady", scenario: "steady", at: 60, n: 10, wantA: Unknown, wantB: Unknown, cite: "p95"},
		{name: "low traffic: too few to judge", scenario: "low-traffic", at: 60, n: 10, noBaseline: true, wantA: Unknown, wantB: Unknown, cite: "10 requests"},
		{name: "latency spike, no hints", scenario: "latency-spike", at: 65, n: 10, wantA: ResourceExhaustion, wantB: ResourceExhaustion, cite: "× the baseline"},
		{name: "latency spike, database-backed", scenario: "latency-spike", at: 65, n: 10, hints: []string{"database"}, wantA: Database, wantB: Database, cite: "× the baseline"},
		{name: "latency spike after a risky commit", scenario: "latency-spike", at: 65, n: 10, commits: []Commit{riskyCommit}, wantA: DeployRegression, wantB: DeployRegression, cite: "a1b2c3d"},
		{name: "slow drift", scenario: "slow-drift", at: 300, n: 10, wantA: ResourceExhaustion, wantB: ResourceExhaustion, cite: "× the baseline"},
		{name: "error surge: config for A, dependency for B", scenario: "error-surge", at: 65, n: 10, wantA: Configuration, wantB: Dependency, cite: "5xx rate 20.0%"},
		{name: "gateway errors", scenario: "gateway-errors", at: 65, n: 10, wantA: Dependency, wantB: Dependency, cite: "are 502/503/504"},
		{name: "flapping: saturation for A, upstream for B", scenario: "flapping", at: 60, n: 5, wantA: ResourceExhaustion, wantB: Dependency, cite: "5xx rate 10.0%"},
		{name: "flapping with a risky commit", scenario: "flapping", at: 60, n: 5, commits: []Commit{riskyCommit}, wantA: DeployRegression, wantB: DeployRegression, cite: "touched database/query files"},
		{name: "recovery: no baseline learned", scenario: "recovery", at: 0, n: 10, noBaseline: true, wantA: ResourceExhaustion, wantB: Dependency, cite: "no baseline learned"},
		{name: "traffic surge", scenario: "traffic-surge", at: 75, n: 10, wantA: TrafficSurge, wantB: TrafficSurge, cite: "× the baseline 500"},
	}
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.scenario] = true
		t.Run(tt.name, func(t *testing.T) {
			s := scenarioSnapshot(t, tt.scenario, tt.at, tt.n, !tt.noBaseline)
			s.Hints, s.Commits = tt.hints, tt.commits
			for _, c := range []struct {
				lens *Rules
				want Category
			}{{RulesA(), tt.wantA}, {RulesB(), tt.wantB}} {
				rep, err := c.lens.Diagnose(context.Background(), s)
				if err != nil {
					t.Fatalf("%s: %v", c.lens.Name(), err)
				}
				d := rep.Diagnosis
				if d.Category != c.want {
					t.Errorf("%s: category %s (%s), want %s; evidence %q", c.lens.Name(), d.Category, d.Cause, c.want, d.Evidence)
				}
				if err := d.Validate(s); err != nil {
					t.Errorf("%s: its own diagnosis is invalid: %v", c.lens.Name(), err)
				}
				if !strings.Contains(strings.Join(d.Evidence, "; "), tt.cite) {
					t.Errorf("%s: evidence %q does not cite %q", c.lens.Name(), d.Evidence, tt.cite)
				}
				if got, err := ParseDiagnosis(rep.Raw, s); err != nil || got.Category != d.Category {
					t.Errorf("%s: raw reply does not parse back: %v", c.lens.Name(), err)
				}
			}
		})
	}
	for _, name := range fixtures.Scenarios() {
		if !covered[name] {
			t.Errorf("scenario %s has no row", name)
		}
	}
}

func TestRulesWithoutNumbersSayNothing(t *testing.T) {
	s := Snapshot{Service: "checkout", Reason: "CheckoutSlow firing", Actions: []Action{{Name: "restart_workers"}}}
	if _, err := RulesA().Diagnose(context.Background(), s); err != ErrNoEvidence {
		t.Fatalf("err = %v, want ErrNoEvidence", err)
	}
}

func TestRulesSuggestOnlyTenantActions(t *testing.T) {
	s := scenarioSnapshot(t, "gateway-errors", 65, 10, true)
	s.Actions, s.DefaultAction = []Action{{Name: "restart_workers"}}, "restart_workers"
	rep, err := RulesB().Diagnose(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Diagnosis.SuggestedAction != "restart_workers" {
		t.Fatalf("suggested %q, want the only action restart_workers", rep.Diagnosis.SuggestedAction)
	}
	s.Actions = append(s.Actions, Action{Name: "failover_upstream"})
	if rep, _ = RulesB().Diagnose(context.Background(), s); rep.Diagnosis.SuggestedAction != "failover_upstream" {
		t.Fatalf("dependency suggested %q, want failover_upstream", rep.Diagnosis.SuggestedAction)
	}
}

// The first minute a service is watched, its readings cover only part of a window, so
// their request counts climb (10, 20, 30, then the full 150). Without a learned baseline,
// the busiest healthy window stands for normal traffic: the incident's ordinary 160
// requests are not a surge, while 3× that busiest window is.
func TestWarmUpReadingsDoNotMakeATrafficSurge(t *testing.T) {
	snap := func(requests float64) Snapshot {
		s := Snapshot{Tenant: "acme", Service: "checkout", Incident: "INC-1", At: t0.Add(2 * time.Minute), P95Ms: 900, ErrorRate: 0.3, Requests: requests,
			Actions: []Action{{Name: "restart_workers"}, {Name: "rollback"}}, DefaultAction: "restart_workers"}
		for i, n := range []uint64{10, 20, 30, 150} {
			s.Readings = append(s.Readings, Reading{At: t0.Add(time.Duration(i*10) * time.Second), Score: 95, P95Ms: 120, Requests: n})
		}
		return s
	}
	for _, c := range []struct {
		requests float64
		surge    bool
	}{{160, false}, {480, true}} {
		f := featuresOf(snap(c.requests))
		if _, got := trafficSurge(snap(c.requests), f); got != c.surge {
			t.Errorf("%.0f requests after warm-up readings: surge %v, want %v (ratio %.1f over baseline %.0f)", c.requests, got, c.surge, f.trafficRatio, f.baseRequests)
		}
	}
}
