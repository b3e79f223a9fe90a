package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/audit"
	"golang.org/x/mod/sumdb/note"
)

// The auditor's proof commands: keys, prove, verify --bundle/--consistency, witness. The
// proofs themselves live in the ledger package.

// logSigner is the ledger key as a checkpoint-note signer under LEDGER_ORIGIN.
func (a *cli) logSigner(env config.Env) (ledger.LogSigner, bool) {
	key, ok := env.SigningKey()
	if !ok {
		fmt.Fprintln(a.stderr, "LEDGER_SIGNING_KEY: required to sign checkpoints (or LEDGER_SIGNING_KEY_FILE)")
		return ledger.LogSigner{}, false
	}
	origin := env.LedgerOrigin
	if origin == "" {
		origin = ledger.DefaultOrigin
	}
	s, vkey, err := ledger.NoteSigner(origin, key)
	if err != nil {
		fmt.Fprintf(a.stderr, "LEDGER_ORIGIN: %v\n", err)
		return ledger.LogSigner{}, false
	}
	return ledger.LogSigner{Origin: origin, Signer: s, Verifier: vkey}, true
}

func runKeys(ctx context.Context, a *cli, args []string) int {
	fs := a.flags("keys")
	if code, ok := parse(fs, args); !ok {
		return code
	}
	env, code, ok := a.toolEnv()
	if !ok {
		return code
	}
	ls, ok := a.logSigner(env)
	if !ok {
		return exitUsage
	}
	fmt.Fprintln(a.stdout, ls.Verifier)
	fmt.Fprintln(a.stderr, "the ledger's checkpoint-note verifier key: give it to auditors (bot verify --bundle FILE --key KEY) and witnesses (bot witness --log-key KEY)")
	return exitOK
}

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func runProve(ctx context.Context, a *cli, args []string) int {
	fs, tenant, incident := incidentFlags(a, "prove")
	checkpoint := fs.Bool("checkpoint", false, "write the tenant's current tree head as a signed checkpoint note")
	consistency := fs.String("consistency", "", "OLD checkpoint note file; NEW follows as an argument: prove NEW extends OLD")
	against := fs.String("against", "", "with --incident: prove against this checkpoint note (e.g. one witnesses cosigned) instead of a new one")
	out := fs.String("out", "", "write to FILE instead of stdout (atomically)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	newFile := ""
	if *consistency != "" && fs.NArg() > 0 {
		// --consistency OLD NEW: NEW is the first argument; flags may follow it.
		newFile = fs.Arg(0)
		if code, ok := parse(fs, fs.Args()[1:]); !ok {
			return code
		}
	} else if fs.NArg() > 0 {
		fmt.Fprintf(a.stderr, "bot prove: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	modes := 0
	for _, on := range []bool{*incident != "", *checkpoint, *consistency != ""} {
		if on {
			modes++
		}
	}
	switch {
	case modes != 1:
		fmt.Fprintln(a.stderr, "bot prove: give one of --incident ID, --checkpoint, or --consistency OLD NEW")
		return exitUsage
	case *consistency != "" && newFile == "":
		fmt.Fprintln(a.stderr, "bot prove --consistency OLD NEW: the NEW checkpoint file is missing")
		return exitUsage
	case *consistency == "" && !ledger.ValidTenant(*tenant):
		fmt.Fprintf(a.stderr, "--tenant: %q is not a tenant id ([a-z0-9-]{1,32})\n", *tenant)
		return exitUsage
	}
	env, code, ok := a.toolEnv()
	if !ok {
		return code
	}
	ls, ok := a.logSigner(env)
	if !ok {
		return exitUsage
	}
	notes, err := audit.ReadFiles(*against, *consistency, newFile)
	if err != nil {
		fmt.Fprintf(a.stderr, "bot prove: %v\n", err)
		return exitFailed
	}
	store, closeFn, code, ok := a.openStore(ctx, env)
	if !ok {
		return code
	}
	defer closeFn()
	v, err := audit.Prove(ctx, store, ls, audit.ProveRequest{Tenant: *tenant, Incident: *incident, Checkpoint: *checkpoint, Against: notes[0], Old: notes[1], New: notes[2]})
	if err != nil {
		fmt.Fprintf(a.stderr, "bot prove: %v\n", err)
		return exitFailed
	}
	return a.writeOut(*out, "bot prove", v)
}

// writeOut writes v (raw bytes as they are, anything else as indented JSON) to path or stdout.
func (a *cli) writeOut(path, cmd string, v any) int {
	b, err := audit.JSON(v)
	if err == nil && path != "" {
		err = audit.WriteBytes(path, b)
	}
	switch {
	case err != nil:
		fmt.Fprintf(a.stderr, "%s: %v\n", cmd, err)
		return exitFailed
	case path == "":
		a.stdout.Write(b)
	default:
		fmt.Fprintf(a.stderr, "wrote %s\n", path)
	}
	return exitOK
}

// proofKeys reads --key (default: the one of LEDGER_SIGNING_KEY) and --witness keys.
func (a *cli) proofKeys(env config.Env, key string, witnesses []string) (note.Verifier, []note.Verifier, bool) {
	if _, ok := env.SigningKey(); ok && key == "" {
		if s, ok := a.logSigner(env); ok {
			key = s.Verifier
		}
	}
	lv, ws, err := audit.ParseKeys(key, witnesses)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
	}
	return lv, ws, err == nil
}

// verifyProof is `bot verify --bundle FILE` and `bot verify --consistency FILE`: offline.
func (a *cli) verifyProof(env config.Env, bundle, consistency, key string, witnesses []string) int {
	lv, ws, ok := a.proofKeys(env, key, witnesses)
	if !ok {
		return exitUsage
	}
	if bundle == "" && lv == nil {
		fmt.Fprintln(a.stderr, "bot verify --consistency: --key VERIFIER is required (or LEDGER_SIGNING_KEY)")
		return exitUsage
	}
	verdict, rep, err := audit.VerifyProofFile(bundle+consistency, bundle != "", lv, ws)
	var v audit.Verdict
	switch {
	case errors.As(err, &v):
		fmt.Fprintln(a.stdout, err)
		return exitFailed
	case err != nil:
		fmt.Fprintf(a.stderr, "bot verify: %v\n", err)
		return exitFailed
	}
	fmt.Fprintln(a.stdout, verdict)
	if rep != nil {
		a.describeKeys(rep.Pinned, rep.Witnesses)
	} else {
		a.describeKeys(true, nil)
	}
	return exitOK
}

func (a *cli) describeKeys(pinned bool, witnesses []string) {
	if !pinned {
		fmt.Fprintln(a.stderr, "checkpoint signed by the key the bundle names (not pinned: pass --key VERIFIER from `bot keys`)")
	}
	if len(witnesses) == 0 {
		fmt.Fprintln(a.stderr, "no witness pinned: a history rewritten with a stolen ledger key would pass (pass --witness VERIFIER)")
	} else {
		fmt.Fprintf(a.stderr, "cosigned by %s\n", strings.Join(witnesses, ", "))
	}
}

func runWitness(ctx context.Context, a *cli, args []string) int {
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
	if code, ok := parse(fs, args); !ok {
		return code
	}
	if *name == "" || *keyFile == "" {
		fmt.Fprintln(a.stderr, "bot witness: --name and --key are required")
		return exitUsage
	}
	if *initKey {
		if err := audit.InitWitnessKey(*keyFile); err != nil {
			fmt.Fprintf(a.stderr, "bot witness: %v\n", err)
			return exitFailed
		}
	}
	key, vkey, err := audit.WitnessKey(*name, *keyFile)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return exitUsage
	}
	if *initKey {
		fmt.Fprintln(a.stdout, vkey)
		return exitOK
	}
	logs, err := audit.ParseLogKeys(logKeys)
	if err != nil {
		fmt.Fprintf(a.stderr, "--log-key: %v\n", err)
		return exitUsage
	}
	if len(logs) == 0 || *state == "" || (*file == "") == (*listen == "") {
		fmt.Fprintln(a.stderr, "bot witness: --log-key, --state and one of --file or --listen are required (or --init)")
		return exitUsage
	}
	w, err := ledger.NewWitness(*name, key, logs, *state, time.Now)
	if err != nil {
		fmt.Fprintf(a.stderr, "bot witness: %v\n", err)
		return exitUsage
	}
	if *listen != "" {
		err := w.ListenAndServe(ctx, *listen, func(addr string) {
			fmt.Fprintf(a.stderr, "witness %s listening on %s (POST /add-checkpoint)\n", vkey, addr)
		})
		if err != nil {
			fmt.Fprintf(a.stderr, "bot witness: %v\n", err)
			return exitFailed
		}
		return exitOK
	}
	b, err := os.ReadFile(*file)
	if err != nil {
		fmt.Fprintf(a.stderr, "bot witness: %v\n", err)
		return exitFailed
	}
	cosigned, err := w.Cosign(audit.WitnessRequest(b))
	if err != nil {
		fmt.Fprintln(a.stdout, err)
		return exitFailed
	}
	return a.writeOut(*out, "bot witness", cosigned)
}

// followTicker makes verify --follow's ticks; tests replace it.
var followTicker = func(d time.Duration) (<-chan time.Time, func()) {
	t := time.NewTicker(d)
	return t.C, t.Stop
}

// follow is `bot verify --tenant T --follow`: the monitor, until a check fails.
func (a *cli) follow(ctx context.Context, tenant, cpFile, key string, witnesses []string, every time.Duration) int {
	if !ledger.ValidTenant(tenant) || every <= 0 {
		fmt.Fprintln(a.stderr, "bot verify --follow: --tenant T is required, and --interval must be positive")
		return exitUsage
	}
	env, code, ok := a.toolEnv()
	if !ok {
		return code
	}
	lv, ws, ok := a.proofKeys(env, key, witnesses)
	if !ok {
		return exitUsage
	}
	store, closeFn, code, ok := a.openStore(ctx, env)
	if !ok {
		return code
	}
	defer closeFn()
	m := &ledger.Monitor{Tenant: tenant, Store: store, Log: lv, Witnesses: ws}
	if notes := ledger.FollowNotes(audit.CheckpointFile(cpFile, env.LedgerCheckpointFile, config.DefaultCheckpointFile), env.LedgerCheckpointURL, env.LedgerCheckpointToken.Reveal()); len(notes) > 0 {
		if lv == nil {
			fmt.Fprintln(a.stderr, "bot verify --follow: --key VERIFIER is required to check published checkpoints (or LEDGER_SIGNING_KEY)")
			return exitUsage
		}
		m.Notes = notes
	} else {
		fmt.Fprintln(a.stderr, "no published checkpoint notes (LEDGER_CHECKPOINT_FILE, LEDGER_CHECKPOINT_URL): following the store's own tree head")
	}
	tick, stop := followTicker(every)
	defer stop()
	err := audit.Follow(ctx, m, tick, slog.New(slog.NewTextHandler(a.stderr, nil)), func(n int64) {
		fmt.Fprintf(a.stdout, "ok: %s consistent at %d entries\n", tenant, n)
	})
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(a.stdout, err)
		return exitFailed
	}
	return exitOK
}
