package app

import (
	"fmt"
	"time"

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
