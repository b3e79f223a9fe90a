package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// The MCP server: the same gate as tools, at /mcp (Streamable HTTP), authenticated by the
// same API tokens.

// MCPHandler serves the MCP endpoint.
func (g *Gate) MCPHandler(version string) http.Handler {
	srv := mcp.NewServer(&mcp.Implementation{Name: "alertengine", Title: "AlertEngine approval gate", Version: version}, nil)
	f, t := false, true
	mcp.AddTool(srv, &mcp.Tool{
		Name: "request_approval",
		Description: "Ask the people on call to approve one action. Returns the decision (approved, rejected, expired) with a signed receipt " +
			"when it comes within wait_seconds, else the pending approval's id to poll with get_approval. Nothing runs until a person approves; " +
			"the same idempotency_key returns the same approval.",
		Annotations: &mcp.ToolAnnotations{Title: "Request a human approval", ReadOnlyHint: false, DestructiveHint: &f, IdempotentHint: true, OpenWorldHint: &t},
	}, g.toolRequest)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "get_approval",
		Description: "The state of an approval this agent requested: pending, approved, rejected or expired, who decided, when, and the signed receipt; waits up to wait_seconds for a decision.",
		Annotations: &mcp.ToolAnnotations{Title: "Get an approval", ReadOnlyHint: true, OpenWorldHint: &f},
	}, g.toolGet)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "list_incidents",
		Description: "The tenant's most recent incidents (id, service, stage, opened, action), newest first.",
		Annotations: &mcp.ToolAnnotations{Title: "List incidents", ReadOnlyHint: true, OpenWorldHint: &f},
	}, g.toolList)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "get_incident",
		Description: "One incident of the tenant: status, diagnosis, the correlated commits and its timeline from the audit ledger.",
		Annotations: &mcp.ToolAnnotations{Title: "Get an incident", ReadOnlyHint: true, OpenWorldHint: &f},
	}, g.toolIncident)
	mcp.AddTool(srv, &mcp.Tool{
		Name:        "service_status",
		Description: "A service's latest health as the detector measured it: score, status, p95, error rate, trend.",
		Annotations: &mcp.ToolAnnotations{Title: "Service status", ReadOnlyHint: true, OpenWorldHint: &f},
	}, g.toolStatus)
	h := mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return srv }, &mcp.StreamableHTTPOptions{
		Logger: g.o.Logger, SessionTimeout: 30 * time.Minute, MaxRequestBodyBytes: MaxBody,
		// Every request carries a bearer token, which a page rebinding a name to a local
		// address does not have; the bot is often reached through a local reverse proxy
		// with a public Host.
		DisableLocalhostProtection: true})
	verify := func(_ context.Context, secret string, _ *http.Request) (*auth.TokenInfo, error) {
		tok, err := g.o.Tokens.Authenticate("Bearer " + secret)
		if err != nil {
			return nil, auth.ErrInvalidToken
		}
		// UserID ties a session to its token: another token cannot use it.
		return &auth.TokenInfo{UserID: tok.SHA256, Extra: map[string]any{"token": tok}}, nil
	}
	authed := auth.RequireBearerToken(verify, &auth.RequireBearerTokenOptions{AllowMissingExpiration: true})(h)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A tool call may wait MaxToolWait for people: longer than the server's write
		// timeout.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(MaxToolWait + time.Minute))
		authed.ServeHTTP(w, r)
	})
}

func tokenOf(req *mcp.CallToolRequest) (Token, error) {
	if req.Extra == nil || req.Extra.TokenInfo == nil {
		return Token{}, ErrUnauthenticated
	}
	t, ok := req.Extra.TokenInfo.Extra["token"].(Token)
	if !ok {
		return Token{}, ErrUnauthenticated
	}
	return t, nil
}

// toolErr turns a refusal into a tool error the model reads (never a protocol error).
func toolErr(err error) (*mcp.CallToolResult, any, error) {
	var he *HTTPError
	msg := "the gate is unavailable; retry"
	if errors.As(err, &he) {
		msg = he.Msg
	} else if errors.Is(err, ErrUnauthenticated) {
		msg = "unauthorized"
	}
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}, nil, nil
}

