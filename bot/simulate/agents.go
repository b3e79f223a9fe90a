package simulate

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
	"github.com/alertengine/alertengine/bot/config/yamldoc"
	"github.com/alertengine/alertengine/ledger"
)

// How a scenario agent behaves after a failure or a denial.
const (
	// RetryNever: the agent asks once and accepts the answer.
	RetryNever = "never"
	// RetryAggressive: after every refusal, rejection, expiry or failed run the agent asks
	// again RetryAfter later, with a fresh idempotency key: the feedback amplifier.
	RetryAggressive = "aggressive"
)

// What an agent's action does when the agent runs it.
const (
	OutcomeWorks = "works"
	OutcomeFails = "fails"
)

// AgentScript is one AI agent of the tenant (tenants[].agents[]) asking for approvals
// through the approval gate.
type AgentScript struct {
	// Name is the agent's name in the tenants file; its token's actions and rate apply.
	Name string
	// Action is what it asks to do; Params its canonical JSON parameters (may be empty).
	Action string
	Params json.RawMessage
	// Summary is what the approvers read (default: the action).
	Summary string
	// Risk is low or high (two approvers).
	Risk string
	// At is when it asks first.
	At time.Duration
	// Retry is never or aggressive; RetryAfter how soon it asks again.
	Retry      string
	RetryAfter time.Duration
	// Patience, when set, is how long it waits for a decision before it asks again
	// (the pending request stays before the people).
	Patience time.Duration
	// MaxRequests bounds the requests it makes.
	MaxRequests int
	// Outcome is what running the approved action does: works or fails.
	Outcome string
	// Execute asks the executor to run a configured recovery action once approved (the
	// scripted webhook decides how it goes) instead of the agent.
	Execute bool
	// ExpiresIn is the decision's validity the agent asks for.
	ExpiresIn time.Duration
	line      int
}

var agentKeys = []string{"name", "action", "params", "summary", "risk", "at", "retry", "retry_after", "patience", "max_requests", "outcome", "execute", "expires_in"}

// agentCounterKeys are the expectations on the agents' totals.
var agentCounterKeys = []string{"agent_requests", "agent_refused", "agent_rate_limited", "agent_approved", "agent_rejected", "agent_expired", "agent_executions", "agent_failed_runs"}

// agentPoll is how often, in virtual time, an agent asks whether its request was decided
// (the API's long-poll answers at once; this only bounds the events simulated).
const agentPoll = 5 * time.Second

func (d *dec) agents(sc *Scenario, root yamldoc.Object) {
	items, _ := d.list(root, "agents")
	if len(items) == 0 {
		return
	}
	var declared []string
	if sc.Tenants != nil {
		if t, ok := sc.Tenants.Tenant(sc.Tenant); ok {
			for _, a := range t.Agents {
				declared = append(declared, a.Name)
			}
		}
	}
	for _, item := range items {
		p := item.Path
		o, ok := d.object(item, agentKeys)
		if !ok {
			continue
		}
		a := AgentScript{Retry: RetryNever, RetryAfter: 30 * time.Second, Outcome: OutcomeWorks, ExpiresIn: 10 * time.Minute, line: o.Line}
		name, nline, ok := d.text(o, "name")
		switch {
		case !ok:
			d.Addf(o.Line, p+".name", "is required: an agent of the tenant (tenants[].agents[].name)")
		case sc.Tenants != nil && !slices.Contains(declared, name):
			d.Addf(nline, p+".name", "tenant %s declares no agent %q (tenants[].agents[])", sc.Tenant, name)
		}
		a.Name = name
		action, aline, ok := d.text(o, "action")
		if !ok {
			d.Addf(o.Line, p+".action", "is required: the action the agent asks for")
		} else if len(action) > 64 {
			d.Addf(aline, p+".action", "longer than 64 characters")
		}
		a.Action = action
		if s, line, ok := d.text(o, "params"); ok {
			c, err := agent.Canonical([]byte(s))
			if err != nil {
				d.Addf(line, p+".params", "want JSON (as a string), e.g. '{\"replicas\": 6}': %s", strings.TrimPrefix(err.Error(), agent.ErrNotCanonical.Error()+": "))
			}
			a.Params = c
		}
		a.Summary, _, _ = d.text(o, "summary")
		if a.Summary == "" {
			a.Summary = "please approve " + action
		}
		a.Risk = d.oneOf(o, "risk", []string{"low", "high"}, "")
		a.At, _ = d.duration(o, "at", 0, maxDuration)
		a.Retry = d.oneOf(o, "retry", []string{RetryNever, RetryAggressive}, RetryNever)
		if v, ok := d.duration(o, "retry_after", time.Second, maxDuration); ok {
			a.RetryAfter = v
		}
		a.Patience, _ = d.duration(o, "patience", agentPoll, maxDuration)
		a.MaxRequests = 1
		if a.Retry == RetryAggressive {
			a.MaxRequests = maxItems
		}
		if v, ok := d.integer(o, "max_requests", 1, maxItems); ok {
			a.MaxRequests = int(v)
		}
		a.Outcome = d.oneOf(o, "outcome", []string{OutcomeWorks, OutcomeFails}, OutcomeWorks)
		a.Execute, _ = d.boolean(o, "execute")
		if a.Execute && o.Has("outcome") {
			d.Addf(o.LineOf("outcome"), p+".outcome", "the executor runs this action: the scenario's webhook decides how it goes")
		}
		if v, ok := d.duration(o, "expires_in", agent.MinExpires, agent.MaxExpires); ok {
			a.ExpiresIn = v
		}
		sc.Agents = append(sc.Agents, a)
	}
}

