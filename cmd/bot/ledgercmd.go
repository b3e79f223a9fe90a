package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"github.com/alertengine/alertengine/bot/app"
	"io"
	"os"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/audit"
)

// toolEnv reads the environment the ledger tools need: nothing is required up front.
func (a *cli) toolEnv() (config.Env, int, bool) {
	env, err := config.LoadEnv(a.lookup, config.Demo)
	if err != nil {
		return env, a.problems(err), false
	}
	return env, 0, true
}

// openStore connects to the ledger in Redis.
func (a *cli) openStore(ctx context.Context, env config.Env) (*ledger.RedisStore, func(), int, bool) {
	if env.EmbeddedRedis() {
		fmt.Fprintln(a.stderr, "REDIS_URL: not set (the ledger lives in Redis; set REDIS_URL, REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS)")
		return nil, nil, exitUsage, false
	}
	c, desc, err := app.RedisClient(env)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return nil, nil, exitUsage, false
	}
	if err := app.PingRedis(ctx, c); err != nil {
		c.Close()
		fmt.Fprintf(a.stderr, "%s: Redis does not answer: %v\n", desc, app.RedactErr(err))
		return nil, nil, exitFailed, false
	}
	return ledger.NewRedisStore(c, env.RedisKeyPrefix), func() { c.Close() }, 0, true
}

// trustedKey is the public key checkpoints must be signed with: --public-key, else the
// one derived from LEDGER_SIGNING_KEY, else none (the embedded key is used, unpinned).
func trustedKey(flagKey string, env config.Env) (ed25519.PublicKey, error) {
	if flagKey != "" {
		b, err := base64.StdEncoding.DecodeString(flagKey)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, errors.New("--public-key: not a base64 Ed25519 public key")
		}
		return ed25519.PublicKey(b), nil
	}
	if k, ok := env.SigningKey(); ok {
		return k.Public().(ed25519.PublicKey), nil
	}
	return nil, nil
}

