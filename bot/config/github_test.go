package config

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestGitHubKeys: people's github logins, repositories mapped once per tenant, and the
// refuse_suspect_approval policy key.
func TestGitHubKeys(t *testing.T) {
	f, err := parseT("alertengine.yaml", []byte(`tenants:
  - id: acme
    services:
      - {name: checkout, repos: [acme/checkout, acme/checkout-db]}
    people:
      - {name: tendai, role: approver, telegram: 1, github: "@Tendai-M"}
      - {name: rudo, role: viewer}
  - id: beta
    services: [{name: checkout, repos: [acme/checkout]}]
    policy: {refuse_suspect_approval: false}
`), mapLookup(nil), demoEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	acme, beta := f.Tenants[0], f.Tenants[1]
	if p, ok := acme.PersonByGitHub("tendai-m"); !ok || p.Name != "tendai" || p.GitHub != "Tendai-M" {
		t.Fatalf("PersonByGitHub: %+v %v", p, ok)
	}
	if _, ok := acme.PersonByGitHub(""); ok {
		t.Fatal("empty login matched")
	}
	if !acme.Policy.RefuseSuspectApproval || beta.Policy.RefuseSuspectApproval {
		t.Fatalf("refuse_suspect_approval: acme %v, beta %v", acme.Policy.RefuseSuspectApproval, beta.Policy.RefuseSuspectApproval)
	}
	if acme.PolicyVersion() == beta.PolicyVersion() {
		t.Fatal("switching separation of duties off does not change the policy version")
	}

	_, err = parseT("alertengine.yaml", []byte(`tenants:
  - id: acme
    services:
      - {name: checkout, repos: [acme/checkout]}
      - {name: web, repos: [Acme/Checkout, acme/web, acme/web]}
    people:
      - {name: tendai, role: approver, telegram: 1, github: john}
      - {name: rudo, role: approver, telegram: 2, github: JOHN}
      - {name: vimbai, role: viewer, github: "not a login"}
      - {name: farai, role: viewer, github: -dash}
    policy: {refuse_suspect_approval: sometimes, risky_paths: [""]}
`), mapLookup(nil), demoEnv(t))
	want := []string{
		`alertengine.yaml:5: tenants[0].services[1].repos[0]: repository "Acme/Checkout" is also mapped by tenants[0].services[0].repos[0]; a repository belongs to one service of a tenant`,
		`alertengine.yaml:5: tenants[0].services[1].repos[2]: repository "acme/web" is also mapped by tenants[0].services[1].repos[1]; a repository belongs to one service of a tenant`,
		`alertengine.yaml:8: tenants[0].people[1].github: GitHub login JOHN is also tenants[0].people[0]`,
		`alertengine.yaml:9: tenants[0].people[2].github: want a GitHub login (1 to 39 characters of a-z, 0-9 and single hyphens), got "not a login"`,
		`alertengine.yaml:10: tenants[0].people[3].github: want a GitHub login (1 to 39 characters of a-z, 0-9 and single hyphens), got "-dash"`,
		`alertengine.yaml:11: tenants[0].policy.refuse_suspect_approval: want true or false, got "sometimes"`,
		`alertengine.yaml:11: tenants[0].policy.risky_paths[0]: malformed pattern ""`,
	}
	if d := cmp.Diff(want, problemLines(t, err)); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
}
