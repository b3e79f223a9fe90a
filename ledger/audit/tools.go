package audit

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// Tools is what the auditor's commands are given besides what they are asked: the
// ledger's keys and checkpoints as configured, the way to its store, and where to print
// (the verdict and what a command returns on Stdout, what it notes on Stderr). Each
// command is one call, `bot NAME`'s flags as its request.
type Tools struct {
	// SigningKey is the ledger's signing key (nil: none configured); Origin names its
	// checkpoint notes (empty: the default).
	SigningKey ed25519.PrivateKey
	Origin     string
	// CheckpointFile is the checkpoint file kept outside the store as configured ("":
	// none), DefaultCheckpointFile serve's default, read when it exists.
	CheckpointFile, DefaultCheckpointFile string
	// CheckpointURL and CheckpointToken are the auditor's service keeping checkpoints.
	CheckpointURL, CheckpointToken string
	// Open runs f with the ledger's store (its errors say why the store cannot be reached).
	Open func(f func(Store) error) error
	// Sinks opens where checkpoints are kept outside the store (the file at path and
	// CheckpointURL) and describes them; nil sink when there is none.
	Sinks          func(path string) (ledger.CheckpointSink, string, error)
	Stdout, Stderr io.Writer
	// Tick makes the ticks of verify --follow (nil: a time.Ticker).
	Tick func(time.Duration) (<-chan time.Time, func())
}

// Store is the ledger's store as the tools read it: the chains and their Merkle trees.
type Store interface {
	ledger.Store
	ledger.TreeStore
}

// Failure is a command that failed (exit 1) for a reason its text states whole: printed
// as it is, not after the command's name.
type Failure struct{ Err error }

func (f Failure) Error() string { return f.Err.Error() }
func (f Failure) Unwrap() error { return f.Err }

// checkpointFile is the checkpoint file a command reads: given (its flag), else the one
// configured, else the default when it exists.
func (t Tools) checkpointFile(given string) string {
	return CheckpointFile(given, t.CheckpointFile, t.DefaultCheckpointFile)
}

// lines prints each line on w.
func lines(w io.Writer, ls ...string) {
	for _, l := range ls {
		fmt.Fprintln(w, l)
	}
}

// output writes to path atomically (and says so), or to Stdout when path is empty.
func (t Tools) output(path string, write func(io.Writer) error) error {
	if path == "" {
		return write(t.Stdout)
	}
	if err := WriteFile(path, write); err != nil {
		return err
	}
	fmt.Fprintf(t.Stderr, "wrote %s\n", path)
	return nil
}

// writeJSON writes v (raw bytes as they are, anything else as indented JSON) to path or Stdout.
func (t Tools) writeJSON(path string, v any) error {
	b, err := JSON(v)
	if err != nil {
		return err
	}
	return t.output(path, func(w io.Writer) error {
		_, err := w.Write(b)
		return err
	})
}