// AgentStats is what one agent did and what the gate let through.
type AgentStats struct {
	Name       string `json:"name"`
	Retry      string `json:"retry"`
	RetryAfter string `json:"retry_after,omitempty"`
	// Requests are the agent's calls of POST /v1/approvals.
	Requests int `json:"requests"`
	// Refused were answered by the gate without asking anyone: RateLimited over the
	// token's rate, the rest forbidden or invalid.
	Refused     int `json:"refused"`
	RateLimited int `json:"rate_limited"`
	// Asked were put before the tenant's people as approval cards.
	Asked    int `json:"asked"`
	Approved int `json:"approved"`
	Rejected int `json:"rejected"`
	Expired  int `json:"expired"`
	// Abandoned are requests the agent stopped waiting for (patience) before a decision.
	Abandoned int `json:"abandoned"`
	// Executions are approvals the agent consumed and acted on; FailedRuns those whose
	// action failed.
	Executions int `json:"executions"`
	FailedRuns int `json:"failed_runs"`
	// ConsumeRefused are consumes the gate refused.
	ConsumeRefused int `json:"consume_refused"`
}

// simAgent is one scripted agent running against the gate.
type simAgent struct {
	AgentScript
	tok   agent.Token
	stats AgentStats
	// waiting is the id of the request it waits for; asked when it asked.
	waiting string
	asked   time.Time
	done    bool
}

// agentSim is the gate the agents call, built as `bot serve` builds it.
type agentSim struct {
	gate   *agent.Gate
	agents []*simAgent
}

// startAgents builds the approval gate over the world's Redis, ledger and engine, as `bot
// serve` does, and schedules the scenario's agents. Nothing is built without agents.
func (w *world) startAgents(gate *agent.Gate) error {
	if len(w.sc.Agents) == 0 {
		return nil
	}
	if gate == nil {
		return errors.New("approval gate: the tenants declare no agents")
	}
	s := &agentSim{gate: gate}
	toks := agent.TokensOf(w.sc.Tenants)
	for _, a := range w.sc.Agents {
		i := slices.IndexFunc(toks, func(t agent.Token) bool { return t.Tenant == w.tenant.ID && t.Agent == a.Name })
		if i < 0 {
			return fmt.Errorf("%w: tenant %s declares no agent %q", ErrInvalidOptions, w.tenant.ID, a.Name)
		}
		sa := &simAgent{AgentScript: a, tok: toks[i], stats: AgentStats{Name: a.Name, Retry: a.Retry}}
		if a.Retry == RetryAggressive {
			sa.stats.RetryAfter = a.RetryAfter.String()
		}
		s.agents = append(s.agents, sa)
		w.at(w.sc.Start.Add(a.At), func(ctx context.Context) { w.agentAsk(ctx, sa) })
	}
	w.agents = s
	return nil
}

func (sa *simAgent) actor() string { return "agent/" + sa.Name }

