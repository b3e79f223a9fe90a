package app_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/fixtures"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

func TestCommitSourceMapsChangesForTheConversation(t *testing.T) {
	rc, prefix := ledgertest.Redis(t)
	now := time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	st, _ := commits.NewStore(commits.StoreOptions{Redis: rc, KeyPrefix: prefix, Clock: clock})
	ctx := context.Background()
	d, _ := fixtures.GitHubDeliveryNamed("push.several")
	pushed, err := commits.Parse("push", d.Body, now.Add(-10*time.Minute), []string{"**/migrations/**"})
	if err != nil {
		t.Fatal(err)
	}
	tag := commits.Change{Kind: commits.KindTag, Repo: "acme/checkout", Ref: "v1.4.0", By: "rudo", At: now.Add(-time.Minute)}
	if err := st.Add(ctx, "acme/checkout", append(pushed.Changes, tag)); err != nil {
		t.Fatal(err)
	}
	co, _ := commits.NewCorrelator(commits.CorrelatorOptions{Store: st, Services: []commits.Service{
		{Tenant: "acme", Name: "checkout", Repos: []string{"acme/checkout"}, Patterns: []string{"**/migrations/**"}}}})
	src := app.Commits{Correlator: co, Clock: clock, Person: func(tenant, login string) string {
		if tenant == "acme" && login == "john" {
			return "tendai"
		}
		return ""
	}}
	cs, err := src.RecentCommits(ctx, "acme", "checkout", now.Add(-time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range cs {
		got = append(got, strings.Join([]string{c.Kind, c.Where, c.Author, c.Person, c.Risky}, "|"))
	}
	want := []string{"tag|v1.4.0|rudo||", "commit|main|john|tendai|", "commit|main|john|tendai|touched database/query files", "commit|main|rudo||"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
