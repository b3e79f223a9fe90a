package ledger

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Witnessing. A witness is a small process on another host, with its own key, that
// cosigns a log's checkpoint only if it is consistent with the last checkpoint of that log
// it cosigned. A rewritten history signed with a stolen ledger key then lacks the
// cosignatures of the witnesses a verifier pins. Cosignatures follow C2SP
// tlog-cosignature v1: key id SHA-256(name ‖ "\n" ‖ 0x04 ‖ key)[:4], the signature line
// carries key id ‖ timestamp (8 bytes, big-endian seconds) ‖ Ed25519 signature of
// "cosignature/v1\ntime <timestamp>\n" followed by the checkpoint body.

const algCosignature = 0x04

// ErrWitnessRefused is the cause of every refusal to cosign.
var ErrWitnessRefused = errors.New("witness refuses to cosign")

func cosignedMessage(ts uint64, text []byte) []byte {
	m := []byte("cosignature/v1\ntime " + strconv.FormatUint(ts, 10) + "\n")
	return append(m, text...)
}

type cosigner struct {
	name string
	id   uint32
	key  ed25519.PrivateKey
	now  func() time.Time
}

func (c *cosigner) Name() string    { return c.name }
func (c *cosigner) KeyHash() uint32 { return c.id }
func (c *cosigner) Sign(msg []byte) ([]byte, error) {
	ts := uint64(c.now().Unix())
	out := binary.BigEndian.AppendUint64(nil, ts)
	return append(out, ed25519.Sign(c.key, cosignedMessage(ts, msg))...), nil
}

type cosignatureVerifier struct {
	name string
	id   uint32
	pub  ed25519.PublicKey
}

func newCosignatureVerifier(name string, pub ed25519.PublicKey, idHex string) (note.Verifier, error) {
	if !validKeyName(name) {
		return nil, fmt.Errorf("%w: witness key name %q", ErrBadNote, name)
	}
	id := keyID(name, algCosignature, pub)
	if idHex != fmt.Sprintf("%08x", id) {
		return nil, fmt.Errorf("%w: witness key id %s does not match its key", ErrBadNote, idHex)
	}
	return &cosignatureVerifier{name: name, id: id, pub: pub}, nil
}

func (v *cosignatureVerifier) Name() string    { return v.name }
func (v *cosignatureVerifier) KeyHash() uint32 { return v.id }
func (v *cosignatureVerifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	return ed25519.Verify(v.pub, cosignedMessage(binary.BigEndian.Uint64(sig), msg), sig[8:])
}

// CosignatureVerifierKey is the verifier string of a witness key: name+keyid+base64(0x04 ‖ key).
func CosignatureVerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	if !validKeyName(name) {
		return "", fmt.Errorf("%w: witness key name %q must be non-empty without spaces or '+'", ErrBadNote, name)
	}
	return fmt.Sprintf("%s+%08x+%s", name, keyID(name, algCosignature, pub),
		base64.StdEncoding.EncodeToString(append([]byte{algCosignature}, pub...))), nil
}

// ConsistencyBundle is what `bot prove --consistency` writes: two checkpoint notes of one
// log and the proof that the newer extends the older. A witness takes it as its request.
type ConsistencyBundle struct {
	Format string   `json:"format"`
	Old    string   `json:"old"`
	New    string   `json:"new"`
	Proof  []string `json:"proof"`
}

// ConsistencyFormat names the consistency bundle's format.
const ConsistencyFormat = "alertengine-consistency/v1"

func decodeProof(p []string) ([]tlog.Hash, error) {
	if len(p) > 128 {
		return nil, fmt.Errorf("proof of %d hashes is longer than any tree's", len(p))
	}
	out := make([]tlog.Hash, len(p))
	for i, s := range p {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("proof hash %d is not 32 bytes of base64", i+1)
		}
		copy(out[i][:], b)
	}
	return out, nil
}

func encodeProof(p []tlog.Hash) []string {
	out := make([]string, len(p))
	for i := range p {
		out[i] = base64.StdEncoding.EncodeToString(p[i][:])
	}
	return out
}

// ForkError: two signed checkpoints of one log that no single history explains.
type ForkError struct {
	Origin   string
	Old, New tlog.Tree
	Reason   string
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("%s: checkpoint of %d entries (root %s) and checkpoint of %d entries (root %s): %s",
		e.Origin, e.Old.N, e.Old.Hash, e.New.N, e.New.Hash, e.Reason)
}

