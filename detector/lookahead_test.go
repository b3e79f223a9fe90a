package detector

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/fixtures"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/sdk"
)

// play pushes n buckets of the service checkout (two instances each, as TestScenarios),
// evaluates after each one, then DefaultOpenAfter more windows with no new data (judged
// MaxEvalDelay after they end, as a silent service's are: so an opening the look-ahead
// foresees at the end gets the evaluations it foresaw), and returns the buckets after
// which incidents opened and closed.
//
// early: the first 60% of each bucket's requests are shipped early (sdk.Summary.Early),
// 0.6 s into the bucket, and looked at 50 ms later; the rest after the bucket ends — as
// the SDK ships a surge, here for every bucket, the worst case.
func play(t *testing.T, n int, bucket func(i int) ([]float64, []int), tweak func(*Options), early bool) (opens, closes []int) {
	t.Helper()
	h := newHarness(t)
	d := h.replica("r1", defaultTenants(), tweak)
	for i := 0; i < n+DefaultOpenAfter; i++ {
		var lat []float64
		var st []int
		if i < n {
			lat, st = bucket(i)
		}
		if early && len(lat) > 0 {
			cut := len(lat) * 6 / 10
			h.pushPart(i, lat[:cut], st[:cut], 600*time.Millisecond)
			at := base.Add(time.Duration(i)*time.Second + 650*time.Millisecond)
			h.clock.Set(at)
			if _, err := d.Ingest(context.Background()); err != nil {
				t.Fatal(err)
			}
			if err := d.Evaluate(context.Background(), at); err != nil {
				t.Fatal(err)
			}
			lat, st = lat[cut:], st[cut:]
			h.pushPart(i, lat, st, 0)
		} else if len(lat) > 0 {
			h.pushBucket("acme", "checkout", i, lat, st)
		}
		if i < n {
			h.step(d, i)
			continue
		}
		at := base.Add(time.Duration(i+1)*time.Second + DefaultMaxEvalDelay)
		h.clock.Set(at)
		if err := d.Evaluate(context.Background(), at); err != nil {
			t.Fatal(err)
		}
	}
	return bucketIndexes(h.events.of(Opened)), bucketIndexes(h.events.of(Recovered))
}

// pushPart ships part of bucket i of service checkout as two instances' summaries, early
// (shipped that far into the bucket) or not (the rest, after it ended).
func (h *harness) pushPart(i int, lat []float64, st []int, early time.Duration) {
	h.t.Helper()
	bucket := base.Add(time.Duration(i) * time.Second)
	for k, inst := range []string{"pod-a", "pod-b"} {
		var l []float64
		var s []int
		for j := k; j < len(lat); j += 2 {
			l, s = append(l, lat[j]), append(s, st[j])
		}
		sum := sdk.NewSummaryForTest("acme", "checkout", inst, bucket, l, s)
		sum.Early = early
		h.push("acme", "checkout", sum)
	}
}

// mixed is one bucket of n requests of which failing answer 500 in 2.5 ms… and the rest
// 200 in 80 ms (all 80 ms: latency plays no part).
func mixed(n, failing int) ([]float64, []int) {
	lat, st := constant(n, 80, 200)
	for j := 0; j < failing && j < n; j++ {
		st[j] = 500
	}
	return lat, st
}

