package agent

import (
	"errors"
	"net/http"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/conversation"
)

// TokensOf are the API tokens the tenants file declares (tenants[].agents[]).
func TokensOf(f *config.File) []Token {
	var out []Token
	for _, t := range f.Tenants {
		for _, a := range t.Agents {
			out = append(out, Token{Agent: a.Name, Tenant: t.ID, SHA256: a.TokenSHA256, Actions: a.Actions, External: a.External, Rate: a.RatePerMinute})
		}
	}
	return out
}

// Assemble builds the gate for the agents of f, with o's Redis, ledger, presenter, key and
// sources; tenants are the conversation's. It returns nil, nil when no tenant declares an
// agent (the routes are then not mounted).
func Assemble(f *config.File, tenants []conversation.Tenant, o Options) (*Gate, error) {
	toks := TokensOf(f)
	if len(toks) == 0 {
		return nil, nil
	}
	if len(o.Key) == 0 {
		return nil, errors.New("tenants[].agents: receipts are signed with the ledger key; set LEDGER_SIGNING_KEY (or LEDGER_SIGNING_KEY_FILE)")
	}
	ts, err := NewTokens(toks)
	if err != nil {
		return nil, err
	}
	o.Tokens = ts
	byID := map[string]*conversation.Tenant{}
	for i := range tenants {
		byID[tenants[i].ID] = &tenants[i]
	}
	o.Tenant = func(id string) (*conversation.Tenant, bool) { t, ok := byID[id]; return t, ok }
	return New(o)
}

// Routes are the gate's routes for the bot's server: the API, the MCP endpoint and the
// receipts' key set.
func (g *Gate) Routes(version string) []channel.Route {
	mux := http.NewServeMux()
	g.register(mux)
	mcpH := g.MCPHandler(version)
	return []channel.Route{
		// The server's default limit is above the gate's own (MaxBody), which answers with
		// its own clear 413.
		{Pattern: "POST /v1/approvals", Handler: mux},
		{Pattern: "GET /v1/approvals/{id}", Handler: mux},
		{Pattern: "POST /v1/approvals/{id}/consume", Handler: mux},
		{Pattern: "POST /v1/approvals/{id}/result", Handler: mux},
		{Pattern: "GET /.well-known/alertengine-keys", Handler: mux},
		{Pattern: "/mcp", Handler: mcpH},
	}
}
