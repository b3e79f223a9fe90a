package main

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/alertengine/alertengine/commits"
)

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
	if missing := env.GitHubHookMissing(); len(missing) > 0 {
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
