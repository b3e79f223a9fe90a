package main

import (
	"context"
	"flag"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/audit"
)

// The auditor's commands: each parses its flags into a request of ledger/audit and calls
// the audit.Tools made of the environment, which checks, reads, proves and prints.

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

// tools are the auditor's tools over env (its ledger key, checkpoints and Redis),
// printing on a's streams.
func (a *cli) tools(ctx context.Context, env config.Env) audit.Tools {
	key, _ := env.SigningKey()
	return audit.Tools{
		SigningKey:            key,
		Origin:                env.LedgerOrigin,
		CheckpointFile:        env.LedgerCheckpointFile,
		DefaultCheckpointFile: config.DefaultCheckpointFile,
		CheckpointURL:         env.LedgerCheckpointURL,
		CheckpointToken:       env.LedgerCheckpointToken.Reveal(),
		Open: func(f func(audit.Store) error) error {
			return withStore(ctx, env, func(s *ledger.RedisStore) error { return f(s) })
		},
		Sinks: func(path string) (ledger.CheckpointSink, string, error) {
			env.LedgerCheckpointFile = path
			return app.OpenSinks(ctx, env, key)
		},
		Stdout: a.stdout,
		Stderr: a.stderr,
		Tick:   followTicker,
	}
}

// followTicker makes verify --follow's ticks; tests replace it.
var followTicker = func(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

func runVerify(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("verify")
	var r audit.VerifyRequest
	fs.StringVar(&r.Tenant, "tenant", "", "tenant whose chain to verify (reads Redis)")
	fs.StringVar(&r.File, "file", "", "JSONL export to verify")
	fs.StringVar(&r.PublicKey, "public-key", "", "base64 Ed25519 public key the checkpoint must be signed with (default: from LEDGER_SIGNING_KEY)")
	fs.StringVar(&r.Checkpoints, "checkpoints", "", "with --tenant: the checkpoint file serve keeps outside Redis, its notes/ directory beside it with --follow (default: LEDGER_CHECKPOINT_FILE, else "+config.DefaultCheckpointFile+" if it exists)")
	fs.StringVar(&r.Bundle, "bundle", "", "incident bundle from `bot prove --incident` to verify offline")
	fs.StringVar(&r.Consistency, "consistency", "", "consistency proof from `bot prove --consistency` to verify offline")
	fs.StringVar(&r.Key, "key", "", "with --bundle/--consistency: the ledger's note verifier key from `bot keys` (default: from LEDGER_SIGNING_KEY)")
	fs.Var((*multiFlag)(&r.Witnesses), "witness", "with --bundle/--consistency/--follow: a witness verifier key whose cosignature is required (repeatable)")
	fs.BoolVar(&r.Follow, "follow", false, "with --tenant: keep re-verifying the published checkpoint's consistency every --interval; exit 1 on a fork, a truncation or a missing witness cosignature")
	fs.DurationVar(&r.Interval, "interval", time.Minute, "with --follow: time between checks")
	env, err := a.ready(fs, args, func() error { return r.Check() })
	if err != nil {
		return err
	}
	return a.tools(ctx, env).Verify(ctx, r)
}

// incidentFlags defines the flags of a command about one incident in r.
func incidentFlags(fs *flag.FlagSet, r *audit.IncidentRequest) {
	fs.StringVar(&r.Tenant, "tenant", "", "tenant id")
	fs.StringVar(&r.Incident, "incident", "", "incident code, e.g. INC-7F3")
}

func runReplay(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("replay")
	var r audit.IncidentRequest
	incidentFlags(fs, &r)
	env, err := a.ready(fs, args, func() error { return r.CheckReplay() })
	if err != nil {
		return err
	}
	return a.tools(ctx, env).Replay(ctx, r)
}

func runExport(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("export")
	var r audit.IncidentRequest
	fs.StringVar(&r.Format, "format", "", "jsonl, md or pdf")
	fs.StringVar(&r.Out, "out", "", "write to FILE instead of stdout (atomically)")
	incidentFlags(fs, &r)
	env, err := a.ready(fs, args, func() error { return r.CheckExport() })
	if err != nil {
		return err
	}
	return a.tools(ctx, env).Export(ctx, r)
}
