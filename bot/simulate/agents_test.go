package simulate

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
)

// agentTenant is a tenant whose agent eager-bot may run restart_pods itself, at most
// rate requests a minute; tendai and kuda approve.
func agentScenario(rate, people, agents string) string {
	return `name: agents
seed: 3
duration: 30m
tenants:
  - id: acme
    services: [{name: orders}]
    chats: {telegram: [-100]}
    people:
      - {name: tendai, role: approver, telegram: 1}
      - {name: kuda, role: approver, telegram: 2}
    policy: {approval_ttl: 5m, escalate_after: 10m}
    agents:
      - {name: eager-bot, token: "${EAGER}", external_actions: [restart_pods], rate: ` + rate + `}
services: [{name: orders}]
people:
` + people + `
agents:
` + agents
}

func runAgents(t *testing.T, src string) (*Result, []ledger.Entry) {
	t.Helper()
	sc, err := Parse("agents.yaml", []byte(src), ".")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var led bytes.Buffer
	if err := r.WriteLedger(&led); err != nil {
		t.Fatal(err)
	}
	var entries []ledger.Entry
	s := bufio.NewScanner(&led)
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		if bytes.HasPrefix(s.Bytes(), []byte(`{"checkpoint"`)) {
			continue
		}
		e, err := ledger.DecodeEntry(s.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, e)
	}
	return r, entries
}

func count(entries []ledger.Entry, ev ledger.Event, actor string) int {
	n := 0
	for _, e := range entries {
		if e.Event == ev && (actor == "" || e.Actor.ID == actor) {
			n++
		}
	}
	return n
}

// TestAggressiveRetrierIsBoundedByPeople: an agent whose action never helps asks again
// after every failure; each of its runs is a consume the ledger shows after an engineer's
// authorization of that very request, requests over the token's rate never reach a
// person or the ledger, and what the summary reports is what the ledger holds.
func TestAggressiveRetrierIsBoundedByPeople(t *testing.T) {
	t.Parallel()
	r, entries := runAgents(t, agentScenario("2/min", "  - {name: tendai, after: 3m}",
		`  - {name: eager-bot, action: restart_pods, at: 1m, retry: aggressive, retry_after: 1s, outcome: fails}`))
	a := r.Summary.Agents[0]
	if a.Executions == 0 || a.Executions != a.FailedRuns || a.Approved != a.Executions {
		t.Fatalf("want every approval run and failed: %+v", a)
	}
	// tendai answers 3m after each card, so no more than one run per 3m of the 29m.
	if a.Executions > 10 {
		t.Errorf("%d executions in 29 minutes with a 3-minute approver", a.Executions)
	}
	if got := count(entries, ledger.Consume, "agent:eager-bot"); got != a.Executions {
		t.Errorf("ledger has %d consumes, summary says %d executions", got, a.Executions)
	}
	// Each failed run is reported, so no consumed request stays AUTHORIZED.
	if got := count(entries, ledger.WebhookFail, "agent:eager-bot"); got != a.FailedRuns {
		t.Errorf("ledger has %d failed results, summary says %d failed runs", got, a.FailedRuns)
	}
	if got := count(entries, ledger.Detect, "agent:eager-bot"); got != a.Asked || a.Asked+a.Refused != a.Requests {
		t.Errorf("ledger has %d requests; summary: %d asked + %d refused of %d", got, a.Asked, a.Refused, a.Requests)
	}
	authorized := map[string]bool{}
	for _, e := range entries {
		switch e.Event {
		case ledger.Authorize:
			authorized[e.Incident] = e.Actor.Kind == ledger.ActorEngineer && e.Actor.ID == "tendai"
		case ledger.Consume:
			if !authorized[e.Incident] {
				t.Errorf("%s consumed at seq %d without tendai's authorization before it", e.Incident, e.Seq)
			}
		}
	}
	var text bytes.Buffer
	_ = r.WriteText(&text, true)
	if !strings.Contains(text.String(), "feedback loop: eager-bot tried ") {
		t.Errorf("summary does not answer the feedback-loop question:\n%s", text.String())
	}
}

