package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/audit"
)

// toolEnv reads the environment the tools need: nothing is required up front.
func (a *cli) toolEnv() (config.Env, error) {
	env, err := config.LoadEnv(a.lookup, config.Demo)
	if err != nil {
		return env, usage(err)
	}
	return env, nil
}

// withStore connects to the ledger in Redis, runs f with it and disconnects.
func withStore(ctx context.Context, env config.Env, f func(*ledger.RedisStore) error) error {
	if env.EmbeddedRedis() {
		return usagef("REDIS_URL: not set (the ledger lives in Redis; set REDIS_URL, REDIS_CLUSTER_ADDRS or REDIS_SENTINEL_ADDRS)")
	}
	c, desc, err := app.RedisClient(env)
	if err != nil {
		return usage(err)
	}
	defer c.Close()
	if err := app.PingRedis(ctx, c); err != nil {
		return failedf("%s: Redis does not answer: %v", desc, app.RedactErr(err))
	}
	return f(ledger.NewRedisStore(c, env.RedisKeyPrefix))
}

// output writes to path atomically (and says so), or to stdout when path is empty.
func (a *cli) output(path string, write func(io.Writer) error) error {
	if path == "" {
		return write(a.stdout)
	}
	if err := audit.WriteFile(path, write); err != nil {
		return err
	}
	fmt.Fprintf(a.stderr, "wrote %s\n", path)
	return nil
}

// lines prints each line on w.
func lines(w io.Writer, ls ...string) {
	for _, l := range ls {
		fmt.Fprintln(w, l)
	}
}

func runVerify(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("verify")
	var r audit.VerifyRequest
	fs.StringVar(&r.Tenant, "tenant", "", "tenant whose chain to verify (reads Redis)")
	fs.StringVar(&r.File, "file", "", "JSONL export to verify")
	pub := fs.String("public-key", "", "base64 Ed25519 public key the checkpoint must be signed with (default: from LEDGER_SIGNING_KEY)")
	cpFile := fs.String("checkpoints", "", "with --tenant: the checkpoint file serve keeps outside Redis, its notes/ directory beside it with --follow (default: LEDGER_CHECKPOINT_FILE, else "+config.DefaultCheckpointFile+" if it exists)")
	fs.StringVar(&r.Bundle, "bundle", "", "incident bundle from `bot prove --incident` to verify offline")
	fs.StringVar(&r.Consistency, "consistency", "", "consistency proof from `bot prove --consistency` to verify offline")
	noteKey := fs.String("key", "", "with --bundle/--consistency: the ledger's note verifier key from `bot keys` (default: from LEDGER_SIGNING_KEY)")
	var witnesses multiFlag
	fs.Var(&witnesses, "witness", "with --bundle/--consistency/--follow: a witness verifier key whose cosignature is required (repeatable)")
	fs.BoolVar(&r.Follow, "follow", false, "with --tenant: keep re-verifying the published checkpoint's consistency every --interval; exit 1 on a fork, a truncation or a missing witness cosignature")
	fs.DurationVar(&r.Interval, "interval", time.Minute, "with --follow: time between checks")
	var mode string
	env, err := a.ready(fs, args, func() (err error) { mode, err = r.Mode(); return err })
	if err != nil {
		return err
	}
	switch mode {
	case "follow":
		return a.follow(ctx, env, r, *cpFile, *noteKey, witnesses)
	case "proof":
		return a.verifyProof(env, r, *noteKey, witnesses)
	}
	key, err := audit.TrustedKey(*pub, signingKey(env))
	if err != nil {
		return usage(err)
	}
	report := func(rep ledger.Report, err error) error {
		out, err := audit.ChainResult(rep, err, *pub != "")
		if err != nil {
			return err
		}
		lines(a.stdout, out...)
		fmt.Fprintln(a.stderr, audit.DescribeCheckpoint(rep))
		return nil
	}
	if r.File != "" {
		f, err := os.Open(r.File)
		if err != nil {
			return err
		}
		defer f.Close()
		return report(ledger.VerifyExport(f, key))
	}
	if err := audit.CheckTenant(r.Tenant, false); err != nil {
		return usage(err)
	}
	return withStore(ctx, env, func(store *ledger.RedisStore) error {
		path := audit.CheckpointFile(*cpFile, env.LedgerCheckpointFile, config.DefaultCheckpointFile)
		mark, err := audit.ExternalMark(ctx, path, env.LedgerCheckpointURL, env.LedgerCheckpointToken.Reveal(), key, r.Tenant, func(s string) { fmt.Fprintln(a.stderr, s) })
		if err != nil {
			return verdict(fmt.Errorf("checkpoint file: %v", err))
		}
		return report(ledger.VerifyStoreMark(ctx, store, r.Tenant, key, mark))
	})
}

