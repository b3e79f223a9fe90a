package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/audit"
)

// The auditor's proof commands: keys, prove, witness. The proofs themselves live in the
// ledger package, what the commands are asked in ledger/audit.

func runKeys(ctx context.Context, a *cli, args []string) error {
	env, err := a.ready(a.flags("keys"), args)
	if err != nil {
		return err
	}
	ls, err := audit.LogSigner(signingKey(env), env.LedgerOrigin)
	if err != nil {
		return usage(err)
	}
	fmt.Fprintln(a.stdout, ls.Verifier)
	fmt.Fprintln(a.stderr, "the ledger's checkpoint-note verifier key: give it to auditors (bot verify --bundle FILE --key KEY) and witnesses (bot witness --log-key KEY)")
	return nil
}

func runProve(ctx context.Context, a *cli, args []string) error {
	fs := a.flags("prove")
	tenant := fs.String("tenant", "", "tenant id")
	incident := fs.String("incident", "", "incident code, e.g. INC-7F3")
	checkpoint := fs.Bool("checkpoint", false, "write the tenant's current tree head as a signed checkpoint note")
	consistency := fs.String("consistency", "", "OLD checkpoint note file; NEW follows as an argument: prove NEW extends OLD")
	against := fs.String("against", "", "with --incident: prove against this checkpoint note (e.g. one witnesses cosigned) instead of a new one")
	out := fs.String("out", "", "write to FILE instead of stdout (atomically)")
	if err := a.parseFlags(fs, args); err != nil {
		return err
	}
	newFile := ""
	if *consistency != "" && fs.NArg() > 0 {
		// --consistency OLD NEW: NEW is the first argument; flags may follow it.
		newFile = fs.Arg(0)
		if err := a.parse(fs, fs.Args()[1:]); err != nil {
			return err
		}
	} else if fs.NArg() > 0 {
		return usagef("bot prove: unexpected argument %q", fs.Arg(0))
	}
	if err := audit.CheckProve(*tenant, *incident, *checkpoint, *consistency, newFile); err != nil {
		return usage(err)
	}
	env, err := a.toolEnv()
	if err != nil {
		return err
	}
	ls, err := audit.LogSigner(signingKey(env), env.LedgerOrigin)
	if err != nil {
		return usage(err)
	}
	notes, err := audit.ReadFiles(*against, *consistency, newFile)
	if err != nil {
		return err
	}
	return withStore(ctx, env, func(store *ledger.RedisStore) error {
		v, err := audit.Prove(ctx, store, ls, audit.ProveRequest{Tenant: *tenant, Incident: *incident, Checkpoint: *checkpoint, Against: notes[0], Old: notes[1], New: notes[2]})
		if err != nil {
			return err
		}
		return a.writeJSON(*out, v)
	})
}

// writeJSON writes v (raw bytes as they are, anything else as indented JSON) to path or stdout.
func (a *cli) writeJSON(path string, v any) error {
	b, err := audit.JSON(v)
	if err != nil {
		return err
	}
	return a.output(path, func(w io.Writer) error { _, err := w.Write(b); return err })
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
	out := fs.String("out", "", "write the cosigned checkpoint to FILE instead of stdout")
	fs.StringVar(&r.Listen, "listen", "", "serve C2SP tlog-witness add-checkpoint over HTTP on ADDR (e.g. :7380) instead of --file")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	w, vkey, err := r.Open(time.Now)
	switch {
	case err != nil:
		return err
	case r.Init:
		fmt.Fprintln(a.stdout, vkey)
		return nil
	case r.Listen != "":
		return w.ListenAndServe(ctx, r.Listen, func(addr string) {
			fmt.Fprintf(a.stderr, "witness %s listening on %s (POST /add-checkpoint)\n", vkey, addr)
		})
	}
	b, err := os.ReadFile(r.File)
	if err != nil {
		return err
	}
	cosigned, err := w.Cosign(audit.WitnessRequest(b))
	if err != nil {
		return verdict(err)
	}
	return a.writeJSON(*out, cosigned)
}

// signingKey is the ledger's signing key of env, nil when none is configured.
func signingKey(env config.Env) ed25519.PrivateKey {
	k, _ := env.SigningKey()
	return k
}
