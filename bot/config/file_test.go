package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// exampleLookup supplies the variables testdata/alertengine.yaml refers to.
var exampleLookup = mapLookup(map[string]string{
	"ACME_RECOVERY_SECRET": "acme-recovery-secret-value",
	"ACME_AM_TOKEN":        "acme-am-token-value",
})

func demoEnv(t *testing.T) Env {
	t.Helper()
	e, err := LoadEnv(mapLookup(nil), Demo)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestLoadExample(t *testing.T) {
	f, err := loadT("testdata/alertengine.yaml", exampleLookup, demoEnv(t))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	want := &File{
		Name: "testdata/alertengine.yaml",
		Tenants: []Tenant{{
			ID: "acme",
			Services: []Service{
				{Name: "checkout", HealthURL: "http://checkout:8000/health/alerts", AllowPrivateNetwork: true, Repos: []string{"acme/checkout"}},
				{Name: "payments"},
			},
			Chats: []Chat{{Channel: "telegram", ID: "-1001234567890"}, {Channel: "whatsapp", ID: "+263771234567"}},
			People: []Person{{
				Name: "tendai", Role: RoleApprover, IDs: map[string]string{"telegram": "123456789", "whatsapp": "+263771234567"},
				Phone: "+263771234567",
			}},
			Recovery: Recovery{
				URL:    "https://acme.example/recover",
				Secret: "acme-recovery-secret-value",
				Actions: []Action{
					{Name: "restart_workers", Risk: RiskLow},
					{Name: "rollback", Risk: RiskHigh},
				},
				DefaultAction: "restart_workers",
				Timeout:       30 * time.Second,
			},
			Policy: Policy{
				MinScoreToAlert: 70, ApprovalTTL: 5 * time.Minute, EscalateAfter: 180 * time.Second,
				RiskyPaths: []string{"**/migrations/**", "**/*.sql", "**/db/**", "**/*query*"}, RefuseSuspectApproval: true,
			},
			Alertmanager: Alertmanager{Token: "acme-am-token-value"},
			Limits:       Limits{IncidentsPerHour: 20},
		}},
	}
	if d := cmp.Diff(want, f); d != "" {
		t.Errorf("File (-want +got):\n%s", d)
	}
}

func TestLookups(t *testing.T) {
	f, err := loadT("testdata/alertengine.yaml", exampleLookup, demoEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	acme, ok := f.Tenant("acme")
	if !ok || acme.ID != "acme" {
		t.Fatalf("Tenant(acme) = %v, %v", acme, ok)
	}
	if _, ok := f.Tenant("nope"); ok {
		t.Error("Tenant(nope): want not found")
	}
	tests := []struct {
		name string
		got  func() (string, bool)
		want string
		ok   bool
	}{
		{"Person", func() (string, bool) { p, ok := acme.Person("tendai"); return p.Name, ok }, "tendai", true},
		{"Person unknown", func() (string, bool) { p, ok := acme.Person("Tendai"); return p.Name, ok }, "", false},
		{"PersonByID telegram", func() (string, bool) { p, ok := acme.PersonByID("telegram", "123456789"); return p.Name, ok }, "tendai", true},
		{"PersonByID empty", func() (string, bool) { p, ok := acme.PersonByID("telegram", ""); return p.Name, ok }, "", false},
		{"PersonByID whatsapp", func() (string, bool) { p, ok := acme.PersonByID("whatsapp", "+263771234567"); return p.Name, ok }, "tendai", true},
		{"PersonByID other channel", func() (string, bool) { p, ok := acme.PersonByID("whatsapp", "123456789"); return p.Name, ok }, "", false},
		{"PersonByID unknown", func() (string, bool) { p, ok := acme.PersonByID("whatsapp", "+14155238886"); return p.Name, ok }, "", false},
		{"ChatsOn", func() (string, bool) { c := acme.ChatsOn("telegram"); return strings.Join(c, ","), len(c) == 1 }, "-1001234567890", true},
		{"Service", func() (string, bool) { s, ok := acme.Service("payments"); return s.Name, ok }, "payments", true},
		{"Action", func() (string, bool) { a, ok := acme.Action("rollback"); return string(a.Risk), ok }, "high", true},
		{"Action unknown", func() (string, bool) { a, ok := acme.Action("drop_db"); return string(a.Risk), ok }, "", false},
		{"Approvers", func() (string, bool) { a := acme.Approvers(); return a[0].Name, len(a) == 1 }, "tendai", true},
		{"TenantByAlertmanagerToken", func() (string, bool) {
			t, ok := f.TenantByAlertmanagerToken("acme-am-token-value")
			if !ok {
				return "", false
			}
			return t.ID, ok
		}, "acme", true},
		{"TenantByAlertmanagerToken wrong", func() (string, bool) { _, ok := f.TenantByAlertmanagerToken("acme-am-token-valu"); return "", ok }, "", false},
		{"TenantByAlertmanagerToken empty", func() (string, bool) { _, ok := f.TenantByAlertmanagerToken(""); return "", ok }, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := tt.got()
			if got != tt.want || ok != tt.ok {
				t.Errorf("got %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestParseDefaults(t *testing.T) {
	const minimal = `tenants:
  - id: acme
    services: [{name: checkout}]
`
	env := demoEnv(t)
	env.PolicyMinScoreToAlert = 55
	tests := []struct {
		name string
		yaml string
		env  Env
		want func(Tenant) any
		exp  any
	}{
		{"min score from the environment", minimal, env, func(t Tenant) any { return t.Policy.MinScoreToAlert }, 55},
		{"min score of a zero Env is the documented 70", minimal, Env{}, func(t Tenant) any { return t.Policy.MinScoreToAlert }, 70},
		{"policy defaults", minimal, env, func(t Tenant) any {
			return []any{t.Policy.ApprovalTTL, t.Policy.EscalateAfter, t.Policy.RiskyPaths, t.Limits.IncidentsPerHour}
		}, []any{5 * time.Minute, 3 * time.Minute, DefaultRiskyPaths(), 20}},
		{"no recovery: no actions, no default", minimal, env, func(t Tenant) any { return t.Recovery }, Recovery{}},
		{"explicitly empty risky_paths stays empty", minimal + "    policy: {risky_paths: []}\n", env,
			func(t Tenant) any { return t.Policy.RiskyPaths }, []string{}},
		{"default action is the first low-risk action", minimal + `    people: [{name: a, role: approver, telegram: 1}]
    recovery:
      url: https://acme.example/recover
      secret: s
      actions: [{name: rollback, risk: high}, {name: scale_up, risk: low}, {name: restart, risk: low}]
`, env, func(t Tenant) any { return t.Recovery.DefaultAction }, "scale_up"},
		{"explicit default action may be high risk", minimal + `    people: [{name: a, role: approver, telegram: 1}]
    recovery:
      url: https://acme.example/recover
      secret: s
      actions: [{name: rollback, risk: high}, {name: restart, risk: low}]
      default_action: rollback
`, env, func(t Tenant) any { return t.Recovery.DefaultAction }, "rollback"},
		{"only high-risk actions: no default", minimal + `    people: [{name: a, role: approver, telegram: 1}]
    recovery: {url: "https://acme.example/recover", secret: s, actions: [{name: rollback, risk: high}]}
`, env, func(t Tenant) any { return t.Recovery.DefaultAction }, ""},
		{"alertmanager limits", minimal + "    alertmanager: {token: t, max_alerts: 500, expire_after: 6h}\n", env,
			func(t Tenant) any { return []any{t.Alertmanager.MaxAlerts, t.Alertmanager.ExpireAfter} }, []any{500, 6 * time.Hour}},
		{"viewer needs no chat identity", minimal + "    people: [{name: v, role: viewer}]\n", env,
			func(t Tenant) any { return t.People }, []Person{{Name: "v", Role: RoleViewer}}},
		{"whatsapp: prefix and unquoted numbers are accepted", minimal + `    chats: {whatsapp: ["whatsapp:+263771234567", +14155238886]}
    people: [{name: w, role: approver, whatsapp: +263771234568, phone: "+263771234568"}]
`, env, func(t Tenant) any { return []any{t.ChatsOn("whatsapp"), t.People[0].IDs["whatsapp"]} },
			[]any{[]string{"+263771234567", "+14155238886"}, "+263771234568"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := parseT("alertengine.yaml", []byte(tt.yaml), nil, tt.env)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d := cmp.Diff(tt.exp, tt.want(f.Tenants[0])); d != "" {
				t.Errorf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestParseProblems(t *testing.T) {
	serve, err := LoadEnv(mapLookup(serveBase), Serve)
	if err != nil {
		t.Fatal(err)
	}
	lookup := mapLookup(map[string]string{"SECRET": "s3cret", "EMPTY": "", "SCORE": "80", "BAD_SCORE": "high"})
	tests := []struct {
		name string
		yaml string
		env  *Env
		want []string // every problem line, in order
	}{
		// The file as a whole.
		{"empty file", "", nil, []string{
			"alertengine.yaml: tenants: the file is empty; at least one tenant is required",
		}},
		{"only comments", "# nothing yet\n", nil, []string{
			"alertengine.yaml: tenants: the file has no content; at least one tenant is required",
		}},
		{"no tenants key", "tenant:\n  - id: acme\n", nil, []string{
			`alertengine.yaml:1: tenant: unknown key; did you mean "tenants"?`,
			"alertengine.yaml:1: tenants: is required: list at least one tenant",
		}},
		{"empty tenant list", "tenants: []\n", nil, []string{
			"alertengine.yaml:1: tenants: no tenant defined; list at least one",
		}},
		{"tenants not a list", "tenants: acme\n", nil, []string{
			"alertengine.yaml:1: tenants: want a list, got a single value",
		}},
		{"top level not a mapping", "- acme\n", nil, []string{
			"alertengine.yaml:1: (top level): want a mapping (key: value), got a list",
		}},
		{"invalid YAML", "tenants:\n  - id: acme\n    services: [{name: a}\n", nil, []string{
			"alertengine.yaml:3: invalid YAML: sequence end token ']' not found",
		}},
		{"unquoted ${VAR} in a flow list", "tenants:\n  - id: acme\n    services: [{name: a, repos: [${REPO}]}]\n", nil, []string{
			`alertengine.yaml:3: invalid YAML: ',' or ']' must be specified (inside [ ] or { }, quote values that contain ${VAR}: ["${VAR}"])`,
		}},
		{"two documents", "tenants: []\n---\ntenants: []\n", nil, []string{
			"alertengine.yaml:3: more than one YAML document (---); put everything in one",
		}},

		// Unknown keys, at every level.
		{"unknown keys", `tenants:
  - id: acme
    polcy: {}
    services:
      - name: a
        helth_url: http://a
    policy:
      approval_ttl: 5m
      zzz: 1
`, nil, []string{
			`alertengine.yaml:3: tenants[0].polcy: unknown key; did you mean "policy"?`,
			`alertengine.yaml:6: tenants[0].services[0].helth_url: unknown key; did you mean "health_url"?`,
			"alertengine.yaml:9: tenants[0].policy.zzz: unknown key (allowed: min_score_to_alert, approval_ttl, escalate_after, risky_paths, refuse_suspect_approval)",
		}},

		// Tenant ids.
		{"tenant id", `tenants:
  - id: Acme_Corp
    services: [{name: a}]
  - id: abcdefghijklmnopqrstuvwxyz0123456
    services: [{name: a}]
  - services: [{name: a}]
`, nil, []string{
			`alertengine.yaml:2: tenants[0].id: tenant id "Acme_Corp" must be 1 to 32 characters of a-z, 0-9 and -`,
			`alertengine.yaml:4: tenants[1].id: tenant id "abcdefghijklmnopqrstuvwxyz0123456" must be 1 to 32 characters of a-z, 0-9 and -`,
			"alertengine.yaml:6: tenants[2].id: is required",
		}},
		{"duplicate tenant", `tenants:
  - id: acme
    services: [{name: a}]
  - id: beta
    services: [{name: a}]
  - id: acme
    services: [{name: a}]
`, nil, []string{
			`alertengine.yaml:6: tenants[2].id: duplicate tenant id "acme" (also tenants[0])`,
		}},
		{"empty tenant", "tenants:\n  -\n", nil, []string{
			"alertengine.yaml:2: tenants[0]: empty tenant; it needs at least an id and a service",
		}},

		// Services.
		{"services", `tenants:
  - id: acme
    services:
      - name: Checkout
      - name: a
        health_url: checkout:8000/health
      - name: a
        health_url: ftp://a/health
        repos: [acme, acme/checkout, "a/b/c"]
      - health_url: http://user:pass@a/health
  - id: beta
  - id: gamma
    services: []
`, nil, []string{
			`alertengine.yaml:4: tenants[0].services[0].name: service name "Checkout" must start with a-z or 0-9 and have at most 63 characters of a-z, 0-9, '.', '_' and '-'`,
			"alertengine.yaml:6: tenants[0].services[1].health_url: must be an absolute http:// or https:// URL",
			`alertengine.yaml:7: tenants[0].services[2].name: duplicate service "a" (also tenants[0].services[1])`,
			"alertengine.yaml:8: tenants[0].services[2].health_url: must be an absolute http:// or https:// URL",
			`alertengine.yaml:9: tenants[0].services[2].repos[0]: repository "acme" must be owner/name (e.g. acme/checkout)`,
			`alertengine.yaml:9: tenants[0].services[2].repos[2]: repository "a/b/c" must be owner/name (e.g. acme/checkout)`,
			"alertengine.yaml:10: tenants[0].services[3].name: is required",
			"alertengine.yaml:10: tenants[0].services[3].health_url: URL must not contain credentials (user:password@); secrets belong in secret settings",
			"alertengine.yaml:11: tenants[1].services: is required: list at least one service",
			"alertengine.yaml:13: tenants[2].services: no service defined; list at least one",
		}},

		// Chats.
		{"chats", `tenants:
  - id: acme
    services: [{name: a}]
    chats:
      telegram: [-100123, abc, 0, -100123]
      whatsapp: ["0771234567", "+263771234567", "whatsapp:+263771234567"]
`, nil, []string{
			`alertengine.yaml:5: tenants[0].chats.telegram[1]: want a numeric Telegram chat id (groups are negative, e.g. -1001234567890), got "abc"`,
			`alertengine.yaml:5: tenants[0].chats.telegram[2]: want a numeric Telegram chat id (groups are negative, e.g. -1001234567890), got "0"`,
			"alertengine.yaml:5: tenants[0].chats.telegram[3]: chat -100123 is listed twice",
			`alertengine.yaml:6: tenants[0].chats.whatsapp[0]: want an E.164 number like "+263771234567", got "0771234567"`,
			"alertengine.yaml:6: tenants[0].chats.whatsapp[2]: chat +263771234567 is listed twice",
		}},
		{"chats without the channel configured (serve)", `tenants:
  - id: acme
    services: [{name: a}]
    chats:
      telegram: [-100123]
      whatsapp: ["+263771234567"]
`, &serve, []string{
			"alertengine.yaml:5: tenants[0].chats.telegram: Telegram chats are listed but TELEGRAM_BOT_TOKEN is not set",
			"alertengine.yaml:6: tenants[0].chats.whatsapp: WhatsApp chats are listed but WhatsApp is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM)",
		}},

		// People.
		{"approver without chat identity", `tenants:
  - id: acme
    services: [{name: a}]
    people:
      - name: rudo
        role: approver
        telegram: 1
      - name: tendai
        role: approver
        phone: "+263771234567"
`, nil, []string{
			`alertengine.yaml:8: tenants[0].people[1]: approver "tendai" has no chat identity (set ids: {telegram: …} or {whatsapp: …})`,
		}},
		{"people", `tenants:
  - id: acme
    services: [{name: a}]
    people:
      - name: a
        role: admin
      - name: b
      - role: viewer
      - name: " c"
        role: viewer
      - name: A
        role: viewer
      - name: d
        role: approver
        telegram: -5
        whatsapp: "263771234567"
        phone: "+0123"
      - name: e
        role: approver
        telegram: twelve
      - name: f
        role: approver
        telegram: 7
        whatsapp: "+263771234567"
      - name: g
        role: approver
        telegram: 7
        whatsapp: "whatsapp:+263771234567"
`, nil, []string{
			`alertengine.yaml:6: tenants[0].people[0].role: role "admin" must be approver or viewer`,
			"alertengine.yaml:7: tenants[0].people[1].role: is required (approver or viewer)",
			"alertengine.yaml:8: tenants[0].people[2].name: is required",
			`alertengine.yaml:9: tenants[0].people[3].name: name " c" must be 1 to 64 printable characters without leading or trailing spaces`,
			`alertengine.yaml:11: tenants[0].people[4].name: duplicate person "A" (also tenants[0].people[0])`,
			`alertengine.yaml:15: tenants[0].people[5].telegram: want the person's numeric Telegram user id (a positive number), got "-5"`,
			`alertengine.yaml:16: tenants[0].people[5].whatsapp: want an E.164 number like "+263771234567", got "263771234567"`,
			`alertengine.yaml:17: tenants[0].people[5].phone: want an E.164 number like "+263771234567", got "+0123"`,
			`alertengine.yaml:20: tenants[0].people[6].telegram: want the person's numeric Telegram user id (a positive number), got "twelve"`,
			"alertengine.yaml:27: tenants[0].people[8].telegram: Telegram user 7 is also tenants[0].people[7]",
			"alertengine.yaml:28: tenants[0].people[8].whatsapp: WhatsApp user +263771234567 is also tenants[0].people[7]",
		}},

		// Recovery.
		{"recovery", `tenants:
  - id: acme
    services: [{name: a}]
    people: [{name: a, role: approver, telegram: 1}]
    recovery:
      url: /recover
      actions:
        - {name: restart, risk: medium}
        - {name: restart, risk: low}
        - {name: Roll Back, risk: high}
        - {name: scale}
        - {risk: low}
      default_action: rollback
      allow_private_network: sometimes
      timeout: 10m
`, nil, []string{
			"alertengine.yaml:6: tenants[0].recovery.url: must be an absolute http:// or https:// URL",
			"alertengine.yaml:6: tenants[0].recovery.secret: is required (the HMAC key the webhook verifies; e.g. secret: ${ACME_RECOVERY_SECRET})",
			`alertengine.yaml:8: tenants[0].recovery.actions[0].risk: risk "medium" must be low or high`,
			`alertengine.yaml:9: tenants[0].recovery.actions[1].name: duplicate action "restart" (also tenants[0].recovery.actions[0])`,
			`alertengine.yaml:10: tenants[0].recovery.actions[2].name: action name "Roll Back" must start with a-z or 0-9 and have at most 64 characters of a-z, 0-9, '.', '_' and '-'`,
			"alertengine.yaml:11: tenants[0].recovery.actions[3].risk: is required (low or high)",
			"alertengine.yaml:12: tenants[0].recovery.actions[4].name: is required",
			`alertengine.yaml:13: tenants[0].recovery.default_action: action "rollback" is not defined in tenants[0].recovery.actions`,
			`alertengine.yaml:14: tenants[0].recovery.allow_private_network: want true or false, got "sometimes"`,
			`alertengine.yaml:15: tenants[0].recovery.timeout: must be from 1s to 5m (one webhook call, the receiver's work included), got "10m"`,
		}},
		{"recovery without url and actions", `tenants:
  - id: acme
    services: [{name: a}]
    recovery:
      secret: ${SECRET}
`, nil, []string{
			"alertengine.yaml:5: tenants[0].recovery.url: is required (the tenant's recovery webhook)",
			"alertengine.yaml:5: tenants[0].recovery.actions: is required: list the actions the webhook can do",
		}},
		{"actions but no approver", `tenants:
  - id: acme
    services: [{name: a}]
    people: [{name: v, role: viewer}]
    recovery:
      url: https://acme.example/recover
      secret: ${SECRET}
      actions: [{name: restart, risk: low}]
`, nil, []string{
			"alertengine.yaml:4: tenants[0].people: no approver: recovery actions could never be approved (give someone role: approver)",
		}},
		{"empty secret from the environment", `tenants:
  - id: acme
    services: [{name: a}]
    people: [{name: a, role: approver, telegram: 1}]
    recovery: {url: "https://acme.example/recover", secret: "${EMPTY}", actions: [{name: r, risk: low}]}
    alertmanager:
      token: ""
`, nil, []string{
			"alertengine.yaml:5: tenants[0].recovery.secret: is required (the HMAC key the webhook verifies; e.g. secret: ${ACME_RECOVERY_SECRET})",
			"alertengine.yaml:7: tenants[0].alertmanager.token: is required when alertmanager is set (the bearer token this tenant's Alertmanager sends)",
		}},

		// Policy and limits.
		{"policy", `tenants:
  - id: acme
    services: [{name: a}]
    policy:
      min_score_to_alert: 101
      approval_ttl: 0s
      escalate_after: -1m
      risky_paths: ["**/*.sql", "[unclosed"]
    limits: {incidents_per_hour: 0}
  - id: beta
    services: [{name: a}]
    policy:
      min_score_to_alert: -1
      approval_ttl: 300
      escalate_after: soon
    limits: {incidents_per_hour: many}
`, nil, []string{
			"alertengine.yaml:5: tenants[0].policy.min_score_to_alert: must be from 0 to 100, got 101",
			`alertengine.yaml:6: tenants[0].policy.approval_ttl: must be greater than 0, got "0s"`,
			`alertengine.yaml:7: tenants[0].policy.escalate_after: must be greater than 0, got "-1m"`,
			`alertengine.yaml:8: tenants[0].policy.risky_paths[1]: malformed pattern "[unclosed"`,
			"alertengine.yaml:9: tenants[0].limits.incidents_per_hour: must be at least 1, got 0",
			"alertengine.yaml:13: tenants[1].policy.min_score_to_alert: must be from 0 to 100, got -1",
			`alertengine.yaml:14: tenants[1].policy.approval_ttl: want a duration like 5m or 180s, got "300" (add a unit: s, m or h)`,
			`alertengine.yaml:15: tenants[1].policy.escalate_after: want a duration like 5m or 180s, got "soon"`,
			`alertengine.yaml:16: tenants[1].limits.incidents_per_hour: want a whole number, got "many"`,
		}},

		// Alertmanager.
		{"alertmanager token shared by two tenants", `tenants:
  - id: acme
    services: [{name: a}]
    alertmanager: {token: "${SECRET}"}
  - id: beta
    services: [{name: a}]
    alertmanager:
      token: ${SECRET}
`, nil, []string{
			"alertengine.yaml:8: tenants[1].alertmanager.token: same token as tenants[0].alertmanager.token; each tenant needs its own",
		}},
		{"alertmanager limits out of range", `tenants:
  - id: acme
    services: [{name: a}]
    alertmanager: {token: t1, max_alerts: 0, expire_after: 30s}
  - id: beta
    services: [{name: a}]
    alertmanager: {token: t2, max_alerts: 1000000, expire_after: soon}
`, nil, []string{
			"alertengine.yaml:4: tenants[0].alertmanager.max_alerts: must be from 1 to 100000, got 0",
			"alertengine.yaml:4: tenants[0].alertmanager.expire_after: must be at least 1m, got 30s",
			"alertengine.yaml:7: tenants[1].alertmanager.max_alerts: must be from 1 to 100000, got 1000000",
			`alertengine.yaml:7: tenants[1].alertmanager.expire_after: want a duration like 5m or 180s, got "soon"`,
		}},

		// Types.
		{"wrong shapes", `tenants:
  - id: [acme]
    services: checkout
    policy: [5m]
    chats:
      telegram: -100123
`, nil, []string{
			"alertengine.yaml:2: tenants[0].id: want a single value, got a list",
			"alertengine.yaml:3: tenants[0].services: want a list, got a single value",
			"alertengine.yaml:4: tenants[0].policy: want a mapping (key: value), got a list",
			"alertengine.yaml:6: tenants[0].chats.telegram: want a list, got a single value",
		}},

		// ${VAR} expansion.
		{"expansion problems", `tenants:
  - id: ${TENANT_ID}
    services: [{name: a}]
    people: [{name: a, role: approver, telegram: 1}]
    recovery:
      url: https://acme.example/recover
      secret: ${MISSING_SECRET}
      actions: [{name: r, risk: low}]
    policy:
      min_score_to_alert: ${BAD_SCORE}
      approval_ttl: ${1BAD}
      escalate_after: "${UNTERMINATED"
`, nil, []string{
			"alertengine.yaml:2: tenants[0].id: ${TENANT_ID}: environment variable TENANT_ID is not set",
			"alertengine.yaml:7: tenants[0].recovery.secret: ${MISSING_SECRET}: environment variable MISSING_SECRET is not set",
			"alertengine.yaml:10: tenants[0].policy.min_score_to_alert: want a whole number, got the value of ${BAD_SCORE}",
			"alertengine.yaml:11: tenants[0].policy.approval_ttl: ${1BAD}: invalid variable name (want letters, digits and _; write $$ for a literal $)",
			`alertengine.yaml:12: tenants[0].policy.escalate_after: unterminated "${" (write $$ for a literal $)`,
		}},

		// Anchors and aliases.
		{"undefined alias", `tenants:
  - id: acme
    services: [{name: a}]
    policy: *shared
`, nil, []string{
			"alertengine.yaml:4: tenants[0].policy: alias *shared refers to no anchor (&shared) defined before it",
		}},
		{"problem inside an anchor is reported once", `tenants:
  - id: acme
    services: [{name: a}]
    policy: &shared
      approval_ttl: never
  - id: beta
    services: [{name: a}]
    policy: *shared
`, nil, []string{
			`alertengine.yaml:5: tenants[0].policy.approval_ttl: want a duration like 5m or 180s, got "never"`,
			`alertengine.yaml:5: tenants[1].policy.approval_ttl: want a duration like 5m or 180s, got "never"`,
		}},
	}
	tests = append(tests, struct {
		name string
		yaml string
		env  *Env
		want []string
	}{"poll intervals", `tenants:
  - id: acme
    services:
      - {name: a, health_url: "http://a.example/health/alerts", poll_interval: 500ms}
      - {name: b, health_url: "http://b.example/health/alerts", poll_interval: 1500ms}
      - {name: c, poll_interval: 2s}
      - {name: d, health_url: "http://d.example/health/alerts", poll_interval: soon}
`, nil, []string{
		`alertengine.yaml:4: tenants[0].services[0].poll_interval: must be whole seconds, at least 1s, got "500ms"`,
		`alertengine.yaml:5: tenants[0].services[1].poll_interval: must be whole seconds, at least 1s, got "1500ms"`,
		`alertengine.yaml:6: tenants[0].services[2].poll_interval: applies only to a polled service: set health_url too (push-mode services are never polled)`,
		`alertengine.yaml:7: tenants[0].services[3].poll_interval: want a duration like 5m or 180s, got "soon"`,
	}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := demoEnv(t)
			if tt.env != nil {
				env = *tt.env
			}
			f, err := parseT("alertengine.yaml", []byte(tt.yaml), lookup, env)
			if f != nil {
				t.Errorf("Parse returned a file with an error")
			}
			if d := cmp.Diff(tt.want, problemLines(t, err)); d != "" {
				t.Errorf("problems (-want +got):\n%s", d)
			}
		})
	}
}

func TestProblemLineFormat(t *testing.T) {
	// Every file problem is FILE:LINE: KEY.PATH: what, with a dotted path and [index].
	_, err := loadT("testdata/invalid.yaml", mapLookup(nil), demoEnv(t))
	format := regexp.MustCompile(`^testdata/invalid\.yaml:[0-9]+: [a-z_]+(\[[0-9]+\])?(\.[a-z_]+(\[[0-9]+\])?)*: \S.*$`)
	for _, line := range problemLines(t, err) {
		if !format.MatchString(line) {
			t.Errorf("line does not have the FILE:LINE: KEY.PATH: what form: %q", line)
		}
	}
}

func TestGoldenInvalid(t *testing.T) {
	_, err := loadT("testdata/invalid.yaml", mapLookup(map[string]string{"ACME_AM_TOKEN": "t"}), demoEnv(t))
	got := strings.Join(problemLines(t, err), "\n") + "\n"
	golden := "testdata/invalid.golden"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with UPDATE_GOLDEN=1 to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("problems differ from %s (-want +got):\n%s", golden, d)
	}
}

func TestLoadUnreadable(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "alertengine.yaml")
	_, err := loadT(missing, nil, demoEnv(t))
	want := []string{missing + ": cannot read the config file: no such file or directory"}
	if d := cmp.Diff(want, problemLines(t, err)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if !errors.Is(err, fs.ErrNotExist) {
		t.Error("errors.Is(err, fs.ErrNotExist) = false")
	}
	big := filepath.Join(t.TempDir(), "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxFileSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = loadT(big, nil, demoEnv(t))
	if d := cmp.Diff([]string{big + ": the config file is larger than 4 MiB"}, problemLines(t, err)); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
}

func TestAChatBelongsToOneTenant(t *testing.T) {
	const doc = `tenants:
  - id: acme
    services: [{name: checkout}]
    chats: {telegram: [-100123]}
  - id: beta
    services: [{name: pay}]
    chats: {telegram: [-100123]}
`
	_, err := parseT("t.yaml", []byte(doc), func(string) (string, bool) { return "", false }, Env{Mode: Demo})
	if err == nil || !strings.Contains(err.Error(), "t.yaml:7: tenants[1].chats: chat telegram:-100123 is also listed by tenants[0]; a chat belongs to one tenant") {
		t.Fatalf("got %v", err)
	}
}

func TestPollInterval(t *testing.T) {
	f, err := parseT("alertengine.yaml", []byte(`tenants:
  - id: acme
    services:
      - {name: a, health_url: "https://a.example/health/alerts", poll_interval: 1s}
      - {name: b, health_url: "https://b.example/health/alerts"}
`), mapLookup(nil), demoEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	got := []time.Duration{f.Tenants[0].Services[0].PollInterval, f.Tenants[0].Services[1].PollInterval}
	if d := cmp.Diff([]time.Duration{time.Second, 0}, got); d != "" {
		t.Errorf("poll intervals (-want +got; 0 is LOOP_INTERVAL_S):\n%s", d)
	}
}
