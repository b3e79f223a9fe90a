package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// Exit codes (SPEC §1).
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// app is one invocation: its streams and environment.
type app struct {
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
}

type command struct {
	name, args, help string
	run              func(ctx context.Context, a *app, args []string) int
}

func commands() []command {
	return []command{
		{"demo", "", "zero-config tour on this machine (the default with no arguments)", runDemo},
		{"serve", "[--config FILE]", "run the bot in production (env and YAML config)", runServe},
		{"replay", "--tenant T --incident ID", "print an incident's timeline from the ledger and verify its chain", runReplay},
		{"verify", "--tenant T | --file EXPORT.jsonl", "verify a ledger hash chain and its signed checkpoint", runVerify},
		{"export", "--tenant T --incident ID --format jsonl|md [--out FILE]", "auditor's export: JSONL + signed checkpoint, or a Markdown report", runExport},
		{"enroll", "--tenant T --name NAME [--role approver|viewer] [--revoke]", "print a one-time code that links a chat identity to NAME (10 min); --revoke unlinks NAME's accounts", runEnroll},
		{"github-hook", "--repo OWNER/NAME [--dry-run]", "create or update the repository's webhook to $PUBLIC_URL/github/webhook (GITHUB_TOKEN, GITHUB_WEBHOOK_SECRET)", runGitHubHook},
		{"ledger", "accept-loss --tenant T --by NAME --reason TEXT", "accept a detected ledger loss after review (signed, recorded); lifts the hold on incidents from before it", runLedger},
		{"dlq", "list|redrive --tenant T [INCIDENT]", "list or re-drive dead-lettered executions (same idempotency key)", runDLQ},
		{"simulate", "SCENARIO.yaml [--seed N] [--json] [--summary] [--ledger OUT.jsonl]", "governance simulation on a virtual clock: timeline, summary, expectations (exit 1 when one breaks)", runSimulate},
		{"version", "", "print version, commit and Go version", runVersion},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	a := &app{stdout: stdout, stderr: stderr, lookup: lookup}
	name := "demo"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	switch name {
	case "help", "-h", "--help", "-help":
		a.usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(ctx, a, args)
		}
	}
	fmt.Fprintf(stderr, "bot: unknown command %q\n", name)
	a.usage(stderr)
	return exitUsage
}

func (a *app) usage(w io.Writer) {
	fmt.Fprintln(w, "usage: bot <command> [flags]")
	fmt.Fprintln(w)
	width := 0
	for _, c := range commands() {
		width = max(width, len(c.name))
	}
	indent := strings.Repeat(" ", width+3)
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-*s %s\n%s%s\n", width, c.name, c.args, indent, c.help)
	}
	fmt.Fprintln(w, "\nExit codes: 0 success, 1 the operation failed, 2 usage or configuration error.")
}

// flags returns a FlagSet for a subcommand that reports to a's stderr.
func (a *app) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("bot "+name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	return fs
}

// parse parses args, answering usage errors with exit code 2.
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, false
		}
		return exitUsage, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		return exitUsage, false
	}
	return 0, true
}

// problems prints each line of a multi-line configuration error and returns exit code 2.
func (a *app) problems(err error) int {
	for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
		fmt.Fprintln(a.stderr, line)
	}
	return exitUsage
}