// TestLookAheadOpensNothingNew is the false-alarm guard of the look-ahead (staysBad):
// every metric scenario, and services built to tempt it — flapping errors and latency,
// isolated bursts, low traffic, young services, a traffic surge during errors — are
// played with and without it. With it, no scenario may open more incidents than without
// it (the gate as it was), nor open any later; the flapping and low-traffic ones open
// exactly what they opened before.
func TestLookAheadOpensNothingNew(t *testing.T) {
	t.Parallel()
	type scenario struct {
		name  string
		n     int
		gen   func(i int) ([]float64, []int)
		today int // incidents the gate opened before the look-ahead; -1: whatever it opens without it
	}
	var all []scenario
	for _, name := range fixtures.Scenarios() {
		sc, err := fixtures.Scenario(name)
		if err != nil {
			t.Fatal(err)
		}
		want := -1
		switch name {
		case "flapping":
			want = 1
		case "low-traffic":
			want = 0
		}
		all = append(all, scenario{name: "fixture " + name, n: len(sc.Buckets), gen: sc.Samples, today: want})
	}
	all = append(all,
		// One second of 60% 5xx every 20 s at 100 requests a second: 6% of a window, healthy.
		scenario{"error blips", 180, func(i int) ([]float64, []int) {
			if i >= 30 && i%20 == 0 {
				return mixed(100, 60)
			}
			return mixed(100, 0)
		}, 0},
		// Every other second all failing, for a minute: the window is half failing.
		scenario{"error flapping every second", 150, func(i int) ([]float64, []int) {
			if i >= 30 && i < 90 && i%2 == 0 {
				return mixed(100, 100)
			}
			return mixed(100, 0)
		}, 1},
		// Two failing seconds (40%) in every ten: 8% of a window, healthy on its own…
		scenario{"error flapping 2 s in 10", 200, func(i int) ([]float64, []int) {
			if i >= 30 && i%10 < 2 {
				return mixed(100, 40)
			}
			return mixed(100, 0)
		}, 0},
		// … and 4 in every 10 at 30%: 12% of the window, which the gate opens on.
		scenario{"error flapping 4 s in 10", 200, func(i int) ([]float64, []int) {
			if i >= 30 && i < 150 && i%10 < 4 {
				return mixed(100, 30)
			}
			return mixed(100, 0)
		}, 1},
		// Every 20 s a burst of 80 failures (8% of a window: healthy), and 9 s later one of
		// 30: for one evaluation both are in the window (11%, bad), then the first leaves.
		// One bad evaluation at a time: the gate never opens, and must not open early.
		scenario{"error bursts, one bad evaluation each", 200, func(i int) ([]float64, []int) {
			switch {
			case i >= 30 && i%20 == 10:
				return mixed(100, 80)
			case i >= 30 && i%20 == 19:
				return mixed(100, 30)
			}
			return mixed(100, 0)
		}, 0},
		// One second with every request failing, at a third of the usual traffic: about 3%.
		scenario{"one quiet failing second", 60, func(i int) ([]float64, []int) {
			if i == 30 {
				return mixed(33, 33)
			}
			return mixed(100, 0)
		}, 0},
		// A young service (3 s of history) with one failing second, then healthy.
		scenario{"young service, one failing second", 40, func(i int) ([]float64, []int) {
			if i == 3 {
				return mixed(100, 100)
			}
			return mixed(100, 0)
		}, -1},
		// Latency flapping: 3 s slow every 10 s.
		scenario{"latency flapping 3 s in 10", 200, func(i int) ([]float64, []int) {
			if i >= 30 && i%10 < 3 {
				return constant(100, 2500, 200)
			}
			return constant(100, 80, 200)
		}, -1},
		// Low traffic: 1 to 2 requests a second, all failing; then 3 a second, all failing.
		scenario{"low traffic, failing", 120, func(i int) ([]float64, []int) {
			switch {
			case i < 60:
				return constant(1+i%2, 2600, 500)
			default:
				return constant(3, 2600, 500)
			}
		}, -1},
		// Low traffic with bursts: 2 a second, every 15 s a second of 12 failing requests.
		scenario{"low traffic, failing bursts", 120, func(i int) ([]float64, []int) {
			if i%15 == 14 {
				return constant(12, 80, 500)
			}
			return constant(2, 80, 200)
		}, -1},
		// 12% errors while the traffic grows tenfold: the new seconds are busier than any
		// in the window, the one case the look-ahead's bound does not cover.
		scenario{"traffic surge with errors", 90, func(i int) ([]float64, []int) {
			if i < 30 {
				return mixed(50, 0)
			}
			n := min(50*(i-28), 500)
			return mixed(n, n*12/100)
		}, -1},
	)
	for _, sc := range all {
		for _, early := range []bool{false, true} {
			name := sc.name
			if early {
				name += ", shipped early"
			}
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				before, _ := play(t, sc.n, sc.gen, func(o *Options) { o.noLookAhead = true }, false)
				after, _ := play(t, sc.n, sc.gen, nil, early)
				if len(after) > len(before) {
					t.Fatalf("opens after buckets %v with the look-ahead, %v without: more incidents", after, before)
				}
				if len(after) != len(before) {
					t.Fatalf("opens after buckets %v with the look-ahead, %v without", after, before)
				}
				for i := range after {
					if after[i] > before[i] {
						t.Errorf("incident %d opens after bucket %d with the look-ahead, %d without", i+1, after[i], before[i])
					}
				}
				if sc.today >= 0 && len(after) != sc.today {
					t.Errorf("%d incidents, want %d (opens after %v)", len(after), sc.today, after)
				}
				t.Logf("opens after %v (without the look-ahead %v)", after, before)
			})
		}
	}
}

