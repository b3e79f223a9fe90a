package app

import (
	"context"
	"errors"
	"time"

	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/conversation"
)

// Commits is the conversation's view of the commit store: the changes correlated
// with a service (conversation.CommitSource), each judged by its tenant's risky paths and
// its author mapped to a person of the tenant (for separation of duties).
type Commits struct {
	Correlator *commits.Correlator
	// Person maps a tenant's GitHub login to the config person's name ("" when unknown).
	Person func(tenant, login string) string
	Clock  func() time.Time
}

// RecentCommits implements conversation.CommitSource: the service's changes from since
// until now, newest first.
func (s Commits) RecentCommits(ctx context.Context, tenant, service string, since time.Time) ([]conversation.Commit, error) {
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
