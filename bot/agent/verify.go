package agent

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
)

// Check is what `bot verify-receipt` asks of a receipt.
type Check struct {
	// ActionHash the receipt must bind (default: the action_hash of a JSON answer).
	ActionHash string
	// Tenant, when set, the receipt must be for.
	Tenant string
	Now    time.Time
}

// Verified is what a checked receipt proved.
type Verified struct {
	Receipt Receipt
	Proof   Proven
}

// ErrNoActionHash: nothing to check the receipt's binding against.
var ErrNoActionHash = errors.New("no action hash to check the binding against: give --action-hash (the file has none)")

// CheckReceipt checks a receipt as a file holds it — the compact JWS, or the JSON answer
// of GET /v1/approvals/{id} — offline: signature, binding, expiry, then the ledger proof
// (see VerifyProof). The error says exactly what fails.
func CheckReceipt(raw []byte, pub ed25519.PublicKey, c Check) (Verified, error) {
	jws, fileHash := strings.TrimSpace(string(raw)), ""
	if strings.HasPrefix(jws, "{") {
		var doc struct {
			Receipt    string `json:"receipt"`
			ActionHash string `json:"action_hash"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil || doc.Receipt == "" {
			return Verified{}, rerr(ErrReceiptMalformed, "JSON without a \"receipt\"")
		}
		jws, fileHash = doc.Receipt, doc.ActionHash
	}
	want := c.ActionHash
	if want == "" {
		want = fileHash
	}
	if want == "" {
		return Verified{}, ErrNoActionHash
	}
	r, err := VerifyReceipt(jws, pub, Want{ActionHash: want, Tenant: c.Tenant}, c.Now)
	if err != nil {
		return Verified{Receipt: r}, err
	}
	p, err := VerifyProof(r, pub)
	return Verified{Receipt: r, Proof: p}, err
}

// String is the one line `bot verify-receipt` prints for a receipt that holds.
func (v Verified) String() string {
	r := v.Receipt
	s := fmt.Sprintf("receipt ok: %s of tenant %s, %s %s by %s at %s, ledger entry %d, valid until %s",
		r.Approval, r.Tenant, r.Action, r.Decision, strings.Join(r.Approvers, " and "),
		r.DecidedAt.UTC().Format(time.RFC3339), r.Ledger.Seq, r.ExpiresAt.UTC().Format(time.RFC3339))
	if !v.Proof.Present {
		return s + "; it carries no ledger proof (issued before receipts cited a signed checkpoint): only its signature vouches for the entry"
	}
	return fmt.Sprintf("%s; the entry is at leaf %d of the signed checkpoint %s of %d entries", s, v.Proof.Leaf, v.Proof.Origin, v.Proof.Size)
}

// ReadPublicKey reads a receipts' public key given as a file or as its text (see
// ParsePublicKey).
func ReadPublicKey(arg string) (ed25519.PublicKey, error) {
	text := arg
	if b, err := os.ReadFile(arg); err == nil {
		text = string(b)
	}
	return ParsePublicKey(text)
}

// KeyError is a receipts' public key that cannot be had: the key given does not parse,
// or none was given and no signing key is configured.
type KeyError struct{ Err error }

func (e *KeyError) Error() string { return e.Err.Error() }
func (e *KeyError) Unwrap() error { return e.Err }

// CheckReceiptFile is `bot verify-receipt`: the receipt in file (see CheckReceipt)
// checked with key (--key: a file or the text of the key, see ReadPublicKey; "": the
// public half of signing, the ledger's signing key, nil when none is configured). A file
// that cannot be read is the *os.PathError, a key that cannot be had a *KeyError, a
// receipt that does not hold an error naming file.
func CheckReceiptFile(file, key string, signing ed25519.PrivateKey, c Check) (Verified, error) {
	raw, err := os.ReadFile(file)
	if err != nil {
		return Verified{}, err
	}
	var pub ed25519.PublicKey
	switch {
	case key != "":
		if pub, err = ReadPublicKey(key); err != nil {
			return Verified{}, &KeyError{fmt.Errorf("--key: %w", err)}
		}
	case signing == nil:
		return Verified{}, &KeyError{errors.New("no --key and no LEDGER_SIGNING_KEY to take the public key from")}
	default:
		pub = signing.Public().(ed25519.PublicKey)
	}
	v, err := CheckReceipt(raw, pub, c)
	if err != nil {
		return v, fmt.Errorf("%s: %w", file, err)
	}
	return v, nil
}