// ApprovalInput is request_approval's input.
type ApprovalInput struct {
	Action         string         `json:"action" jsonschema:"the action to approve: a configured recovery action or an external action this token may request"`
	Params         map[string]any `json:"params,omitempty" jsonschema:"the action's parameters (integers, strings, booleans, null, objects, arrays; no fractions); bound into the action hash"`
	Summary        string         `json:"summary" jsonschema:"one line for the approvers: what and why"`
	Details        string         `json:"details,omitempty" jsonschema:"more for the approvers"`
	Risk           string         `json:"risk,omitempty" jsonschema:"low (default) or high: high asks two approvers"`
	Incident       string         `json:"incident,omitempty" jsonschema:"the incident this is about (INC-…)"`
	ExpiresIn      string         `json:"expires_in,omitempty" jsonschema:"how long an approval stays usable after the decision, e.g. 10m (1m..24h)"`
	IdempotencyKey string         `json:"idempotency_key" jsonschema:"the same key returns the same approval"`
	Execute        bool           `json:"execute,omitempty" jsonschema:"ask the executor to run a configured recovery action once approved, instead of running it yourself"`
	WaitSeconds    int            `json:"wait_seconds,omitempty" jsonschema:"how long to wait for the decision (0..600); 0 returns the pending id at once"`
}

// MaxToolWait bounds how long request_approval and get_approval wait.
const MaxToolWait = 10 * time.Minute

func (g *Gate) toolRequest(ctx context.Context, req *mcp.CallToolRequest, in ApprovalInput) (*mcp.CallToolResult, Status, error) {
	tok, err := tokenOf(req)
	if err != nil {
		r, _, _ := toolErr(err)
		return r, Status{}, nil
	}
	q := Request{Action: in.Action, Summary: in.Summary, Details: in.Details, Risk: in.Risk, Incident: in.Incident,
		ExpiresIn: in.ExpiresIn, IdempotencyKey: in.IdempotencyKey, Execute: in.Execute}
	if in.Params != nil {
		q.Params, _ = json.Marshal(in.Params)
	}
	st, _, err := g.Create(ctx, tok, q)
	if err != nil {
		r, _, _ := toolErr(err)
		return r, Status{}, nil
	}
	return g.waitTool(ctx, req, tok, st, in.WaitSeconds)
}

// GetInput is get_approval's input.
type GetInput struct {
	ID          string `json:"id" jsonschema:"the approval id (apr_…)"`
	WaitSeconds int    `json:"wait_seconds,omitempty" jsonschema:"how long to wait for a decision (0..600)"`
}

func (g *Gate) toolGet(ctx context.Context, req *mcp.CallToolRequest, in GetInput) (*mcp.CallToolResult, Status, error) {
	tok, err := tokenOf(req)
	if err != nil {
		r, _, _ := toolErr(err)
		return r, Status{}, nil
	}
	st, err := g.Get(ctx, tok, in.ID)
	if err != nil {
		r, _, _ := toolErr(err)
		return r, Status{}, nil
	}
	return g.waitTool(ctx, req, tok, st, in.WaitSeconds)
}

// waitTool waits for the decision, telling the client every few seconds that the
// request is still before the approvers (progress notifications, when it asked for them).
func (g *Gate) waitTool(ctx context.Context, req *mcp.CallToolRequest, tok Token, st Status, secs int) (*mcp.CallToolResult, Status, error) {
	wait := min(max(time.Duration(secs)*time.Second, 0), MaxToolWait)
	deadline := time.Now().Add(wait)
	progress := req.Params.GetProgressToken()
	n := 0.0
	for st.Status == Pending && time.Now().Before(deadline) {
		step := min(g.o.ProgressEvery, time.Until(deadline))
		var err error
		st, err = g.Wait(ctx, tok, st.ID, step)
		if err != nil {
			r, _, _ := toolErr(err)
			return r, Status{}, nil
		}
		if ctx.Err() != nil {
			break
		}
		if st.Status == Pending && progress != nil {
			n++
			_ = req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: progress, Progress: n,
				Message: fmt.Sprintf("%s is waiting for the approvers of %s", st.ID, tok.Tenant)})
		}
	}
	return nil, st, nil
}

// IncidentSummary is one row of list_incidents.
type IncidentSummary struct {
	ID       string    `json:"id"`
	Service  string    `json:"service"`
	Stage    string    `json:"stage"`
	OpenedAt time.Time `json:"opened_at"`
	Action   string    `json:"action,omitempty"`
}

// ListInput is list_incidents' input.
type ListInput struct {
	Limit int `json:"limit,omitempty" jsonschema:"how many (1..50, default 20)"`
}

// ListOutput is list_incidents' output.
type ListOutput struct {
	Incidents []IncidentSummary `json:"incidents"`
}

