package audit

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"golang.org/x/mod/sumdb/note"
)

// The checks of what an auditor's command is asked, before anything is read: each error
// is a UsageError whose text is the one line the command prints.

// CheckTenant says why tenant is not a tenant id; an empty one is "required" when required.
func CheckTenant(tenant string, required bool) error {
	return usageOf(checkTenant(tenant, required))
}

func checkTenant(tenant string, required bool) error {
	switch {
	case tenant == "" && required:
		return errors.New("--tenant: required (e.g. --tenant acme)")
	case !ledger.ValidTenant(tenant):
		return fmt.Errorf("--tenant: %q is not a tenant id ([a-z0-9-]{1,32})", tenant)
	}
	return nil
}

// CheckIncident checks the --tenant and --incident of an incident's command.
func CheckIncident(tenant, incident string) error {
	if err := CheckTenant(tenant, true); err != nil {
		return err
	}
	if incident == "" {
		return UsageError{errors.New("--incident: required (e.g. INC-7F3)")}
	}
	return nil
}

// CheckExport checks an export's format, and for the PDF its --out (the bundle goes beside it).
func CheckExport(format, out string) error {
	switch {
	case format != "jsonl" && format != "md" && format != "pdf":
		return UsageError{fmt.Errorf("--format: want jsonl, md or pdf, got %q", format)}
	case format == "pdf" && !strings.HasSuffix(out, ".pdf"):
		return UsageError{errors.New("--out FILE.pdf: required with --format pdf (the incident bundle is written beside it)")}
	}
	return nil
}

// CheckProve checks that a ProveRequest asks one thing: an incident, the checkpoint, or
// the consistency of the notes in the files old and new.
func CheckProve(tenant, incident string, checkpoint bool, old, new string) error {
	modes := 0
	for _, on := range []bool{incident != "", checkpoint, old != ""} {
		if on {
			modes++
		}
	}
	switch {
	case modes != 1:
		return UsageError{errors.New("bot prove: give one of --incident ID, --checkpoint, or --consistency OLD NEW")}
	case old != "" && new == "":
		return UsageError{errors.New("bot prove --consistency OLD NEW: the NEW checkpoint file is missing")}
	case old == "":
		return CheckTenant(tenant, false)
	}
	return nil
}

// LogSigner is the ledger's signing key (nil: none configured) as a checkpoint-note signer
// under origin (LEDGER_ORIGIN; empty: the default).
func LogSigner(key ed25519.PrivateKey, origin string) (ledger.LogSigner, error) {
	if key == nil {
		return ledger.LogSigner{}, UsageError{errors.New("LEDGER_SIGNING_KEY: required to sign checkpoints (or LEDGER_SIGNING_KEY_FILE)")}
	}
	if origin == "" {
		origin = ledger.DefaultOrigin
	}
	s, vkey, err := ledger.NoteSigner(origin, key)
	if err != nil {
		return ledger.LogSigner{}, UsageError{fmt.Errorf("LEDGER_ORIGIN: %v", err)}
	}
	return ledger.LogSigner{Origin: origin, Signer: s, Verifier: vkey}, nil
}

// TrustedKey is the public key checkpoints must be signed with: flagKey (--public-key),
// else the one of the ledger's signing key (LEDGER_SIGNING_KEY), else none (the embedded
// key, unpinned).
func TrustedKey(flagKey string, signing ed25519.PrivateKey) (ed25519.PublicKey, error) {
	if flagKey != "" {
		b, err := base64.StdEncoding.DecodeString(flagKey)
		if err != nil || len(b) != ed25519.PublicKeySize {
			return nil, UsageError{errors.New("--public-key: not a base64 Ed25519 public key")}
		}
		return ed25519.PublicKey(b), nil
	}
	if signing != nil {
		return signing.Public().(ed25519.PublicKey), nil
	}
	return nil, nil
}

// ChainResult is what a chain verification (rep, err) says: its verdict lines, or the
// error, a Verdict when the chain fails the check rather than cannot be read. flagKey says
// whether the key came from --public-key.
func ChainResult(rep ledger.Report, err error, flagKey bool) ([]string, error) {
	var ve *ledger.VerifyError
	var le *ledger.LossError
	var ke *ledger.KeyError
	switch {
	case errors.As(err, &ke):
		given := "LEDGER_SIGNING_KEY's public key"
		if flagKey {
			given = "--public-key"
		}
		return nil, Verdict{fmt.Errorf("%s does not match the key that signed the export's checkpoint (%s)", given, ke.Signer)}
	case errors.As(err, &ve):
		return nil, Verdict{ve}
	case errors.As(err, &le):
		return nil, Verdict{le}
	case err != nil:
		return nil, err
	}
	out := []string{fmt.Sprintf("ok: %d entries", rep.Entries)}
	for _, m := range rep.Losses {
		out = append(out, m.Describe())
	}
	return out, nil
}

