package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/metrics"
	"github.com/alertengine/alertengine/commits"
	"github.com/prometheus/client_golang/prometheus"
)

// gitHub is the bot's GitHub side: the correlation the conversation reads, the webhook
// route (nil without GITHUB_WEBHOOK_SECRET) and the stats fetcher (nil without
// GITHUB_TOKEN).
type gitHub struct {
	source     app.Commits
	correlator *commits.Correlator
	webhook    *commits.Webhook
	stats      *commits.Stats
}

func buildGitHub(w wiring, reg prometheus.Registerer) (*gitHub, error) {
	store, err := commits.NewStore(commits.StoreOptions{Redis: w.rc, KeyPrefix: w.keyPrefix, Clock: w.clock})
	if err != nil {
		return nil, err
	}
	g := &gitHub{}
	if g.correlator, err = commits.NewCorrelator(commits.CorrelatorOptions{Store: store, Services: app.CommitServices(w.file)}); err != nil {
		return nil, err
	}
	g.source = app.Commits{Correlator: g.correlator, Clock: w.clock, Person: app.CommitPeople(w.file)}
	mapped := false
	for _, s := range app.CommitServices(w.file) {
		mapped = mapped || len(s.Repos) > 0
	}
	if w.env.GitHubToken.IsSet() {
		client, err := commits.NewClient(w.env.GitHubAPIURL, w.env.GitHubToken.Reveal(), 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("GITHUB_API_URL: %w", err)
		}
		if g.stats, err = commits.NewStats(commits.StatsOptions{Client: client, Store: store, Clock: w.clock, Logger: w.log}); err != nil {
			return nil, err
		}
		if err := metrics.WatchGitHubStats(reg, g.stats); err != nil {
			return nil, err
		}
	}
	if !w.env.GitHubWebhookSecret.IsSet() {
		if mapped {
			w.log.Warn("services list repos but GITHUB_WEBHOOK_SECRET is not set: GitHub webhooks are refused and no commits are correlated")
		}
		return g, nil
	}
	m, err := metrics.NewGitHub(reg)
	if err != nil {
		return nil, err
	}
	g.webhook, err = commits.NewWebhook(commits.WebhookOptions{Secret: []byte(w.env.GitHubWebhookSecret.Reveal()), Store: store, Redis: w.rc,
		KeyPrefix: w.keyPrefix, Accept: g.correlator.Accept, Patterns: g.correlator.Patterns(), Stats: g.stats, Clock: w.clock, Logger: w.log,
		OnRefused: m.Refused, OnDelivery: m.Delivery})
	return g, err
}

var repoFlagPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)

// runGitHubHook is `bot github-hook --repo OWNER/NAME [--dry-run]`.
func runGitHubHook(ctx context.Context, a *cli, args []string) int {
	fs := a.flags("github-hook")
	repo := fs.String("repo", "", "the repository, OWNER/NAME")
	dry := fs.Bool("dry-run", false, "print what would change, change nothing")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if !repoFlagPattern.MatchString(*repo) {
		fmt.Fprintf(a.stderr, "--repo: want OWNER/NAME (e.g. acme/checkout), got %q\n", *repo)
		return exitUsage
	}
	env, code, ok := a.toolEnv()
	if !ok {
		return code
	}
	var missing []string
	if !env.GitHubToken.IsSet() {
		missing = append(missing, "GITHUB_TOKEN: not set (a token that may manage the repository's webhooks)")
	}
	if env.PublicURL == "" {
		missing = append(missing, "PUBLIC_URL: not set (GitHub must reach the bot at $PUBLIC_URL/github/webhook)")
	}
	if !env.GitHubWebhookSecret.IsSet() {
		missing = append(missing, "GITHUB_WEBHOOK_SECRET: not set (the secret GitHub signs deliveries with)")
	}
	if len(missing) > 0 {
		for _, m := range missing {
			fmt.Fprintln(a.stderr, m)
		}
		return exitUsage
	}
	client, err := commits.NewClient(env.GitHubAPIURL, env.GitHubToken.Reveal(), 15*time.Second)
	if err != nil {
		fmt.Fprintf(a.stderr, "GITHUB_API_URL: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	url := env.PublicURL + "/github/webhook"
	res, err := commits.EnsureHook(ctx, client, *repo, commits.HookSpec{URL: url, Secret: env.GitHubWebhookSecret.Reveal()}, *dry)
	if err != nil {
		fmt.Fprintf(a.stderr, "bot github-hook: %v\n", err)
		for _, e := range []error{commits.ErrRepoNotFound, commits.ErrForbidden, commits.ErrRateLimited, commits.ErrBadToken} {
			if errors.Is(err, e) {
				return exitUsage
			}
		}
		return exitFailed
	}
	would := ""
	if res.DryRun {
		would = "dry run, nothing changed: would have "
	}
	switch res.Action {
	case "created":
		fmt.Fprintf(a.stdout, "%s%s the webhook on %s → %s (events: %v, content type json)\n", would, res.Action, *repo, url, commits.HookEvents())
	case "updated":
		fmt.Fprintf(a.stdout, "%s%s webhook %d on %s → %s (changed: %v)\n", would, res.Action, res.ID, *repo, url, res.Changes)
	default:
		fmt.Fprintf(a.stdout, "webhook %d on %s is up to date → %s; nothing to do\n", res.ID, *repo, url)
	}
	return exitOK
}
