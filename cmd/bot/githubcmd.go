package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/alertengine/alertengine/commits"
)

var repoFlagPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)

// runGitHubHook is `bot github-hook --repo OWNER/NAME [--dry-run]`.
func runGitHubHook(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("github-hook")
	repo := fs.String("repo", "", "the repository, OWNER/NAME")
	dry := fs.Bool("dry-run", false, "print what would change, change nothing")
	env, err := a.ready(fs, args, func() error {
		if !repoFlagPattern.MatchString(*repo) {
			return fmt.Errorf("--repo: want OWNER/NAME (e.g. acme/checkout), got %q", *repo)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if missing := env.GitHubHookMissing(); len(missing) > 0 {
		return usagef("%s", strings.Join(missing, "\n"))
	}
	client, err := commits.NewClient(env.GitHubAPIURL, env.GitHubToken.Reveal(), 15*time.Second)
	if err != nil {
		return usagef("GITHUB_API_URL: %v", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	url := env.PublicURL + "/github/webhook"
	res, err := commits.EnsureHook(ctx, client, *repo, commits.HookSpec{URL: url, Secret: env.GitHubWebhookSecret.Reveal()}, *dry)
	if err != nil && commits.IsSetupError(err) {
		return usagef("bot github-hook: %v", err)
	} else if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, res.Describe(*repo, url))
	return nil
}
