// Package audit is what the auditor's commands (bot verify, replay, export, prove, keys,
// witness, ledger accept-loss) do: each is one call on Tools taking a request (the
// command's flags), checking it, reading what the user names, proving and verifying
// through the ledger package, writing files atomically and printing the outcome. Mistakes
// in a request are UsageErrors, failed checks Verdicts; cmd/bot keeps the flags.
package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/auditpdf"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// WriteFile writes through a temporary file beside path, renamed into place, so a failed
// write never leaves a half-written file behind. A file-system error names path as the
// user gave it, never the temporary file.
func WriteFile(path string, write func(io.Writer) error) error {
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return &writeError{fmt.Sprintf("cannot write %s: it is a directory (give a file name)", path), fs.ErrExist}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fileError(path, err)
	}
	defer os.Remove(tmp.Name())
	if err := write(tmp); err != nil {
		tmp.Close()
		var pe *fs.PathError
		if errors.As(err, &pe) && pe.Path == tmp.Name() {
			return fileError(path, err)
		}
		return err
	}
	if err := tmp.Close(); err != nil {
		return fileError(path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fileError(path, err)
	}
	return nil
}

// WriteBytes is WriteFile of b.
func WriteBytes(path string, b []byte) error {
	return WriteFile(path, func(w io.Writer) error { _, err := w.Write(b); return err })
}

// writeError is a failure to write a file the user named, said in their terms.
type writeError struct {
	msg string
	err error
}

func (e *writeError) Error() string { return e.msg }
func (e *writeError) Unwrap() error { return e.err }

// fileError says why path could not be written, naming path and not the temporary file
// the error may be about.
func fileError(path string, err error) error {
	var pe *fs.PathError
	var le *os.LinkError
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return &writeError{fmt.Sprintf("cannot write %s: directory %s does not exist", path, filepath.Dir(path)), err}
	case errors.As(err, &pe):
		return fmt.Errorf("cannot write %s: %w", path, pe.Err)
	case errors.As(err, &le):
		return fmt.Errorf("cannot write %s: %w", path, le.Err)
	}
	return fmt.Errorf("cannot write %s: %w", path, err)
}

// JSON is v as indented JSON and a newline; raw bytes stay as they are.
func JSON(v any) ([]byte, error) {
	if b, ok := v.([]byte); ok {
		return b, nil
	}
	b, err := json.MarshalIndent(v, "", "  ")
	return append(b, '\n'), err
}

// PDFResult is what ExportPDF wrote.
type PDFResult struct {
	auditpdf.Result
	BundlePath string
}

// ExportPDF writes the incident's one-page PDF to out (a .pdf path) and, beside it, the
// incident bundle (out without .pdf + ".bundle.json") that the page tells the auditor to
// verify. Both are written atomically; the bundle is removed when the PDF fails.
func ExportPDF(ctx context.Context, store ledger.Store, ls ledger.LogSigner, tenant, incident, out string, now time.Time) (PDFResult, error) {
	var res PDFResult
	in, hist, err := incidentOf(ctx, store, tenant, incident)
	if err != nil {
		return res, err
	}
	b, err := ledger.BuildBundle(ctx, store, ls, tenant, incident, nil)
	if err != nil {
		return res, err
	}
	raw, err := JSON(b)
	if err != nil {
		return res, err
	}
	v, err := ledger.ParseVerifier(ls.Verifier)
	var cp *ledger.NoteCheckpoint
	if err == nil {
		cp, err = ledger.OpenCheckpointNote([]byte(b.Checkpoint), nil, v)
	}
	if err != nil {
		return res, err
	}
	res.BundlePath = strings.TrimSuffix(out, ".pdf") + ".bundle.json"
	if err := WriteBytes(res.BundlePath, raw); err != nil {
		return res, err
	}
	err = WriteFile(out, func(w io.Writer) error {
		var buf bytes.Buffer
		var err error
		res.Result, err = auditpdf.Render(&buf, auditpdf.Input{Incident: in, Entries: hist, Checkpoint: cp, Bundle: raw,
			BundleName: filepath.Base(res.BundlePath), Verifier: ls.Verifier, Generated: now})
		if err == nil {
			_, err = w.Write(buf.Bytes())
		}
		return err
	})
	if err != nil {
		os.Remove(res.BundlePath)
	}
	return res, err
}

