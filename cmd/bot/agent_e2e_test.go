package main

import (
	"context"
	"encoding/json"
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
	"github.com/alertengine/alertengine/ledger"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

const agentToken = "sre-bot-token-for-tests-0123"

// withAgent adds an AI agent to the harness's tenant (and, with ttl, a short approval TTL).
func withAgent(t *testing.T, h *harness, ttl string) {
	t.Helper()
	b, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "    limits:", "    agents:\n      - {name: sre-bot, token: "+agentToken+", external_actions: [scale_up], actions: [restart_workers]}\n    limits:", 1)
	if ttl != "" {
		cfg = strings.Replace(cfg, "approval_ttl: 5m", "approval_ttl: "+ttl, 1)
		cfg = strings.Replace(cfg, "escalate_after: 3m", "escalate_after: 1h", 1)
	}
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	if h.file, err = config.Load(h.cfgPath, h.vars.lookup, h.env, app.ChatChannels(h.vars.lookup)...); err != nil {
		t.Fatal(err)
	}
}

type agentBearer struct{}

func (agentBearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+agentToken)
	return http.DefaultTransport.RoundTrip(r)
}

func agentCall(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+agentToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s %s: %d %q", method, url, resp.StatusCode, raw)
	}
	return resp.StatusCode, m
}

// The gate for AI agents on the real wiring: the MCP SDK's client asks, the card is in
// Telegram, a viewer's press is refused, an approver's press answers the waiting tool with
// a receipt that verify-receipt accepts (its decision proven in the signed log), the
// approval is consumed once, and the agent's reported result closes the incident.
func TestAgentApprovalEndToEnd(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	withAgent(t, h, "")
	b := h.start(false)

	c := mcp.NewClient(&mcp.Implementation{Name: "e2e-agent", Version: "v0"}, nil)
	s, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: b.base + "/mcp", HTTPClient: &http.Client{Transport: agentBearer{}}, MaxRetries: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	res := make(chan *mcp.CallToolResult, 1)
	go func() {
		r, err := s.CallTool(context.Background(), &mcp.CallToolParams{Name: "request_approval", Arguments: map[string]any{
			"action": "scale_up", "params": map[string]any{"service": "checkout", "replicas": 6},
			"summary": "checkout p95 is 2.8 s; add two replicas", "idempotency_key": "e2e-1", "wait_seconds": 60}})
		if err != nil {
			t.Error(err)
		}
		res <- r
	}()
	card, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, func(m telegramtest.Message) bool {
		return strings.Contains(m.Text, "Agent sre-bot asks to run scale_up") && len(m.Buttons()) > 0
	})
	if err != nil {
		t.Fatalf("no agent card: %v; group: %+v", err, h.tg.Sent(groupID))
	}
	if !strings.Contains(card.Text, "checkout p95 is 2.8 s; add two replicas") {
		t.Fatalf("card text %q", card.Text)
	}
	inc := incidentCode(t, card)
	waitPresented(t, b, inc)
	approve := card.Buttons()[0][0].CallbackData
	if a := waitAnswer(t, h.tg, h.tg.PressButton(groupID, card.MessageID, userVimbai, approve)); a.Text != "You are not an approver for acme." {
		t.Fatalf("viewer's press: %q", a.Text)
	}
	if a := waitAnswer(t, h.tg, h.tg.PressButton(groupID, card.MessageID, userTendai, approve)); !strings.HasPrefix(a.Text, "Approved.") {
		t.Fatalf("approver's press: %q", a.Text)
	}
	var r *mcp.CallToolResult
	select {
	case r = <-res:
	case <-time.After(30 * time.Second):
		t.Fatal("request_approval did not return after the approval")
	}
	if r == nil || r.IsError {
		t.Fatalf("tool result %+v", r)
	}
	raw, _ := json.Marshal(r.StructuredContent)
	var st map[string]any
	_ = json.Unmarshal(raw, &st)
	if st["status"] != "approved" || st["receipt"] == nil {
		t.Fatalf("tool answered %v", st)
	}
	// The receipt verifies offline with the published key.
	resp, err := http.Get(b.base + "/.well-known/alertengine-keys")
	if err != nil {
		t.Fatal(err)
	}
	keys, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	dir := t.TempDir()
	keyFile, answer := filepath.Join(dir, "keys.json"), filepath.Join(dir, "answer.json")
	_ = os.WriteFile(keyFile, keys, 0o600)
	_ = os.WriteFile(answer, raw, 0o600)
	if code, out, stderr := runCLI(t, env{}, "verify-receipt", answer, "--key", keyFile, "--tenant", "acme"); code != exitOK || !strings.Contains(out, "approved by tendai") ||
		!strings.Contains(out, "of the signed checkpoint "+ledger.DefaultOrigin+"/acme of ") {
		// The served receipt proves its decision entry in the tenant's signed log.
		t.Fatalf("verify-receipt: exit %d %q %q", code, out, stderr)
	}
	// Consume once; the second is refused.
	body := `{"action_hash":"` + st["action_hash"].(string) + `"}`
	if code, c := agentCall(t, "POST", b.base+"/v1/approvals/"+st["id"].(string)+"/consume", body); code != 200 {
		t.Fatalf("consume: %d %v", code, c)
	}
	if code, c := agentCall(t, "POST", b.base+"/v1/approvals/"+st["id"].(string)+"/consume", body); code != http.StatusConflict {
		t.Fatalf("second consume: %d %v", code, c)
	}
	// The executor never called the recovery webhook for an action the agent runs.
	time.Sleep(200 * time.Millisecond)
	if n, _ := h.hook.count(); n != 0 {
		t.Fatalf("the recovery webhook was called %d times for the agent's own action", n)
	}
	// The agent reports the outcome: the incident closes.
	if code, c := agentCall(t, "POST", b.base+"/v1/approvals/"+st["id"].(string)+"/result", `{"ok":true,"detail":"scaled"}`); code != 200 || c["stage"] != "RESOLVED" {
		t.Fatalf("result: %d %v", code, c)
	}
	_, hist, err := b.sys.Ledger().Incident(context.Background(), "acme", inc)
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, e := range hist {
		evs = append(evs, string(e.Event)+"/"+e.Actor.ID)
	}
	want := []string{"detect/agent:sre-bot", "propose/agent:sre-bot", "validate/policy", "refused_press/vimbai", "authorize/tendai", "consume/agent:sre-bot", "execute/agent:sre-bot", "resolve/agent:sre-bot"}
	if strings.Join(evs, " ") != strings.Join(want, " ") {
		t.Fatalf("ledger: %v\nwant %v", evs, want)
	}
}

// An unanswered request expires as a denial, in the chat, the ledger and the API.
func TestAgentRequestExpiresAsDenial(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	withAgent(t, h, "2s")
	b := h.start(false)
	code, st := agentCall(t, "POST", b.base+"/v1/approvals", `{"action":"scale_up","summary":"add replicas","idempotency_key":"late"}`)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, st)
	}
	if _, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, hasText("The approval expired")); err != nil {
		t.Fatalf("the chat was not told: %v", err)
	}
	_, got := agentCall(t, "GET", b.base+"/v1/approvals/"+st["id"].(string)+"?wait=5s", "")
	if got["status"] != "expired" {
		t.Fatalf("after the TTL: %v", got)
	}
	if s := h.stage(t, st["incident"].(string)); s != ledger.Expired {
		t.Fatalf("ledger stage %s", s)
	}
}