// Verify is `bot verify`: r's chain (a tenant's in the store, against the checkpoint
// kept outside it, or an export file), r's proof offline, or the tenant's published
// checkpoints followed until a check fails.
func (t Tools) Verify(ctx context.Context, r VerifyRequest) error {
	mode, err := r.Mode()
	switch {
	case err != nil:
		return err
	case mode == "follow":
		return t.follow(ctx, r)
	case mode == "proof":
		return t.verifyProof(r)
	}
	key, err := TrustedKey(r.PublicKey, t.SigningKey)
	if err != nil {
		return err
	}
	report := func(rep ledger.Report, err error) error {
		out, err := ChainResult(rep, err, r.PublicKey != "")
		if err != nil {
			return err
		}
		lines(t.Stdout, out...)
		fmt.Fprintln(t.Stderr, describeCheckpoint(rep))
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
	if err := CheckTenant(r.Tenant, false); err != nil {
		return err
	}
	return t.Open(func(store Store) error {
		mark, err := externalMark(ctx, t.checkpointFile(r.Checkpoints), t.CheckpointURL, t.CheckpointToken, key, r.Tenant, func(s string) { fmt.Fprintln(t.Stderr, s) })
		if err != nil {
			return Verdict{fmt.Errorf("checkpoint file: %v", err)}
		}
		return report(ledger.VerifyStoreMark(ctx, store, r.Tenant, key, mark))
	})
}

// verifyProof verifies r's incident bundle or consistency proof offline.
func (t Tools) verifyProof(r VerifyRequest) error {
	lv, ws, err := proofKeys(t.SigningKey, t.Origin, r.Key, r.Witnesses)
	if err != nil {
		return usageOf(err)
	}
	if r.Bundle == "" && lv == nil {
		return UsageError{errors.New("bot verify --consistency: --key VERIFIER is required (or LEDGER_SIGNING_KEY)")}
	}
	v, rep, err := VerifyProofFile(r.Bundle+r.Consistency, r.Bundle != "", lv, ws)
	if err != nil {
		return err
	}
	fmt.Fprintln(t.Stdout, v)
	lines(t.Stderr, describeKeys(rep)...)
	return nil
}

// follow is the monitor of r's tenant, until a check fails (a Verdict) or ctx ends.
func (t Tools) follow(ctx context.Context, r VerifyRequest) error {
	lv, ws, err := proofKeys(t.SigningKey, t.Origin, r.Key, r.Witnesses)
	if err != nil {
		return usageOf(err)
	}
	return t.Open(func(store Store) error {
		m, unpublished, err := newMonitor(store, r.Tenant, lv, ws, t.checkpointFile(r.Checkpoints), t.CheckpointURL, t.CheckpointToken)
		if err != nil {
			return err
		} else if unpublished != "" {
			fmt.Fprintln(t.Stderr, unpublished)
		}
		tick, stop := t.ticker(r.Interval)
		defer stop()
		err = followNotes(ctx, m, tick, slog.New(slog.NewTextHandler(t.Stderr, nil)), func(n int64) {
			fmt.Fprintf(t.Stdout, "ok: %s consistent at %d entries\n", r.Tenant, n)
		})
		if err != nil && ctx.Err() == nil {
			return Verdict{err}
		}
		return nil
	})
}

// ticker ticks every d.
func (t Tools) ticker(d time.Duration) (<-chan time.Time, func()) {
	if t.Tick != nil {
		return t.Tick(d)
	}
	tk := time.NewTicker(d)
	return tk.C, tk.Stop
}

// IncidentRequest is what a command about one incident is asked (`bot replay`, `bot
// export`): the Tenant and the Incident, and for an export its Format (jsonl, md or pdf)
// and the file to write (Out; "" for Stdout).
type IncidentRequest struct {
	Tenant, Incident, Format, Out string
}

// CheckReplay checks r names an incident.
func (r IncidentRequest) CheckReplay() error {
	return CheckIncident(r.Tenant, r.Incident)
}

// CheckExport checks r names an incident and an export of it.
func (r IncidentRequest) CheckExport() error {
	if err := CheckIncident(r.Tenant, r.Incident); err != nil {
		return err
	}
	return CheckExport(r.Format, r.Out)
}

// Replay is `bot replay`: r's incident's timeline, and its tenant's chain verified. A
// chain that fails (or an incident that does not fold) is the Verdict, the timeline's last line.
func (t Tools) Replay(ctx context.Context, r IncidentRequest) error {
	if err := r.CheckReplay(); err != nil {
		return err
	}
	return t.Open(func(store Store) error {
		key, _ := TrustedKey("", t.SigningKey)
		timeline, ok, err := replayTimeline(ctx, store, r.Tenant, r.Incident, key)
		if err != nil {
			return err
		}
		if !ok {
			lines(t.Stdout, timeline[:len(timeline)-1]...)
			return Verdict{errors.New(timeline[len(timeline)-1])}
		}
		lines(t.Stdout, timeline...)
		return nil
	})
}

// Export is `bot export`: r's incident as the tenant's JSONL chain with a signed
// checkpoint (kept in the checkpoint file too), its Markdown report, or its one-page PDF
// with the incident bundle beside it.
func (t Tools) Export(ctx context.Context, r IncidentRequest) error {
	if err := r.CheckExport(); err != nil {
		return err
	}
	if r.Format == "pdf" {
		ls, err := LogSigner(t.SigningKey, t.Origin)
		if err != nil {
			return err
		}
		return t.Open(func(store Store) error {
			res, err := ExportPDF(ctx, store, ls, r.Tenant, r.Incident, r.Out, time.Now())
			if err != nil {
				return err
			}
			lines(t.Stderr, res.Lines(r.Out)...)
			return nil
		})
	}
	if r.Format == "jsonl" && t.SigningKey == nil {
		return UsageError{errors.New("LEDGER_SIGNING_KEY: required to sign the export's checkpoint (or LEDGER_SIGNING_KEY_FILE)")}
	}
	return t.Open(func(store Store) error {
		write, err := export{Store: store, Tenant: r.Tenant, Incident: r.Incident, Format: r.Format, Key: t.SigningKey,
			CheckpointFile: t.checkpointFile(""),
			NotKept: func(err error) {
				fmt.Fprintf(t.Stderr, "bot export: the checkpoint file was not updated: %v\n", err)
			}}.Writer(ctx)
		if err != nil {
			return err
		}
		return t.output(r.Out, write)
	})
}

// Keys is `bot keys`: the ledger's checkpoint-note verifier key.
func (t Tools) Keys() error {
	ls, err := LogSigner(t.SigningKey, t.Origin)
	if err != nil {
		return err
	}
	fmt.Fprintln(t.Stdout, ls.Verifier)
	fmt.Fprintln(t.Stderr, "the ledger's checkpoint-note verifier key: give it to auditors (bot verify --bundle FILE --key KEY) and witnesses (bot witness --log-key KEY)")
	return nil
}

// Prove is `bot prove`: r's proof, written as JSON (a note as it is) to r.Out or Stdout.
func (t Tools) Prove(ctx context.Context, r ProveRequest) error {
	if err := r.Check(); err != nil {
		return err
	}
	ls, err := LogSigner(t.SigningKey, t.Origin)
	if err != nil {
		return err
	}
	notes, err := readFiles(r.Against, r.Old, r.New)
	if err != nil {
		return err
	}
	return t.Open(func(store Store) error {
		v, err := prove(ctx, store, ls, r, notes[0], notes[1], notes[2])
		if err != nil {
			return err
		}
		return t.writeJSON(r.Out, v)
	})
}

// Witness is `bot witness`: w's key created (Init, its verifier printed), w served over
// HTTP (Listen), or w's request file cosigned (a Verdict when it is not consistent with
// what w cosigned before).
func (t Tools) Witness(ctx context.Context, w Witness) error {
	wit, vkey, err := w.Open(time.Now)
	switch {
	case err != nil:
		return err
	case w.Init:
		fmt.Fprintln(t.Stdout, vkey)
		return nil
	case w.Listen != "":
		return wit.ListenAndServe(ctx, w.Listen, func(addr string) {
			fmt.Fprintf(t.Stderr, "witness %s listening on %s (POST /add-checkpoint)\n", vkey, addr)
		})
	}
	b, err := os.ReadFile(w.File)
	if err != nil {
		return err
	}
	cosigned, err := wit.Cosign(WitnessRequest(b))
	if err != nil {
		return Verdict{err}
	}
	return t.writeJSON(w.Out, cosigned)
}

// LossRequest is what `bot ledger accept-loss` is asked: who (By) accepts Tenant's lost
// chains and why (Reason), against the checkpoint file Checkpoints ("": the configured one).
type LossRequest struct {
	Tenant, By, Reason, Checkpoints string
}

// Check checks r names a tenant, who accepts and why.
func (r LossRequest) Check() error {
	if err := CheckTenant(r.Tenant, false); err != nil {
		return err
	}
	if strings.TrimSpace(r.By) == "" || strings.TrimSpace(r.Reason) == "" {
		return UsageError{errors.New("bot ledger accept-loss: --by and --reason are both required (they are recorded in the ledger)")}
	}
	return nil
}

// AcceptLoss is `bot ledger accept-loss`: r's signed acceptance of the tenant's lost
// chains, recorded in the ledger, which lifts the hold on the incidents from before the
// loss. It prints what was accepted and noted; no loss to accept is a Verdict.
func (t Tools) AcceptLoss(ctx context.Context, r LossRequest) error {
	if err := r.Check(); err != nil {
		return err
	}
	if t.SigningKey == nil {
		return UsageError{errors.New("LEDGER_SIGNING_KEY: required (the acceptance is signed with serve's key)")}
	}
	sink, desc, err := t.Sinks(t.checkpointFile(r.Checkpoints))
	if err != nil {
		return Failure{err}
	}
	if sink == nil {
		return UsageError{errors.New("no checkpoint outside Redis (LEDGER_CHECKPOINT_FILE, LEDGER_CHECKPOINT_URL): there is no recorded loss to accept")}
	}
	return t.Open(func(store Store) error {
		out, err := acceptLoss(ctx, store, t.SigningKey, sink, desc, r.Tenant, r.By, r.Reason)
		lines(t.Stdout, out...)
		if err != nil && !errors.As(err, new(Verdict)) {
			return Failure{err} // its own words: "bot ledger accept-loss: …" or the ledger's
		}
		return err
	})
}