// Lines is what the export of the PDF to out wrote, for its user.
func (r PDFResult) Lines(out string) []string {
	ls := []string{fmt.Sprintf("wrote %s (%d page(s)) and %s", out, r.Pages, r.BundlePath)}
	if r.Unrenderable > 0 {
		ls = append(ls, fmt.Sprintf("%d characters (emoji or scripts the PDF fonts lack) are shown as \"?\"; the bundle keeps them exactly", r.Unrenderable))
	}
	return ls
}

// describeKeys says on what keys an offline proof verification rested (a consistency
// proof's report is nil: its key is pinned, no witness named).
func describeKeys(rep *ledger.BundleReport) []string {
	pinned, witnesses := true, []string(nil)
	if rep != nil {
		pinned, witnesses = rep.Pinned, rep.Witnesses
	}
	var out []string
	if !pinned {
		out = append(out, "checkpoint signed by the key the bundle names (not pinned: pass --key VERIFIER from `bot keys`)")
	}
	if len(witnesses) == 0 {
		return append(out, "no witness pinned: a history rewritten with a stolen ledger key would pass (pass --witness VERIFIER)")
	}
	return append(out, "cosigned by "+strings.Join(witnesses, ", "))
}

// proofKeys parses the ledger's note verifier key (default: the one of the ledger's signing
// key under origin) and the witnesses' keys.
func proofKeys(signing ed25519.PrivateKey, origin, key string, witnesses []string) (note.Verifier, []note.Verifier, error) {
	if signing != nil && key == "" {
		if s, err := LogSigner(signing, origin); err == nil {
			key = s.Verifier
		} else {
			return nil, nil, err
		}
	}
	return ParseKeys(key, witnesses)
}

// VerifyRequest is what `bot verify` is asked: a tenant's chain in Redis (Tenant, kept
// checked with Follow every Interval), an export file (File), or an incident bundle or
// consistency proof offline (Bundle, Consistency). A chain's checkpoint must be signed
// with PublicKey (base64; default: the ledger's signing key's), the tenant's kept in the
// checkpoint file Checkpoints (default: the configured one); a proof's and the followed
// notes' with the note verifier Key (default: the ledger's) and cosigned by Witnesses.
type VerifyRequest struct {
	Tenant, File, Bundle, Consistency string
	Follow                            bool
	Interval                          time.Duration
	PublicKey, Checkpoints, Key       string
	Witnesses                         []string
}

// Check checks r asks one thing.
func (r VerifyRequest) Check() error {
	_, err := r.Mode()
	return err
}

// Mode checks r asks one thing and says which: "follow", "proof" or "chain".
func (r VerifyRequest) Mode() (string, error) {
	switch {
	case r.Follow:
		if !ledger.ValidTenant(r.Tenant) || r.Interval <= 0 {
			return "", UsageError{errors.New("bot verify --follow: --tenant T is required, and --interval must be positive")}
		}
		return "follow", nil
	case r.Bundle != "" || r.Consistency != "":
		if r.Tenant != "" || r.File != "" || (r.Bundle != "" && r.Consistency != "") {
			return "", UsageError{errors.New("bot verify: give exactly one of --tenant, --file, --bundle or --consistency")}
		}
		return "proof", nil
	case (r.Tenant == "") == (r.File == ""):
		return "", UsageError{errors.New("bot verify: give exactly one of --tenant T or --file EXPORT.jsonl")}
	}
	return "chain", nil
}

// export is an incident's export: "jsonl" (the tenant's chain and a checkpoint signed with
// Key, also kept in CheckpointFile) or "md" (the incident's report and the chain's verdict).
type export struct {
	Store                    ledger.Store
	Tenant, Incident, Format string
	Key                      ed25519.PrivateKey
	CheckpointFile           string
	NotKept                  func(error) // told when the checkpoint file was not updated
}

// Writer reads the incident and returns what writes its export.
func (e export) Writer(ctx context.Context) (func(io.Writer) error, error) {
	in, hist, err := incidentOf(ctx, e.Store, e.Tenant, e.Incident)
	if err != nil {
		return nil, err
	}
	return func(w io.Writer) error {
		if e.Format == "jsonl" {
			rep, err := ledger.ExportJSONL(ctx, e.Store, e.Tenant, e.Key, time.Now(), w)
			if err == nil {
				if err := keepExportCheckpoint(ctx, e.CheckpointFile, e.Store, e.Key, rep); err != nil {
					e.NotKept(err)
				}
			}
			return err
		}
		var pub ed25519.PublicKey
		if e.Key != nil {
			pub = e.Key.Public().(ed25519.PublicKey)
		}
		rep, verr := ledger.VerifyStore(ctx, e.Store, e.Tenant, pub)
		return ledger.WriteReport(w, in, hist, rep, verr)
	}, nil
}