// CheckConsistency checks that tree new extends tree old with proof: a smaller new tree is
// a truncation, two trees of one size with different roots a fork, and a proof that does
// not check a rewritten history. Every proof hash enters the check (tlog.CheckTree).
func CheckConsistency(origin string, old, new tlog.Tree, proof []tlog.Hash) error {
	switch {
	case new.N < old.N:
		return &ForkError{origin, old, new, fmt.Sprintf("truncated: %d entries were signed before, %d now", old.N, new.N)}
	case new.N == old.N && new.Hash != old.Hash:
		return &ForkError{origin, old, new, "fork: two checkpoints of the same size with different roots"}
	case new.N == old.N:
		if len(proof) != 0 {
			return &ForkError{origin, old, new, "a proof between equal trees must be empty"}
		}
		return nil
	}
	if err := tlog.CheckTree(proof, new.N, new.Hash, old.N, old.Hash); err != nil {
		return &ForkError{origin, old, new, fmt.Sprintf("the newer does not extend the older (history rewritten): %v", err)}
	}
	return nil
}

// VerifyConsistency opens both notes of b (each must be signed as OpenCheckpointNote
// requires) and checks the proof between them. It returns the two checkpoints.
func VerifyConsistency(b ConsistencyBundle, verifiers []note.Verifier, required ...note.Verifier) (old, new *NoteCheckpoint, err error) {
	if b.Format != ConsistencyFormat {
		return nil, nil, fmt.Errorf("%w: format %q, want %s", ErrBadNote, b.Format, ConsistencyFormat)
	}
	if old, err = OpenCheckpointNote([]byte(b.Old), verifiers, required...); err != nil {
		return nil, nil, fmt.Errorf("old checkpoint: %w", err)
	}
	if new, err = OpenCheckpointNote([]byte(b.New), verifiers, required...); err != nil {
		return nil, nil, fmt.Errorf("new checkpoint: %w", err)
	}
	if old.Origin != new.Origin {
		return nil, nil, fmt.Errorf("%w: checkpoints of two logs (%s, %s)", ErrBadNote, old.Origin, new.Origin)
	}
	proof, err := decodeProof(b.Proof)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrBadNote, err)
	}
	if err := CheckConsistency(new.Origin, old.Tree, new.Tree, proof); err != nil {
		return nil, nil, err
	}
	return old, new, nil
}

// Witness cosigns checkpoints of logs whose keys it knows, keeping in a state file the
// last checkpoint of each log it cosigned. One witness process owns its state file.
type Witness struct {
	signer note.Signer
	logs   []note.Verifier
	state  string
	now    func() time.Time
	mu     sync.Mutex // check and record are one step
}

// NewWitness returns a witness named name (its key name) with Ed25519 key, cosigning
// checkpoints signed by any of logs, keeping its state in the file state.
func NewWitness(name string, key ed25519.PrivateKey, logs []note.Verifier, state string, now func() time.Time) (*Witness, error) {
	if !validKeyName(name) {
		return nil, fmt.Errorf("%w: witness name %q must be non-empty without spaces or '+'", ErrBadNote, name)
	}
	if len(logs) == 0 || state == "" {
		return nil, errors.New("witness: needs at least one log key and a state file")
	}
	pub := key.Public().(ed25519.PublicKey)
	return &Witness{signer: &cosigner{name, keyID(name, algCosignature, pub), key, now}, logs: logs, state: state, now: now}, nil
}

// VerifierKey returns the witness's verifier string, for verifiers to pin.
func (w *Witness) VerifierKey() string {
	c := w.signer.(*cosigner)
	v, _ := CosignatureVerifierKey(c.name, c.key.Public().(ed25519.PublicKey))
	return v
}

type witnessLog struct {
	Size int64  `json:"size"`
	Root string `json:"root"`
}

func (w *Witness) load() (map[string]witnessLog, error) {
	st := map[string]witnessLog{}
	b, err := os.ReadFile(w.state)
	if errors.Is(err, os.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("witness state: %w", err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("witness state %s: %w", w.state, err)
	}
	return st, nil
}

func (w *Witness) save(st map[string]witnessLog) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	// Replaced atomically and durably (the directory too) before a cosignature is handed
	// out: a crash must never let the witness forget what it cosigned.
	if err := writeAtomic(w.state, b); err != nil {
		return fmt.Errorf("witness state: %w", err)
	}
	return nil
}

// WitnessError is a refusal to cosign, with the HTTP status C2SP tlog-witness gives it:
// 400 a malformed request, 403 no trusted log signature, 409 a fork or an old size that is
// not the last cosigned one (Size: that size), 422 a consistency proof that does not check.
type WitnessError struct {
	Status int
	Size   int64 // with 409 for a stale old size: the size of the last cosigned checkpoint
	Err    error
}

func (e *WitnessError) Error() string { return e.Err.Error() }
func (e *WitnessError) Unwrap() error { return e.Err }

