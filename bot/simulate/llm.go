package simulate

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/config/yamldoc"
	"github.com/alertengine/alertengine/council"
)

// Lens behaviours of a scripted LLM lens.
const (
	LensDiagnose = "diagnose"
	LensDown     = "down"
	LensSlow     = "slow"
)

// LensScript is how one LLM lens of the council behaves: it diagnoses (a category, a
// cause, a confidence, one of the tenant's actions), is down (its endpoint fails), or is
// slow (it answers after the council's timeout). Two lenses with the same category agree;
// different categories dissent.
type LensScript struct {
	Does       string
	Category   string
	Cause      string
	Action     string
	Confidence float64
}

// LLMScript is the council's LLM lenses. Absent (nil), the council runs its offline rule
// lenses, as a bot without LLM_BASE_URL does.
type LLMScript struct {
	A, B LensScript
}

var (
	llmKeys  = []string{"a", "b"}
	lensKeys = []string{"does", "category", "cause", "action", "confidence"}
)

func (d *dec) llm(sc *Scenario, root yamldoc.Object) {
	o := d.Field(root, "llm", llmKeys)
	if !o.Present {
		return
	}
	var t *config.Tenant
	if sc.Tenants != nil {
		t, _ = sc.Tenants.Tenant(sc.Tenant)
	}
	sc.LLM = &LLMScript{}
	for _, k := range llmKeys {
		p := "llm." + k
		if !o.Has(k) {
			d.Addf(o.Line, p, "is required: how lens %s behaves", k)
			continue
		}
		lo := d.Field(o, k, lensKeys)
		if !lo.Present {
			continue
		}
		ls := LensScript{Does: d.oneOf(lo, "does", []string{LensDiagnose, LensDown, LensSlow}, LensDiagnose), Confidence: 0.85}
		if ls.Does == LensDiagnose {
			cat, cline, ok := d.text(lo, "category")
			switch {
			case !ok:
				d.Addf(lo.Line, p+".category", "is required for a lens that diagnoses")
			case !council.Category(cat).Known():
				d.Addf(cline, p+".category", "want one of %v, got %q", council.Categories(), cat)
			}
			ls.Category = cat
			ls.Cause, _, _ = d.text(lo, "cause")
			if ls.Cause == "" {
				ls.Cause = "scripted " + cat + " diagnosis"
			}
			if v, ok := d.number(lo, "confidence", 0, 1); ok {
				ls.Confidence = v
			}
			a, aline, ok := d.text(lo, "action")
			if ok && t != nil && a != council.NoAction {
				if _, found := t.Action(a); !found {
					d.Addf(aline, p+".action", "tenant %s has no action %q", t.ID, a)
				}
			}
			if !ok {
				a = council.NoAction
			}
			ls.Action = a
		}
		if k == "a" {
			sc.LLM.A = ls
		} else {
			sc.LLM.B = ls
		}
	}
}

// errLensDown is what a scripted lens that is down answers (as an endpoint answering 503).
var errLensDown = errors.New("LLM endpoint answered 503 (scripted: down)")

// scriptedLens is an LLM lens as the scenario scripts it.
type scriptedLens struct {
	name string
	s    LensScript
}

func (l scriptedLens) Name() string { return l.name }

func (l scriptedLens) Diagnose(ctx context.Context, s council.Snapshot) (council.Reply, error) {
	switch l.s.Does {
	case LensDown:
		return council.Reply{}, errLensDown
	case LensSlow:
		<-ctx.Done()
		return council.Reply{}, ctx.Err()
	}
	d := council.Diagnosis{Category: council.Category(l.s.Category), Cause: l.s.Cause, Confidence: l.s.Confidence,
		Evidence: []string{fmt.Sprintf("p95 %.0f ms, 5xx %.1f%%", s.P95Ms, s.ErrorRate*100)}, SuggestedAction: l.s.Action,
		Checks: []string{"scripted by the scenario"}}
	return council.Reply{Diagnosis: d, Raw: []byte(d.JSON())}, nil
}

// lensTimeout bounds a scripted lens in real time: a slow lens costs this long.
const lensTimeout = 50 * time.Millisecond

// council is the diagnostic council the bot asks, as `bot serve` builds it: offline rule
// lenses without an LLM, scripted LLM lenses with the offline ones behind them otherwise.
func (w *world) council() (*council.Council, error) {
	o := council.Options{A: council.RulesA(), B: council.RulesB(), Logger: w.log, Clock: w.clock}
	if l := w.sc.LLM; l != nil {
		o = council.Options{A: scriptedLens{"llm-a", l.A}, B: scriptedLens{"llm-b", l.B}, FallbackA: council.RulesA(), FallbackB: council.RulesB(),
			Timeout: lensTimeout, Logger: w.log, Clock: w.clock}
	}
	return council.New(o)
}