// again schedules the agent's next request after a failure or a denial, if it retries.
func (w *world) agentRetry(sa *simAgent, why string) {
	if sa.Retry != RetryAggressive || sa.stats.Requests >= sa.MaxRequests {
		sa.done = true
		w.line("agent", sa.actor(), why+"; gives up")
		return
	}
	w.line("agent", sa.actor(), fmt.Sprintf("%s; asks again in %s", why, sa.RetryAfter))
	w.at(w.clock().Add(sa.RetryAfter), func(ctx context.Context) { w.agentAsk(ctx, sa) })
}

// agentAsk is POST /v1/approvals through the gate's service.
func (w *world) agentAsk(ctx context.Context, sa *simAgent) {
	if sa.done || sa.stats.Requests >= sa.MaxRequests {
		return
	}
	sa.stats.Requests++
	n := sa.stats.Requests
	q := agent.Request{Action: sa.Action, Params: sa.Params, Summary: sa.Summary, Risk: sa.Risk,
		ExpiresIn: sa.ExpiresIn.String(), IdempotencyKey: fmt.Sprintf("%s-%d", sa.Name, n), Execute: sa.Execute}
	st, _, err := w.agents.gate.Create(ctx, sa.tok, q)
	if err != nil {
		sa.stats.Refused++
		var he *agent.HTTPError
		code := 0
		if errors.As(err, &he) {
			code = he.Status
		}
		if code == http.StatusTooManyRequests {
			sa.stats.RateLimited++
		}
		w.agentRetry(sa, fmt.Sprintf("request %d for %s refused by the gate (%d): %s", n, sa.Action, code, err))
		return
	}
	sa.stats.Asked++
	sa.waiting, sa.asked = st.ID, w.clock()
	w.line("agent", sa.actor(), fmt.Sprintf("request %d for %s: %s is %s before the approvers", n, sa.Action, st.Incident, st.Status))
	w.at(w.clock().Add(agentPoll), func(ctx context.Context) { w.agentWait(ctx, sa, st.ID) })
}

// agentWait is GET /v1/approvals/{id}: the agent acts on a decision, or waits on.
func (w *world) agentWait(ctx context.Context, sa *simAgent, id string) {
	if sa.waiting != id {
		return
	}
	st, err := w.agents.gate.Get(ctx, sa.tok, id)
	if err != nil {
		w.line("agent", sa.actor(), "reads "+id+": "+err.Error())
		w.at(w.clock().Add(agentPoll), func(ctx context.Context) { w.agentWait(ctx, sa, id) })
		return
	}
	switch st.Status {
	case agent.Pending:
		if sa.Patience > 0 && w.clock().Sub(sa.asked) >= sa.Patience {
			sa.stats.Abandoned++
			sa.waiting = ""
			w.agentRetry(sa, fmt.Sprintf("no decision on %s after %s", st.Incident, sa.Patience))
			return
		}
		w.at(w.clock().Add(agentPoll), func(ctx context.Context) { w.agentWait(ctx, sa, id) })
		return
	case agent.Rejected:
		sa.stats.Rejected++
		sa.waiting = ""
		w.agentRetry(sa, fmt.Sprintf("%s rejected by %s", st.Incident, st.DecidedBy))
		return
	case agent.Expired:
		sa.stats.Expired++
		sa.waiting = ""
		w.agentRetry(sa, st.Incident+" expired undecided: denied")
		return
	}
	if sa.Execute {
		w.agentExecution(ctx, sa, st)
		return
	}
	sa.stats.Approved++
	sa.waiting = ""
	c, err := w.agents.gate.Consume(ctx, sa.tok, id, agent.ConsumeRequest{ActionHash: st.ActionHash, Receipt: st.Receipt})
	if err != nil {
		sa.stats.ConsumeRefused++
		w.agentRetry(sa, fmt.Sprintf("consume of %s refused: %v", st.Incident, err))
		return
	}
	sa.stats.Executions++
	w.line("agent", sa.actor(), fmt.Sprintf("consumes %s (ledger entry %d) and runs %s", st.Incident, c.Ledger.Seq, sa.Action))
	// It reports how the run went (POST /v1/approvals/{id}/result), closing the incident.
	ok := sa.Outcome == OutcomeWorks
	if _, err := w.agents.gate.Result(ctx, sa.tok, id, agent.ResultRequest{OK: &ok}); err != nil {
		w.line("agent", sa.actor(), "result of "+st.Incident+" not recorded: "+err.Error())
	}
	if !ok {
		sa.stats.FailedRuns++
		w.agentRetry(sa, sa.Action+" did not help")
		return
	}
	sa.done = true
	w.line("agent", sa.actor(), sa.Action+" worked; done")
}