func refuse(status int, format string, args ...any) *WitnessError {
	return &WitnessError{Status: status, Err: fmt.Errorf("%w: "+format, append([]any{ErrWitnessRefused}, args...)...)}
}

// Cosign checks req's new checkpoint (signed by a known log key) against the last
// checkpoint of its log this witness cosigned, and returns it with the witness's
// cosignature added. The first checkpoint of a log is trusted as it comes; later ones
// must come with a proof from exactly the last cosigned one.
func (w *Witness) Cosign(req ConsistencyBundle) ([]byte, error) {
	cp, err := OpenCheckpointNote([]byte(req.New), w.logs)
	if err != nil {
		return nil, refuse(403, "%w", err)
	}
	return w.admit(cp, func(last tlog.Tree, known bool) (int64, []tlog.Hash, error) {
		if !known || cp.Tree.N <= last.N {
			return last.N, nil, nil
		}
		old, err := OpenCheckpointNote([]byte(req.Old), w.logs)
		if err != nil {
			return 0, nil, refuse(400, "old checkpoint: %w", err)
		}
		if old.Origin != cp.Origin || old.Tree != last {
			return 0, nil, refuse(409, "the proof starts at %d entries; the last checkpoint of %s this witness cosigned has %d (prove from it)",
				old.Tree.N, cp.Origin, last.N)
		}
		proof, err := decodeProof(req.Proof)
		if err != nil {
			return 0, nil, refuse(400, "%v", err)
		}
		return last.N, proof, nil
	})
}

// AddCheckpoint is C2SP tlog-witness's add-checkpoint: msg is a checkpoint note signed by
// a known log key, oldSize the size of the last checkpoint of its log this witness
// cosigned (0 the first time) and proof the consistency proof from it. It returns the
// note with the witness's cosignature added, or a *WitnessError.
func (w *Witness) AddCheckpoint(oldSize int64, proof []tlog.Hash, msg []byte) ([]byte, error) {
	cp, err := OpenCheckpointNote(msg, w.logs)
	if err != nil {
		return nil, refuse(403, "%w", err)
	}
	if oldSize < 0 || oldSize > cp.Tree.N {
		return nil, refuse(400, "old size %d is larger than the checkpoint's %d", oldSize, cp.Tree.N)
	}
	return w.admit(cp, func(last tlog.Tree, _ bool) (int64, []tlog.Hash, error) {
		if oldSize != last.N {
			e := refuse(409, "old size %d: the last checkpoint of %s this witness cosigned has %d entries", oldSize, cp.Origin, last.N)
			e.Size = last.N
			return 0, nil, e
		}
		return oldSize, proof, nil
	})
}

// admit checks cp against the last checkpoint of its log this witness cosigned, with the
// proof given by from, records cp and cosigns it. Check and record are one step under
// the witness's lock, and the state is saved durably before the cosignature is made, so
// neither two concurrent requests nor a crash let it cosign two inconsistent trees.
func (w *Witness) admit(cp *NoteCheckpoint, from func(last tlog.Tree, known bool) (int64, []tlog.Hash, error)) ([]byte, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	st, err := w.load()
	if err != nil {
		return nil, err
	}
	last := tlog.Tree{N: 0, Hash: EmptyTreeHash()}
	l, known := st[cp.Origin]
	if known {
		b, err := base64.StdEncoding.DecodeString(l.Root)
		if err != nil || len(b) != tlog.HashSize {
			return nil, fmt.Errorf("witness state %s: bad root for %s", w.state, cp.Origin)
		}
		last.N = l.Size
		copy(last.Hash[:], b)
	}
	oldN, proof, err := from(last, known)
	if err != nil {
		return nil, err
	}
	if known || oldN > 0 {
		if err := CheckConsistency(cp.Origin, last, cp.Tree, proof); err != nil {
			status := 409
			if cp.Tree.N > last.N {
				status = 422
			}
			return nil, &WitnessError{Status: status, Size: last.N, Err: fmt.Errorf("%w: %w", ErrWitnessRefused, err)}
		}
	} else if len(proof) != 0 {
		return nil, refuse(400, "a first checkpoint comes with an empty proof")
	}
	st[cp.Origin] = witnessLog{Size: cp.Tree.N, Root: base64.StdEncoding.EncodeToString(cp.Tree.Hash[:])}
	if err := w.save(st); err != nil {
		return nil, err
	}
	n := &note.Note{Text: cp.Note.Text, Sigs: append(append([]note.Signature(nil), cp.Note.Sigs...), cp.Note.UnverifiedSigs...)}
	out, err := note.Sign(n, w.signer)
	if err != nil {
		return nil, fmt.Errorf("cosign: %w", err)
	}
	return out, nil
}
