package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Checkpoints as signed notes. Beside the JSON checkpoint (which keeps the chain's tail
// hash), a tenant's tree head is published in the C2SP tlog-checkpoint format, a signed
// note (golang.org/x/mod/sumdb/note):
//
//	<origin>/<tenant>
//	<tree size>
//	<base64 root hash>
//
//	— <key name> <base64 key id ‖ Ed25519 signature>
//
// Anyone holding the key's verifier string ("<name>+<key id>+<base64 0x01 ‖ public key>",
// printed by `bot keys`) can check it with any note verifier, ours or the Go toolchain's.

// ErrBadNote is the cause of every failure to read or trust a checkpoint note.
var ErrBadNote = errors.New("bad checkpoint note")

// DefaultOrigin is the log origin's first part when LEDGER_ORIGIN is not set.
const DefaultOrigin = "alertengine.local/ledger"

const algEd25519 = 0x01

// keyID is the note key id of a key: the first 4 bytes of SHA-256(name ‖ "\n" ‖ alg ‖ key).
func keyID(name string, alg byte, pub []byte) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{alg})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil)[:4])
}

// validKeyName: a note key name is non-empty and has no spaces or '+'.
func validKeyName(name string) bool {
	return name != "" && !strings.ContainsAny(name, " \t\n+") && strings.TrimSpace(name) == name
}

// NoteSigner returns a note signer for an Ed25519 ledger key under name (the log's
// origin, by convention), and its verifier string.
func NoteSigner(name string, key ed25519.PrivateKey) (note.Signer, string, error) {
	if !validKeyName(name) {
		return nil, "", fmt.Errorf("%w: key name %q must be non-empty without spaces or '+'", ErrBadNote, name)
	}
	pub := key.Public().(ed25519.PublicKey)
	skey := fmt.Sprintf("PRIVATE+KEY+%s+%08x+%s", name, keyID(name, algEd25519, pub),
		base64.StdEncoding.EncodeToString(append([]byte{algEd25519}, key.Seed()...)))
	s, err := note.NewSigner(skey)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadNote, err)
	}
	vkey, err := note.NewEd25519VerifierKey(name, pub)
	if err != nil {
		return nil, "", fmt.Errorf("%w: %v", ErrBadNote, err)
	}
	return s, vkey, nil
}

// NoteCheckpoint is a tenant's tree head as read from a checkpoint note.
type NoteCheckpoint struct {
	Origin string // the whole origin line: "<origin>/<tenant>"
	Tenant string
	Tree   tlog.Tree
	Note   *note.Note // its text and the signatures that verified
	Raw    []byte     // the note as given
}

// checkpointText is the note body of a tree head.
func checkpointText(origin, tenant string, tree tlog.Tree) string {
	return origin + "/" + tenant + "\n" + strconv.FormatInt(tree.N, 10) + "\n" +
		base64.StdEncoding.EncodeToString(tree.Hash[:]) + "\n"
}

// SignCheckpointNote signs tenant's tree head as a checkpoint note.
func SignCheckpointNote(s note.Signer, origin, tenant string, tree tlog.Tree) ([]byte, error) {
	if strings.ContainsAny(origin, "\n") || origin == "" || !ValidTenant(tenant) {
		return nil, fmt.Errorf("%w: origin %q / tenant %q", ErrBadNote, origin, tenant)
	}
	msg, err := note.Sign(&note.Note{Text: checkpointText(origin, tenant, tree)}, s)
	if err != nil {
		return nil, fmt.Errorf("%w: sign: %v", ErrBadNote, err)
	}
	return msg, nil
}

// OpenCheckpointNote parses a checkpoint note and checks its signatures: at least one of
// verifiers must have signed it, and every key in required (the ledger key when pinned,
// witness keys) must have. A signature by a known key that does not verify is an error.
func OpenCheckpointNote(msg []byte, verifiers []note.Verifier, required ...note.Verifier) (*NoteCheckpoint, error) {
	if len(msg) > 1<<16 {
		return nil, fmt.Errorf("%w: %d bytes is too long for a checkpoint", ErrBadNote, len(msg))
	}
	n, err := note.Open(msg, note.VerifierList(append(append([]note.Verifier(nil), verifiers...), required...)...))
	if err != nil {
		var ue *note.UnverifiedNoteError
		if errors.As(err, &ue) {
			return nil, fmt.Errorf("%w: signed by none of the trusted keys", ErrBadNote)
		}
		return nil, fmt.Errorf("%w: %v", ErrBadNote, err)
	}
	for _, r := range required {
		found := false
		for _, s := range n.Sigs {
			if s.Name == r.Name() && s.Hash == r.KeyHash() {
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("%w: no signature by %s (key %08x)", ErrBadNote, r.Name(), r.KeyHash())
		}
	}
	cp, err := ParseCheckpointText(n.Text)
	if err != nil {
		return nil, err
	}
	cp.Note, cp.Raw = n, msg
	return cp, nil
}

// ParseCheckpointText parses the body of a checkpoint note (origin, size, root, and
// optional extension lines, which are ignored).
func ParseCheckpointText(text string) (*NoteCheckpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return nil, fmt.Errorf("%w: want origin, size and root hash lines", ErrBadNote)
	}
	origin := lines[0]
	i := strings.LastIndexByte(origin, '/')
	if i < 0 || !ValidTenant(origin[i+1:]) {
		return nil, fmt.Errorf("%w: origin %q does not end in /<tenant>", ErrBadNote, origin)
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || size > MaxCheckpointSize || strconv.FormatInt(size, 10) != lines[1] {
		return nil, fmt.Errorf("%w: size %q", ErrBadNote, lines[1])
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return nil, fmt.Errorf("%w: root hash %q is not 32 bytes of base64", ErrBadNote, lines[2])
	}
	var h tlog.Hash
	copy(h[:], root)
	return &NoteCheckpoint{Origin: origin, Tenant: origin[i+1:], Tree: tlog.Tree{N: size, Hash: h}}, nil
}

// ParseVerifier reads a verifier string: an Ed25519 note key (a log's) or a C2SP
// tlog-cosignature key (a witness's).
func ParseVerifier(vkey string) (note.Verifier, error) {
	parts := strings.SplitN(vkey, "+", 3) // base64 may hold "+"
	if len(parts) == 3 {
		if b, err := base64.StdEncoding.DecodeString(parts[2]); err == nil && len(b) == 1+ed25519.PublicKeySize && b[0] == algCosignature {
			return newCosignatureVerifier(parts[0], ed25519.PublicKey(b[1:]), parts[1])
		}
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("%w: verifier key: %v", ErrBadNote, err)
	}
	return v, nil
}
