package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/audit"
)

// The auditor's proof commands: keys, prove, witness. The proofs themselves live in the
// ledger package, what the commands are asked in ledger/audit.

func runKeys(ctx context.Context, a *cli, args []string) error {
	if err := a.parse(a.flags("keys"), args); err != nil {
		return err
	}
	env, err := a.toolEnv()
	if err != nil {
		return err
	}
	ls, err := audit.LogSigner(env)
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
	ls, err := audit.LogSigner(env)
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
	name := fs.String("name", "", "the witness's key name, e.g. witness.example.org")
	keyFile := fs.String("key", "", "file holding the witness's base64 Ed25519 seed")
	initKey := fs.Bool("init", false, "create --key with a new seed (mode 0600) if it does not exist, and print the verifier")
	var logKeys multiFlag
	fs.Var(&logKeys, "log-key", "verifier key of a log this witness cosigns (repeatable; from `bot keys`)")
	state := fs.String("state", "", "file where the witness keeps the last checkpoint of each log it cosigned")
	file := fs.String("file", "", "the request: a consistency proof from `bot prove --consistency` (old = the last checkpoint this witness cosigned; none the first time)")
	out := fs.String("out", "", "write the cosigned checkpoint to FILE instead of stdout")
	listen := fs.String("listen", "", "serve C2SP tlog-witness add-checkpoint over HTTP on ADDR (e.g. :7380) instead of --file")
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if *name == "" || *keyFile == "" {
		return usagef("bot witness: --name and --key are required")
	}
	if *initKey {
		if err := audit.InitWitnessKey(*keyFile); err != nil {
			return err
		}
	}
	key, vkey, err := audit.WitnessKey(*name, *keyFile)
	if err != nil {
		return usage(err)
	}
	if *initKey {
		fmt.Fprintln(a.stdout, vkey)
		return nil
	}
	logs, err := audit.ParseLogKeys(logKeys)
	if err != nil {
		return usagef("--log-key: %v", err)
	}
	if len(logs) == 0 || *state == "" || (*file == "") == (*listen == "") {
		return usagef("bot witness: --log-key, --state and one of --file or --listen are required (or --init)")
	}
	w, err := ledger.NewWitness(*name, key, logs, *state, time.Now)
	if err != nil {
		return usagef("bot witness: %v", err)
	}
	if *listen != "" {
		return w.ListenAndServe(ctx, *listen, func(addr string) {
			fmt.Fprintf(a.stderr, "witness %s listening on %s (POST /add-checkpoint)\n", vkey, addr)
		})
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		return err
	}
	cosigned, err := w.Cosign(audit.WitnessRequest(b))
	if err != nil {
		return verdict(err)
	}
	return a.writeJSON(*out, cosigned)
}
