package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"github.com/alertengine/alertengine/bot/app"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/fixtures"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// unreachableRedis is a Redis URL with a password and a database whose server refuses
// connections (nothing listens on port 1).
const unreachableRedis = "redis://:hunter2@127.0.0.1:1/3"

// TestCLIErrorLinesGolden runs every command a user can get wrong and compares what the
// CLI answers — exit code, stdout and stderr — with testdata/cli_errors.golden: one clear
// line per mistake, naming the flag, variable or path the user gave.
func TestCLIErrorLinesGolden(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	export := writeExport(t, 5)
	otherKey := base64.StdEncoding.EncodeToString(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{4}, 32)).Public().(ed25519.PublicKey))

	// A ledger with one incident, for the export whose --out directory is missing.
	srv := ledgertest.NewServer(t)
	prefix := srv.Prefix(t)
	key, _ := serveEnvKey()
	l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(srv.Client(t), prefix), Signer: key})
	if err != nil {
		t.Fatal(err)
	}
	open, err := l.Record(context.Background(), ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout",
		Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}, Reason: "p95 up", PolicyVersion: "pol-1"})
	if err != nil {
		t.Fatal(err)
	}
	withRedis := env{"REDIS_URL": srv.URL, "REDIS_KEY_PREFIX": prefix, "LEDGER_SIGNING_KEY": seed}
	unreachable := env{"REDIS_URL": unreachableRedis, "ACME_RECOVERY_SECRET": "rs"}

	cases := []struct {
		env  env
		args []string
	}{
		{unreachable, []string{"replay", "--tenant", "acme", "--incident", "INC-1"}},
		{unreachable, []string{"dlq", "list", "--tenant", "acme", "--config", "testdata/valid.yaml"}},
		{env{}, []string{"replay", "--incident", "INC-1"}},
		{env{}, []string{"export", "--incident", "INC-1", "--format", "md"}},
		{env{}, []string{"dlq", "list"}},
		{env{}, []string{"dlq", "redrive", "INC-1"}},
		{env{}, []string{"enroll", "--name", "tendai"}},
		{env{}, []string{"export", "--bogus"}},
		{env{}, []string{"replay", "--tenant"}},
		{env{}, []string{"serve", "--config"}},
		{env{}, []string{"dlq", "list", "--tenant", "acme", "--verbose"}},
		{env{}, []string{"simulate", "flapping-latency", "--seed", "soon"}},
		{env{}, []string{"version", "extra"}},
		{env{}, []string{"help", "nope"}},
		{env{}, []string{"nope"}},
		{withRedis, []string{"export", "--tenant", "acme", "--incident", open.Incident, "--format", "jsonl", "--out", filepath.Join(dir, "missing", "x.jsonl")}},
		{withRedis, []string{"export", "--tenant", "acme", "--incident", open.Incident, "--format", "md", "--out", dir}},
		{env{}, []string{"simulate", "no-such-scenario"}},
		{env{}, []string{"verify", "--file", export, "--public-key", otherKey}},
		{env{"LEDGER_SIGNING_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{4}, 32))}, []string{"verify", "--file", export}},
		{env{}, []string{"help", "export"}},
		{env{}, []string{"dlq", "-h"}},
	}
	var b strings.Builder
	for _, c := range cases {
		code, stdout, stderr := runCLI(t, c.env, c.args...)
		fmt.Fprintf(&b, "$ bot %s\nexit %d\n", strings.Join(c.args, " "), code)
		if stdout != "" {
			fmt.Fprintf(&b, "stdout:\n%s", stdout)
		}
		if stderr != "" {
			fmt.Fprintf(&b, "stderr:\n%s", stderr)
		}
		b.WriteString("\n")
		// Every mistake is one line (help is not a mistake: it is the usage, on stdout).
		if code != exitOK && strings.Count(stderr+stdout, "\n") > 2 {
			t.Errorf("bot %v: more than one line for one mistake:\n%s%s", c.args, stdout, stderr)
		}
		if strings.Contains(stdout+stderr, "hunter2") || strings.Contains(stdout+stderr, ".tmp-") {
			t.Errorf("bot %v: leaks a password or a temporary file name:\n%s%s", c.args, stdout, stderr)
		}
	}
	builtins := strings.Join(fixtures.GovernanceScenarios(), ", ")
	if !strings.Contains(b.String(), "built-in scenarios (give the name instead of a file): "+builtins+"\n") {
		t.Errorf("an unknown scenario does not list the built-in ones (%s)", builtins)
	}
	got := strings.NewReplacer(dir, "$DIR", export, "$EXPORT", otherKey, "$OTHER_KEY", open.Incident, "INC-N", builtins, "$BUILTIN_SCENARIOS").Replace(b.String())
	compareGolden(t, filepath.Join("testdata", "cli_errors.golden"), got)
}

// TestRedisUnreachableIsOneLineOnTheRealStderr runs the real binary's main (this test
// binary, re-executed) so that everything the process writes is seen, including what the
// Redis client library would print on its own: `serve` and `replay` against a Redis that
// refuses connections print exactly one line, naming REDIS_URL with its host and database
// and without its password.
func TestRedisUnreachableIsOneLineOnTheRealStderr(t *testing.T) {
	t.Parallel()
	if os.Getenv("BOT_TEST_MAIN") != "" {
		t.Skip("in the re-executed process")
	}
	for _, args := range [][]string{
		{"serve", "--config", "testdata/valid.yaml"},
		{"replay", "--tenant", "acme", "--incident", "INC-1"},
	} {
		t.Run(args[0], func(t *testing.T) {
			t.Parallel()
			cmd := botProcess(args...)
			for k, v := range serveEnv(unreachableRedis, "127.0.0.1:0") {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			if code != exitUsage && code != exitFailed {
				t.Fatalf("exit %d (%v), want 1 or 2; stderr %q", code, err, stderr.String())
			}
			want := "REDIS_URL (redis://:[redacted]@127.0.0.1:1/3): Redis does not answer: connection refused\n"
			if stderr.String() != want || stdout.Len() != 0 {
				t.Fatalf("stderr %q, stdout %q; want only %q", stderr.String(), stdout.String(), want)
			}
		})
	}
}

// TestMainProcess is the re-executed process of botProcess: it runs main with the
// arguments in BOT_TEST_MAIN and exits with its code.
func TestMainProcess(t *testing.T) {
	args := os.Getenv("BOT_TEST_MAIN")
	if args == "" {
		t.Skip("only run re-executed by TestRedisUnreachableIsOneLineOnTheRealStderr")
	}
	os.Args = append([]string{"bot"}, strings.Split(args, "\n")...)
	main()
}

// TestRedisURLShownWithItsDatabase: the description serve logs at start-up ("redis"
// attribute) and every Redis error names the server and database, never the password.
func TestRedisURLShownWithItsDatabase(t *testing.T) {
	t.Parallel()
	for raw, want := range map[string]string{
		"redis://127.0.0.1:6379":                   "REDIS_URL (redis://127.0.0.1:6379/0)",
		"redis://:s3cret@redis:6379/5":             "REDIS_URL (redis://:[redacted]@redis:6379/5)",
		"rediss://bot:s3cret@redis.example:6380/2": "REDIS_URL (rediss://bot:[redacted]@redis.example:6380/2)",
		"unix:///run/redis.sock?db=4":              "REDIS_URL (unix:///run/redis.sock?db=4)",
	} {
		e, err := config.LoadEnv(env{"REDIS_URL": raw}.lookup, config.Demo)
		if err != nil {
			t.Fatal(err)
		}
		c, desc, err := app.RedisClient(e)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if desc != want {
			t.Errorf("%s: described as %q, want %q", raw, desc, want)
		}
	}
}
