package main

import (
	"context"

	"github.com/alertengine/alertengine/ledger/audit"
)

// The auditor's proof commands: keys, prove, witness. The proofs themselves live in the
// ledger package, what the commands do in ledger/audit.

func runKeys(ctx context.Context, a *cli, args []string) error {
	env, err := a.ready(a.flags("keys"), args)
	if err != nil {
		return err
	}
	return a.tools(ctx, env).Keys()
}

func runProve(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("prove")
	var r audit.ProveRequest
	fs.StringVar(&r.Tenant, "tenant", "", "tenant id")
	fs.StringVar(&r.Incident, "incident", "", "incident code, e.g. INC-7F3")
	fs.BoolVar(&r.Checkpoint, "checkpoint", false, "write the tenant's current tree head as a signed checkpoint note")
	fs.StringVar(&r.Old, "consistency", "", "OLD checkpoint note file; NEW follows as an argument: prove NEW extends OLD")
	fs.StringVar(&r.Against, "against", "", "with --incident: prove against this checkpoint note (e.g. one witnesses cosigned) instead of a new one")
	fs.StringVar(&r.Out, "out", "", "write to FILE instead of stdout (atomically)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	if r.Old != "" && fs.NArg() > 0 {
		// --consistency OLD NEW: NEW is the first argument; flags may follow it.
		r.New = fs.Arg(0)
		if err := a.parse(fs, fs.Args()[1:]); err != nil {
			return err
		}
	} else if fs.NArg() > 0 {
		return usagef("bot prove: unexpected argument %q", fs.Arg(0))
	}
	if err := r.Check(); err != nil {
		return err
	}
	env, err := a.toolEnv()
	if err != nil {
		return err
	}
	return a.tools(ctx, env).Prove(ctx, r)
}

func runWitness(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("witness")
	var r audit.Witness
	fs.StringVar(&r.Name, "name", "", "the witness's key name, e.g. witness.example.org")
	fs.StringVar(&r.KeyFile, "key", "", "file holding the witness's base64 Ed25519 seed")
	fs.BoolVar(&r.Init, "init", false, "create --key with a new seed (mode 0600) if it does not exist, and print the verifier")
	fs.Var((*multiFlag)(&r.LogKeys), "log-key", "verifier key of a log this witness cosigns (repeatable; from `bot keys`)")
	fs.StringVar(&r.State, "state", "", "file where the witness keeps the last checkpoint of each log it cosigned")
	fs.StringVar(&r.File, "file", "", "the request: a consistency proof from `bot prove --consistency` (old = the last checkpoint this witness cosigned; none the first time)")
	fs.StringVar(&r.Out, "out", "", "write the cosigned checkpoint to FILE instead of stdout")
	fs.StringVar(&r.Listen, "listen", "", "serve C2SP tlog-witness add-checkpoint over HTTP on ADDR (e.g. :7380) instead of --file")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	return audit.Tools{Stdout: a.stdout, Stderr: a.stderr}.Witness(ctx, r)
}
