package app

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/alertengine/alertengine/bot/config"
)

// TestGitHubHookSaysWhatTheOperatorMustFix: with the variables missing, bot github-hook
// lists each one (a usage error); a repository GitHub does not show the token is one too,
// naming the command.
func TestGitHubHookSaysWhatTheOperatorMustFix(t *testing.T) {
	env := func(vars map[string]string) config.Env {
		e, err := config.LoadEnv(func(k string) (string, bool) { v, ok := vars[k]; return v, ok }, config.Demo)
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	_, err := GitHubHook(t.Context(), env(nil), "acme/checkout", true)
	want := "GITHUB_TOKEN: not set (a token that may manage the repository's webhooks)\n" +
		"PUBLIC_URL: not set (GitHub must reach the bot at $PUBLIC_URL/github/webhook)\n" +
		"GITHUB_WEBHOOK_SECRET: not set (the secret GitHub signs deliveries with)"
	if !errors.As(err, new(*SetupError)) || err.Error() != want {
		t.Fatalf("nothing set: %v", err)
	}
	gh := httptest.NewServer(http.NotFoundHandler())
	defer gh.Close()
	vars := map[string]string{"GITHUB_TOKEN": "t", "PUBLIC_URL": "https://bot.example", "GITHUB_WEBHOOK_SECRET": "0123456789abcdef0123456789abcdef", "GITHUB_API_URL": gh.URL}
	_, err = GitHubHook(t.Context(), env(vars), "acme/checkout", true)
	if !errors.As(err, new(*SetupError)) || err.Error() != "bot github-hook: list webhooks of acme/checkout: repository not found (or the token cannot see it)" {
		t.Fatalf("unknown repository: %v", err)
	}
}
