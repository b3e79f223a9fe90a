package commits_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

func TestCorrelation(t *testing.T) {
	rc, prefix := ledgertest.Redis(t)
	clk := &clock{t: t0}
	st, _ := commits.NewStore(commits.StoreOptions{Redis: rc, KeyPrefix: prefix, Clock: clk.Now})
	ctx := context.Background()
	detected := t0
	n := 0
	add := func(repo string, kind commits.Kind, at time.Time, files ...string) string {
		n++
		c := commits.Change{Kind: kind, Repo: repo, SHA: fmt.Sprintf("%040x", n), At: at, Ref: "main", Modified: files, Message: fmt.Sprintf("change %d", n)}
		if kind == commits.KindDeploy {
			c.Ref = "production"
		}
		if err := st.Add(ctx, repo, []commits.Change{c}); err != nil {
			t.Fatal(err)
		}
		return c.SHA
	}
	edge := add("acme/checkout", commits.KindCommit, detected.Add(-60*time.Minute), "README.md")
	add("acme/checkout", commits.KindCommit, detected.Add(-60*time.Minute-time.Millisecond), "db/old.sql")
	sql := add("acme/checkout", commits.KindCommit, detected.Add(-30*time.Minute), "internal/store/orders.sql")
	mig := add("acme/checkout-db", commits.KindCommit, detected.Add(-20*time.Minute), "migrations/0042.up.sql", "go.mod")
	dep := add("acme/checkout", commits.KindDeploy, detected.Add(-5*time.Minute)) // a deploy without a stored commit
	now := add("acme/checkout", commits.KindCommit, detected, "config/app.yaml")
	add("acme/checkout", commits.KindCommit, detected.Add(time.Millisecond), "db/after.sql") // after detection
	add("acme/payments", commits.KindCommit, detected.Add(-10*time.Minute), "db/payments.sql")

	co, err := commits.NewCorrelator(commits.CorrelatorOptions{Store: st, Services: []commits.Service{
		{Tenant: "acme", Name: "checkout", Repos: []string{"acme/checkout", "Acme/Checkout-DB"}, Patterns: []string{"**/*.sql", "**/migrations/**", "**/go.mod", "**/config/**"}},
		{Tenant: "acme", Name: "payments", Repos: []string{"acme/payments"}, Patterns: []string{"**/*.sql"}},
		{Tenant: "acme", Name: "web"},
		{Tenant: "globex", Name: "checkout", Repos: []string{"acme/checkout"}}, // another tenant, no risky paths
	}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, tenant, service string
		want                  []string // sha:risky
	}{
		{"window edges, newest first, other services excluded", "acme", "checkout", []string{
			now + ":touched config files", dep + ":", mig + ":touched database/query files, dependency manifests", sql + ":touched database/query files", edge + ":"}},
		{"another service sees only its repository", "acme", "payments", []string{fmt.Sprintf("%040x", 8) + ":touched database/query files"}},
		{"a service without repositories", "acme", "web", nil},
		{"an unknown service", "acme", "nope", nil},
		{"same repository, another tenant's globs", "globex", "checkout", []string{now + ":", dep + ":", sql + ":", edge + ":"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			fs, err := co.Correlate(ctx, c.tenant, c.service, detected)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.SHA+":"+f.Risky)
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(c.want, "\n"))
			}
		})
	}
	if !co.Accept("ACME/checkout-db") || co.Accept("acme/other") {
		t.Fatal("Accept")
	}
}

func TestRiskLabels(t *testing.T) {
	pats := []string{"**/migrations/**", "**/*.sql", "**/db/**", "**/*query*", "**/config/**", "**/*.env", "**/go.mod", "**/package.json"}
	for _, c := range []struct {
		files []string
		want  string
	}{
		{[]string{"internal/store/order_query.go"}, "touched database/query files"},
		{[]string{"db/migrations/0042.sql", "internal/db/pool.go"}, "touched database/query files"},
		{[]string{"web/package.json"}, "touched dependency manifests"},
		{[]string{"deploy/config/prod.yaml", "prod.env"}, "touched config files"},
		{[]string{"README.md", "cmd/main.go"}, ""},
	} {
		got, _ := commits.Risk(commits.Change{Modified: c.files}, pats)
		if got != c.want {
			t.Errorf("%v: %q, want %q", c.files, got, c.want)
		}
	}
}
