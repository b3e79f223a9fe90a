package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger/audit"
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
	run              func(ctx context.Context, a *cli, args []string) error
}

func commands() []command {
	return []command{
		{"demo", "", "zero-config tour on this machine (the default with no arguments)", runDemo},
		{"serve", "[--config FILE]", "run the bot in production (env and YAML config)", runServe},
		{"replay", "--tenant T --incident ID", "print an incident's timeline from the ledger and verify its chain", runReplay},
		{"verify", "--tenant T | --file EXPORT.jsonl | --bundle FILE | --consistency FILE [--key V] [--witness V] | --tenant T --follow [--interval D]", "verify a ledger hash chain and its signed checkpoint, or an incident bundle / consistency proof offline", runVerify},
		{"export", "--tenant T --incident ID --format jsonl|md|pdf [--out FILE]", "auditor's export: JSONL + signed checkpoint, a Markdown report, or the one-page PDF (+ its bundle)", runExport},
		{"prove", "--tenant T --incident ID | --tenant T --checkpoint | --consistency OLD NEW [--out FILE]", "incident bundle with Merkle inclusion proofs, signed checkpoint note, or consistency proof", runProve},
		{"verify-receipt", "FILE [--key KEY] [--action-hash H] [--tenant T]", "check an agent approval's signed receipt offline: signature, action binding, expiry", runVerifyReceipt},
		{"keys", "", "print the ledger's checkpoint-note verifier key (for auditors and witnesses)", runKeys},
		{"witness", "--name N --key FILE --log-key V --state FILE --file REQ | --listen ADDR [--init]", "cosign a checkpoint only if consistent with the last one this witness cosigned", runWitness},
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
				return a.finish(c.name, c.run(ctx, a, []string{"-h"}))
			}
			fmt.Fprintf(stderr, "bot help: unknown command %q; `bot help` lists the commands\n", args[0])
			return exitUsage
		}
		a.usage(stdout)
		return exitOK
	}
	if c, ok := lookupCommand(name); ok {
		return a.finish(c.name, c.run(ctx, a, args))
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

// exitError ends a command with code after printing msg (when not empty) on stderr, or on
// stdout when it is the verdict.
type exitError struct {
	code   int
	stdout bool
	msg    string
}

func (e *exitError) Error() string { return e.msg }

// usage is a usage or configuration error (exit 2): its text is the line printed.
func usage(err error) error { return &exitError{code: exitUsage, msg: strings.TrimSpace(err.Error())} }

// usagef is usage of a formatted line.
func usagef(format string, args ...any) error { return usage(fmt.Errorf(format, args...)) }

// failedf is a failure (exit 1) printed as the formatted line.
func failedf(format string, args ...any) error {
	return &exitError{code: exitFailed, msg: fmt.Sprintf(format, args...)}
}

// failedAs is err (nil stays nil) as a failure printed "what: err"; a *app.SetupError
// stays what it is.
func failedAs(what string, err error) error {
	if err == nil || errors.As(err, new(*app.SetupError)) {
		return err
	}
	return failedf("%s: %v", what, err)
}

// finish prints what ended command name and returns the exit code. An audit.UsageError
// or an *app.SetupError is a usage error, an audit.Verdict a verdict (on stdout), an
// audit.Failure a failure in its own words; any other error of no exitError is a
// failure, "bot NAME: error".
func (a *cli) finish(name string, err error) int {
	var e *exitError
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, new(audit.UsageError)), errors.As(err, new(*app.SetupError)):
		e = usage(err).(*exitError)
	case errors.As(err, new(audit.Verdict)):
		e = &exitError{code: exitFailed, stdout: true, msg: err.Error()}
	case errors.As(err, new(audit.Failure)):
		e = failedf("%v", err).(*exitError)
	case !errors.As(err, &e):
		fmt.Fprintf(a.stderr, "bot %s: %v\n", name, err)
		return exitFailed
	}
	w := a.stderr
	if e.stdout {
		w = a.stdout
	}
	if e.msg != "" {
		fmt.Fprintln(w, e.msg)
	}
	return e.code
}

// flags returns a FlagSet for a subcommand. It writes nothing: the flag package's own
// report of a bad flag is several lines; parse returns one instead.
func (a *cli) flags(name string) *flag.FlagSet {
	fs := flag.NewFlagSet("bot "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parse parses args and rejects an argument left over.
func (a *cli) parse(fs *flag.FlagSet, args []string) error {
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return a.usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	return nil
}

// parseFlags parses args. A bad flag is one line naming it and where to read the usage
// (exit 2); -h prints the command's usage and flags on stdout (exit 0).
func (a *cli) parseFlags(fs *flag.FlagSet, args []string) error {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		commandUsage(a.stdout, fs)
		return &exitError{code: exitOK}
	case err != nil:
		return a.usageError(fs, err.Error())
	}
	return nil
}

// leading parses args whose one positional argument (a file) may come before or after
// the flags, and returns it ("" when none).
func (a *cli) leading(fs *flag.FlagSet, args []string) (string, error) {
	var arg string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		arg, args = args[0], args[1:]
	}
	if err := a.parseFlags(fs, args); err != nil {
		return "", err
	}
	if arg == "" && fs.NArg() > 0 {
		arg = fs.Arg(0)
		return arg, a.parseFlags(fs, fs.Args()[1:])
	}
	return arg, nil
}

// ready parses args, runs the checks (each failing one is a usage error) and reads the
// environment the tools need.
func (a *cli) ready(fs *flag.FlagSet, args []string, checks ...func() error) (config.Env, error) {
	if err := a.parse(fs, args); err != nil {
		return config.Env{}, err
	}
	for _, check := range checks {
		if err := check(); err != nil {
			return config.Env{}, usage(err)
		}
	}
	return a.toolEnv()
}

// usageError is "bot CMD: what; see `bot help CMD`".
func (a *cli) usageError(fs *flag.FlagSet, what string) error {
	return usagef("%s: %s; see `bot help %s`", fs.Name(), what, commandOf(fs))
}

// commandOf is the command a FlagSet belongs to ("bot dlq list" → "dlq").
func commandOf(fs *flag.FlagSet) string {
	if f := strings.Fields(fs.Name()); len(f) >= 2 {
		return f[1]
	}
	return fs.Name()
}

// commandUsage prints a command's synopsis, what it does and its flags.
func commandUsage(w io.Writer, fs *flag.FlagSet) {
	if c, ok := lookupCommand(commandOf(fs)); ok {
		fmt.Fprintf(w, "usage: bot %s %s\n\n%s\n", c.name, c.args, c.help)
	}
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n == 0 {
		return
	}
	fmt.Fprintln(w, "\nflags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// discardRedisLog is the Redis client's logger while nothing should be logged: it drops
// every line.
type discardRedisLog struct{}

func (discardRedisLog) Printf(context.Context, string, ...any) {}
