package commits

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-github/v60/github"
)

// NewClient returns a go-github client for token against apiURL (GITHUB_API_URL, e.g.
// https://api.github.com/ or a GitHub Enterprise /api/v3/ base), every call bounded by
// timeout.
func NewClient(apiURL, token string, timeout time.Duration) (*github.Client, error) {
	u, err := url.Parse(apiURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("GitHub API URL %q is not an http(s) URL", apiURL)
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	c := github.NewClient(&http.Client{Timeout: timeout})
	if token != "" {
		c = c.WithAuthToken(token)
	}
	c.BaseURL = u
	return c, nil
}

// StatsOptions configure a Stats fetcher.
type StatsOptions struct {
	// Client is a go-github client with a token (see NewClient).
	Client *github.Client
	Store  *Store
	// Timeout bounds one API call (default 5 s).
	Timeout time.Duration
	// Queue bounds the commits waiting to be fetched (default 256); more are dropped.
	Queue int
	// MinRemaining pauses fetching until the rate-limit window resets when fewer calls
	// than this remain (default 100), leaving the budget to people and `bot github-hook`.
	MinRemaining int
	Clock        func() time.Time
	Logger       *slog.Logger
}

// Validate checks the options.
func (o *StatsOptions) Validate() error {
	if o.Client == nil || o.Store == nil {
		return errors.New("commit stats: no client or store")
	}
	return nil
}

// Stats fetches commits' +/− line counts with Repositories.GetCommit after their push is
// stored, one at a time, in the background: cached in the store (never fetched twice),
// paused while the API's rate limit is (nearly) spent, and never on the path of a card,
// which shows a commit without counts until they arrive.
type Stats struct {
	o       StatsOptions
	queue   chan statsJob
	pending sync.Map // repo+sha queued, so a commit pushed to two branches is fetched once
	pause   atomic.Int64
	// Counters for /metrics.
	Fetched, Dropped, Failed atomic.Uint64
}

type statsJob struct{ repo, sha string }

// NewStats returns a fetcher; Run does the work.
func NewStats(o StatsOptions) (*Stats, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	if o.Queue == 0 {
		o.Queue = 256
	}
	if o.MinRemaining == 0 {
		o.MinRemaining = 100
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Stats{o: o, queue: make(chan statsJob, o.Queue)}, nil
}

// Enqueue asks for a commit's stats without waiting; false when the queue is full.
func (s *Stats) Enqueue(repo, sha string) bool {
	k := repo + "@" + sha
	if _, dup := s.pending.LoadOrStore(k, true); dup {
		return true
	}
	select {
	case s.queue <- statsJob{repo: repo, sha: sha}:
		return true
	default:
		s.pending.Delete(k)
		s.Dropped.Add(1)
		return false
	}
}

// Run fetches queued commits until ctx ends.
func (s *Stats) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case j := <-s.queue:
			s.do(ctx, j)
		}
	}
}

// Drain fetches what is queued now and returns when the queue is empty (Run's work
// without the wait, for a caller that owns the timing).
func (s *Stats) Drain(ctx context.Context) {
	for {
		select {
		case j := <-s.queue:
			s.do(ctx, j)
		default:
			return
		}
	}
}

func (s *Stats) do(ctx context.Context, j statsJob) {
	if err := s.Fetch(ctx, j.repo, j.sha); err != nil {
		s.Failed.Add(1)
		s.o.Logger.Warn("commit stats", "repo", j.repo, "sha", short(j.sha), "err", err)
	}
	s.pending.Delete(j.repo + "@" + j.sha)
}

// ErrRateLimited is returned while the GitHub API's rate limit is spent.
var ErrRateLimited = errors.New("GitHub API rate limit reached")

// Fetch gets one commit's stats now unless they are stored or the rate limit is spent.
func (s *Stats) Fetch(ctx context.Context, repo, sha string) error {
	if until := s.pause.Load(); until != 0 && s.o.Clock().Unix() < until {
		return fmt.Errorf("%w until %s", ErrRateLimited, time.Unix(until, 0).UTC().Format(time.RFC3339))
	}
	if ok, err := s.o.Store.HasStats(ctx, repo, sha); err != nil || ok {
		return err
	}
	owner, name, ok := strings.Cut(repo, "/")
	if !ok {
		return fmt.Errorf("repository %q is not owner/name", repo)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	rc, resp, err := s.o.Client.Repositories.GetCommit(ctx, owner, name, sha, &github.ListOptions{PerPage: 1})
	if resp != nil && resp.Rate.Limit > 0 && resp.Rate.Remaining < s.o.MinRemaining {
		s.pause.Store(resp.Rate.Reset.Unix())
	}
	if err != nil {
		var rle *github.RateLimitError
		var are *github.AbuseRateLimitError
		switch {
		case errors.As(err, &rle):
			s.pause.Store(rle.Rate.Reset.Unix())
			return fmt.Errorf("%w: %w", ErrRateLimited, err)
		case errors.As(err, &are):
			wait := are.GetRetryAfter()
			if wait <= 0 {
				wait = time.Minute
			}
			s.pause.Store(s.o.Clock().Add(wait).Unix())
			return fmt.Errorf("%w: %w", ErrRateLimited, err)
		}
		return fmt.Errorf("get commit %s of %s: %w", short(sha), repo, err)
	}
	st := rc.GetStats()
	if err := s.o.Store.SetStats(ctx, repo, sha, st.GetAdditions(), st.GetDeletions()); err != nil {
		return err
	}
	s.Fetched.Add(1)
	return nil
}