// incidentOf reads and folds an incident's entries.
func incidentOf(ctx context.Context, s ledger.Store, tenant, id string) (ledger.Incident, []ledger.Entry, error) {
	hist, err := s.History(ctx, tenant, id)
	if err != nil {
		return ledger.Incident{}, nil, err
	}
	if len(hist) == 0 {
		return ledger.Incident{}, nil, fmt.Errorf("no incident %s for tenant %s", id, tenant)
	}
	in, err := ledger.Fold(hist)
	return in, hist, err
}

// VerifyProofFile verifies the file at path offline: an incident bundle (bundle true) or
// a consistency proof. It returns the verdict line for a valid one. A file that cannot be
// read is an *os.PathError; anything else wrong with it is the verdict's error.
func VerifyProofFile(path string, bundle bool, key note.Verifier, witnesses []note.Verifier) (string, *ledger.BundleReport, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	if bundle {
		rep, err := ledger.VerifyBundle(f, ledger.BundleOptions{Key: key, Witnesses: witnesses})
		if err != nil {
			return "", nil, Verdict{err}
		}
		return fmt.Sprintf("ok: %d entries of %s (%s), each included in the signed tree of %d entries", rep.Entries, rep.Incident, rep.Folded.Stage, rep.Tree.N), &rep, nil
	}
	var cb ledger.ConsistencyBundle
	if err := json.NewDecoder(io.LimitReader(f, 1<<20)).Decode(&cb); err != nil {
		return "", nil, Verdict{fmt.Errorf("not a consistency proof: %w", err)}
	}
	old, cur, err := ledger.VerifyConsistency(cb, nil, append([]note.Verifier{key}, witnesses...)...)
	if err != nil {
		return "", nil, Verdict{err}
	}
	return fmt.Sprintf("ok: %s at %d entries extends its checkpoint at %d entries", cur.Origin, cur.Tree.N, old.Tree.N), nil, nil
}

// Verdict is a proof that does not verify (as opposed to one that could not be read).
type Verdict struct{ Err error }

func (v Verdict) Error() string { return v.Err.Error() }
func (v Verdict) Unwrap() error { return v.Err }

// ParseKeys parses a log's verifier key (may be empty: none) and witness keys; the error
// names the flag at fault.
func ParseKeys(key string, witnesses []string) (note.Verifier, []note.Verifier, error) {
	var lv note.Verifier
	if key != "" {
		v, err := ledger.ParseVerifier(key)
		if err != nil {
			return nil, nil, fmt.Errorf("--key: %w", err)
		}
		lv = v
	}
	var ws []note.Verifier
	for _, w := range witnesses {
		v, err := ledger.ParseVerifier(w)
		if err != nil {
			return nil, nil, fmt.Errorf("--witness: %w", err)
		}
		ws = append(ws, v)
	}
	return lv, ws, nil
}

// InitWitnessKey creates path with a new base64 Ed25519 seed (mode 0600) unless it exists.
func InitWitnessKey(path string) error {
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		return nil
	}
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	return os.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(seed)+"\n"), 0o600)
}

// WitnessRequest reads a witness's file request: a consistency proof from `bot prove
// --consistency`, or a bare checkpoint note (a first request: nothing to be consistent
// with yet).
func WitnessRequest(b []byte) ledger.ConsistencyBundle {
	var req ledger.ConsistencyBundle
	if err := json.Unmarshal(b, &req); err != nil {
		req = ledger.ConsistencyBundle{Format: ledger.ConsistencyFormat, New: string(b)}
	}
	return req
}

