package app

import (
	"time"

	"github.com/alertengine/alertengine/bot/diagnose"
	"github.com/alertengine/alertengine/bot/metrics"
	"github.com/alertengine/alertengine/bot/pipeline"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/council"
)

// councilTimeout bounds one lens, retries and fallback excluded; the pipeline's handling
// of a detection has a minute.
const councilTimeout = 30 * time.Second

// councilParts wires the diagnostic council from the environment: LLM lenses (A:
// latency and databases, B: network and dependencies) with the offline rule lenses as
// their fallbacks when LLM_BASE_URL is set, the offline lenses alone otherwise; one lens
// when COUNCIL_ENABLED=false. With an LLM, follow-up questions are answered by it. The
// snapshot's commits come from the commit store (commits). Options.Council, when set,
// replaces the council (not the answerer).
func councilParts(w *Options, tenants []conversation.Tenant, metrics *metrics.Council, commits conversation.CommitSource, readings diagnose.ReadingSource) (pipeline.Proposer, conversation.Answerer, error) {
	o := council.Options{A: council.RulesA(), Timeout: councilTimeout, Observer: metrics, Logger: w.Logger}
	if w.Env.CouncilEnabled {
		o.B = council.RulesB()
	}
	var answerer conversation.Answerer
	if w.Env.LLMEnabled() {
		mk := func(model string, f council.Focus) (*council.LLM, error) {
			return council.NewLLM(council.LLMOptions{BaseURL: w.Env.LLMBaseURL, APIKey: w.Env.LLMAPIKey.Reveal(), Model: model, Focus: f, CallTimeout: w.LLMCallTimeout})
		}
		a, err := mk(w.Env.CouncilModelA, council.FocusLatency)
		if err != nil {
			return nil, nil, err
		}
		o.A, o.FallbackA = a, council.RulesA()
		if w.Env.CouncilEnabled {
			b, err := mk(w.Env.CouncilModelB, council.FocusNetwork)
			if err != nil {
				return nil, nil, err
			}
			o.B, o.FallbackB = b, council.RulesB()
		}
		ans, err := council.NewAnswerer(council.LLMOptions{BaseURL: w.Env.LLMBaseURL, APIKey: w.Env.LLMAPIKey.Reveal(), Model: w.Env.CouncilModelA, CallTimeout: w.LLMCallTimeout})
		if err != nil {
			return nil, nil, err
		}
		if answerer, err = diagnose.NewAnswerer(diagnose.AnswererOptions{Answerer: ans, Redis: w.Redis, KeyPrefix: w.KeyPrefix, Tenants: tenants, Logger: w.Logger}); err != nil {
			return nil, nil, err
		}
	}
	c := w.Council
	if c == nil {
		var err error
		if c, err = council.New(o); err != nil {
			return nil, nil, err
		}
	}
	hints := map[string][]string{}
	for _, t := range w.File.Tenants {
		hints[t.ID] = diagnose.HintsOf(t.Policy.RiskyPaths)
	}
	p, err := diagnose.NewProposer(diagnose.ProposerOptions{Council: c, Hints: hints, Logger: w.Logger, Commits: commits,
		Readings: readings})
	return p, answerer, err
}