// TestRateLimitRefusesWithoutAsking: when nobody is there to decide, an impatient retrier
// is held to its token's rate, and silence never becomes consent.
func TestRateLimitRefusesWithoutAsking(t *testing.T) {
	t.Parallel()
	r, entries := runAgents(t, agentScenario("2/min", "  - {name: tendai, unreachable: true}",
		`  - {name: eager-bot, action: restart_pods, at: 1m, retry: aggressive, retry_after: 1s, patience: 10s}`))
	a := r.Summary.Agents[0]
	if a.Executions != 0 || a.Approved != 0 || count(entries, ledger.Consume, "") != 0 {
		t.Fatalf("executions without anyone deciding: %+v", a)
	}
	// 29 minutes at 2 a minute: at most 60 requests are before the people.
	if a.Asked > 60 || a.RateLimited == 0 || a.RateLimited != a.Refused {
		t.Errorf("rate 2/min: %d asked, %d rate limited, %d refused", a.Asked, a.RateLimited, a.Refused)
	}
	if got := count(entries, ledger.Detect, "agent:eager-bot"); got != a.Asked {
		t.Errorf("ledger has %d requests, %d were asked", got, a.Asked)
	}
	if r.Summary.Expired == 0 {
		t.Error("the undecided requests did not expire")
	}
}

// TestCarefulAgentAsksOnce: an agent that does not retry accepts a rejection.
func TestCarefulAgentAsksOnce(t *testing.T) {
	t.Parallel()
	r, _ := runAgents(t, agentScenario("30/min", "  - {name: kuda, does: reject, after: 1m}",
		`  - {name: eager-bot, action: restart_pods, params: '{"service": "orders"}', at: 1m}`))
	a := r.Summary.Agents[0]
	if a.Requests != 1 || a.Rejected != 1 || a.Executions != 0 {
		t.Errorf("want one request, rejected, nothing run: %+v", a)
	}
	if c := check([]Expectation{{Key: "agent_rejected", Op: "==", N: 1}, {Key: "agent_executions", Op: "==", N: 0}}, r.Summary); !c[0].OK || !c[1].OK {
		t.Errorf("agent expectations: %+v", c)
	}
}

// TestAgentScenarioProblems: an agent the tenant does not declare, params that are not
// JSON and an unknown retry are named with their lines.
func TestAgentScenarioProblems(t *testing.T) {
	t.Parallel()
	src := agentScenario("2/min", "  - {name: tendai}", `  - {name: ghost-bot, action: restart_pods}
  - {name: eager-bot, action: restart_pods, params: '{"a": ', retry: sometimes}
`)
	_, err := Parse("agents.yaml", []byte(src), ".")
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("want problems, got %v", err)
	}
	got := strings.Split(err.Error(), "\n")
	for _, want := range []string{
		`agents.yaml:18: agents[0].name: tenant acme declares no agent "ghost-bot" (tenants[].agents[])`,
		`agents.yaml:19: agents[1].retry: want one of never, aggressive, got "sometimes"`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("missing %q in\n  %s", want, strings.Join(got, "\n  "))
		}
	}
	if !slices.ContainsFunc(got, func(l string) bool { return strings.HasPrefix(l, "agents.yaml:19: agents[1].params: want JSON") }) {
		t.Errorf("bad params not named:\n  %s", strings.Join(got, "\n  "))
	}
}

// TestAgentAsksTheExecutorToRun: an agent may have the executor run a configured recovery
// action once approved; the scripted webhook is called once, the agent counts the run, and
// a failing webhook makes an aggressive agent ask again.
func TestAgentAsksTheExecutorToRun(t *testing.T) {
	t.Parallel()
	src := func(webhook string) string {
		s := agentScenario("30/min", "  - {name: tendai, after: 1m}",
			`  - {name: eager-bot, action: restart_workers, execute: true, at: 1m, retry: aggressive, retry_after: 1m, max_requests: 3}
webhook: `+webhook+`
`)
		s = strings.Replace(s, "    policy:", "    recovery: {url: https://acme.example/recover, secret: x0123456789abcdef, actions: [{name: restart_workers, risk: low}]}\n    policy:", 1)
		return strings.Replace(s, "external_actions: [restart_pods]", "actions: [restart_workers]", 1)
	}
	r, _ := runAgents(t, src("{mode: ok}"))
	a := r.Summary.Agents[0]
	if a.Requests != 1 || a.Executions != 1 || a.FailedRuns != 0 || r.Summary.WebhookCalls != 1 || r.Summary.Executed != 1 {
		t.Errorf("webhook ok: %+v, %d webhook calls, %d executed", a, r.Summary.WebhookCalls, r.Summary.Executed)
	}
	r, _ = runAgents(t, src("{mode: error}"))
	a = r.Summary.Agents[0]
	if a.Requests != 3 || a.Executions != 3 || a.FailedRuns != 3 || r.Summary.WebhookFailed != 3 {
		t.Errorf("webhook down: %+v, %d failed executions", a, r.Summary.WebhookFailed)
	}
}
