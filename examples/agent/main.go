// Command agent is a small AI-agent stand-in that asks AlertEngine's people on call before
// it acts: it calls the request_approval tool of the bot's MCP server (the MCP SDK's own
// client), waits for the decision while printing the server's progress notifications, and
// when approved consumes the approval once over the HTTP API, "acts", and reports the result.
//
//	ALERTENGINE_URL=https://bot.example.com ALERTENGINE_AGENT_TOKEN=… \
//	  go run ./examples/agent -action scale_up -params '{"service":"checkout","replicas":6}' \
//	  -summary "checkout p95 is 2.8 s; add two replicas"
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type bearer struct{ token string }

func (b bearer) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+b.token)
	return http.DefaultTransport.RoundTrip(r)
}

func main() {
	action := flag.String("action", "", "the action to ask for")
	params := flag.String("params", "{}", "its params as a JSON object")
	summary := flag.String("summary", "", "one line for the approvers")
	key := flag.String("key", "", "idempotency key (default: a new one per run)")
	wait := flag.Duration("wait", 5*time.Minute, "how long to wait for the decision")
	flag.Parse()
	base, token := strings.TrimSuffix(os.Getenv("ALERTENGINE_URL"), "/"), os.Getenv("ALERTENGINE_AGENT_TOKEN")
	if base == "" || token == "" || *action == "" || *summary == "" {
		fmt.Fprintln(os.Stderr, "agent: set ALERTENGINE_URL and ALERTENGINE_AGENT_TOKEN, and give -action and -summary")
		os.Exit(2)
	}
	if *key == "" {
		*key = fmt.Sprintf("example-%d", time.Now().UnixNano())
	}
	if err := run(context.Background(), base, token, *action, *params, *summary, *key, *wait); err != nil {
		fmt.Fprintln(os.Stderr, "agent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, base, token, action, params, summary, key string, wait time.Duration) error {
	var p map[string]any
	if err := json.Unmarshal([]byte(params), &p); err != nil {
		return fmt.Errorf("-params: %w", err)
	}
	hc := &http.Client{Transport: bearer{token}}
	client := mcp.NewClient(&mcp.Implementation{Name: "example-agent", Version: "v0.1.0"}, &mcp.ClientOptions{
		ProgressNotificationHandler: func(_ context.Context, n *mcp.ProgressNotificationClientRequest) {
			fmt.Println("…", n.Params.Message)
		},
	})
	s, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: base + "/mcp", HTTPClient: hc}, nil)
	if err != nil {
		return fmt.Errorf("connect to %s/mcp: %w", base, err)
	}
	defer s.Close()
	call := &mcp.CallToolParams{Name: "request_approval", Arguments: map[string]any{
		"action": action, "params": p, "summary": summary, "idempotency_key": key, "wait_seconds": int(wait.Seconds())}}
	call.SetProgressToken(key)
	res, err := s.CallTool(ctx, call)
	if err != nil {
		return err
	}
	if res.IsError {
		return errors.New(res.Content[0].(*mcp.TextContent).Text)
	}
	var st struct {
		ID, Status, ActionHash, Receipt string
		Approvers                       []string
	}
	b, _ := json.Marshal(res.StructuredContent)
	_ = json.Unmarshal(b, &st)
	fmt.Printf("%s: %s %v\n", st.ID, st.Status, st.Approvers)
	if st.Status != "approved" {
		return fmt.Errorf("not approved (%s): not acting", st.Status)
	}
	// Declare that we act now: once. The receipt goes along and is checked again.
	if err := post(ctx, hc, base+"/v1/approvals/"+st.ID+"/consume", map[string]any{"action_hash": st.ActionHash, "receipt": st.Receipt}); err != nil {
		return fmt.Errorf("consume refused: %w", err)
	}
	fmt.Printf("consumed; acting on %s now (receipt kept for the audit: %d bytes)\n", action, len(st.Receipt))
	// ... the action runs here ...
	// Then say how it went, so the incident closes (RESOLVED, or WEBHOOK_FAILED on failure).
	if err := post(ctx, hc, base+"/v1/approvals/"+st.ID+"/result", map[string]any{"ok": true, "detail": "done by the example agent"}); err != nil {
		return fmt.Errorf("result not recorded: %w", err)
	}
	fmt.Println("result reported")
	return nil
}

// post sends one JSON request of the API; a non-200 answer is an error with its body.
func post(ctx context.Context, hc *http.Client, url string, v any) error {
	body, _ := json.Marshal(v)
	req, err := http.NewRequestWithContext(ctx, "POST", url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%d: %s", resp.StatusCode, bytes.TrimSpace(out))
	}
	return nil
}