// ParseLogKeys parses the verifier keys of the logs a witness cosigns.
func ParseLogKeys(keys []string) ([]note.Verifier, error) {
	var logs []note.Verifier
	for _, k := range keys {
		v, err := ledger.ParseVerifier(k)
		if err != nil {
			return nil, err
		}
		logs = append(logs, v)
	}
	return logs, nil
}

// CheckpointFile is the checkpoint file a tool reads: given (a flag), else configured
// (LEDGER_CHECKPOINT_FILE), else def (serve's default) if it exists; "" when none.
func CheckpointFile(given, configured, def string) string {
	switch {
	case given != "":
		return given
	case configured != "":
		return configured
	}
	if _, err := os.Stat(def); err == nil {
		return def
	}
	return ""
}

// externalMark reads tenant's last checkpoint kept outside the store: from the file at
// path (when it exists) and from the auditor's service at url. It says what it could
// not use through note (none: nil mark, and a note that a chain the store lost whole
// would not be detectable). A sink that fails is an error: an auditor's verify does not
// settle for part of the evidence.
func externalMark(ctx context.Context, path, url, token string, key ed25519.PublicKey, tenant string, note func(string)) (*ledger.Mark, error) {
	var sinks ledger.Sinks
	if path != "" {
		if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
			note(fmt.Sprintf("checkpoint file %s does not exist (yet)", path))
		} else {
			f, err := ledger.NewFileSink(path, key)
			if err != nil {
				return nil, err
			}
			sinks = append(sinks, f)
		}
	}
	if url != "" {
		h, err := ledger.NewHTTPSink(url, token, key, nil)
		if err != nil {
			return nil, err
		}
		sinks = append(sinks, h)
	}
	if len(sinks) == 0 {
		note("no checkpoint outside Redis (LEDGER_CHECKPOINT_FILE, LEDGER_CHECKPOINT_URL): a chain Redis lost whole would not be detectable")
		return nil, nil
	}
	m, err := sinks.Load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if m == nil {
		note(fmt.Sprintf("no checkpoint of %s kept outside Redis yet", tenant))
	}
	return m, nil
}

// followNotes is the monitor of `bot verify --follow`: it follows tenant's published
// checkpoint notes (notes; none: the store's own tree head) with m's keys until a check
// fails, logging the failure at ERROR, and calls ok when the trusted size changes.
func followNotes(ctx context.Context, m *ledger.Monitor, tick <-chan time.Time, logger *slog.Logger, ok func(size int64)) error {
	var last int64 = -1
	return m.Follow(ctx, tick, logger, func(t tlog.Tree) {
		if t.N != last {
			ok(t.N)
			last = t.N
		}
	})
}

// keepExportCheckpoint records an export's checkpoint in the checkpoint file at path
// ("" : none kept), as serve's own checkpoints are.
func keepExportCheckpoint(ctx context.Context, path string, store ledger.Store, key ed25519.PrivateKey, rep ledger.Report) error {
	if path == "" {
		return nil
	}
	sink, err := ledger.NewFileSink(path, key.Public().(ed25519.PublicKey))
	if err != nil {
		return err
	}
	return ledger.RecordCheckpoint(ctx, sink, store, key, rep.Tenant, rep.Size, rep.TailHash, rep.Checkpoint.At)
}

