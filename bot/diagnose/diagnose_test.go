package diagnose

import (
	"context"
	"github.com/alertengine/alertengine/bot/metrics"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/council"
	"github.com/alertengine/alertengine/council/counciltest"
	"github.com/alertengine/alertengine/ledger"
)

var tenant = conversation.Tenant{ID: "acme", Actions: []conversation.Action{{Name: "restart_workers"}, {Name: "rollback", HighRisk: true}},
	DefaultAction: "restart_workers", PolicyVersion: "pol-1"}

var incident = ledger.Incident{Tenant: "acme", ID: "INC-7F3", Service: "checkout", Reason: "health 23/100 < 70",
	OpenedAt: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), Stage: ledger.Detected}

func TestSnapshotOfTheLedger(t *testing.T) {
	hist := []ledger.Entry{
		{Event: ledger.Detect, Data: map[string]string{"score": "23.0", "p95_ms": "2800.0", "error_rate": "0.1900", "baseline_p95_ms": "90.0",
			"sample_size": "500", "trend": "degrading"}},
		{Event: ledger.Question, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "rudo"}, Data: map[string]string{"text": "why?"}},
		{Event: ledger.Answer, Actor: ledger.Actor{Kind: ledger.ActorSystem, ID: "facts"}, Data: map[string]string{"text": "pool"}},
		{Event: ledger.Update, Data: map[string]string{"p95_ms": "NaN"}},
	}
	s := snapshotOf(tenant, incident, hist)
	if s.Score != 23 || s.P95Ms != 2800 || s.ErrorRate != 0.19 || s.BaselineP95Ms != 90 || s.Requests != 500 || s.Trend != "degrading" {
		t.Fatalf("numbers %+v", s)
	}
	if len(s.Thread) != 2 || s.Thread[0].Role != "user" || s.Thread[0].Who != "rudo" || s.Thread[1].Role != "assistant" {
		t.Fatalf("thread %+v", s.Thread)
	}
	if len(s.Actions) != 2 || s.DefaultAction != "restart_workers" {
		t.Fatalf("actions %+v", s.Actions)
	}
	bad := snapshotOf(tenant, incident, []ledger.Entry{{Event: ledger.Detect, Data: map[string]string{"p95_ms": "-5", "error_rate": "7"}}})
	if bad.P95Ms != 0 || bad.ErrorRate != 1 {
		t.Fatalf("hostile numbers kept: %+v", bad)
	}
}

func TestPropositionOfAFallback(t *testing.T) {
	d := &council.Diagnosis{Category: council.Database, Cause: "pool exhausted", Confidence: 0.7, SuggestedAction: "restart_workers",
		Evidence: []string{"p95 2.8 s"}, Checks: []string{"pool wait"}}
	v := council.Verdict{Agree: true, Confidence: 0.7, Action: "restart_workers", Offers: []council.Offer{{Action: "restart_workers", Label: "A"}},
		Lenses: []council.LensResult{
			{Label: "A", Lens: "rules-a", Failed: "llama3.1", FailedOutcome: council.Timeout, Outcome: council.OK, Diagnosis: d, SHA256: strings.Repeat("a", 64)},
			{Label: "B", Lens: "qwen2.5", Outcome: council.Invalid, SHA256: strings.Repeat("b", 64)},
		}}
	pr := proposition(tenant, incident, v, true)
	var got []string
	for _, e := range pr.Diagnoses {
		got = append(got, e.Actor.ID+":"+e.Data["outcome"])
		if e.Event != ledger.Diagnosis || e.Actor.Kind != ledger.ActorAI || e.Action != "" {
			t.Errorf("entry %+v", e)
		}
	}
	if strings.Join(got, " ") != "llama3.1:timeout rules-a:ok qwen2.5:invalid" {
		t.Fatalf("entries %v", got)
	}
	if pr.Diagnoses[1].Data["stands_in_for"] != "llama3.1" || pr.Diagnoses[1].Confidence != 0.7 || !strings.Contains(pr.Diagnoses[1].Data["diagnosis"], `"pool exhausted"`) {
		t.Errorf("fallback entry %+v", pr.Diagnoses[1])
	}
	if pr.Diagnoses[2].Data["reply_sha256"] != strings.Repeat("b", 64) || pr.Diagnoses[2].Data["diagnosis"] != "" {
		t.Errorf("discarded entry %+v", pr.Diagnoses[2])
	}
	p := pr.Proposal
	if len(p.Theories) != 1 || p.Theories[0].Lens != "rules-a, for llama3.1" || p.Offers[0].Theory != "" {
		t.Fatalf("proposal %+v", p)
	}
	if strings.Join(p.Unavailable, "|") != "lens B (qwen2.5) gave an invalid reply" {
		t.Fatalf("unavailable %q", p.Unavailable)
	}
	if pr.Actor.Kind != ledger.ActorAI || pr.Action != "restart_workers" || pr.Confidence != 0.7 {
		t.Fatalf("propose entry: %+v", pr)
	}
}

