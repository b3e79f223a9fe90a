package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Exit codes, the same for every command.
const (
	exitOK     = 0
	exitFailed = 1
	exitUsage  = 2
)

// cli is one invocation: its streams and environment.
type cli struct {
	stdout, stderr io.Writer
	lookup         func(string) (string, bool)
}

type command struct {
	name, args, help string
	run              func(ctx context.Context, a *cli, args []string) int
}

func commands() []command {
	return []command{
		{"demo", "", "zero-config tour on this machine (the default with no arguments)", runDemo},
		{"serve", "[--config FILE]", "run the bot in production (env and YAML config)", runServe},
		{"replay", "--tenant T --incident ID", "print an incident's timeline from the ledger and verify its chain", runReplay},
		{"verify", "--tenant T | --file EXPORT.jsonl | --bundle FILE | --consistency FILE [--key V] [--witness V]", "verify a ledger hash chain and its signed checkpoint, or an incident bundle / consistency proof offline", runVerify},
		{"export", "--tenant T --incident ID --format jsonl|md|pdf [--out FILE]", "auditor's export: JSONL + signed checkpoint, a Markdown report, or the one-page PDF (+ its bundle)", runExport},
		{"prove", "--tenant T --incident ID | --tenant T --checkpoint | --consistency OLD NEW [--out FILE]", "incident bundle with Merkle inclusion proofs, signed checkpoint note, or consistency proof", runProve},
		{"verify-receipt", "FILE [--key KEY] [--action-hash H] [--tenant T]", "check an agent approval's signed receipt offline: signature, action binding, expiry", runVerifyReceipt},
		{"keys", "", "print the ledger's checkpoint-note verifier key (for auditors and witnesses)", runKeys},
		{"witness", "--name N --key FILE --log-key V --state FILE --file REQ [--init]", "cosign a checkpoint only if consistent with the last one this witness cosigned", runWitness},
		{"enroll", "--tenant T --name NAME [--role approver|viewer] [--revoke]", "print a one-time code that links a chat identity to NAME (10 min); --revoke unlinks NAME's accounts", runEnroll},
		{"github-hook", "--repo OWNER/NAME [--dry-run]", "create or update the repository's webhook to $PUBLIC_URL/github/webhook (GITHUB_TOKEN, GITHUB_WEBHOOK_SECRET)", runGitHubHook},
		{"ledger", "accept-loss --tenant T --by NAME --reason TEXT", "accept a detected ledger loss after review (signed, recorded); lifts the hold on incidents from before it", runLedger},
		{"dlq", "list|redrive --tenant T [INCIDENT]", "list or re-drive dead-lettered executions (same idempotency key)", runDLQ},
		{"simulate", "SCENARIO.yaml [--seed N] [--json] [--summary] [--ledger OUT.jsonl]", "governance simulation on a virtual clock: timeline, summary, expectations (exit 1 when one breaks)", runSimulate},
		{"version", "", "print version, commit and Go version", runVersion},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	a := &cli{stdout: stdout, stderr: stderr, lookup: lookup}
	name := "demo"
	if len(args) > 0 {
		name, args = args[0], args[1:]
	}
	// The Redis client's own log lines (one per failed dial, on the process's stderr by
	// default) are dropped: a command that cannot reach Redis says so in one line naming
	// the variable, and serve routes the client's lines through its log once Redis answered.
	redis.SetLogger(discardRedisLog{})
	switch name {
	case "help", "-h", "--help", "-help":
		if len(args) == 1 {
			if c, ok := lookupCommand(args[0]); ok {
				return c.run(ctx, a, []string{"-h"})
			}
			fmt.Fprintf(stderr, "bot help: unknown command %q; `bot help` lists the commands\n", args[0])
			return exitUsage
		}
		a.usage(stdout)
		return exitOK
	}
	if c, ok := lookupCommand(name); ok {
		return c.run(ctx, a, args)
	}
	fmt.Fprintf(stderr, "bot: unknown command %q; `bot help` lists the commands\n", name)
	return exitUsage
}

func lookupCommand(name string) (command, bool) {
	for _, c := range commands() {
		if c.name == name {
			return c, true
		}
	}
	return command{}, false
}

func (a *cli) usage(w io.Writer) {
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
	fmt.Fprintln(w, "`bot help COMMAND` (or `bot COMMAND -h`) lists a command's flags.")
}

// flagOutput is where a FlagSet of a subcommand writes: nowhere. The flag package's own
// report of a bad flag is several lines (the error, then every flag); parse prints one
// line instead, and the usage only when asked (-h, `bot help CMD`), to stdout.
type flagOutput struct{ stdout, stderr io.Writer }

func (flagOutput) Write(p []byte) (int, error) { return len(p), nil }

// flags returns a FlagSet for a subcommand; parse reports its errors.
func (a *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("bot "+name, flag.ContinueOnError)
	fs.SetOutput(flagOutput{stdout: a.stdout, stderr: a.stderr})
	fs.Usage = func() {}
	return fs
}

// parse parses args. A bad flag is one line naming it and where to read the usage (exit
// 2); -h prints the command's usage and flags on stdout (exit 0).
func parse(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		return flagError(fs, err), false
	}
	if fs.NArg() > 0 {
		return usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0))), false
	}
	return 0, true
}

// flagError answers an error of fs.Parse: the usage for -h, else one line.
func flagError(fs *flag.FlagSet, err error) int {
	out, _ := fs.Output().(flagOutput)
	if errors.Is(err, flag.ErrHelp) {
		if out.stdout != nil {
			commandUsage(out.stdout, fs)
		}
		return exitOK
	}
	return usageError(fs, err.Error())
}

// usageError prints "bot CMD: what; see `bot help CMD`" on the command's stderr.
func usageError(fs *flag.FlagSet, what string) int {
	if out, ok := fs.Output().(flagOutput); ok && out.stderr != nil {
		fmt.Fprintf(out.stderr, "%s: %s; see `bot help %s`\n", fs.Name(), what, commandOf(fs))
	}
	return exitUsage
}

// commandOf is the command a FlagSet belongs to ("bot dlq list" → "dlq").
func commandOf(fs *flag.FlagSet) string {
	f := strings.Fields(fs.Name())
	if len(f) < 2 {
		return fs.Name()
	}
	return f[1]
}

// commandUsage prints a command's synopsis, what it does and its flags.
func commandUsage(w io.Writer, fs *flag.FlagSet) {
	name := commandOf(fs)
	if c, ok := lookupCommand(name); ok {
		fmt.Fprintf(w, "usage: bot %s %s\n\n%s\n", c.name, c.args, c.help)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	saved := fs.Output()
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(saved)
}

// problems prints each line of a multi-line configuration error and returns exit code 2.
func (a *cli) problems(err error) int {
	for _, line := range strings.Split(strings.TrimSpace(err.Error()), "\n") {
		fmt.Fprintln(a.stderr, line)
	}
	return exitUsage
}

// discardRedisLog is the Redis client's logger while nothing should be logged: it drops
// every line.
type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}