// replayTimeline is an incident's timeline from the store, and its tenant's chain
// verified: the lines `bot replay` prints, and whether the chain verified and the
// incident folds. A failure to read the incident is an error.
func replayTimeline(ctx context.Context, store ledger.Store, tenant, incident string, key ed25519.PublicKey) ([]string, bool, error) {
	hist, err := store.History(ctx, tenant, incident)
	if err != nil {
		return nil, false, err
	}
	if len(hist) == 0 {
		return nil, false, fmt.Errorf("no incident %s for tenant %s", incident, tenant)
	}
	in, foldErr := ledger.Fold(hist)
	lines := append([]string{fmt.Sprintf("%s  %s  %s  (tenant %s)", in.ID, in.Service, in.Stage, tenant)}, ledger.Timeline(hist)...)
	rep, verr := ledger.VerifyStore(ctx, store, tenant, key)
	switch {
	case verr != nil:
		return append(lines, fmt.Sprintf("chain: DOES NOT VERIFY: %v", verr)), false, nil
	case foldErr != nil:
		return append(lines, fmt.Sprintf("chain: ok (%d entries), but the incident does not fold: %v", rep.Entries, foldErr)), false, nil
	}
	lines = append(lines, fmt.Sprintf("chain: ok (%d entries)", rep.Entries))
	for _, m := range rep.Losses {
		lines = append(lines, m.Describe())
	}
	return lines, true, nil
}

// describeCheckpoint says what a verified chain's checkpoint proved.
func describeCheckpoint(rep ledger.Report) string {
	switch {
	case rep.Checkpoint == nil:
		return "no signed checkpoint yet: truncation of the newest entries would not be detectable"
	case rep.Pinned:
		return fmt.Sprintf("signed checkpoint covers %d entries (key pinned)", rep.Checkpoint.Size)
	}
	return fmt.Sprintf("signed checkpoint covers %d entries, signed by embedded key %s (not pinned: pass --public-key or set LEDGER_SIGNING_KEY)",
		rep.Checkpoint.Size, rep.Checkpoint.PublicKey)
}

// ProveRequest is what `bot prove` is asked: a tenant's signed tree head (Checkpoint), an
// incident's bundle (Incident, against the note in the file Against when given), or the
// consistency of the checkpoint notes in the files Old and New; the proof is written to
// Out ("": Stdout).
type ProveRequest struct {
	Tenant, Incident string
	Checkpoint       bool
	Against          string
	Old, New         string
	Out              string
}

// Check checks r asks one thing.
func (r ProveRequest) Check() error {
	return CheckProve(r.Tenant, r.Incident, r.Checkpoint, r.Old, r.New)
}

// prove answers r from store (against, old and new are the notes in its files): a signed
// note ([]byte), a *ledger.Bundle or a *ledger.ConsistencyBundle.
func prove(ctx context.Context, store ledger.Store, ls ledger.LogSigner, r ProveRequest, against, old, new []byte) (any, error) {
	switch {
	case r.Checkpoint:
		ts, ok := store.(ledger.TreeStore)
		if !ok {
			return nil, fmt.Errorf("%w: this store keeps no tree", ledger.ErrNoTree)
		}
		msg, _, err := ls.SignHead(ctx, ts, r.Tenant)
		return msg, err
	case r.Incident != "":
		return ledger.BuildBundle(ctx, store, ls, r.Tenant, r.Incident, against)
	}
	return ledger.ProveConsistency(ctx, store, ls, old, new)
}

// readFiles reads each named file; an empty name reads as nil.
func readFiles(paths ...string) ([][]byte, error) {
	out := make([][]byte, len(paths))
	for i, p := range paths {
		if p == "" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// WitnessKey reads a witness's key from keyFile (a base64 Ed25519 seed) and returns it
// with its verifier string under name. Errors name the flag at fault.
func WitnessKey(name, keyFile string) (ed25519.PrivateKey, string, error) {
	raw, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, "", fmt.Errorf("bot witness: %w", err)
	}
	key, err := ledger.DecodeSeed(string(raw))
	if err != nil {
		return nil, "", fmt.Errorf("--key %s: %w", keyFile, err)
	}
	vkey, err := ledger.CosignatureVerifierKey(name, key.Public().(ed25519.PublicKey))
	if err != nil {
		return nil, "", fmt.Errorf("--name: %w", err)
	}
	return key, vkey, nil
}
