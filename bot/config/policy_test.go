package config

import (
	"regexp"
	"slices"
	"testing"
	"time"
)

func TestPolicyVersion(t *testing.T) {
	base := func() Tenant {
		return Tenant{
			ID: "acme",
			Recovery: Recovery{
				Actions:       []Action{{Name: "restart_workers", Risk: RiskLow}, {Name: "rollback", Risk: RiskHigh}},
				DefaultAction: "restart_workers",
			},
			Policy: Policy{
				MinScoreToAlert: 70, ApprovalTTL: 5 * time.Minute, EscalateAfter: 180 * time.Second,
				RiskyPaths: DefaultRiskyPaths(), RefuseSuspectApproval: true,
			},
		}
	}
	v := base().PolicyVersion()
	if !regexp.MustCompile(`^pol-[0-9a-f]{10}$`).MatchString(v) {
		t.Fatalf("PolicyVersion = %q, want pol- and 10 hex digits", v)
	}

	same := []struct {
		name string
		edit func(*Tenant)
	}{
		{"unchanged", func(*Tenant) {}},
		{"another tenant id", func(t *Tenant) { t.ID = "beta" }},
		{"another recovery url or secret", func(t *Tenant) { t.Recovery.URL = "https://x"; t.Recovery.Secret = "s" }},
		{"3m is 180s", func(t *Tenant) { t.Policy.EscalateAfter = 3 * time.Minute }},
		{"risky paths in another order", func(t *Tenant) {
			t.Policy.RiskyPaths = DefaultRiskyPaths()
			slices.Reverse(t.Policy.RiskyPaths)
		}},
		{"actions in another order", func(t *Tenant) {
			t.Recovery.Actions = []Action{{Name: "rollback", Risk: RiskHigh}, {Name: "restart_workers", Risk: RiskLow}}
		}},
	}
	for _, tt := range same {
		t.Run("same/"+tt.name, func(t *testing.T) {
			tn := base()
			tt.edit(&tn)
			if got := tn.PolicyVersion(); got != v {
				t.Errorf("got %s, want %s", got, v)
			}
		})
	}

	different := []struct {
		name string
		edit func(*Tenant)
	}{
		{"min score", func(t *Tenant) { t.Policy.MinScoreToAlert = 71 }},
		{"approval ttl", func(t *Tenant) { t.Policy.ApprovalTTL = 5*time.Minute + time.Millisecond }},
		{"escalate after", func(t *Tenant) { t.Policy.EscalateAfter = 181 * time.Second }},
		{"a risky path more", func(t *Tenant) { t.Policy.RiskyPaths = append(t.Policy.RiskyPaths, "**/schema/**") }},
		{"no risky paths", func(t *Tenant) { t.Policy.RiskyPaths = nil }},
		{"suspects may approve", func(t *Tenant) { t.Policy.RefuseSuspectApproval = false }},
		{"an action's risk", func(t *Tenant) { t.Recovery.Actions[1].Risk = RiskLow }},
		{"an action more", func(t *Tenant) {
			t.Recovery.Actions = append(t.Recovery.Actions, Action{Name: "scale_up", Risk: RiskLow})
		}},
		{"an action renamed", func(t *Tenant) { t.Recovery.Actions[0].Name = "restart" }},
		{"default action", func(t *Tenant) { t.Recovery.DefaultAction = "rollback" }},
	}
	seen := map[string]string{v: "base"}
	for _, tt := range different {
		t.Run("different/"+tt.name, func(t *testing.T) {
			tn := base()
			tt.edit(&tn)
			got := tn.PolicyVersion()
			if prev, dup := seen[got]; dup {
				t.Errorf("got %s, the same as %s", got, prev)
			}
			seen[got] = tt.name
		})
	}

	t.Run("same file parsed twice", func(t *testing.T) {
		a, err := loadT("testdata/alertengine.yaml", exampleLookup, demoEnv(t))
		if err != nil {
			t.Fatal(err)
		}
		b, err := loadT("testdata/alertengine.yaml", exampleLookup, demoEnv(t))
		if err != nil {
			t.Fatal(err)
		}
		if a.Tenants[0].PolicyVersion() != b.Tenants[0].PolicyVersion() {
			t.Error("two parses of one file give different versions")
		}
		// The example spells out the defaults but for risky_paths (the four database patterns), so it
		// has the version of the base policy with those.
		ex := base()
		ex.Policy.RiskyPaths = []string{"**/migrations/**", "**/*.sql", "**/db/**", "**/*query*"}
		if got := a.Tenants[0].PolicyVersion(); got != ex.PolicyVersion() {
			t.Errorf("example: got %s, want %s", got, ex.PolicyVersion())
		}
	})
}
