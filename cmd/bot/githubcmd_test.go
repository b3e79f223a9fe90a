package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/commits/githubtest"
	"github.com/alertengine/alertengine/fixtures"
	"github.com/alertengine/alertengine/ledger"
)

const githubSecret = "github-webhook-secret-for-tests"

// withGitHub maps acme/checkout to the checkout service, makes tendai the GitHub user
// john, sets the webhook secret, and points the GitHub API at a fake that knows the
// counts of the risky commit.
func (h *harness) withGitHub(t *testing.T) *githubtest.Server {
	t.Helper()
	gh := githubtest.New(t, "ghp_e2e")
	gh.AddRepo("acme/checkout", true)
	gh.AddCommit("acme/checkout", githubtest.Commit{SHA: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Additions: 12, Deletions: 3})
	gh.AddCommit("acme/checkout", githubtest.Commit{SHA: "9f2c1a7e5b3d4c6f8a0e1b2c3d4e5f6a7b8c9d01", Additions: 40, Deletions: 1})
	h.vars["GITHUB_TOKEN"] = "ghp_e2e"
	h.vars["GITHUB_API_URL"] = gh.URL()
	b, err := os.ReadFile(h.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(b), "      - name: checkout\n", "      - name: checkout\n        repos: [acme/checkout]\n", 1)
	cfg = strings.Replace(cfg, "{name: tendai, role: approver, telegram: 11}", "{name: tendai, role: approver, telegram: 11, github: john}", 1)
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h.vars["GITHUB_WEBHOOK_SECRET"] = githubSecret
	if h.env, err = config.LoadEnv(h.vars.lookup, config.Serve); err != nil {
		t.Fatal(err)
	}
	if h.file, err = config.Load(h.cfgPath, h.vars.lookup, h.env, app.ChatChannels(h.vars.lookup)...); err != nil {
		t.Fatal(err)
	}
	if p, _ := h.file.Tenants[0].PersonByGitHub("john"); p.Name != "tendai" {
		t.Fatal("config edit did not take")
	}
	return gh
}

// waitMetric waits until /metrics has line.
func waitMetric(t *testing.T, base, line string) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) {
		if _, m := get(t, base+"/metrics"); strings.Contains(m, line) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("/metrics never showed %s", line)
}

