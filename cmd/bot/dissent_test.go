package main

import (
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/council/counciltest"
	"github.com/alertengine/alertengine/ledger"
)

// TestDissentVoidedPartialApproval: on a dissent card, tendai gives the first of two
// approvals to "Trust B: failover_db" (high risk), then rudo approves "Trust A:
// restart_workers", which runs. Every surface names rudo alone as the approver of what
// ran and shows tendai's approval as voided: the card, /details, "who approved?",
// /replay, `bot replay`, both exports, the ledger and the recovery webhook's approved_by.
// The VALIDATED entry names both offered actions.
func TestDissentVoidedPartialApproval(t *testing.T) {
	llm := counciltest.New(t)
	llm.Script("model-a", diag("database", 0.72, "restart_workers", "connection pool exhausted"))
	llm.Script("model-b", diag("dependency", 0.66, "failover_db", "primary database unreachable from this zone"))
	h := newCouncilHarness(t, llm)
	cfg, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg = []byte(strings.Replace(string(cfg), "{name: failover_db, risk: low}", "{name: failover_db, risk: high}", 1))
	if err := os.WriteFile(h.cfgPath, cfg, 0o600); err != nil {
		t.Fatal(err)
	}
	if h.file, err = config.Load(h.cfgPath, h.vars.lookup, h.env, app.ChatChannels(h.vars.lookup)...); err != nil {
		t.Fatal(err)
	}
	h.llmCallTimeout = 10 * time.Second
	r := h.start(false)
	r.alert(t, "firing")
	card := h.card(t)
	inc := incidentCode(t, card)
	refs := map[string]string{}
	for _, row := range card.Buttons() {
		for _, b := range row {
			refs[b.Text] = b.CallbackData
		}
	}
	refA, refB := refs["Trust A: restart_workers"], refs["Trust B: failover_db"]
	if refA == "" || refB == "" {
		t.Fatalf("buttons %+v", card.Buttons())
	}
	if a := waitAnswer(t, h.tg, h.tg.PressButton(groupID, card.MessageID, userTendai, refB)); !strings.HasPrefix(a.Text, "Recorded. A second approver") {
		t.Fatalf("tendai's Trust B answered %q", a.Text)
	}
	if a := waitAnswer(t, h.tg, h.tg.PressButton(groupID, card.MessageID, userRudo, refA)); !strings.HasPrefix(a.Text, "Approved.") {
		t.Fatalf("rudo's Trust A answered %q", a.Text)
	}
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("Recovery restart_workers executed")); err != nil {
		t.Fatal(err)
	}
	// A second approver of B can no longer complete it.
	if a := waitAnswer(t, h.tg, h.tg.PressButton(groupID, card.MessageID, userRudo, refB)); !strings.Contains(a.Text, "voided") {
		t.Fatalf("B after A answered %q", a.Text)
	}
	// The refusal is counted in /metrics.
	resp, err := http.Get(r.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `alertengine_refused_presses_total{recorded="true",tenant="acme"} 1`) {
		t.Errorf("/metrics does not count the refused press:\n%s", metrics)
	}
	const voided = "⊘ Voided: tendai's approval of failover_db (1 of 2)"
	// The card.
	closed, ok := h.tg.Message(groupID, card.MessageID)
	if !ok || !strings.Contains(closed.Text, "Approved by rudo at") || !strings.Contains(closed.Text, voided) ||
		!strings.Contains(closed.Text, "rudo approved restart_workers instead.") || strings.Contains(closed.Text, "tendai and rudo") {
		t.Fatalf("closed card:\n%s", closed.Text)
	}
	// /details.
	h.tg.SendText(groupID, userVimbai, "/details "+inc)
	d, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("Approved by: "))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(d.Text, "Approved by: rudo (restart_workers)") || !strings.Contains(d.Text, voided) {
		t.Fatalf("/details:\n%s", d.Text)
	}
	// "who approved?".
	h.tg.SendText(groupID, userVimbai, "who approved?", telegramtest.ReplyTo(card.MessageID))
	w, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("restart_workers: approved by rudo"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.Text, voided) || strings.Contains(w.Text, "tendai approved failover_db at") {
		t.Fatalf("who approved?:\n%s", w.Text)
	}
	// /replay.
	h.tg.SendText(groupID, userVimbai, "/replay "+inc)
	rp, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("Timeline of "+inc))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rp.Text, "partial_approve · tendai · first of two approvals for high-risk action failover_db · VOIDED: rudo approved restart_workers instead") {
		t.Fatalf("/replay:\n%s", rp.Text)
	}
	// The ledger.
	var validated, authorized *ledger.Entry
	for _, e := range h.history(t, inc) {
		switch e.Event {
		case ledger.Validate:
			validated = &e
		case ledger.Authorize:
			authorized = &e
		}
	}
	if validated == nil || validated.Data["offers"] != "restart_workers,failover_db" ||
		!strings.Contains(validated.Reason, "restart_workers for theory A (risk low)") || !strings.Contains(validated.Reason, "failover_db for theory B (risk high: two distinct approvers)") {
		t.Fatalf("VALIDATED %+v", validated)
	}
	if authorized == nil || authorized.Actor.ID != "rudo" || authorized.Data["approvers"] != "rudo" || authorized.Data["voided"] != "tendai: failover_db (B)" {
		t.Fatalf("AUTHORIZED %+v", authorized)
	}
	// What the recovery webhook was told.
	h.hook.mu.Lock()
	body := h.hook.bodies[0]
	h.hook.mu.Unlock()
	if !strings.Contains(body, `"approved_by":["rudo"]`) {
		t.Fatalf("recovery call %s", body)
	}
	// The operator's and the auditor's commands.
	vars := env{"REDIS_URL": h.vars["REDIS_URL"], "REDIS_KEY_PREFIX": h.prefix, "LEDGER_SIGNING_KEY": h.vars["LEDGER_SIGNING_KEY"],
		"LEDGER_CHECKPOINT_FILE": h.vars["LEDGER_CHECKPOINT_FILE"]}
	code, out, errs := runCLI(t, vars, "replay", "--tenant", "acme", "--incident", inc)
	if code != exitOK || !strings.Contains(out, "first of two approvals for high-risk action failover_db [VOIDED: rudo approved restart_workers instead]") {
		t.Fatalf("bot replay: %d\n%s%s", code, out, errs)
	}
	dir := t.TempDir()
	md, jsonl := filepath.Join(dir, "report.md"), filepath.Join(dir, "export.jsonl")
	if code, _, errs := runCLI(t, vars, "export", "--tenant", "acme", "--incident", inc, "--format", "md", "--out", md); code != exitOK {
		t.Fatalf("export md: %d %s", code, errs)
	}
	report, _ := os.ReadFile(md)
	for _, want := range []string{"**Approved by:** rudo\n", "**Voided:** tendai approved failover_db (1 of 2)", "partial_approve (VOIDED: rudo approved restart_workers instead)"} {
		if !strings.Contains(string(report), want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if code, _, errs := runCLI(t, vars, "export", "--tenant", "acme", "--incident", inc, "--format", "jsonl", "--out", jsonl); code != exitOK {
		t.Fatalf("export jsonl: %d %s", code, errs)
	}
	exported, _ := os.ReadFile(jsonl)
	if !strings.Contains(string(exported), `"voided":"tendai: failover_db (B)"`) {
		t.Errorf("jsonl export does not carry the voiding:\n%s", exported)
	}
}