// agentExecution follows a request the executor runs: the agent waits for the outcome
// GET reports (execution), and retries after a failed one.
func (w *world) agentExecution(ctx context.Context, sa *simAgent, st agent.Status) {
	switch ledger.Stage(st.Execution) {
	case ledger.Authorized:
		w.at(w.clock().Add(agentPoll), func(ctx context.Context) { w.agentWait(ctx, sa, st.ID) })
		return
	case ledger.Executed, ledger.Resolved:
		sa.stats.Approved++
		sa.stats.Executions++
		sa.waiting, sa.done = "", true
		w.line("agent", sa.actor(), fmt.Sprintf("the executor ran %s for %s; done", sa.Action, st.Incident))
	default:
		sa.stats.Approved++
		sa.stats.Executions++
		sa.stats.FailedRuns++
		sa.waiting = ""
		w.agentRetry(sa, fmt.Sprintf("the executor's run of %s for %s failed (%s)", sa.Action, st.Incident, st.Execution))
	}
}

// agentSummary is the agents' part of the summary. It also reads the ledger for every
// agent's consume: each must follow an engineer's authorization of the same incident.
func (w *world) agentSummary(entries []ledger.Entry, s *Summary) {
	if w.agents == nil {
		return
	}
	for _, sa := range w.agents.agents {
		s.Agents = append(s.Agents, sa.stats)
	}
	// The agents' requests are told by the agents' lines, not one incident each.
	ours := map[string]bool{}
	s.Incidents = slices.DeleteFunc(s.Incidents, func(in Incident) bool {
		ours[in.ID] = strings.HasPrefix(in.Service, "agent:")
		return ours[in.ID]
	})
	s.Undecided = slices.DeleteFunc(s.Undecided, func(id string) bool { return ours[id] })
	approved := map[string]bool{}
	for _, e := range entries {
		switch e.Event {
		case ledger.Authorize:
			if e.Actor.Kind == ledger.ActorEngineer {
				approved[e.Incident] = true
			}
		case ledger.Consume:
			if !approved[e.Incident] {
				s.ExecutedWithoutApproval = append(s.ExecutedWithoutApproval, e.Incident)
			}
		}
	}
}

// agentCounters are the agents' totals for expectations.
func agentCounters(s Summary, count map[string]int) {
	for _, a := range s.Agents {
		count["agent_requests"] += a.Requests
		count["agent_refused"] += a.Refused
		count["agent_rate_limited"] += a.RateLimited
		count["agent_approved"] += a.Approved
		count["agent_rejected"] += a.Rejected
		count["agent_expired"] += a.Expired
		count["agent_executions"] += a.Executions
		count["agent_failed_runs"] += a.FailedRuns
	}
}

// writeAgents answers the feedback-loop question with the run's numbers: how often each
// agent asked, what the gate and the people let through, and how many times it acted.
func writeAgents(b *strings.Builder, s Summary) {
	if len(s.Agents) == 0 {
		return
	}
	b.WriteString("  agents through the approval gate:\n")
	for _, a := range s.Agents {
		how := "asks once"
		if a.Retry == RetryAggressive {
			how = "retries " + a.RetryAfter + " after every failure or denial"
		}
		fmt.Fprintf(b, "    %s (%s): %d requests · %d refused by the gate (%d over its rate limit) · %d before people: %d approved, %d rejected, %d expired, %d abandoned · %d executions (%d failed)\n",
			a.Name, how, a.Requests, a.Refused, a.RateLimited, a.Asked, a.Approved, a.Rejected, a.Expired, a.Abandoned, a.Executions, a.FailedRuns)
		if a.Retry == RetryAggressive && a.Requests > 0 {
			fmt.Fprintf(b, "    feedback loop: %s tried %d times, and without the gate each try would have run; the gate let %d run (%s), each after a person's approval, and %d never reached a person\n",
				a.Name, a.Requests, a.Executions, percent(a.Executions, a.Requests), a.Refused)
		}
	}
}

func percent(n, of int) string {
	if of == 0 {
		return "0%"
	}
	return fmt.Sprintf("%.1f%%", 100*float64(n)/float64(of))
}