func TestHintsOf(t *testing.T) {
	if h := HintsOf([]string{"**/migrations/**"}); len(h) != 1 || h[0] != "database" {
		t.Fatalf("%v", h)
	}
	if h := HintsOf([]string{"**/frontend/**"}); h != nil {
		t.Fatalf("%v", h)
	}
}

// TestAnswererRemembersBoundedTurns: each answer keeps the question and the
// answer in Redis; the model sees at most council.MaxTurns of them, and Redis keeps at
// most keptTurns, expiring.
func TestAnswererRemembersBoundedTurns(t *testing.T) {
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	t.Cleanup(func() { rc.Close() })
	llm := counciltest.New(t)
	var steps []counciltest.Step
	for i := range 15 {
		steps = append(steps, counciltest.Step{Reply: "answer " + string(rune('a'+i))})
	}
	llm.Script("m", steps...)
	ans, err := council.NewAnswerer(council.LLMOptions{BaseURL: llm.URL(), Model: "m"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := NewAnswerer(AnswererOptions{Answerer: ans, Redis: rc, KeyPrefix: "t:", Tenants: []conversation.Tenant{tenant}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 15 {
		text, by, err := a.Answer(context.Background(), conversation.Question{Tenant: "acme", Incident: incident, Text: "question " + string(rune('a'+i))})
		if err != nil || text != "answer "+string(rune('a'+i)) || by.Kind != ledger.ActorAI || by.ID != "m" {
			t.Fatalf("answer %d: %q %v %v", i, text, by, err)
		}
	}
	reqs := llm.Requests("m")
	last := reqs[len(reqs)-1].Messages
	// system, data, MaxTurns earlier turns, the question
	if len(last) != 2+council.MaxTurns+1 || last[2].Content != "question j" || last[len(last)-2].Content != "answer n" {
		t.Fatalf("last request: %d messages, %+v", len(last), last[2])
	}
	key := "t:council:{acme}:turns:INC-7F3"
	if n := rc.LLen(context.Background(), key).Val(); n != keptTurns {
		t.Fatalf("%d turns kept, want %d", n, keptTurns)
	}
	if ttl := mr.TTL(key); ttl <= 0 || ttl > turnsTTL {
		t.Fatalf("ttl %v", ttl)
	}
	if _, _, err := a.Answer(context.Background(), conversation.Question{Tenant: "nope", Incident: incident, Text: "x"}); err == nil {
		t.Fatal("unknown tenant answered")
	}
}

func TestCouncilMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := metrics.NewCouncil(reg)
	if err != nil {
		t.Fatal(err)
	}
	m.LensDone("rules-a", council.OK, 2*time.Millisecond)
	m.LensDone("llama3.1", council.Timeout, 20*time.Second)
	m.CouncilDone(20 * time.Second)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]string{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			var labels []string
			for _, l := range mt.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			seen[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = mf.GetType().String()
		}
	}
	for _, want := range []string{"alertengine_council_duration_seconds{}", "alertengine_council_lens_outcomes_total{lens=llama3.1,outcome=timeout}",
		"alertengine_council_lens_outcomes_total{lens=rules-a,outcome=ok}", "alertengine_council_lens_duration_seconds{lens=rules-a}"} {
		if _, ok := seen[want]; !ok {
			t.Errorf("missing %s; have %v", want, seen)
		}
	}
}
