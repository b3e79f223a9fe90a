package bot

import (
	"context"
	"errors"
	"time"

	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/conversation"
	"github.com/prometheus/client_golang/prometheus"
)

// CommitSource is the conversation's view of the commit store: the changes correlated
// with a service (conversation.CommitSource), each judged by its tenant's risky paths and
// its author mapped to a person of the tenant (for separation of duties).
type CommitSource struct {
	Correlator *commits.Correlator
	// Person maps a tenant's GitHub login to the config person's name ("" when unknown).
	Person func(tenant, login string) string
	Clock  func() time.Time
}

// RecentCommits implements conversation.CommitSource: the service's changes from since
// until now, newest first.
func (s CommitSource) RecentCommits(ctx context.Context, tenant, service string, since time.Time) ([]conversation.Commit, error) {
	if s.Correlator == nil {
		return nil, errors.New("commit source: no correlator")
	}
	now := time.Now
	if s.Clock != nil {
		now = s.Clock
	}
	fs, err := s.Correlator.Between(ctx, tenant, service, since, now())
	if err != nil {
		return nil, err
	}
	out := make([]conversation.Commit, 0, len(fs))
	for _, f := range fs {
		c := conversation.Commit{SHA: f.SHA, Message: f.Message, Author: f.Author(), At: f.At, Kind: string(f.Kind), Where: f.Ref, By: f.By, Ref: f.DeployRef, State: f.State,
			Stats: f.Stats, Additions: f.Additions, Deletions: f.Deletions, Risky: f.Risky, URL: f.URL}
		if c.Author == "" {
			c.Author = f.By // a tag, or a deployment of a commit the bot has not seen
		}
		if s.Person != nil && f.AuthorLogin != "" {
			c.Person = s.Person(tenant, f.AuthorLogin)
		}
		out = append(out, c)
	}
	return out, nil
}

// GitHubMetrics count what the GitHub webhook refused and accepted.
type GitHubMetrics struct {
	refused    *prometheus.CounterVec
	deliveries *prometheus.CounterVec
}

// NewGitHubMetrics registers the GitHub webhook's metrics on reg.
func NewGitHubMetrics(reg prometheus.Registerer) (*GitHubMetrics, error) {
	m := &GitHubMetrics{
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_github_webhook_refused_total",
			Help: "GitHub webhook requests refused, by reason (bad_signature is a security event: a forged or misconfigured sender)."}, []string{"reason"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_github_deliveries_total",
			Help: "Authenticated GitHub deliveries, by event and outcome (stored, ignored, duplicate, malformed, failed)."}, []string{"event", "outcome"}),
	}
	for _, r := range []string{commits.RefusedSignature, commits.RefusedNoSecret, commits.RefusedTooLarge, commits.RefusedMalformed} {
		m.refused.WithLabelValues(r)
	}
	return m, register(reg, m.refused, m.deliveries)
}

// Refused counts a refused request.
func (m *GitHubMetrics) Refused(reason string) { m.refused.WithLabelValues(reason).Inc() }

// Delivery counts an authenticated delivery; events the bot does not use count as
// "other" so a sender cannot grow the label set.
func (m *GitHubMetrics) Delivery(event, outcome string) {
	switch event {
	case "ping", "push", "deployment_status", "create":
	default:
		event = "other"
	}
	m.deliveries.WithLabelValues(event, outcome).Inc()
}

// WatchStats exports the commit-stats fetcher's counters on reg.
func WatchStats(reg prometheus.Registerer, s *commits.Stats) error {
	c := func(name, help string, f func() uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "alertengine_github_stats_" + name, Help: help}, func() float64 { return float64(f()) })
	}
	return register(reg,
		c("fetched_total", "Commits whose +/− counts were fetched from the GitHub API.", s.Fetched.Load),
		c("dropped_total", "Commits not fetched because the queue was full.", s.Dropped.Load),
		c("failed_total", "Commit stats fetches that failed or were skipped for the rate limit.", s.Failed.Load),
	)
}
