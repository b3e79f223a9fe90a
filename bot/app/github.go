package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/metrics"
	"github.com/alertengine/alertengine/commits"
	"github.com/prometheus/client_golang/prometheus"
)

// gitHub is the bot's GitHub side: the correlation the conversation reads, the webhook
// route (nil without GITHUB_WEBHOOK_SECRET) and the stats fetcher (nil without
// GITHUB_TOKEN).
type gitHub struct {
	source     Commits
	store      *commits.Store
	correlator *commits.Correlator
	webhook    *commits.Webhook
	stats      *commits.Stats
}

// buildGitHub builds the GitHub side from the environment: the commit store and its
// correlation always, the stats fetcher with GITHUB_TOKEN, the webhook with
// GITHUB_WEBHOOK_SECRET.
func buildGitHub(o *Options, reg prometheus.Registerer) (*gitHub, error) {
	store, err := commits.NewStore(commits.StoreOptions{Redis: o.Redis, KeyPrefix: o.KeyPrefix, Clock: o.Clock})
	if err != nil {
		return nil, err
	}
	g := &gitHub{store: store}
	if g.correlator, err = commits.NewCorrelator(commits.CorrelatorOptions{Store: store, Services: CommitServices(o.File)}); err != nil {
		return nil, err
	}
	g.source = Commits{Correlator: g.correlator, Clock: o.Clock, Person: CommitPeople(o.File)}
	mapped := false
	for _, s := range CommitServices(o.File) {
		mapped = mapped || len(s.Repos) > 0
	}
	if o.Env.GitHubToken.IsSet() {
		client, err := commits.NewClient(o.Env.GitHubAPIURL, o.Env.GitHubToken.Reveal(), 10*time.Second)
		if err != nil {
			return nil, fmt.Errorf("GITHUB_API_URL: %w", err)
		}
		if g.stats, err = commits.NewStats(commits.StatsOptions{Client: client, Store: store, Clock: o.Clock, Logger: o.Logger}); err != nil {
			return nil, err
		}
		if err := metrics.WatchGitHubStats(reg, g.stats); err != nil {
			return nil, err
		}
	}
	if !o.Env.GitHubWebhookSecret.IsSet() {
		if mapped {
			o.Logger.Warn("services list repos but GITHUB_WEBHOOK_SECRET is not set: GitHub webhooks are refused and no commits are correlated")
		}
		return g, nil
	}
	m, err := metrics.NewGitHub(reg)
	if err != nil {
		return nil, err
	}
	g.webhook, err = commits.NewWebhook(commits.WebhookOptions{Secret: []byte(o.Env.GitHubWebhookSecret.Reveal()), Store: store, Redis: o.Redis,
		KeyPrefix: o.KeyPrefix, Accept: g.correlator.Accept, Patterns: g.correlator.Patterns(), Stats: g.stats, Clock: o.Clock, Logger: o.Logger,
		OnRefused: m.Refused, OnDelivery: m.Delivery})
	return g, err
}

// GitHubHook is what `bot github-hook` does after its flags: it makes repo (OWNER/NAME)
// have the bot's webhook to $PUBLIC_URL/github/webhook, signed with GITHUB_WEBHOOK_SECRET
// (with dry, only says what it would change), and returns the line saying what it did.
// What the operator must fix (a variable missing, the repository, the token) is a
// *SetupError.
func GitHubHook(ctx context.Context, env config.Env, repo string, dry bool) (string, error) {
	if missing := env.GitHubHookMissing(); len(missing) > 0 {
		return "", &SetupError{errors.New(strings.Join(missing, "\n"))}
	}
	client, err := commits.NewClient(env.GitHubAPIURL, env.GitHubToken.Reveal(), 15*time.Second)
	if err != nil {
		return "", &SetupError{fmt.Errorf("GITHUB_API_URL: %v", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	url := env.PublicURL + "/github/webhook"
	res, err := commits.EnsureHook(ctx, client, repo, commits.HookSpec{URL: url, Secret: env.GitHubWebhookSecret.Reveal()}, dry)
	if err != nil && commits.IsSetupError(err) {
		return "", &SetupError{fmt.Errorf("bot github-hook: %v", err)}
	} else if err != nil {
		return "", err
	}
	return res.Describe(repo, url), nil
}
