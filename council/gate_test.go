package council_test

import (
	"context"
	"testing"
	"time"

	"github.com/alertengine/alertengine/council"
	"github.com/alertengine/alertengine/council/counciltest"
)

// TestVerdictCarriesItsGate: a council configured with a stricter gate than the default
// gates a 72 % agreement and says which gate it applied, so the ledger's reason and the
// card quote that gate, not the default.
func TestVerdictCarriesItsGate(t *testing.T) {
	srv := counciltest.New(t)
	srv.Script("model-a", counciltest.Step{Reply: counciltest.Diagnosis("database", "pool exhausted", 0.72, "restart_workers")})
	srv.Script("model-b", counciltest.Step{Reply: counciltest.Diagnosis("database", "pool exhausted", 0.72, "restart_workers")})
	mk := func(model string) council.Lens {
		l, err := council.NewLLM(council.LLMOptions{BaseURL: srv.URL(), Model: model, Focus: council.FocusLatency, CallTimeout: 2 * time.Second,
			Sleep: func(ctx context.Context, _ time.Duration) error { return ctx.Err() }})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	for _, tt := range []struct {
		gate, want float64
		gated      bool
	}{{0.8, 0.8, true}, {0, council.DefaultGate, false}} {
		c, err := council.New(council.Options{A: mk("model-a"), B: mk("model-b"), Gate: tt.gate})
		if err != nil {
			t.Fatal(err)
		}
		v, err := c.Diagnose(context.Background(), snapshot())
		if err != nil {
			t.Fatal(err)
		}
		if v.Gate != tt.want || v.Gated != tt.gated {
			t.Errorf("gate option %v: verdict gate %v gated %v; want %v, %v", tt.gate, v.Gate, v.Gated, tt.want, tt.gated)
		}
	}
}
