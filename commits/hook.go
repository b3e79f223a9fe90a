package commits

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/google/go-github/v60/github"
)

// Errors of EnsureHook that name what the user must fix.
var (
	ErrRepoNotFound = errors.New("repository not found (or the token cannot see it)")
	ErrForbidden    = errors.New("the token may not manage this repository's webhooks (it needs admin:repo_hook or repository administration)")
)

// repoPattern is a GitHub repository's OWNER/NAME as GitHub allows them.
var repoPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)

// CheckRepo says why repo is not a repository's OWNER/NAME (the --repo of `bot
// github-hook`).
func CheckRepo(repo string) error {
	if !repoPattern.MatchString(repo) {
		return fmt.Errorf("--repo: want OWNER/NAME (e.g. acme/checkout), got %q", repo)
	}
	return nil
}

// HookEvents are the events the bot's webhook subscribes to.
var hookEvents = []string{"create", "deployment_status", "push"}

// HookEvents returns the events the bot's webhook subscribes to, sorted.
func HookEvents() []string { return slices.Clone(hookEvents) }

// HookSpec is the webhook the bot wants on a repository.
type HookSpec struct {
	// URL is $PUBLIC_URL/github/webhook.
	URL string
	// Secret is GITHUB_WEBHOOK_SECRET.
	Secret string
}

// HookResult says what EnsureHook did (or, dry, would do).
type HookResult struct {
	// Action is "created", "updated" or "unchanged".
	Action string
	ID     int64
	// Changes name what differed on an update (events, url, secret, content_type, active,
	// insecure_ssl).
	Changes []string
	DryRun  bool
}

// hookURL is the URL registered: spec.URL with a fingerprint of the secret as a query
// parameter. GitHub never returns a hook's secret, so the fingerprint (8 bytes of an HMAC
// keyed by the secret; it does not reveal it) is what tells a changed secret apart. The
// bot's route ignores the query.
func hookURL(spec HookSpec) string {
	m := hmac.New(sha256.New, []byte(spec.Secret))
	m.Write([]byte("alertengine github-hook v1"))
	sep := "?"
	if strings.Contains(spec.URL, "?") {
		sep = "&"
	}
	return spec.URL + sep + "ae=" + hex.EncodeToString(m.Sum(nil)[:8])
}

// sameTarget reports whether a hook's URL points at spec's URL, whatever its query.
func sameTarget(got, want string) bool {
	g, err1 := url.Parse(got)
	w, err2 := url.Parse(want)
	if err1 != nil || err2 != nil {
		return false
	}
	return strings.EqualFold(g.Scheme, w.Scheme) && strings.EqualFold(g.Host, w.Host) && strings.TrimSuffix(g.Path, "/") == strings.TrimSuffix(w.Path, "/")
}

