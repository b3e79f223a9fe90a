package simulate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
)

var update = flag.Bool("update", false, "rewrite the golden summaries")

const fixtures = "../../fixtures/scenarios"

func fixtureNames(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(fixtures, "*.yaml"))
	if err != nil || len(paths) < 6 {
		t.Fatalf("want at least six fixture scenarios, found %d (%v)", len(paths), err)
	}
	var names []string
	for _, p := range paths {
		names = append(names, strings.TrimSuffix(filepath.Base(p), ".yaml"))
	}
	return names
}

func run(t testing.TB, name string, o Options) *Result {
	t.Helper()
	sc, err := Load(filepath.Join(fixtures, name+".yaml"))
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	r, err := Run(context.Background(), sc, o)
	if err != nil {
		t.Fatalf("run %s: %v", name, err)
	}
	return r
}

type outputs struct{ text, json, ledger []byte }

func render(t testing.TB, r *Result) outputs {
	t.Helper()
	var text, js, led bytes.Buffer
	if err := r.WriteText(&text, false); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteLedger(&led); err != nil {
		t.Fatal(err)
	}
	return outputs{text.Bytes(), js.Bytes(), led.Bytes()}
}

// TestFixtures runs every fixture scenario: its summary matches the golden file, a second
// run gives the same bytes (text, JSON and ledger), the ledger export verifies, every
// execution in it follows an engineer's approval, and its own expectations hold.
func TestFixtures(t *testing.T) {
	t.Parallel()
	for _, name := range fixtureNames(t) {
		t.Run(name, func(t *testing.T) {
			t.Parallel() // each run has its own world, clock and embedded Redis
			r := run(t, name, Options{})
			var summary bytes.Buffer
			if err := r.WriteText(&summary, true); err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", name+".golden")
			if *update {
				if err := os.WriteFile(golden, summary.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("golden (run with -update to create): %v", err)
			}
			if d := cmp.Diff(string(want), summary.String()); d != "" {
				t.Errorf("summary differs from %s (-want +got):\n%s", golden, d)
			}

			first := render(t, r)
			again := render(t, run(t, name, Options{}))
			for what, pair := range map[string][2][]byte{"text": {first.text, again.text}, "json": {first.json, again.json}, "ledger": {first.ledger, again.ledger}} {
				if !bytes.Equal(pair[0], pair[1]) {
					t.Errorf("second run's %s differs:\n%s", what, cmp.Diff(string(pair[0]), string(pair[1])))
				}
			}

			rep, err := ledger.VerifyExport(bytes.NewReader(first.ledger), nil)
			if err != nil {
				t.Fatalf("simulated ledger does not verify: %v", err)
			}
			if rep.Entries != r.Summary.LedgerEntries {
				t.Errorf("export verifies %d entries, summary says %d", rep.Entries, r.Summary.LedgerEntries)
			}
			assertApprovedBeforeExecuted(t, first.ledger)
			assertNoTwinOffers(t, first.text)
			if len(r.Broken) > 0 {
				t.Errorf("the fixture's own expectations broke: %v", r.Broken)
			}
		})
	}
}

// assertApprovedBeforeExecuted reads the export itself: every EXECUTED entry follows an
// AUTHORIZED entry by an engineer on the same incident.
func assertApprovedBeforeExecuted(t *testing.T, export []byte) {
	t.Helper()
	authorized := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(export))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	executions := 0
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte(`{"checkpoint"`)) {
			continue
		}
		e, err := ledger.DecodeEntry(sc.Bytes())
		if err != nil {
			t.Fatalf("export line: %v", err)
		}
		switch {
		case e.To == ledger.Authorized && e.Actor.Kind == ledger.ActorEngineer:
			authorized[e.Incident] = true
		case e.To == ledger.Executed:
			executions++
			if !authorized[e.Incident] {
				t.Errorf("%s EXECUTED at seq %d without an engineer's approval before it", e.Incident, e.Seq)
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestSeedChangesOnlyWhatItDrives: another seed moves the people's jittered replies and the
// random references, not what the detector saw or when.
func TestSeedChangesOnlyWhatItDrives(t *testing.T) {
	t.Parallel()
	seed := uint64(99)
	a := run(t, "db-spike-primary-asleep", Options{})
	b := run(t, "db-spike-primary-asleep", Options{Seed: &seed})
	if b.Seed != 99 {
		t.Fatalf("seed %d, want the override 99", b.Seed)
	}
	detections := func(r *Result) []Line {
		var out []Line
		for _, l := range r.Timeline {
			if l.Actor == "policy/detector" {
				out = append(out, l)
			}
		}
		return out
	}
	if d := cmp.Diff(detections(a)[:1], detections(b)[:1]); d != "" {
		t.Errorf("detection changed with the seed:\n%s", d)
	}
	if a.Summary.Incidents[0].ToDecide == b.Summary.Incidents[0].ToDecide {
		t.Errorf("rudo's jittered reply took %s with both seeds", a.Summary.Incidents[0].ToDecide)
	}
	if a.Summary.Incidents[0].DetectedAt != b.Summary.Incidents[0].DetectedAt || a.Summary.Escalations != b.Summary.Escalations {
		t.Errorf("seed changed detection or escalation: %+v vs %+v", a.Summary.Incidents[0], b.Summary.Incidents[0])
	}
	if bytes.Equal(render(t, a).ledger, render(t, b).ledger) {
		t.Error("ledgers of two seeds are identical; the approval references come from the seed")
	}
}

const brokenScenario = `name: broken
duration: 30m
tenants:
  - id: acme
    services: [{name: api}]
    chats: {telegram: [-100]}
    people: [{name: tendai, role: approver, telegram: 1}]
    recovery:
      url: https://acme.example/recover
      secret: s3cret-s3cret-s3cret
      actions: [{name: restart_workers, risk: low}]
services:
  - name: api
    script: [{at: 5m, error_rate: 0.5}]
people:
  - {name: tendai, unreachable: true}
expect:
  incidents: 1
  decided_within: 10m
  expired: "<= 0"
`

// TestBrokenExpectationIsNamed: expectations that do not hold are listed by name, the
// others pass.
func TestBrokenExpectationIsNamed(t *testing.T) {
	t.Parallel()
	sc, err := Parse("broken.yaml", []byte(brokenScenario), ".")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"decided_within: 10m", "expired: <= 0"}
	if d := cmp.Diff(want, r.Broken); d != "" {
		t.Errorf("broken expectations (-want +got):\n%s", d)
	}
	var text bytes.Buffer
	_ = r.WriteText(&text, true)
	if !strings.Contains(text.String(), "BROKEN decided_within: 10m (got INC-1 never)") {
		t.Errorf("summary does not say why decided_within broke:\n%s", text.String())
	}
}

// TestScenarioProblems: a bad scenario is refused with FILE:LINE: path: problem lines, the
// tenants' problems included, like the tenants file's.
func TestScenarioProblems(t *testing.T) {
	const bad = `name: bad
duration: 90
step: 500ms
tenants:
  - id: ACME
    services: [{name: api}]
services:
  - name: api
    script:
      - {at: 10m, p95_ms: 900}
      - {at: 5m, error_rate: 2}
  - name: nosuch
people:
  - {name: ghost, does: panic}
webhook: {mode: sometimes}
expect:
  escalations: "about 2"
  colour: blue
`
	_, err := Parse("bad.yaml", []byte(bad), ".")
	if !errors.Is(err, config.ErrInvalid) {
		t.Fatalf("want a config.ErrInvalid problem list, got %v", err)
	}
	got := strings.Split(err.Error(), "\n")
	for _, want := range []string{
		`bad.yaml:2: duration: want a duration like 5m or 180s, got "90" (add a unit: s, m or h)`,
		`bad.yaml:3: step: 500ms is outside 1s..10m0s`,
		`bad.yaml:5: tenants[0].id: tenant id "ACME" must be 1 to 32 characters of a-z, 0-9 and -`,
		`bad.yaml:11: services[0].script[1].at: changes must be in time order (5m0s is before the previous 10m0s)`,
		`bad.yaml:11: services[0].script[1].error_rate: want a number from 0 to 1, got "2"`,
		`bad.yaml:15: webhook.mode: want one of ok, error, timeout, got "sometimes"`,
		`bad.yaml:17: expect.escalations: want a count, optionally compared: 2, == 2, <= 2, >= 1, < 3, > 0; got "about 2"`,
		`bad.yaml:18: expect.colour: unknown key (allowed: incidents, escalations, expired, rejected, refused_presses, dlq, executed, suppressed, undecided, authorized, webhook_failed, redriven, agent_requests, agent_refused, agent_rate_limited, agent_approved, agent_rejected, agent_expired, agent_executions, agent_failed_runs, detected_within, decided_within, recovered_within, no_execution_without)`,
	} {
		if !slices.Contains(got, want) {
			t.Errorf("missing problem line\n  %s\nin\n  %s", want, strings.Join(got, "\n  "))
		}
	}
}

// BenchmarkDay20Services simulates 24 h of 20 services with three incidents.
func BenchmarkDay20Services(b *testing.B) {
	sc, err := Load(filepath.Join(fixtures, "day-20-services.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Run(context.Background(), sc, Options{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFixtures simulates each fixture scenario (most are one simulated hour or less).
func BenchmarkFixtures(b *testing.B) {
	for _, name := range fixtureNames(b) {
		sc, err := Load(filepath.Join(fixtures, name+".yaml"))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := Run(context.Background(), sc, Options{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestWebhookTimeoutDeadLetters: a webhook that never answers is retried with virtual
// backoff and dead-lettered; nothing is executed and the thread is told.
func TestWebhookTimeoutDeadLetters(t *testing.T) {
	t.Parallel()
	src := strings.Replace(brokenScenario, "  - {name: tendai, unreachable: true}\n", "  - {name: tendai, after: 1m}\n", 1)
	src = strings.Replace(src, "expect:\n", "webhook: {mode: timeout}\nexpect:\n", 1)
	sc, err := Parse("timeout.yaml", []byte(src), ".")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), sc, Options{AttemptTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if r.Summary.Executed != 0 || r.Summary.WebhookFailed != 1 || r.Summary.DeadLetters != 1 || r.Summary.WebhookCalls != 3 {
		t.Fatalf("summary %+v, want 3 calls, 1 failure dead-lettered, nothing executed", r.Summary)
	}
	var failed, told bool
	for _, l := range r.Timeline {
		failed = failed || (l.Stage == "WEBHOOK_FAILED" && strings.Contains(l.Text, "did not answer within 50ms after 3 attempts"))
		told = told || (l.Stage == "chat" && strings.Contains(l.Text, "❌ Recovery restart_workers failed"))
	}
	if !failed || !told {
		t.Errorf("timeline lacks the failure (%v) or the thread message (%v)", failed, told)
	}
}

// TestScenarioWorkIsBounded: a scenario that would take more readings than the bound is
// refused before anything runs.
func TestScenarioWorkIsBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("duration: 168h\nstep: 1s\nservices:\n")
	for i := range 40 {
		b.WriteString("  - name: s" + strings.Repeat("x", i) + "\n")
	}
	_, err := Parse("big.yaml", []byte(b.String()), ".")
	if err == nil || !strings.Contains(err.Error(), "big.yaml:1: duration: 168h0m0s of 40 services every 1s is over 20000000 readings") {
		t.Fatalf("want the work bound named, got %v", err)
	}
}

// TestPeopleAnswerOnTheirChannel: a person scripted on WhatsApp sees the card in the
// tenant's WhatsApp chat and approves there; the ledger records the channel.
func TestPeopleAnswerOnTheirChannel(t *testing.T) {
	t.Parallel()
	src := strings.Replace(brokenScenario, "chats: {telegram: [-100]}", `chats: {telegram: [-100], whatsapp: ["+263771234567"]}`, 1)
	src = strings.Replace(src, "people: [{name: tendai, role: approver, telegram: 1}]", `people: [{name: tendai, role: approver, telegram: 1, whatsapp: "+263770000001"}]`, 1)
	src = strings.Replace(src, "  - {name: tendai, unreachable: true}\n", "  - {name: tendai, channel: whatsapp, after: 1m}\n", 1)
	sc, err := Parse("whatsapp.yaml", []byte(src), ".")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var approvedOn string
	for _, l := range r.Timeline {
		if l.Stage == "AUTHORIZED" {
			approvedOn = l.Actor
		}
	}
	if approvedOn != "engineer/tendai@whatsapp" {
		t.Errorf("authorized by %q, want engineer/tendai@whatsapp", approvedOn)
	}
	// WhatsApp has no buttons: the card carries a one-time reply code, typed back.
	var typedCode bool
	for _, l := range r.Timeline {
		typedCode = typedCode || (l.Actor == "tendai" && strings.HasPrefix(l.Text, `types "APPROVE `))
	}
	if !typedCode {
		var b strings.Builder
		_ = r.WriteText(&b, false)
		t.Errorf("tendai did not type the reply code:\n%s", b.String())
	}
}

// TestRejectPress: a person who presses Reject closes the incident without running
// anything, through the engine's /reject command.
func TestRejectPress(t *testing.T) {
	t.Parallel()
	src := strings.Replace(brokenScenario, "  - {name: tendai, unreachable: true}\n", "  - {name: tendai, does: reject, after: 2m}\n", 1)
	sc, err := Parse("reject.yaml", []byte(src), ".")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := r.Summary
	if s.Rejected != 1 || s.Executed != 0 || s.WebhookCalls != 0 || len(s.Incidents) != 1 || s.Incidents[0].Stage != "REJECTED" || s.Incidents[0].DecidedBy != "tendai" {
		t.Fatalf("summary %+v, want one incident REJECTED by tendai and nothing run", s)
	}
}

// TestLLMDownAndSlowFallBackToOfflineLenses: a lens whose endpoint is down and one slower
// than the council's timeout are replaced by the offline rule lenses, as in serve; the
// ledger says which lens stood in, and a proposal is still made.
func TestLLMDownAndSlowFallBackToOfflineLenses(t *testing.T) {
	t.Parallel()
	src := strings.Replace(brokenScenario, "expect:\n", "llm:\n  a: {does: down}\n  b: {does: slow}\nexpect:\n", 1)
	sc, err := Parse("llm.yaml", []byte(src), ".")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var diagnoses []string
	proposed := false
	for _, l := range r.Timeline {
		if l.Stage == "DIAGNOSIS" {
			diagnoses = append(diagnoses, l.Actor+" "+l.Text)
		}
		proposed = proposed || l.Stage == "PROPOSED"
	}
	want := []string{"ai/llm-a INC-1: lens A (llm-a) was unreachable", "ai/rules-a INC-1: lens A:", "ai/llm-b INC-1: lens B (llm-b) timed out", "ai/rules-b INC-1: lens B:"}
	if len(diagnoses) != len(want) || !proposed {
		t.Fatalf("diagnoses %q, proposed %v; want the failed lenses, their stand-ins and a proposal", diagnoses, proposed)
	}
	for i := range want {
		if !strings.HasPrefix(diagnoses[i], want[i]) {
			t.Errorf("diagnosis %d is %q, want it to start %q", i, diagnoses[i], want[i])
		}
	}
}

// twinOffers matches a card whose two theory buttons carry the same action.
var twinOffers = regexp.MustCompile(`\[Trust A: ([a-z0-9_]+)\] \[Trust B: ([a-z0-9_]+)\]`)

// assertNoTwinOffers: lenses that differ on the cause but agree on the action make one
// offer; no card shows "[Trust A: x] [Trust B: x]".
func assertNoTwinOffers(t *testing.T, timeline []byte) {
	t.Helper()
	for _, m := range twinOffers.FindAllSubmatch(timeline, -1) {
		if bytes.Equal(m[1], m[2]) {
			t.Errorf("a card offers the same action twice: %s", m[0])
		}
	}
}

// every is a scenario whose tenant turns on every component a tenants file can: repos,
// Alertmanager, PagerDuty, Grafana and OTLP intakes, outbound webhooks and AI agents.
const every = `duration: 10m
tenants:
  - id: acme
    services: [{name: api, repos: [acme/api]}, {name: web, source: otlp}]
    chats: {telegram: [-100], whatsapp: ["+263771234567"]}
    people: [{name: tendai, role: approver, ids: {telegram: 1}}]
    recovery:
      url: https://acme.example/recover
      secret: a-recovery-secret-of-some-length
      actions: [{name: restart_workers, risk: low}]
    alertmanager: {token: alertmanager-token-0123456789}
    pagerduty: [{service: api, routing_key: "R0123456789abcdef0123456789abcd"}]
    grafana: {token: "grafana-token-acme-01234"}
    otlp: {token: "otlp-token-acme-0123456789"}
    outbound_webhooks:
      - {name: router, url: "https://hooks.example/alertengine", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
    agents: [{name: sre-bot, token: "agent-token-0123456789", actions: [restart_workers]}]
services: [{name: api}, {name: web}]
people: [{name: tendai}]
`

// TestWorldBuildsWhatServeBuilds: the simulation runs the bot `bot serve` runs. For every
// fixture, and for a tenant that turns on every optional component, the world's bot and
// the bot serve builds from the same tenants file mount the same routes and register the
// same loops; the world adds only its simulated chat platforms (their loops, no route).
func TestWorldBuildsWhatServeBuilds(t *testing.T) {
	t.Parallel()
	vars := map[string]string{"REDIS_URL": "redis://127.0.0.1:6379", "ALERT_SECRET": strings.Repeat("k", 32),
		"LEDGER_SIGNING_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32))}
	env, err := config.LoadEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, config.Serve)
	if err != nil {
		t.Fatal(err)
	}
	scenarios := map[string]*Scenario{}
	for _, name := range fixtureNames(t) {
		if scenarios[name], err = Load(filepath.Join(fixtures, name+".yaml")); err != nil {
			t.Fatal(err)
		}
	}
	if scenarios["every component"], err = Parse("every.yaml", []byte(every), "."); err != nil {
		t.Fatal(err)
	}
	for name, sc := range scenarios {
		w, err := newWorld(sc, Options{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		served, err := app.New(app.Options{Env: env, File: sc.Tenants, Redis: w.rc, KeyPrefix: "serve:", Addr: "127.0.0.1:0", Signer: w.sign,
			Secret: bytes.Repeat([]byte{2}, 32)})
		if err != nil {
			w.close()
			t.Fatalf("%s: serve: %v", name, err)
		}
		want := served.Components()
		if len(want.Channels) != 0 {
			t.Fatalf("%s: serve built chat platforms %v without their settings", name, want.Channels)
		}
		want.Channels = simulatedChannels
		want.Loops = append(want.Loops, simulatedChannels...)
		if d := cmp.Diff(want, w.app.Components()); d != "" {
			t.Errorf("%s: the world's bot differs from serve's (-serve +world):\n%s", name, d)
		}
		if name == "every component" {
			for _, c := range []string{"POST /v1/metrics", "POST /grafana/webhook", "POST /pagerduty/{tenant}/v2/enqueue", "outbound-webhooks", "POST /v1/approvals"} {
				if !slices.Contains(want.Routes, c) && !slices.Contains(want.Loops, c) {
					t.Errorf("serve's bot for every component lacks %q: %+v", c, want)
				}
			}
		}
		served.Close()
		w.close()
	}
}

// TestOpen: a file is read as a file; a name with no such file is a built-in scenario;
// anything else says neither exists.
func TestOpen(t *testing.T) {
	t.Parallel()
	byFile, err := Open(filepath.Join(fixtures, "flapping-latency.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	byName, err := Open("flapping-latency")
	if err != nil || byName.Name != byFile.Name || !slices.Contains(Builtins(), "flapping-latency") {
		t.Fatalf("built-in scenario by name: %v, %v", byName, err)
	}
	if _, err := Open("no-such-scenario"); !errors.Is(err, ErrNoScenario) || !strings.HasPrefix(err.Error(), "no-such-scenario: ") {
		t.Errorf("unknown scenario: %v", err)
	}
}

// TestPeopleOnAnyRegisteredPlatform: a person whose only identity is on Slack sees the
// card in the tenant's Slack channel and approves it with its button, as on Telegram;
// the recovery runs on that approval.
func TestPeopleOnAnyRegisteredPlatform(t *testing.T) {
	t.Parallel()
	sc, err := Parse("slack.yaml", []byte(`seed: 3
duration: 30m
tenants:
  - id: acme
    services: [{name: checkout}]
    chats: {slack: [C0123456789]}
    people: [{name: tendai, role: approver, ids: {slack: U0123456789}}]
    recovery:
      url: https://acme.example/recover
      secret: a-recovery-secret-of-some-length
      actions: [{name: restart_workers, risk: low}]
services:
  - {name: checkout, p95_ms: 180, error_rate: 0.002, script: [{at: 5m, error_rate: 0.3, p95_ms: 900}]}
people:
  - {name: tendai, after: 1m}
`), ".")
	if err != nil {
		t.Fatal(err)
	}
	if sc.People[0].Channel != "slack" {
		t.Fatalf("tendai answers on %q, want slack (the only identity)", sc.People[0].Channel)
	}
	r, err := Run(t.Context(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := r.WriteText(&text, false); err != nil {
		t.Fatal(err)
	}
	if r.Summary.Executed != 1 || !strings.Contains(text.String(), "bot→slack:C0123456789") || !regexp.MustCompile(`tendai +presses \[Approve`).Match(text.Bytes()) {
		t.Errorf("executed %d; timeline:\n%s", r.Summary.Executed, text.String())
	}
}