func runVerify(ctx context.Context, a *cli, args []string) int {
	fs := a.flags("verify")
	tenant := fs.String("tenant", "", "tenant whose chain to verify (reads Redis)")
	file := fs.String("file", "", "JSONL export to verify")
	pub := fs.String("public-key", "", "base64 Ed25519 public key the checkpoint must be signed with (default: from LEDGER_SIGNING_KEY)")
	cpFile := fs.String("checkpoints", "", "with --tenant: the checkpoint file serve keeps outside Redis, its notes/ directory beside it with --follow (default: LEDGER_CHECKPOINT_FILE, else "+config.DefaultCheckpointFile+" if it exists)")
	bundle := fs.String("bundle", "", "incident bundle from `bot prove --incident` to verify offline")
	consistency := fs.String("consistency", "", "consistency proof from `bot prove --consistency` to verify offline")
	noteKey := fs.String("key", "", "with --bundle/--consistency: the ledger's note verifier key from `bot keys` (default: from LEDGER_SIGNING_KEY)")
	var witnesses multiFlag
	fs.Var(&witnesses, "witness", "with --bundle/--consistency/--follow: a witness verifier key whose cosignature is required (repeatable)")
	follow := fs.Bool("follow", false, "with --tenant: keep re-verifying the published checkpoint's consistency every --interval; exit 1 on a fork, a truncation or a missing witness cosignature")
	interval := fs.Duration("interval", time.Minute, "with --follow: time between checks")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *follow {
		return a.follow(ctx, *tenant, *cpFile, *noteKey, witnesses, *interval)
	}
	if *bundle != "" || *consistency != "" {
		if *tenant != "" || *file != "" || (*bundle != "" && *consistency != "") {
			fmt.Fprintln(a.stderr, "bot verify: give exactly one of --tenant, --file, --bundle or --consistency")
			return exitUsage
		}
		env, code, ok := a.toolEnv()
		if !ok {
			return code
		}
		return a.verifyProof(env, *bundle, *consistency, *noteKey, witnesses)
	}
	if (*tenant == "") == (*file == "") {
		fmt.Fprintln(a.stderr, "bot verify: give exactly one of --tenant T or --file EXPORT.jsonl")
		return exitUsage
	}
	env, code, ok := a.toolEnv()
	if !ok {
		return code
	}
	key, err := trustedKey(*pub, env)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	var rep ledger.Report
	var verr error
	if *file != "" {
		f, err := os.Open(*file)
		if err != nil {
			fmt.Fprintf(a.stderr, "bot verify: %v\n", err)
			return exitFailed
		}
		defer f.Close()
		rep, verr = ledger.VerifyExport(f, key)
	} else {
		if !ledger.ValidTenant(*tenant) {
			fmt.Fprintf(a.stderr, "--tenant: %q is not a tenant id ([a-z0-9-]{1,32})\n", *tenant)
			return exitUsage
		}
		store, closeFn, code, ok := a.openStore(ctx, env)
		if !ok {
			return code
		}
		defer closeFn()
		mark, err := a.externalMark(ctx, *cpFile, env, key, *tenant)
		if err != nil {
			fmt.Fprintf(a.stdout, "checkpoint file: %v\n", err)
			return exitFailed
		}
		rep, verr = ledger.VerifyStoreMark(ctx, store, *tenant, key, mark)
	}
	if verr != nil {
		var ve *ledger.VerifyError
		var le *ledger.LossError
		var ke *ledger.KeyError
		switch {
		case errors.As(verr, &ke):
			given := "LEDGER_SIGNING_KEY's public key"
			if *pub != "" {
				given = "--public-key"
			}
			fmt.Fprintf(a.stdout, "%s does not match the key that signed the export's checkpoint (%s)\n", given, ke.Signer)
		case errors.As(verr, &ve):
			fmt.Fprintln(a.stdout, ve.Error())
		case errors.As(verr, &le):
			fmt.Fprintln(a.stdout, le.Error())
		default:
			fmt.Fprintf(a.stderr, "bot verify: %v\n", verr)
		}
		return exitFailed
	}
	fmt.Fprintf(a.stdout, "ok: %d entries\n", rep.Entries)
	for _, m := range rep.Losses {
		fmt.Fprintln(a.stdout, m.Describe())
	}
	a.describeCheckpoint(rep)
	return exitOK
}

// externalMark reads tenant's last checkpoint kept outside Redis: from the file of
// --checkpoints, else LEDGER_CHECKPOINT_FILE, else serve's default file if it exists; and
// from LEDGER_CHECKPOINT_URL when set.
func (a *cli) externalMark(ctx context.Context, flagPath string, env config.Env, key ed25519.PublicKey, tenant string) (*ledger.Mark, error) {
	path := audit.CheckpointFile(flagPath, env.LedgerCheckpointFile, config.DefaultCheckpointFile)
	return audit.ExternalMark(ctx, path, env.LedgerCheckpointURL, env.LedgerCheckpointToken.Reveal(), key, tenant, func(s string) { fmt.Fprintln(a.stderr, s) })
}

// describeCheckpoint says on stderr what the checkpoint proved, so stdout stays the verdict.
func (a *cli) describeCheckpoint(rep ledger.Report) {
	fmt.Fprintln(a.stderr, audit.DescribeCheckpoint(rep))
}

func incidentFlags(a *cli, name string) (*flag.FlagSet, *string, *string) {
	fs := a.flags(name)
	return fs, fs.String("tenant", "", "tenant id"), fs.String("incident", "", "incident code, e.g. INC-7F3")
}

func checkIDs(a *cli, tenant, incident string) bool {
	switch {
	case tenant == "":
		fmt.Fprintln(a.stderr, "--tenant: required (e.g. --tenant acme)")
		return false
	case !ledger.ValidTenant(tenant):
		fmt.Fprintf(a.stderr, "--tenant: %q is not a tenant id ([a-z0-9-]{1,32})\n", tenant)
		return false
	case incident == "":
		fmt.Fprintln(a.stderr, "--incident: required (e.g. INC-7F3)")
		return false
	}
	return true
}