// EnsureHook makes repo (owner/name) have the bot's webhook: created when no hook
// points at spec.URL, edited when one does but differs (events, URL, secret, JSON content
// type, active, TLS verification), left alone otherwise. With dry it only says what it
// would do.
func EnsureHook(ctx context.Context, c *github.Client, repo string, spec HookSpec, dry bool) (HookResult, error) {
	owner, name, ok := strings.Cut(repo, "/")
	if !ok || owner == "" || name == "" || strings.Contains(name, "/") {
		return HookResult{}, fmt.Errorf("repository %q is not owner/name", repo)
	}
	if spec.URL == "" || spec.Secret == "" {
		return HookResult{}, errors.New("a webhook needs a URL and a secret")
	}
	// The hook pointing at spec.URL; else one this command made for another PUBLIC_URL
	// (its URL carries the ae= fingerprint), which is moved rather than left behind.
	var found, moved *github.Hook
	opt := &github.ListOptions{PerPage: 100}
	for pages := 0; found == nil && pages < 10; pages++ {
		hooks, resp, err := c.Repositories.ListHooks(ctx, owner, name, opt)
		if err != nil {
			return HookResult{}, apiError("list webhooks of "+repo, err)
		}
		for _, h := range hooks {
			if h.GetConfig() == nil {
				continue
			}
			if sameTarget(h.GetConfig().GetURL(), spec.URL) {
				found = h
				break
			}
			if u, err := url.Parse(h.GetConfig().GetURL()); err == nil && moved == nil && u.Query().Get("ae") != "" && strings.HasSuffix(u.Path, "/github/webhook") {
				moved = h
			}
		}
		if resp.NextPage == 0 {
			break
		}
		opt.Page = resp.NextPage
	}
	if found == nil {
		found = moved
	}
	want := &github.Hook{
		Events: HookEvents(), Active: github.Bool(true),
		Config: &github.HookConfig{URL: github.String(hookURL(spec)), ContentType: github.String("json"),
			InsecureSSL: github.String("0"), Secret: github.String(spec.Secret)},
	}
	if found == nil {
		res := HookResult{Action: "created", DryRun: dry}
		if dry {
			return res, nil
		}
		h, _, err := c.Repositories.CreateHook(ctx, owner, name, want)
		if err != nil {
			return HookResult{}, apiError("create the webhook on "+repo, err)
		}
		res.ID = h.GetID()
		return res, nil
	}
	res := HookResult{Action: "unchanged", ID: found.GetID(), DryRun: dry}
	got := found.GetConfig()
	events := slices.Clone(found.Events)
	slices.Sort(events)
	if !slices.Equal(events, hookEvents) {
		res.Changes = append(res.Changes, "events")
	}
	if got.GetURL() != want.Config.GetURL() {
		if u, _ := url.Parse(got.GetURL()); u != nil && u.Query().Get("ae") != "" && sameTarget(got.GetURL(), spec.URL) {
			res.Changes = append(res.Changes, "secret") // same target, other fingerprint
		} else {
			res.Changes = append(res.Changes, "url")
		}
	}
	if got.GetContentType() != "json" {
		res.Changes = append(res.Changes, "content_type")
	}
	if !found.GetActive() {
		res.Changes = append(res.Changes, "active")
	}
	if got.GetInsecureSSL() != "0" && got.GetInsecureSSL() != "" {
		res.Changes = append(res.Changes, "insecure_ssl")
	}
	if len(res.Changes) == 0 {
		return res, nil
	}
	res.Action = "updated"
	if dry {
		return res, nil
	}
	if _, _, err := c.Repositories.EditHook(ctx, owner, name, found.GetID(), want); err != nil {
		return HookResult{}, apiError("update the webhook on "+repo, err)
	}
	return res, nil
}

// apiError turns go-github's errors into ones that say what to do.
func apiError(what string, err error) error {
	var rle *github.RateLimitError
	var are *github.AbuseRateLimitError
	var er *github.ErrorResponse
	switch {
	case errors.As(err, &rle):
		return fmt.Errorf("%s: %w (resets at %s)", what, ErrRateLimited, rle.Rate.Reset.UTC().Format("15:04:05 UTC"))
	case errors.As(err, &are):
		return fmt.Errorf("%s: %w (secondary limit; retry after %s)", what, ErrRateLimited, are.GetRetryAfter())
	case errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusNotFound:
		return fmt.Errorf("%s: %w", what, ErrRepoNotFound)
	case errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusForbidden:
		return fmt.Errorf("%s: %w", what, ErrForbidden)
	case errors.As(err, &er) && er.Response != nil && er.Response.StatusCode == http.StatusUnauthorized:
		return fmt.Errorf("%s: %w", what, ErrBadToken)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// ErrBadToken: GitHub refused the token.
var ErrBadToken = errors.New("GitHub refused GITHUB_TOKEN (401)")

// Describe is the one line saying what EnsureHook did (or would do) on repo, for url.
func (r HookResult) Describe(repo, url string) string {
	would := ""
	if r.DryRun {
		would = "dry run, nothing changed: would have "
	}
	switch r.Action {
	case "created":
		return fmt.Sprintf("%s%s the webhook on %s → %s (events: %v, content type json)", would, r.Action, repo, url, HookEvents())
	case "updated":
		return fmt.Sprintf("%s%s webhook %d on %s → %s (changed: %v)", would, r.Action, r.ID, repo, url, r.Changes)
	}
	return fmt.Sprintf("webhook %d on %s is up to date → %s; nothing to do", r.ID, repo, url)
}

// IsSetupError says whether err is the operator's to fix (the repository, the token, its
// rights, the rate limit) rather than a failure of the call.
func IsSetupError(err error) bool {
	for _, e := range []error{ErrRepoNotFound, ErrForbidden, ErrRateLimited, ErrBadToken} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
