package agent_test

import (
	"crypto/ed25519"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/agent"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

func TestAssembleFromTheTenantsFile(t *testing.T) {
	rc, prefix := ledgertest.Redis(t)
	led, _ := ledger.New(ledger.Options{Store: ledger.NewRedisStore(rc, prefix)})
	_, key, _ := ed25519.GenerateKey(nil)
	f := &config.File{Tenants: []config.Tenant{{ID: "acme", Agents: []config.Agent{{Name: "sre-bot", TokenSHA256: agent.HashSecret(acmeSecret), External: []string{"scale_up"}, RatePerMinute: 5}}}}}
	o := agent.Options{Redis: rc, KeyPrefix: prefix, Ledger: led, Key: key, Presenter: &conversation.Engine{}}
	g, err := agent.Assemble(f, []conversation.Tenant{{ID: "acme"}}, o)
	if err != nil || g == nil {
		t.Fatalf("Assemble: %v %v", g, err)
	}
	var pats []string
	for _, r := range g.Routes("test") {
		pats = append(pats, r.Pattern)
	}
	if got := strings.Join(pats, ","); got != "POST /v1/approvals,GET /v1/approvals/{id},POST /v1/approvals/{id}/consume,POST /v1/approvals/{id}/result,GET /.well-known/alertengine-keys,/mcp" {
		t.Fatalf("routes %s", got)
	}
	o.Key = nil
	if _, err := agent.Assemble(f, nil, o); err == nil || !strings.Contains(err.Error(), "LEDGER_SIGNING_KEY") {
		t.Fatalf("without a key: %v", err)
	}
	if g, err := agent.Assemble(&config.File{Tenants: []config.Tenant{{ID: "acme"}}}, nil, o); g != nil || err != nil {
		t.Fatalf("no agents: %v %v", g, err)
	}
}