func runReplay(ctx context.Context, a *cli, args []string) int {
	fs, tenant, incident := incidentFlags(a, "replay")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if !checkIDs(a, *tenant, *incident) {
		return exitUsage
	}
	env, code, ok := a.toolEnv()
	if !ok {
		return code
	}
	store, closeFn, code, ok := a.openStore(ctx, env)
	if !ok {
		return code
	}
	defer closeFn()
	key, _ := trustedKey("", env)
	lines, ok, err := audit.Replay(ctx, store, *tenant, *incident, key)
	if err != nil {
		fmt.Fprintf(a.stderr, "bot replay: %v\n", err)
		return exitFailed
	}
	fmt.Fprintln(a.stdout, strings.Join(lines, "\n"))
	if !ok {
		return exitFailed
	}
	return exitOK
}

func runExport(ctx context.Context, a *cli, args []string) int {
	fs, tenant, incident := incidentFlags(a, "export")
	format := fs.String("format", "", "jsonl, md or pdf")
	out := fs.String("out", "", "write to FILE instead of stdout (atomically)")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if !checkIDs(a, *tenant, *incident) {
		return exitUsage
	}
	if *format != "jsonl" && *format != "md" && *format != "pdf" {
		fmt.Fprintf(a.stderr, "--format: want jsonl, md or pdf, got %q\n", *format)
		return exitUsage
	}
	env, code, ok := a.toolEnv()
	if !ok {
		return code
	}
	if *format == "pdf" {
		return a.exportPDF(ctx, env, *tenant, *incident, *out)
	}
	key, haveKey := env.SigningKey()
	if *format == "jsonl" && !haveKey {
		fmt.Fprintln(a.stderr, "LEDGER_SIGNING_KEY: required to sign the export's checkpoint (or LEDGER_SIGNING_KEY_FILE)")
		return exitUsage
	}
	store, closeFn, code, ok := a.openStore(ctx, env)
	if !ok {
		return code
	}
	defer closeFn()
	in, hist, err := audit.IncidentOf(ctx, store, *tenant, *incident)
	if err != nil {
		fmt.Fprintf(a.stderr, "bot export: %v\n", err)
		return exitFailed
	}
	write := func(w io.Writer) error {
		if *format == "jsonl" {
			rep, err := ledger.ExportJSONL(ctx, store, *tenant, key, time.Now(), w)
			if err == nil {
				a.keepExportCheckpoint(ctx, env, store, key, rep)
			}
			return err
		}
		var pub ed25519.PublicKey
		if haveKey {
			pub = key.Public().(ed25519.PublicKey)
		}
		rep, verr := ledger.VerifyStore(ctx, store, *tenant, pub)
		return ledger.WriteReport(w, in, hist, rep, verr)
	}
	if *out == "" {
		if err := write(a.stdout); err != nil {
			fmt.Fprintf(a.stderr, "bot export: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	if err := writeFileAtomic(*out, write); err != nil {
		fmt.Fprintf(a.stderr, "bot export: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(a.stderr, "wrote %s\n", *out)
	return exitOK
}

// keepExportCheckpoint records an export's checkpoint in the checkpoint file serve keeps
// outside Redis (LEDGER_CHECKPOINT_FILE, else the default file if it exists). A failure
// is reported on stderr: the export itself is complete.
func (a *cli) keepExportCheckpoint(ctx context.Context, env config.Env, store ledger.Store, key ed25519.PrivateKey, rep ledger.Report) {
	path := audit.CheckpointFile("", env.LedgerCheckpointFile, config.DefaultCheckpointFile)
	if err := audit.KeepExportCheckpoint(ctx, path, store, key, rep); err != nil {
		fmt.Fprintf(a.stderr, "bot export: the checkpoint file was not updated: %v\n", err)
	}
}

// writeFileAtomic writes path atomically (audit.WriteFile).
var writeFileAtomic = audit.WriteFile