// UsageError is a mistake in what a command was asked (a flag missing, malformed or at
// odds with another): its text is the one line the command prints.
type UsageError struct{ Err error }

func (e UsageError) Error() string { return e.Err.Error() }
func (e UsageError) Unwrap() error { return e.Err }

// Witness is what `bot witness` is asked: the witness's Name and KeyFile (a new seed
// written there with Init), the logs it cosigns (LogKeys), its State file, and one
// request File (its answer written to Out; "": Stdout) or an address to Listen on.
type Witness struct {
	Name, KeyFile            string
	Init                     bool
	LogKeys                  []string
	State, File, Listen, Out string
}

// Open checks w and reads its key: the witness (nil with Init) and its verifier key.
// Mistakes in w are UsageErrors.
func (w Witness) Open(now func() time.Time) (*ledger.Witness, string, error) {
	if w.Name == "" || w.KeyFile == "" {
		return nil, "", UsageError{errors.New("bot witness: --name and --key are required")}
	}
	if w.Init {
		if err := InitWitnessKey(w.KeyFile); err != nil {
			return nil, "", err
		}
	}
	key, vkey, err := WitnessKey(w.Name, w.KeyFile)
	if err != nil || w.Init {
		return nil, vkey, usageOf(err)
	}
	logs, err := ParseLogKeys(w.LogKeys)
	if err != nil {
		return nil, "", UsageError{fmt.Errorf("--log-key: %v", err)}
	}
	if len(logs) == 0 || w.State == "" || (w.File == "") == (w.Listen == "") {
		return nil, "", UsageError{errors.New("bot witness: --log-key, --state and one of --file or --listen are required (or --init)")}
	}
	wit, err := ledger.NewWitness(w.Name, key, logs, w.State, now)
	if err != nil {
		return nil, "", UsageError{fmt.Errorf("bot witness: %v", err)}
	}
	return wit, vkey, nil
}

// usageOf is err (nil stays nil) as a UsageError.
func usageOf(err error) error {
	if err == nil {
		return nil
	}
	return UsageError{err}
}

// newMonitor is the monitor of tenant's chain in store: the notes published beside
// checkpointFile and at url, checked with the ledger's key lv (required then) and the
// witnesses' ws; with none published, the store's own tree head, and a line saying so.
func newMonitor(store ledger.TreeStore, tenant string, lv note.Verifier, ws []note.Verifier, checkpointFile, url, token string) (*ledger.Monitor, string, error) {
	m := &ledger.Monitor{Tenant: tenant, Store: store, Log: lv, Witnesses: ws}
	notes := ledger.FollowNotes(checkpointFile, url, token)
	switch {
	case len(notes) == 0:
		return m, "no published checkpoint notes (LEDGER_CHECKPOINT_FILE, LEDGER_CHECKPOINT_URL): following the store's own tree head", nil
	case lv == nil:
		return nil, "", UsageError{errors.New("bot verify --follow: --key VERIFIER is required to check published checkpoints (or LEDGER_SIGNING_KEY)")}
	}
	m.Notes = notes
	return m, "", nil
}

// acceptLoss is by's signed acceptance of tenant's lost chains, recorded in the ledger
// over store (signed with key; sink, named desc, is where the loss was recorded outside
// Redis). It returns the lines saying what was accepted and which incidents were noted
// (lines and an error when noting failed part way); a Verdict when there is no loss to
// accept.
func acceptLoss(ctx context.Context, store ledger.Store, key ed25519.PrivateKey, sink ledger.CheckpointSink, desc, tenant, by, reason string) ([]string, error) {
	l, err := ledger.New(ledger.Options{Store: store, Signer: key, Sink: sink})
	if err != nil {
		return nil, err
	}
	acc, notes, err := l.AcceptLoss(ctx, tenant, by, reason)
	if errors.Is(err, ledger.ErrNoLoss) {
		return nil, Verdict{fmt.Errorf("%s: no unaccepted ledger loss (checkpoints: %s)", tenant, desc)}
	}
	if err != nil {
		err = fmt.Errorf("bot ledger accept-loss: %w", err)
	}
	if acc.Signature == "" {
		return nil, err
	}
	out := []string{fmt.Sprintf("accepted: %s's lost ledger chains, by %s at %s: %s", tenant, acc.By, acc.At.Format("2006-01-02 15:04:05Z"), acc.Reason)}
	for _, n := range notes {
		out = append(out, fmt.Sprintf("noted on %s (entry %d); its approvals work again", n.Incident, n.Seq))
	}
	return out, err
}
