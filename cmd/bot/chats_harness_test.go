package main

import (
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
)

// secondChat is a chat platform a tenant uses beside its Telegram group.
type secondChat struct {
	// name is its key under chats: and ids: ("slack", "whatsapp").
	name string
	// chat is the YAML flow sequence of its incident chats (`[C0123ABCDEF]`).
	chat string
	// tendai, rudo and vimbai are the three people's ids on it (tendai and rudo approve,
	// vimbai views).
	tendai, rudo, vimbai string
	// risk is restart_workers' risk (default low).
	risk string
	// vars are its environment variables.
	vars env
	// extra is appended to the tenant's mapping (YAML at the tenant's indentation).
	extra string
}

// newSecondChatHarness is one tenant using its Telegram group and a second platform at
// once, the same people on both, with the environment of the real serve (the registered
// channels check the tenants file's ids).
func newSecondChatHarness(t *testing.T, c secondChat) *harness {
	t.Helper()
	// The Telegram-only world, whose tenants file is then replaced.
	h := newHarnessWith(t, "", "")
	if c.risk == "" {
		c.risk = "low"
	}
	person := func(name, role string, tg int64, id string) string {
		return fmt.Sprintf("      - {name: %s, role: %s, ids: {telegram: \"%d\", %s: %q}}\n", name, role, tg, c.name, id)
	}
	cfg := fmt.Sprintf(`tenants:
  - id: acme
    services:
      - name: checkout
    chats:
      telegram: [%d]
      %s: %s
    people:
%s%s%s    recovery:
      url: %s/recover
      secret: %s
      allow_private_network: true
      actions:
        - {name: restart_workers, risk: %s}
    policy:
      approval_ttl: 5m
      escalate_after: 3m
    alertmanager:
      token: %s
`, groupID, c.name, c.chat, person("tendai", "approver", userTendai.ID, c.tendai), person("rudo", "approver", userRudo.ID, c.rudo),
		person("vimbai", "viewer", userVimbai.ID, c.vimbai), h.hook.srv.URL, recoverySecret, c.risk, amToken) + c.extra
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range c.vars {
		h.vars[k] = v
	}
	var err error
	if h.env, err = config.LoadEnv(h.vars.lookup, config.Serve); err == nil {
		h.file, err = config.Load(h.cfgPath, h.vars.lookup, h.env, app.ChatChannels(h.vars.lookup)...)
	}
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// eventually checks ok on a short tick until it holds, or fails the test after 30 s
// with what was wanted and what there is (said by now).
func eventually(t *testing.T, what string, ok func() bool, now func() string) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	for !ok() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s never happened; %s", what, now())
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// resolvedAfterOneRun checks the end of a story: the incident RESOLVED, the recovery
// webhook called once.
func resolvedAfterOneRun(t *testing.T, h *harness, inc string) {
	t.Helper()
	if st := h.stage(t, inc); st != ledger.Resolved {
		t.Fatalf("final stage %s", st)
	}
	if n, _ := h.hook.count(); n != 1 {
		t.Fatalf("the recovery webhook was called %d times", n)
	}
}

// readyAndCounted checks that /readyz does not name channel as degraded and that
// /metrics has every line of wants.
func readyAndCounted(t *testing.T, r *replica, channel string, wants ...string) {
	t.Helper()
	if code, body := get(t, r.base+"/readyz"); code != http.StatusOK || strings.Contains(body, channel) {
		t.Fatalf("/readyz: %d %s", code, body)
	}
	_, metrics := get(t, r.base+"/metrics")
	for _, want := range wants {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
