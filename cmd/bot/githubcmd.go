package main

import (
	"context"
	"fmt"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/commits"
)

// runGitHubHook is `bot github-hook --repo OWNER/NAME [--dry-run]`.
func runGitHubHook(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("github-hook")
	repo := fs.String("repo", "", "the repository, OWNER/NAME")
	dry := fs.Bool("dry-run", false, "print what would change, change nothing")
	env, err := a.ready(fs, args, func() error { return commits.CheckRepo(*repo) })
	if err != nil {
		return err
	}
	line, err := app.GitHubHook(ctx, env, *repo, *dry)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, line)
	return nil
}