// TestEarlyPartOfASecond: part of the second in progress shipped early (an SDK whose
// errors surge) is looked at at once. Too little to be sure, it changes nothing and does
// not complete its bucket: the second is judged once its rest has come, whole. Enough,
// it opens the incident before the second ends.
func TestEarlyPartOfASecond(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	d := h.replica("r1", defaultTenants(), nil)
	ctx := context.Background()
	for i := 0; i < 6; i++ {
		lat, st := mixed(100, 0)
		h.pushBucket("acme", "checkout", i, lat, st)
		h.step(d, i)
	}
	look := func(at time.Time) {
		t.Helper()
		h.clock.Set(at)
		if _, err := d.Ingest(ctx); err != nil {
			t.Fatal(err)
		}
		if err := d.Evaluate(ctx, at); err != nil {
			t.Fatal(err)
		}
	}
	// Second 6: 30 of 40 failing 0.4 s in — 5% of the window: nothing yet.
	lat, st := mixed(40, 30)
	h.pushPart(6, lat, st, 400*time.Millisecond)
	look(base.Add(6450 * time.Millisecond))
	before, err := d.Status(ctx, "acme", "checkout")
	if err != nil {
		t.Fatal(err)
	}
	if len(h.events.all()) != 0 || before.Last.SampleSize != 600 {
		t.Fatalf("after a small early part: events %v, last reading of %d requests; want none and the 600 of seconds 0–5", describe(h.events.all()), before.Last.SampleSize)
	}
	// The second ends; its rest (60 successes) is not shipped yet: not judged.
	look(tick(6))
	if st, _ := d.Status(ctx, "acme", "checkout"); st.Last.SampleSize != 600 {
		t.Fatalf("second 6 judged on its early part alone: %d requests", st.Last.SampleSize)
	}
	lat, st = mixed(60, 0)
	h.pushPart(6, lat, st, 0)
	look(tick(6).Add(50 * time.Millisecond))
	if st, _ := d.Status(ctx, "acme", "checkout"); st.Last.SampleSize != 700 || st.Alerting {
		t.Fatalf("second 6 judged on %d requests (alerting %v), want all 700, healthy", st.Last.SampleSize, st.Alerting)
	}
	// Second 7 fails: 90 of 90 by 0.9 s in. The window stays bad whatever comes: open now.
	lat, st = mixed(90, 90)
	h.pushPart(7, lat, st, 900*time.Millisecond)
	look(base.Add(7950 * time.Millisecond))
	opened := h.events.of(Opened)
	if len(opened) != 1 || !opened[0].At.Before(base.Add(8*time.Second)) {
		t.Fatalf("opened %v, want one incident before second 7 ends", describe(h.events.all()))
	}
	detects := h.entriesOf("acme", ledger.Detect)
	if len(detects) != 1 || !strings.Contains(detects[0].Data["window"], "shipped early") ||
		!strings.Contains(detects[0].Reason, "still under it even if each of the next 2 seconds brings 100 fast successful requests") {
		t.Fatalf("DETECTED %+v", detects)
	}
}
