package commits_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/commits/githubtest"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/google/go-github/v60/github"
)

const token = "ghp_testtokentesttokentesttoken0000"

func client(t *testing.T, gh *githubtest.Server) *commitsClient {
	t.Helper()
	c, err := commits.NewClient(gh.URL(), token, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return &commitsClient{c}
}

type githubClient = github.Client

type commitsClient struct{ *githubClient }

func TestEnsureHookIsIdempotent(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo("acme/checkout", true)
	c := client(t, gh)
	ctx := context.Background()
	spec := commits.HookSpec{URL: "https://bot.acme.example/github/webhook", Secret: "s3cret-one"}

	res, err := commits.EnsureHook(ctx, c.githubClient, "acme/checkout", spec, true)
	if err != nil || res.Action != "created" || !res.DryRun || len(gh.Hooks("acme/checkout")) != 0 {
		t.Fatalf("dry run on a bare repository: %+v %v, hooks %v", res, err, gh.Hooks("acme/checkout"))
	}
	res, err = commits.EnsureHook(ctx, c.githubClient, "acme/checkout", spec, false)
	if err != nil || res.Action != "created" {
		t.Fatalf("first run: %+v %v", res, err)
	}
	hs := gh.Hooks("acme/checkout")
	if len(hs) != 1 || hs[0].Secret != "s3cret-one" || hs[0].ContentType != "json" || !hs[0].Active ||
		strings.Join(hs[0].Events, ",") != "create,deployment_status,push" || !strings.HasPrefix(hs[0].URL, spec.URL+"?ae=") {
		t.Fatalf("created %+v", hs)
	}
	res, err = commits.EnsureHook(ctx, c.githubClient, "acme/checkout", spec, false)
	if err != nil || res.Action != "unchanged" || gh.Calls("edit hook") != 0 || gh.Calls("create hook") != 1 {
		t.Fatalf("second run: %+v %v", res, err)
	}
	spec.Secret = "s3cret-two"
	res, err = commits.EnsureHook(ctx, c.githubClient, "acme/checkout", spec, true)
	if err != nil || res.Action != "updated" || strings.Join(res.Changes, ",") != "secret" || gh.Hooks("acme/checkout")[0].Secret != "s3cret-one" {
		t.Fatalf("dry run after a secret change: %+v %v", res, err)
	}
	res, err = commits.EnsureHook(ctx, c.githubClient, "acme/checkout", spec, false)
	if err != nil || res.Action != "updated" || gh.Hooks("acme/checkout")[0].Secret != "s3cret-two" || len(gh.Hooks("acme/checkout")) != 1 {
		t.Fatalf("third run after a secret change: %+v %v %+v", res, err, gh.Hooks("acme/checkout"))
	}
}

func TestEnsureHookFixesAHandMadeHook(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo("acme/checkout", true)
	for range 120 { // other hooks, over more than one page
		gh.AddHook("acme/checkout", githubtest.Hook{Events: []string{"issues"}, Active: true, URL: "https://ci.example/hook", ContentType: "json"})
	}
	id := gh.AddHook("acme/checkout", githubtest.Hook{Events: []string{"push"}, Active: false, URL: "https://bot.acme.example/github/webhook", ContentType: "form", Secret: "x"})
	c := client(t, gh)
	res, err := commits.EnsureHook(context.Background(), c.githubClient, "acme/checkout", commits.HookSpec{URL: "https://bot.acme.example/github/webhook", Secret: "s"}, false)
	if err != nil || res.Action != "updated" || res.ID != id || strings.Join(res.Changes, ",") != "events,url,content_type,active" {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestEnsureHookErrors(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo("acme/readonly", false)
	gh.AddRepo("acme/checkout", true)
	c := client(t, gh)
	ctx := context.Background()
	spec := commits.HookSpec{URL: "https://bot.acme.example/github/webhook", Secret: "s"}
	if _, err := commits.EnsureHook(ctx, c.githubClient, "acme/missing", spec, false); !errors.Is(err, commits.ErrRepoNotFound) {
		t.Fatalf("404: %v", err)
	}
	if _, err := commits.EnsureHook(ctx, c.githubClient, "acme/readonly", spec, false); !errors.Is(err, commits.ErrForbidden) {
		t.Fatalf("403: %v", err)
	}
	bad, _ := commits.NewClient(gh.URL(), "wrong", time.Second)
	if _, err := commits.EnsureHook(ctx, bad, "acme/checkout", spec, false); !errors.Is(err, commits.ErrBadToken) || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("401: %v", err)
	}
	gh.SetRateLimit(0, time.Now().Add(time.Hour))
	if _, err := commits.EnsureHook(ctx, c.githubClient, "acme/checkout", spec, false); !errors.Is(err, commits.ErrRateLimited) {
		t.Fatalf("rate limited: %v", err)
	}
}

func TestStatsAreFetchedCachedAndPausedByTheRateLimit(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo("acme/checkout", true)
	sha := strings.Repeat("ab", 20)
	gh.AddCommit("acme/checkout", githubtest.Commit{SHA: sha, Additions: 12, Deletions: 3})
	rc, prefix := ledgertest.Redis(t)
	clk := &clock{t: t0}
	st, _ := commits.NewStore(commits.StoreOptions{Redis: rc, KeyPrefix: prefix, Clock: clk.Now})
	ctx := context.Background()
	_ = st.Add(ctx, "acme/checkout", []commits.Change{{Kind: commits.KindCommit, Repo: "acme/checkout", SHA: sha, At: t0}})
	c := client(t, gh)
	s, err := commits.NewStats(commits.StatsOptions{Client: c.githubClient, Store: st, Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Fetch(ctx, "acme/checkout", sha); err != nil {
		t.Fatal(err)
	}
	got, _, _ := st.Commit(ctx, "acme/checkout", sha)
	if !got.Stats || got.Additions != 12 || got.Deletions != 3 {
		t.Fatalf("stats %+v", got)
	}
	if err := s.Fetch(ctx, "acme/checkout", sha); err != nil || gh.Calls("get commit") != 1 {
		t.Fatalf("cached stats fetched again: %v, %d calls", err, gh.Calls("get commit"))
	}
	other, third := strings.Repeat("cd", 20), strings.Repeat("ef", 20)
	for _, x := range []string{other, third} {
		_ = st.Add(ctx, "acme/checkout", []commits.Change{{Kind: commits.KindCommit, Repo: "acme/checkout", SHA: x, At: t0}})
		gh.AddCommit("acme/checkout", githubtest.Commit{SHA: x, Additions: 1, Deletions: 1})
	}
	// Few calls left: this fetch succeeds, then fetching pauses until the window resets.
	gh.SetRateLimit(50, t0.Add(time.Hour))
	if err := s.Fetch(ctx, "acme/checkout", other); err != nil {
		t.Fatal(err)
	}
	if err := s.Fetch(ctx, "acme/checkout", third); !errors.Is(err, commits.ErrRateLimited) || gh.Calls("get commit") != 2 {
		t.Fatalf("not paused near the limit: %v, %d calls", err, gh.Calls("get commit"))
	}
	clk.Set(t0.Add(time.Hour + time.Second))
	gh.SetRateLimit(-1, time.Time{})
	if err := s.Fetch(ctx, "acme/checkout", third); err != nil || gh.Calls("get commit") != 3 {
		t.Fatalf("after the reset: %v, %d calls", err, gh.Calls("get commit"))
	}
}

// TestStatsStopAtTheRateLimit: a 403 rate-limit answer pauses fetching.
func TestStatsStopAtTheRateLimit(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo("acme/checkout", true)
	rc, prefix := ledgertest.Redis(t)
	st, _ := commits.NewStore(commits.StoreOptions{Redis: rc, KeyPrefix: prefix})
	ctx := context.Background()
	sha := strings.Repeat("ab", 20)
	_ = st.Add(ctx, "acme/checkout", []commits.Change{{Kind: commits.KindCommit, Repo: "acme/checkout", SHA: sha, At: time.Now()}})
	s, _ := commits.NewStats(commits.StatsOptions{Client: client(t, gh).githubClient, Store: st})
	gh.SetRateLimit(0, time.Now().Add(time.Hour))
	if err := s.Fetch(ctx, "acme/checkout", sha); !errors.Is(err, commits.ErrRateLimited) {
		t.Fatalf("rate limit: %v", err)
	}
	if got, _, _ := st.Commit(ctx, "acme/checkout", sha); got.Stats {
		t.Fatal("stats invented")
	}
}

// TestPushedCommitsGetTheirStatsInTheBackground: the webhook stores a push without
// waiting for the API, queues its commits, and the fetcher fills their counts; a full
// queue drops (counted) instead of blocking the webhook.
func TestPushedCommitsGetTheirStatsInTheBackground(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo("acme/checkout", true)
	gh.AddCommit("acme/checkout", githubtest.Commit{SHA: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Additions: 12, Deletions: 3})
	gh.AddCommit("acme/checkout", githubtest.Commit{SHA: "9f2c1a7e5b3d4c6f8a0e1b2c3d4e5f6a7b8c9d01", Additions: 40, Deletions: 0})
	w := newWorld(t)
	stats, err := commits.NewStats(commits.StatsOptions{Client: client(t, gh).githubClient, Store: w.store, Queue: 2, Clock: w.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	w.hook, _ = commits.NewWebhook(commits.WebhookOptions{Secret: w.secret, Store: w.store, Redis: w.rc, KeyPrefix: w.prefix,
		Accept: func(string) bool { return true }, Stats: stats, Clock: w.clock.Now})
	if code, _ := w.deliver(t, "push", delivery(t, "push.several").Body, ""); code != 200 {
		t.Fatal("push")
	}
	if gh.Calls("get commit") != 0 {
		t.Fatal("the webhook waited for the API")
	}
	if stats.Dropped.Load() != 1 {
		t.Fatalf("a queue of 2 took 3 commits: dropped %d", stats.Dropped.Load())
	}
	stats.Drain(context.Background())
	got := map[string]string{}
	for _, c := range w.all(t) {
		got[c.SHA[:7]] = fmt.Sprint(c.Stats, c.Additions, c.Deletions)
	}
	if got["a1b2c3d"] != "true 12 3" || got["9f2c1a7"] != "true 40 0" || got["b7e4d2c"] != "false 0 0" {
		t.Fatalf("stats %v", got)
	}
}

// TestEnsureHookFollowsANewPublicURL: the hook this command made for the old PUBLIC_URL
// is moved, not duplicated.
func TestEnsureHookFollowsANewPublicURL(t *testing.T) {
	gh := githubtest.New(t, token)
	gh.AddRepo("acme/checkout", true)
	c := client(t, gh)
	ctx := context.Background()
	if _, err := commits.EnsureHook(ctx, c.githubClient, "acme/checkout", commits.HookSpec{URL: "https://old.acme.example/github/webhook", Secret: "s"}, false); err != nil {
		t.Fatal(err)
	}
	res, err := commits.EnsureHook(ctx, c.githubClient, "acme/checkout", commits.HookSpec{URL: "https://bot.acme.example/github/webhook", Secret: "s"}, false)
	hs := gh.Hooks("acme/checkout")
	if err != nil || res.Action != "updated" || strings.Join(res.Changes, ",") != "url" || len(hs) != 1 || !strings.HasPrefix(hs[0].URL, "https://bot.acme.example/github/webhook?ae=") {
		t.Fatalf("%+v %v %+v", res, err, hs)
	}
}

// TestCheckRepo: bot github-hook's --repo is OWNER/NAME as GitHub allows them; anything
// else is refused naming the flag and what was given.
func TestCheckRepo(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"acme/checkout", "a/b", "Acme-1/check.out_v2"} {
		if err := commits.CheckRepo(ok); err != nil {
			t.Errorf("CheckRepo(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"", "acme", "acme/", "/checkout", "acme/check/out", "-acme/checkout", "acme/check out"} {
		err := commits.CheckRepo(bad)
		if want := fmt.Sprintf("--repo: want OWNER/NAME (e.g. acme/checkout), got %q", bad); err == nil || err.Error() != want {
			t.Errorf("CheckRepo(%q): %v, want %q", bad, err, want)
		}
	}
}