// verifyProof is `bot verify --bundle FILE` and `bot verify --consistency FILE`: offline.
func (a *cli) verifyProof(env config.Env, r audit.VerifyRequest, key string, witnesses []string) error {
	lv, ws, err := audit.ProofKeys(signingKey(env), env.LedgerOrigin, key, witnesses)
	if err != nil {
		return usage(err)
	}
	if r.Bundle == "" && lv == nil {
		return usagef("bot verify --consistency: --key VERIFIER is required (or LEDGER_SIGNING_KEY)")
	}
	v, rep, err := audit.VerifyProofFile(r.Bundle+r.Consistency, r.Bundle != "", lv, ws)
	if err != nil {
		return err
	}
	fmt.Fprintln(a.stdout, v)
	lines(a.stderr, audit.DescribeKeys(rep)...)
	return nil
}

// followTicker makes verify --follow's ticks; tests replace it.
var followTicker = func(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// follow is `bot verify --tenant T --follow`: the monitor, until a check fails.
func (a *cli) follow(ctx context.Context, env config.Env, r audit.VerifyRequest, cpFile, key string, witnesses []string) error {
	lv, ws, err := audit.ProofKeys(signingKey(env), env.LedgerOrigin, key, witnesses)
	if err != nil {
		return usage(err)
	}
	return withStore(ctx, env, func(store *ledger.RedisStore) error {
		path := audit.CheckpointFile(cpFile, env.LedgerCheckpointFile, config.DefaultCheckpointFile)
		m, unpublished, err := audit.NewMonitor(store, r.Tenant, lv, ws, path, env.LedgerCheckpointURL, env.LedgerCheckpointToken.Reveal())
		if err != nil {
			return err
		} else if unpublished != "" {
			fmt.Fprintln(a.stderr, unpublished)
		}
		tick, stop := followTicker(r.Interval)
		defer stop()
		err = audit.Follow(ctx, m, tick, slog.New(slog.NewTextHandler(a.stderr, nil)), func(n int64) {
			fmt.Fprintf(a.stdout, "ok: %s consistent at %d entries\n", r.Tenant, n)
		})
		if err != nil && ctx.Err() == nil {
			return verdict(err)
		}
		return nil
	})
}

// incidentEnv parses the flags of a command about one incident (--tenant, --incident and
// fs's own), checks them (then with check), and reads the environment.
func (a *cli) incidentEnv(fs *flag.FlagSet, args []string, check func() error) (string, string, config.Env, error) {
	tenant := fs.String("tenant", "", "tenant id")
	incident := fs.String("incident", "", "incident code, e.g. INC-7F3")
	env, err := a.ready(fs, args, func() error { return audit.CheckIncident(*tenant, *incident) }, check)
	return *tenant, *incident, env, err
}

func runReplay(ctx context.Context, a *cli, args []string) error {
	tenant, incident, env, err := a.incidentEnv(a.flags("replay"), args, func() error { return nil })
	if err != nil {
		return err
	}
	return withStore(ctx, env, func(store *ledger.RedisStore) error {
		key, _ := audit.TrustedKey("", signingKey(env))
		timeline, ok, err := audit.Replay(ctx, store, tenant, incident, key)
		if err != nil {
			return err
		}
		fmt.Fprintln(a.stdout, strings.Join(timeline, "\n"))
		if !ok {
			return &exitError{code: exitFailed}
		}
		return nil
	})
}

func runExport(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("export")
	format := fs.String("format", "", "jsonl, md or pdf")
	out := fs.String("out", "", "write to FILE instead of stdout (atomically)")
	tenant, incident, env, err := a.incidentEnv(fs, args, func() error { return audit.CheckExport(*format, *out) })
	if err != nil {
		return err
	}
	if *format == "pdf" {
		ls, err := audit.LogSigner(signingKey(env), env.LedgerOrigin)
		if err != nil {
			return usage(err)
		}
		return withStore(ctx, env, func(store *ledger.RedisStore) error {
			res, err := audit.ExportPDF(ctx, store, ls, tenant, incident, *out, time.Now())
			if err != nil {
				return err
			}
			lines(a.stderr, res.Lines(*out)...)
			return nil
		})
	}
	key, haveKey := env.SigningKey()
	if *format == "jsonl" && !haveKey {
		return usagef("LEDGER_SIGNING_KEY: required to sign the export's checkpoint (or LEDGER_SIGNING_KEY_FILE)")
	}
	return withStore(ctx, env, func(store *ledger.RedisStore) error {
		write, err := audit.Export{Store: store, Tenant: tenant, Incident: incident, Format: *format, Key: key,
			CheckpointFile: audit.CheckpointFile("", env.LedgerCheckpointFile, config.DefaultCheckpointFile),
			NotKept: func(err error) {
				fmt.Fprintf(a.stderr, "bot export: the checkpoint file was not updated: %v\n", err)
			}}.Writer(ctx)
		if err != nil {
			return err
		}
		return a.output(*out, write)
	})
}
