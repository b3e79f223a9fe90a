package agent_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type bearer struct{ secret string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.secret)
	return http.DefaultTransport.RoundTrip(r)
}

func mcpSession(t *testing.T, url, secret string, progress *atomic.Int32) (*mcp.ClientSession, error) {
	t.Helper()
	opts := &mcp.ClientOptions{}
	if progress != nil {
		opts.ProgressNotificationHandler = func(context.Context, *mcp.ProgressNotificationClientRequest) { progress.Add(1) }
	}
	c := mcp.NewClient(&mcp.Implementation{Name: "test-agent", Version: "v0"}, opts)
	s, err := c.Connect(context.Background(), &mcp.StreamableClientTransport{Endpoint: url, HTTPClient: &http.Client{Transport: bearer{secret}},
		MaxRetries: -1, DisableStandaloneSSE: true}, nil)
	if err == nil {
		t.Cleanup(func() { s.Close() })
	}
	return s, err
}

func structured(t *testing.T, r *mcp.CallToolResult) map[string]any {
	t.Helper()
	if r.IsError {
		t.Fatalf("tool error: %v", r.Content[0].(*mcp.TextContent).Text)
	}
	b, _ := json.Marshal(r.StructuredContent)
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}

func TestMCPRequestApprovalWaitsForThePerson(t *testing.T) {
	w := newWorld(t)
	srv := httptest.NewServer(w.gate.MCPHandler("test"))
	defer srv.Close()
	ctx := context.Background()

	if _, err := mcpSession(t, srv.URL, "not-a-token", nil); err == nil {
		t.Fatal("an unknown token connected")
	}
	var progress atomic.Int32
	s, err := mcpSession(t, srv.URL, acmeSecret, &progress)
	if err != nil {
		t.Fatal(err)
	}
	tools, err := s.ListTools(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	ann := map[string]*mcp.ToolAnnotations{}
	for _, tl := range tools.Tools {
		ann[tl.Name] = tl.Annotations
	}
	for _, ro := range []string{"get_approval", "list_incidents", "get_incident", "service_status"} {
		if ann[ro] == nil || !ann[ro].ReadOnlyHint {
			t.Errorf("%s is not marked read-only", ro)
		}
	}
	if a := ann["request_approval"]; a == nil || a.ReadOnlyHint || a.DestructiveHint == nil || *a.DestructiveHint || !a.IdempotentHint {
		t.Errorf("request_approval annotations %+v", a)
	}

	// A client that cannot wait gets the pending id at once.
	r, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "request_approval", Arguments: map[string]any{
		"action": "scale_up", "params": map[string]any{"replicas": 6}, "summary": "add replicas", "idempotency_key": "m1"}})
	if err != nil {
		t.Fatal(err)
	}
	st := structured(t, r)
	if st["status"] != agent.Pending || !strings.HasPrefix(st["id"].(string), "apr_") {
		t.Fatalf("no-wait answer: %v", st)
	}
	// The same key, now waiting: progress while the approvers think, then the decision.
	done := make(chan *mcp.CallToolResult, 1)
	go func() {
		p := &mcp.CallToolParams{Name: "request_approval", Arguments: map[string]any{
			"action": "scale_up", "params": map[string]any{"replicas": 6}, "summary": "add replicas", "idempotency_key": "m1", "wait_seconds": 10}}
		p.SetProgressToken("tok-1")
		r, err := s.CallTool(ctx, p)
		if err != nil {
			t.Error(err)
		}
		done <- r
	}()
	time.Sleep(400 * time.Millisecond)
	w.press(approverUser, w.card(st["incident"].(string)), "Approve")
	select {
	case r = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("request_approval did not return after the approval")
	}
	got := structured(t, r)
	if got["status"] != agent.Approved || got["id"] != st["id"] || got["receipt"] == nil {
		t.Fatalf("waited answer: %v", got)
	}
	if progress.Load() == 0 {
		t.Fatal("no progress notification while waiting")
	}
	if _, err := agent.VerifyReceipt(got["receipt"].(string), w.gate.PublicKey(), agent.Want{ActionHash: got["action_hash"].(string), Tenant: "acme"}, w.clock()); err != nil {
		t.Fatal(err)
	}
	// Read-only tools see the tenant's incidents; another tenant's token sees none of them.
	r, _ = s.CallTool(ctx, &mcp.CallToolParams{Name: "get_incident", Arguments: map[string]any{"id": st["incident"]}})
	inc := structured(t, r)
	if inc["stage"] != "AUTHORIZED" || len(inc["timeline"].([]any)) < 4 {
		t.Fatalf("get_incident: %v", inc)
	}
	r, _ = s.CallTool(ctx, &mcp.CallToolParams{Name: "list_incidents", Arguments: map[string]any{}})
	if l := structured(t, r)["incidents"].([]any); len(l) != 1 {
		t.Fatalf("list_incidents: %v", l)
	}
	b, err := mcpSession(t, srv.URL, betaSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	for name, args := range map[string]map[string]any{"get_approval": {"id": st["id"]}, "get_incident": {"id": st["incident"]}} {
		r, err := b.CallTool(ctx, &mcp.CallToolParams{Name: name, Arguments: args})
		if err != nil || !r.IsError || !strings.Contains(r.Content[0].(*mcp.TextContent).Text, "no such") {
			t.Fatalf("tenant B's %s of A's: %+v %v", name, r, err)
		}
	}
	// A refusal is a tool error naming the action.
	r, _ = s.CallTool(ctx, &mcp.CallToolParams{Name: "request_approval", Arguments: map[string]any{"action": "drop_database", "summary": "x", "idempotency_key": "m2"}})
	if !r.IsError || !strings.Contains(r.Content[0].(*mcp.TextContent).Text, "drop_database") {
		t.Fatalf("not allowed action: %+v", r)
	}
}
