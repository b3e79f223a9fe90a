package detector

import (
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/alertengine/alertengine/fixtures"
	"github.com/alertengine/alertengine/ledger"
)

// TestScenarios plays every metric scenario through the SDK's summaries (two instances
// per bucket, merged by the detector) and the push path (stream → window → evaluation),
// one evaluation after each bucket, and checks after which bucket incidents open and close.
// The number of incidents each scenario opens is the false-alarm guard of every change to
// the policy: flapping opens one, low traffic none, steady and surging traffic none.
func TestScenarios(t *testing.T) {
	t.Parallel()
	tests := []struct {
		scenario   string
		opens      []int // buckets after which a DETECTED entry is recorded
		closes     []int // buckets after which the incident is RECOVERED
		wantReason *regexp.Regexp
	}{
		{scenario: "steady"},
		{scenario: "traffic-surge"},
		{scenario: "low-traffic"},
		// Spike starts at bucket 60: its 50 slow requests are a fifth of the newest 5 s (250
		// requests), far under the threshold → opens after 60, at once (FastWindow).
		// Last slow bucket 89: the window is clean after 99, healthy 99, 100, 101 → closes.
		{scenario: "latency-spike", opens: []int{60}, closes: []int{101},
			wantReason: regexp.MustCompile(`^health \d+(\.\d)?/100 < 70 over the last 250 requests: p95 2\.\d s \(baseline \d+ ms, ×\d+\), errors 0\.0%`)},
		// 20% 5xx from bucket 60: the newest 5 s never score 20 points under the threshold,
		// so the whole window decides: the 10 s window's error share crosses the threshold once
		// half of it is failing (after 64). Without the look-ahead it would open after 65, on
		// the second bad evaluation; the window after 65 stays bad even if bucket 65 were 50
		// fast successes (a healthy bucket leaves, the failures stay), so it opens after 64.
		// It heals when at most 4 failing buckets remain (after 95) and closes 3 evaluations later.
		{scenario: "error-surge", opens: []int{64}, closes: []int{97},
			wantReason: regexp.MustCompile(`^health \d+(\.\d)?/100 < 70, and still under it even if the next second brings 50 fast successful requests: p95 \d+ ms \(baseline \d+ ms, ×1\.\d\), errors 10\.0%`)},
		// p95 climbs 12 ms a second from bucket 60; the baseline learns the healthy part of
		// the climb, so the score goes under 70 only near a 1 s p95 (after 139 and 140).
		// The newest 5 s cross the threshold earlier but only just: not decisive, so the
		// drift does not open, heal and reopen.
		// The 3 s plateau ends with bucket 329: clean window after 339, closes after 341.
		{scenario: "slow-drift", opens: []int{140}, closes: []int{341}},
		// 5 s bad / 5 s good from 60 to 179: the newest 5 s are decisively bad after 60; the
		// window never clears, so one incident that closes 3 evaluations after the last bad
		// bucket (174) leaves it (184). One incident, as before FastWindow.
		{scenario: "flapping", opens: []int{60}, closes: []int{186}},
		// Failing from the first bucket, before any baseline exists: bucket 0 alone is bad,
		// and still bad with 50 fast successes added, so it opens after bucket 0 (after 1,
		// on two evaluations, without the look-ahead). Healthy from 40; with 3 failing buckets of 10 left (after 46) the score is back
		// over 70, and the third healthy evaluation closes it.
		{scenario: "recovery", opens: []int{0}, closes: []int{48},
			wantReason: regexp.MustCompile(`\(no baseline yet\)`)},
	}
	for _, tt := range tests {
		t.Run(tt.scenario, func(t *testing.T) {
			t.Parallel()
			sc, err := fixtures.Scenario(tt.scenario)
			if err != nil {
				t.Fatal(err)
			}
			h := newHarness(t)
			d := h.replica("r1", defaultTenants(), nil)
			for i := range sc.Buckets {
				lat, st := sc.Samples(i)
				h.pushBucket("acme", "checkout", i, lat, st)
				h.step(d, i)
			}
			opened, recovered := h.events.of(Opened), h.events.of(Recovered)
			if got := bucketIndexes(opened); !slices.Equal(got, nonNil(tt.opens)) {
				t.Errorf("opened after buckets %v, want %v%s", got, tt.opens, describe(h.events.all()))
			}
			if got := bucketIndexes(recovered); !slices.Equal(got, nonNil(tt.closes)) {
				t.Errorf("recovered after buckets %v, want %v%s", got, tt.closes, describe(h.events.all()))
			}
			// The ledger agrees with the events, and every decision carries the policy.
			detects := h.entriesOf("acme", ledger.Detect)
			if len(detects) != len(opened) {
				t.Fatalf("%d DETECTED entries for %d opened events", len(detects), len(opened))
			}
			if n := len(h.entriesOf("acme", ledger.Recover)); n != len(recovered) {
				t.Fatalf("%d RECOVERED entries for %d recovered events", n, len(recovered))
			}
			for _, e := range h.entries("acme") {
				if e.PolicyVersion != "policy-v7" || e.Actor != (ledger.Actor{Kind: ledger.ActorPolicy, ID: "detector"}) || e.Service != "checkout" {
					t.Errorf("entry %d: policy %q actor %+v service %q", e.Seq, e.PolicyVersion, e.Actor, e.Service)
				}
			}
			for i, e := range detects {
				if e.Incident != opened[i].Incident || e.Reason != opened[i].Reason || e.Confidence != 1 {
					t.Errorf("DETECTED %s %q (confidence %v) but event %s %q", e.Incident, e.Reason, e.Confidence, opened[i].Incident, opened[i].Reason)
				}
				for _, k := range []string{"score", "p95_ms", "error_rate", "baseline_p95_ms", "trend", "sample_size", "window"} {
					if e.Data[k] == "" {
						t.Errorf("DETECTED %s has no %s in its data: %v", e.Incident, k, e.Data)
					}
				}
				if n, _ := strconv.Atoi(e.Data["sample_size"]); n < DefaultMinSamples {
					t.Errorf("DETECTED on %d samples", n)
				}
				if tt.wantReason != nil && !tt.wantReason.MatchString(e.Reason) {
					t.Errorf("reason %q does not match %v", e.Reason, tt.wantReason)
				}
			}
		})
	}
}

func nonNil(xs []int) []int {
	if xs == nil {
		return []int{}
	}
	return xs
}
