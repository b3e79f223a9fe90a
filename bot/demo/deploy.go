package demo

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// ErrNotDelivered: the bot did not accept the demo commit's webhook delivery.
var ErrNotDelivered = errors.New("demo: commit not delivered")

// DeployerOptions configure the demo's GitHub: it delivers a push to the bot's real
// POST /github/webhook, signed with the webhook secret, as GitHub would.
type DeployerOptions struct {
	// WebhookURL is the bot's https?://host/github/webhook.
	WebhookURL string
	// Secret is GITHUB_WEBHOOK_SECRET.
	Secret []byte
	// Repo is owner/name, a repository of the demo service.
	Repo string
	// Timeout bounds the delivery (default 10 s).
	Timeout time.Duration
	Clock   func() time.Time
	Logger  *slog.Logger
}

// Deployer is the demo's GitHub.
type Deployer struct {
	o      DeployerOptions
	client *http.Client
}

// NewDeployer returns a deployer.
func NewDeployer(o DeployerOptions) (*Deployer, error) {
	if !strings.HasPrefix(o.WebhookURL, "http://") && !strings.HasPrefix(o.WebhookURL, "https://") || len(o.Secret) == 0 || !strings.Contains(o.Repo, "/") {
		return nil, fmt.Errorf("%w: a webhook URL, a secret and an owner/name repository are required", ErrInvalidOptions)
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Deployer{o: o, client: &http.Client{Timeout: o.Timeout}}, nil
}

// The demo commit: a change to a database query file, the kind of change risky_paths
// flags.
const (
	commitMessage = "Fix checkout query isolation level"
	commitAuthor  = "john"
)

// Push delivers a push of one commit (touching db/query.go) and returns its SHA.
func (d *Deployer) Push(ctx context.Context) (string, error) {
	sha := randomHex(20)
	owner, name, _ := strings.Cut(d.o.Repo, "/")
	now := d.o.Clock().UTC()
	author := map[string]string{"name": commitAuthor, "email": commitAuthor + "@demo.example", "username": commitAuthor}
	commit := map[string]any{
		"id": sha, "tree_id": randomHex(20), "distinct": true, "message": commitMessage, "timestamp": now.Format(time.RFC3339),
		"url": "https://github.com/" + d.o.Repo + "/commit/" + sha, "author": author, "committer": author,
		"added": []string{}, "removed": []string{}, "modified": []string{"db/query.go", "checkout/handler.go"},
	}
	payload := map[string]any{
		"ref": "refs/heads/main", "before": randomHex(20), "after": sha, "created": false, "deleted": false, "forced": false,
		"compare": "https://github.com/" + d.o.Repo + "/compare/" + sha,
		"repository": map[string]any{"name": name, "full_name": d.o.Repo, "owner": map[string]string{"name": owner, "login": owner},
			"html_url": "https://github.com/" + d.o.Repo, "default_branch": "main"},
		"pusher":  map[string]string{"name": commitAuthor, "email": commitAuthor + "@demo.example"},
		"sender":  map[string]string{"login": commitAuthor},
		"commits": []any{commit}, "head_commit": commit,
	}
	body, err := json.Marshal(payload)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(ctx, d.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.o.WebhookURL, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, d.o.Secret)
	m.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "GitHub-Hookshot/demo")
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", randomHex(16))
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(m.Sum(nil)))
	resp, err := d.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrNotDelivered, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return "", fmt.Errorf("%w: HTTP %d", ErrNotDelivered, resp.StatusCode)
	}
	return sha, nil
}

// Scenario is the console's controls in the demo: "Simulate spike" is a deploy of the
// demo commit (through the bot's GitHub webhook) followed by the fault it causes;
// "Recover" clears the fault by hand.
type Scenario struct {
	Service  *Service
	Deployer *Deployer // optional: without it the spike comes without a commit
	Logger   *slog.Logger
}

// Spike implements console.Controls.
func (s Scenario) Spike() {
	if s.Service.Faulty() {
		return
	}
	if s.Deployer != nil {
		sha, err := s.Deployer.Push(context.Background())
		if err != nil && s.Logger != nil {
			s.Logger.Warn("demo: the demo commit was not delivered; the spike goes on without it", "err", err)
		} else if s.Logger != nil {
			s.Logger.Info("demo: commit pushed", "sha", sha[:7], "message", commitMessage)
		}
	}
	s.Service.Spike()
}

// Recover implements console.Controls.
func (s Scenario) Recover() { s.Service.Recover() }

// Faulty implements console.Controls.
func (s Scenario) Faulty() bool { return s.Service.Faulty() }

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand never fails on supported platforms
	return hex.EncodeToString(b)
}