// riskyPush is push.several without its last commit: the head is john's commit touching
// a migration and a query file.
func riskyPush(t *testing.T) []byte {
	t.Helper()
	d, err := fixtures.GitHubDeliveryNamed("push.several")
	if err != nil {
		t.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(d.Body, &p); err != nil {
		t.Fatal(err)
	}
	cs := p["commits"].([]any)
	p["commits"] = cs[:2]
	p["head_commit"] = cs[1]
	p["after"] = cs[1].(map[string]any)["id"]
	out, _ := json.Marshal(p)
	return out
}

func (b *replica) github(t *testing.T, event, delivery string, body []byte, sig string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.base+"/github/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", delivery)
	req.Header.Set("User-Agent", "GitHub-Hookshot/5a2d1f3")
	if sig != "" {
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(msg)
}

// TestEndToEndGitHubSuspectCannotApprove: a signed push of a risky commit, then a spike:
// the card shows the commit and its risky flag; its author's Approve is refused and
// audited; another approver's press executes.
func TestEndToEndGitHubSuspectCannotApprove(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.withGitHub(t)
	b := h.start(false)
	push := riskyPush(t)

	// Forged first: refused, counted, nothing stored.
	if code, _ := b.github(t, "push", "forged-1", push, commits.Sign([]byte("guess"), push)); code != http.StatusUnauthorized {
		t.Fatalf("forged push: %d", code)
	}
	if code, _ := b.github(t, "push", "unsigned-1", push, ""); code != http.StatusUnauthorized {
		t.Fatalf("unsigned push: %d", code)
	}
	if code, msg := b.github(t, "ping", "ping-1", mustDelivery(t, "ping"), commits.Sign([]byte(githubSecret), mustDelivery(t, "ping"))); code != http.StatusOK {
		t.Fatalf("ping: %d %s", code, msg)
	}
	if code, msg := b.github(t, "push", "push-1", push, commits.Sign([]byte(githubSecret), push)); code != http.StatusOK {
		t.Fatalf("signed push: %d %s", code, msg)
	}
	if code, msg := b.github(t, "push", "push-1", push, commits.Sign([]byte(githubSecret), push)); code != http.StatusOK || !strings.Contains(msg, "duplicate") {
		t.Fatalf("redelivery: %d %s", code, msg)
	}

	// The counts are fetched in the background after the push was stored.
	waitMetric(t, b.base, "alertengine_github_stats_fetched_total 2")

	b.alert(t, "firing")
	card := h.card(t)
	text := card.Text + card.Caption
	for _, want := range []string{`Recent deploy: just now a1b2c3d "Fix checkout query isolation level" (john, +12/−3)`, "⚠️ touched database/query files"} {
		if !strings.Contains(text, want) {
			t.Fatalf("card lacks %q:\n%s", want, text)
		}
	}
	inc := incidentCode(t, card)
	approve := card.Buttons()[0][0].CallbackData

	h.tg.SendText(groupID, userVimbai, "what changed?", telegramtest.ReplyTo(card.MessageID))
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText(`a1b2c3d "Fix checkout query isolation level" by john`)); err != nil {
		t.Fatalf("what changed? %v", err)
	}
	h.tg.SendText(groupID, userVimbai, "who deployed?", telegramtest.ReplyTo(card.MessageID))
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("john pushed a1b2c3d")); err != nil {
		t.Fatalf("who deployed? %v", err)
	}

	q := h.tg.PressButton(groupID, card.MessageID, userTendai, approve)
	if a := waitAnswer(t, h.tg, q); !strings.Contains(a.Text, "You authored a suspect commit") {
		t.Fatalf("the suspect's press answered %q", a.Text)
	}
	if st := h.stage(t, inc); st != ledger.Validated {
		t.Fatalf("after the suspect's press: %s", st)
	}
	es, err := ledger.NewRedisStore(h.redis.Client(t), h.prefix).History(context.Background(), "acme", inc)
	if err != nil {
		t.Fatal(err)
	}
	audited := false
	for _, e := range es {
		if e.Event == ledger.RefusedPress && e.Actor.ID == "tendai" && strings.Contains(e.Reason, "suspect") {
			audited = true
		}
	}
	if !audited {
		t.Fatalf("the refused press is not in the ledger: %+v", es)
	}
	q = h.tg.PressButton(groupID, card.MessageID, userRudo, approve)
	if a := waitAnswer(t, h.tg, q); !strings.HasPrefix(a.Text, "Approved.") {
		t.Fatalf("another approver's press answered %q", a.Text)
	}
	select {
	case <-h.hook.calls:
	case <-time.After(40 * time.Second):
		t.Fatal("the recovery webhook was not called")
	}
	_, metrics := get(t, b.base+"/metrics")
	for _, want := range []string{
		`alertengine_github_webhook_refused_total{reason="bad_signature"} 2`,
		`alertengine_github_deliveries_total{event="push",outcome="stored"} 1`,
		`alertengine_github_deliveries_total{event="push",outcome="duplicate"} 1`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func mustDelivery(t *testing.T, name string) []byte {
	t.Helper()
	d, err := fixtures.GitHubDeliveryNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	return d.Body
}

func TestGitHubHookCommand(t *testing.T) {
	t.Parallel()
	gh := githubtest.New(t, "ghp_token")
	gh.AddRepo("acme/checkout", true)
	gh.AddRepo("acme/readonly", false)
	vars := env{"GITHUB_TOKEN": "ghp_token", "GITHUB_API_URL": gh.URL(), "PUBLIC_URL": "https://bot.acme.example", "GITHUB_WEBHOOK_SECRET": "one", "LOG_LEVEL": "error"}
	code, out, errs := runCLI(t, vars, "github-hook", "--repo", "acme/checkout", "--dry-run")
	if code != exitOK || !strings.Contains(out, "dry run, nothing changed: would have created") || len(gh.Hooks("acme/checkout")) != 0 {
		t.Fatalf("dry run: %d %q %q", code, out, errs)
	}
	code, out, _ = runCLI(t, vars, "github-hook", "--repo", "acme/checkout")
	if code != exitOK || !strings.HasPrefix(out, "created the webhook on acme/checkout → https://bot.acme.example/github/webhook") {
		t.Fatalf("first run: %d %q", code, out)
	}
	code, out, _ = runCLI(t, vars, "github-hook", "--repo", "acme/checkout")
	if code != exitOK || !strings.Contains(out, "is up to date") || gh.Calls("edit hook") != 0 {
		t.Fatalf("second run: %d %q", code, out)
	}
	vars["GITHUB_WEBHOOK_SECRET"] = "two"
	code, out, _ = runCLI(t, vars, "github-hook", "--repo", "acme/checkout")
	if code != exitOK || !strings.Contains(out, "updated webhook") || !strings.Contains(out, "[secret]") || gh.Hooks("acme/checkout")[0].Secret != "two" {
		t.Fatalf("third run: %d %q", code, out)
	}
	for _, c := range []struct {
		name string
		vars env
		args []string
		code int
		want string
	}{
		{"no token", env{"PUBLIC_URL": "https://b", "GITHUB_WEBHOOK_SECRET": "s"}, []string{"--repo", "acme/checkout"}, exitUsage, "GITHUB_TOKEN: not set"},
		{"no public url", env{"GITHUB_TOKEN": "t", "GITHUB_WEBHOOK_SECRET": "s"}, []string{"--repo", "acme/checkout"}, exitUsage, "PUBLIC_URL: not set"},
		{"bad repo", vars, []string{"--repo", "acme"}, exitUsage, "--repo: want OWNER/NAME"},
		{"404", vars, []string{"--repo", "acme/missing"}, exitUsage, "repository not found"},
		{"403", vars, []string{"--repo", "acme/readonly"}, exitUsage, "may not manage this repository's webhooks"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.vars["GITHUB_API_URL"] = gh.URL()
			code, _, errs := runCLI(t, c.vars, append([]string{"github-hook"}, c.args...)...)
			if code != c.code || !strings.Contains(errs, c.want) {
				t.Fatalf("exit %d, stderr %q", code, errs)
			}
			if strings.Contains(errs, "ghp_token") {
				t.Fatal("the token leaked")
			}
		})
	}
	gh.SetRateLimit(0, time.Now().Add(time.Hour))
	code, _, errs = runCLI(t, vars, "github-hook", "--repo", "acme/checkout")
	if code != exitUsage || !strings.Contains(errs, "rate limit") {
		t.Fatalf("rate limited: %d %q", code, errs)
	}
}
