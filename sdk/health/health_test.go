package health

import (
	"math"
	"testing"
)

func TestCompute(t *testing.T) {
	for _, tc := range []struct {
		name           string
		p95, err, anom float64
		want           float64
		status         string
	}{
		{"steady", 80, 0, 1, 100, StatusHealthy},
		{"latency only spike 2.5s", 2500, 0, 2500.0 / 80, 35, StatusCritical},
		{"slow but normal for it", 1000, 0.01, 1, 80, StatusHealthy},
		{"error surge", 120, 0.19, 4.8, 54.2, StatusDegraded},
		{"everything bad", 5000, 0.5, 50, 0, StatusCritical},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Compute(tc.p95, tc.err, tc.anom)
			if math.Abs(got.Score-tc.want) > 0.5 || got.Status != tc.status {
				t.Fatalf("Compute(%v,%v,%v) = %+v, want score %v %s", tc.p95, tc.err, tc.anom, got, tc.want, tc.status)
			}
		})
	}
}

func TestBaselineLearnsOnlyWhatItIsGiven(t *testing.T) {
	var b Baseline
	if r := b.AnomalyRatio(500, 0.3); r != 1 {
		t.Fatalf("no baseline: ratio %v, want 1", r)
	}
	b = b.Learn(100, 0)
	b = b.Learn(200, 0)
	if math.Abs(b.P95Ms-110) > 1e-9 || b.Samples != 2 {
		t.Fatalf("EMA after 100,200 = %+v, want p95 110", b)
	}
	if r := b.AnomalyRatio(330, 0); math.Abs(r-3) > 1e-9 {
		t.Fatalf("ratio %v, want 3", r)
	}
	if r := b.AnomalyRatio(110, 0.10); math.Abs(r-3) > 1e-9 {
		t.Fatalf("10%% errors over a clean baseline: ratio %v, want 3", r)
	}
}

func TestTrend(t *testing.T) {
	if _, l := Trend([]float64{90, 80, 70, 60, 50}); l != TrendDegrading {
		t.Fatalf("falling scores: %s", l)
	}
	if _, l := Trend([]float64{40, 50, 60}); l != TrendImproving {
		t.Fatalf("rising scores: %s", l)
	}
	if _, l := Trend([]float64{70, 70.5, 70, 70.2}); l != TrendStable {
		t.Fatalf("flat scores: %s", l)
	}
	if _, l := Trend([]float64{10, 90}); l != TrendStable {
		t.Fatalf("two scores are too few: %s", l)
	}
}

func TestRateOfChange(t *testing.T) {
	if c := RateOfChange(80, 250, 0, 0); !c.LatencySpike {
		t.Fatal("80→250 ms is a spike")
	}
	if c := RateOfChange(20, 60, 0, 0); c.LatencySpike {
		t.Fatal("20→60 ms is under the absolute floor")
	}
	if c := RateOfChange(80, 90, 0.01, 0.07); !c.ErrorSpike || c.LatencySpike {
		t.Fatalf("error jump: %+v", c)
	}
}
