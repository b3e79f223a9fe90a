package config

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"
)

// AI agents' API tokens: only their hashes kept, actions checked against the tenant's
// recovery actions, no token shared, no agent named as a person.
func TestAgents(t *testing.T) {
	const good = `tenants:
  - id: acme
    services: [{name: checkout}]
    people: [{name: tendai, role: approver, ids: {telegram: "11"}}]
    recovery: {url: "https://hooks.example/recover", secret: "recovery-secret-0123456789", actions: [{name: restart_workers, risk: low}]}
    agents:
      - name: sre-bot
        token: ${SRE_BOT_TOKEN}
        actions: [restart_workers]
        external_actions: [scale_up]
        rate: 2/s
      - name: runbook
        token_sha256: "` + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" + `"
        external_actions: [flush_cache]
`
	f, err := parseT("t.yaml", []byte(good), mapLookup(map[string]string{"SRE_BOT_TOKEN": "sre-bot-token-0123456789"}), demoEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	as := f.Tenants[0].Agents
	sum := sha256.Sum256([]byte("sre-bot-token-0123456789"))
	if len(as) != 2 || as[0].Name != "sre-bot" || as[0].TokenSHA256 != hex.EncodeToString(sum[:]) || as[0].RatePerMinute != 120 ||
		!slices.Equal(as[0].Actions, []string{"restart_workers"}) || !slices.Equal(as[0].External, []string{"scale_up"}) {
		t.Fatalf("agents %+v", as)
	}
	if as[1].RatePerMinute != DefaultAgentRate || as[1].TokenSHA256 != strings.Repeat("a", 64) {
		t.Fatalf("second agent %+v", as[1])
	}

	head := `tenants:
  - id: acme
    services: [{name: checkout}]
    people: [{name: tendai, role: approver, ids: {telegram: "11"}}]
    recovery: {url: "https://hooks.example/recover", secret: "recovery-secret-0123456789", actions: [{name: restart_workers, risk: low}]}
`
	for name, c := range map[string]struct{ doc, want string }{
		"unknown recovery action": {head + `    agents: [{name: a, token: "agent-token-0123456789", actions: [rollback]}]
`, `tenants[0].agents[0].actions[0]: "rollback" is not a recovery action of this tenant`},
		"external that is a recovery action": {head + `    agents: [{name: a, token: "agent-token-0123456789", external_actions: [restart_workers]}]
`, `tenants[0].agents[0].external_actions[0]: "restart_workers" is a recovery action of this tenant; list it under actions`},
		"no token": {head + `    agents: [{name: a, external_actions: [x]}]
`, `tenants[0].agents[0].token: is required`},
		"both": {head + `    agents: [{name: a, token: "agent-token-0123456789", token_sha256: "` + strings.Repeat("b", 64) + `", external_actions: [x]}]
`, `tenants[0].agents[0].token_sha256: give token or token_sha256, not both`},
		"short token": {head + `    agents: [{name: a, token: "short", external_actions: [x]}]
`, `tenants[0].agents[0].token: must be at least 16 characters`},
		"bad hash": {head + `    agents: [{name: a, token_sha256: "ABC", external_actions: [x]}]
`, `tenants[0].agents[0].token_sha256: must be 64 lowercase hex digits`},
		"nothing allowed": {head + `    agents: [{name: a, token: "agent-token-0123456789"}]
`, `agent a may request nothing`},
		"bad rate": {head + `    agents: [{name: a, token: "agent-token-0123456789", external_actions: [x], rate: fast}]
`, `tenants[0].agents[0].rate: must be N/s, N/min or N/h`},
		"named as a person": {head + `    agents: [{name: tendai, token: "agent-token-0123456789", external_actions: [x]}]
`, `agent tendai has the name of a person of this tenant`},
		"unknown key": {head + `    agents: [{name: a, token: "agent-token-0123456789", external_actions: [x], approve: true}]
`, `tenants[0].agents[0].approve`},
		"shared token": {head + `    agents: [{name: a, token: "the-same-agent-token-0123", external_actions: [x]}]
  - id: beta
    services: [{name: pay}]
    agents: [{name: b, token: "the-same-agent-token-0123", external_actions: [x]}]
`, `tenants[1].agents[0].token: same secret as tenants[0].agents[0].token; each needs its own`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseT("t.yaml", []byte(c.doc), mapLookup(nil), demoEnv(t))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant %q", err, c.want)
			}
			for _, secret := range []string{"agent-token-0123456789", "the-same-agent-token"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("a problem shows the token: %v", err)
				}
			}
		})
	}
}