func (g *Gate) toolList(ctx context.Context, req *mcp.CallToolRequest, in ListInput) (*mcp.CallToolResult, ListOutput, error) {
	tok, err := tokenOf(req)
	if err != nil {
		r, _, _ := toolErr(err)
		return r, ListOutput{}, nil
	}
	limit := in.Limit
	if limit <= 0 || limit > 50 {
		limit = 20
	}
	ids, err := g.o.Ledger.Store().Incidents(ctx, tok.Tenant)
	if err != nil {
		r, _, _ := toolErr(errUnavailable)
		return r, ListOutput{}, nil
	}
	out := ListOutput{Incidents: []IncidentSummary{}}
	for i := len(ids) - 1; i >= 0 && len(out.Incidents) < limit; i-- {
		inc, _, err := g.o.Ledger.Incident(ctx, tok.Tenant, ids[i])
		if err != nil {
			continue
		}
		out.Incidents = append(out.Incidents, IncidentSummary{ID: inc.ID, Service: inc.Service, Stage: string(inc.Stage), OpenedAt: inc.OpenedAt, Action: inc.Action})
	}
	return nil, out, nil
}

// IncidentInput is get_incident's input.
type IncidentInput struct {
	ID string `json:"id" jsonschema:"the incident code (INC-…)"`
}

// TimelineEntry is one ledger entry of an incident, as get_incident shows it.
type TimelineEntry struct {
	Seq    uint64    `json:"seq"`
	At     time.Time `json:"at"`
	Event  string    `json:"event"`
	Actor  string    `json:"actor"`
	Stage  string    `json:"stage"`
	Action string    `json:"action,omitempty"`
	Reason string    `json:"reason,omitempty"`
	Hash   string    `json:"hash"`
}

// IncidentOutput is get_incident's output.
type IncidentOutput struct {
	IncidentSummary
	ApprovedBy []string                    `json:"approved_by,omitempty"`
	Diagnosis  []conversation.Theory       `json:"diagnosis,omitempty"`
	Commits    []conversation.Commit       `json:"commits,omitempty"`
	Timeline   []TimelineEntry             `json:"timeline"`
	Status     *conversation.ServiceStatus `json:"status,omitempty"`
}

func (g *Gate) toolIncident(ctx context.Context, req *mcp.CallToolRequest, in IncidentInput) (*mcp.CallToolResult, IncidentOutput, error) {
	tok, err := tokenOf(req)
	if err != nil {
		r, _, _ := toolErr(err)
		return r, IncidentOutput{}, nil
	}
	inc, hist, err := g.o.Ledger.Incident(ctx, tok.Tenant, in.ID)
	if err != nil || len(hist) == 0 {
		r, _, _ := toolErr(&HTTPError{http.StatusNotFound, "no such incident"})
		return r, IncidentOutput{}, nil
	}
	out := IncidentOutput{IncidentSummary: IncidentSummary{ID: inc.ID, Service: inc.Service, Stage: string(inc.Stage), OpenedAt: inc.OpenedAt, Action: inc.Action},
		ApprovedBy: inc.ApprovedBy, Timeline: []TimelineEntry{}}
	for _, e := range hist {
		out.Timeline = append(out.Timeline, TimelineEntry{Seq: e.Seq, At: e.At, Event: string(e.Event), Actor: e.Actor.ID, Stage: string(e.To),
			Action: e.Action, Reason: e.Reason, Hash: e.Hash})
		if e.Event == ledger.Propose {
			if p, err := conversation.ProposalOf(e); err == nil {
				out.Diagnosis = p.Theories
			}
		}
	}
	if g.o.Commits != nil {
		if cs, err := g.o.Commits.RecentCommits(ctx, tok.Tenant, inc.Service, inc.OpenedAt.Add(-conversation.CommitWindow)); err == nil {
			for _, c := range cs {
				if !c.At.After(inc.OpenedAt) {
					out.Commits = append(out.Commits, c)
				}
			}
		}
	}
	if g.o.Status != nil {
		if s, err := g.o.Status.ServiceStatus(ctx, tok.Tenant, inc.Service); err == nil {
			out.Status = &s
		}
	}
	return nil, out, nil
}

// StatusInput is service_status' input.
type StatusInput struct {
	Service string `json:"service" jsonschema:"the service name"`
}

func (g *Gate) toolStatus(ctx context.Context, req *mcp.CallToolRequest, in StatusInput) (*mcp.CallToolResult, conversation.ServiceStatus, error) {
	tok, err := tokenOf(req)
	if err != nil {
		r, _, _ := toolErr(err)
		return r, conversation.ServiceStatus{}, nil
	}
	if g.o.Status == nil {
		r, _, _ := toolErr(&HTTPError{http.StatusNotFound, "no health source is configured"})
		return r, conversation.ServiceStatus{}, nil
	}
	s, err := g.o.Status.ServiceStatus(ctx, tok.Tenant, in.Service)
	if err != nil {
		r, _, _ := toolErr(&HTTPError{http.StatusNotFound, "no status for service " + clip(in.Service, 64)})
		return r, conversation.ServiceStatus{}, nil
	}
	return nil, s, nil
}
