package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Checkpoint is a signed statement of a tenant's chain: its size and tail hash at a time.
// An export's checkpoint also lists a 16-hex-digit prefix of every entry hash (Hashes),
// so a verifier can name the first entry that differs from what was signed even when a
// forger recomputed every later hash.
type Checkpoint struct {
	Tenant   string    `json:"tenant"`
	Size     uint64    `json:"size"`
	TailHash string    `json:"tail_hash"`
	At       time.Time `json:"at"`
	Hashes   string    `json:"hashes,omitempty"`
	// Base is where this chain's incident codes start: its incidents are numbered from
	// Base+1 on (INC-1, INC-2 … for a tenant's first chain, whose Base is 0). A chain
	// restarted after a loss gets a Base past every code the lost chain may have used (see
	// Codes). Chains written by older versions numbered the incident opened at seq s
	// INC-(Base+s).
	Base uint64 `json:"base,omitempty"`
	// Reserved is the highest seq of this chain a checkpoint sink reserved before entries
	// up to it were appended: a loss marker's seq jumps past it.
	Reserved uint64 `json:"reserved,omitempty"`
	// Codes is the number of the highest incident code this chain may already have handed
	// out: codes a checkpoint sink reserved before the incidents were opened, at least the
	// last code opened at Size. 0 in checkpoints of older versions, whose codes reach
	// Base + max(Size, Reserved) (see CodeBound).
	Codes     uint64 `json:"codes,omitempty"`
	PublicKey string `json:"public_key"`
	Signature string `json:"signature"`
}

// MaxCheckpointSize bounds the size a checkpoint may claim (a trillion entries).
const MaxCheckpointSize = 1 << 40

// HashPrefixLen is how many hex digits of each entry hash an export checkpoint lists.
const HashPrefixLen = 16

// ErrBadCheckpoint is the cause of every checkpoint failure.
var ErrBadCheckpoint = errors.New("bad checkpoint")

// ErrUntrustedKey is the cause, beside ErrBadCheckpoint, when a checkpoint is signed by
// another key than the trusted one.
var ErrUntrustedKey = errors.New("signed by another key than the trusted one")

// KeyError says a checkpoint is signed by another key than the one the verifier trusts:
// the key given does not match, whatever the entries hold.
type KeyError struct {
	Signer string // the base64 public key that signed the checkpoint
}

func (e *KeyError) Error() string {
	return "the public key does not match the checkpoint: it is signed by " + e.Signer
}

func (e *KeyError) Unwrap() error { return ErrUntrustedKey }

func (c *Checkpoint) message() []byte {
	hl := sha256.Sum256([]byte(c.Hashes))
	m := "alertengine-checkpoint/v1\n" + c.Tenant + "\n" + strconv.FormatUint(c.Size, 10) + "\n" +
		c.TailHash + "\n" + c.At.UTC().Format(time.RFC3339Nano) + "\n" + hex.EncodeToString(hl[:])
	if c.Base != 0 || c.Reserved != 0 {
		// Only checkpoints that carry them sign them, so older checkpoints still verify.
		m += "\nbase " + strconv.FormatUint(c.Base, 10) + " reserved " + strconv.FormatUint(c.Reserved, 10)
	}
	if c.Codes != 0 {
		m += "\ncodes " + strconv.FormatUint(c.Codes, 10)
	}
	return []byte(m)
}

// CodeBound is the number of the highest incident code the chain c signs may have handed
// out: Codes, or for a checkpoint of an older version (which numbered incidents by seq and
// kept no counter) Base + max(Size, Reserved). A chain restarted after losing this one
// numbers its incidents past it.
func (c *Checkpoint) CodeBound() uint64 {
	if c.Codes != 0 {
		return c.Codes
	}
	return c.Base + max(c.Size, c.Reserved)
}

// SignCheckpoint signs tenant's chain of size entries ending in tailHash. hashes, when
// given, are the full hashes of entries 1..size (for exports).
func SignCheckpoint(key ed25519.PrivateKey, tenant string, size uint64, tailHash string, at time.Time, hashes []string) Checkpoint {
	c := Checkpoint{Tenant: tenant, Size: size, TailHash: tailHash, At: at.UTC()}
	if hashes != nil {
		b := make([]byte, 0, len(hashes)*HashPrefixLen)
		for _, h := range hashes {
			b = append(b, h[:HashPrefixLen]...)
		}
		c.Hashes = string(b)
	}
	return c.sign(key)
}

// sign sets the public key and the signature of c.
func (c Checkpoint) sign(key ed25519.PrivateKey) Checkpoint {
	c.At = c.At.UTC()
	c.PublicKey = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.message()))
	return c
}

// Verify checks the signature. With trusted set, the checkpoint must be signed by that
// key; otherwise the embedded key is used and pinned reports false.
func (c *Checkpoint) Verify(trusted ed25519.PublicKey) (pinned bool, err error) {
	pub, err := base64.StdEncoding.DecodeString(c.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return false, fmt.Errorf("%w: public key is not a base64 Ed25519 key", ErrBadCheckpoint)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil {
		return false, fmt.Errorf("%w: signature is not base64", ErrBadCheckpoint)
	}
	if trusted != nil {
		if !trusted.Equal(ed25519.PublicKey(pub)) {
			return false, fmt.Errorf("%w: %w", ErrBadCheckpoint, ErrUntrustedKey)
		}
		pinned = true
	}
	if !ed25519.Verify(pub, c.message(), sig) {
		return pinned, fmt.Errorf("%w: signature does not verify", ErrBadCheckpoint)
	}
	if c.Size > MaxCheckpointSize || c.Base > MaxCheckpointSize || c.Reserved > MaxCheckpointSize || c.Codes > 2*MaxCheckpointSize {
		return pinned, fmt.Errorf("%w: size %d is not plausible", ErrBadCheckpoint, c.Size)
	}
	if c.Hashes != "" && (len(c.Hashes)%HashPrefixLen != 0 || uint64(len(c.Hashes)/HashPrefixLen) != c.Size) {
		return pinned, fmt.Errorf("%w: lists %d hashes for %d entries", ErrBadCheckpoint, len(c.Hashes)/HashPrefixLen, c.Size)
	}
	return pinned, nil
}

// hashPrefix returns the listed prefix for entry k (1-based).
func (c *Checkpoint) hashPrefix(k uint64) string {
	return c.Hashes[(k-1)*HashPrefixLen : k*HashPrefixLen]
}
