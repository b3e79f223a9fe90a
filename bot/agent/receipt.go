package agent

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Decisions.
const (
	Pending  = "pending"
	Approved = "approved"
	Rejected = "rejected"
	Expired  = "expired"
)

// LedgerRef names the ledger entry that recorded a decision.
type LedgerRef struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// TreeRef is the tenant's Merkle tree head that covers the decision's entry: its signed
// checkpoint note and the entry's inclusion proof in it.
type TreeRef struct {
	Size uint64 `json:"size"`
	Root string `json:"root"`
	// Note is the checkpoint as a C2SP signed note ("<origin>/<tenant>", size, root),
	// signed with the receipts' key; `bot verify --bundle` and witnesses read the same.
	Note string `json:"note,omitempty"`
	// Leaf is the decision entry's leaf in the tree; Proof its RFC 9162 inclusion proof
	// (base64 hashes), checked with tlog.CheckRecord against the note's root.
	Leaf  int64    `json:"leaf"`
	Proof []string `json:"proof,omitempty"`
}

// Receipt is what a signed receipt says.
type Receipt struct {
	Approval      string    `json:"approval"`
	Tenant        string    `json:"tenant"`
	Agent         string    `json:"agent"`
	Action        string    `json:"action"`
	ActionHash    string    `json:"action_hash"`
	Decision      string    `json:"decision"`
	Approvers     []string  `json:"approvers"`
	PolicyVersion string    `json:"policy_version"`
	DecidedAt     time.Time `json:"decided_at"`
	ExpiresAt     time.Time `json:"expires_at"`
	Ledger        LedgerRef `json:"ledger"`
	Checkpoint    *TreeRef  `json:"checkpoint,omitempty"`
}

type receiptClaims struct {
	jwt.RegisteredClaims
	Receipt
}

// Issuer is the receipts' "iss".
const Issuer = "alertengine"

// KeyID names a public key: base64url of the first 8 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return base64.RawURLEncoding.EncodeToString(s[:8])
}

// SignReceipt signs r as a compact JWS (EdDSA, Ed25519) with kid = KeyID.
func SignReceipt(key ed25519.PrivateKey, r Receipt) (string, error) {
	c := receiptClaims{RegisteredClaims: jwt.RegisteredClaims{
		Issuer:    Issuer,
		Subject:   r.Approval,
		Audience:  jwt.ClaimStrings{r.Tenant},
		IssuedAt:  jwt.NewNumericDate(r.DecidedAt),
		ExpiresAt: jwt.NewNumericDate(r.ExpiresAt),
		ID:        r.Approval,
	}, Receipt: r}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = KeyID(key.Public().(ed25519.PublicKey))
	return tok.SignedString(key)
}

// Want is what a verifier expects of a receipt; empty fields are not checked.
type Want struct {
	ActionHash string
	Tenant     string
	Approval   string
	// Decision defaults to Approved.
	Decision string
}

// Errors of receipt verification (each wrapped in a *ReceiptError saying more).
var (
	ErrReceiptMalformed = errors.New("receipt malformed")
	ErrReceiptSignature = errors.New("receipt signature does not verify")
	ErrReceiptBinding   = errors.New("receipt bound to something else")
	ErrReceiptExpired   = errors.New("receipt expired")
	ErrReceiptDecision  = errors.New("receipt does not approve")
)

// ReceiptError says exactly what failed.
type ReceiptError struct {
	Kind error
	Msg  string
}

func (e *ReceiptError) Error() string { return e.Msg }
func (e *ReceiptError) Unwrap() error { return e.Kind }

func rerr(kind error, format string, a ...any) error {
	return &ReceiptError{kind, fmt.Sprintf(format, a...)}
}

// VerifyReceipt checks a receipt's signature with pub, then what it binds (want), then
// its expiry at now, and returns what it says.
func VerifyReceipt(jws string, pub ed25519.PublicKey, want Want, now time.Time) (Receipt, error) {
	jws = strings.TrimSpace(jws)
	if strings.Count(jws, ".") != 2 || len(jws) > 16<<10 {
		return Receipt{}, rerr(ErrReceiptMalformed, "not a compact JWS (three base64url parts)")
	}
	// The signature is checked before anything of the payload is read.
	parts := strings.Split(jws, ".")
	hb, herr := base64.RawURLEncoding.DecodeString(parts[0])
	var h struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if herr != nil || json.Unmarshal(hb, &h) != nil {
		return Receipt{}, rerr(ErrReceiptMalformed, "receipt header is not base64url JSON")
	}
	if h.Alg != jwt.SigningMethodEdDSA.Alg() {
		return Receipt{}, rerr(ErrReceiptMalformed, "receipt algorithm %q, want EdDSA", clip(h.Alg, 20))
	}
	if h.Kid != "" && h.Kid != KeyID(pub) {
		return Receipt{}, rerr(ErrReceiptSignature, "receipt signed by key %s, not %s", clip(h.Kid, 20), KeyID(pub))
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
		return Receipt{}, rerr(ErrReceiptSignature, "signature does not verify with key %s", KeyID(pub))
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c receiptClaims
	if err != nil || json.Unmarshal(pb, &c) != nil {
		return Receipt{}, rerr(ErrReceiptMalformed, "receipt payload is not base64url JSON")
	}
	r := c.Receipt
	if c.Issuer != Issuer || r.Approval == "" || r.ActionHash == "" || c.RegisteredClaims.ExpiresAt == nil {
		return r, rerr(ErrReceiptMalformed, "receipt lacks its issuer, approval, action_hash or exp")
	}
	if want.Tenant != "" && r.Tenant != want.Tenant {
		return r, rerr(ErrReceiptBinding, "receipt is for tenant %s, not %s", r.Tenant, want.Tenant)
	}
	if want.Approval != "" && r.Approval != want.Approval {
		return r, rerr(ErrReceiptBinding, "receipt is for approval %s, not %s", r.Approval, want.Approval)
	}
	if want.ActionHash != "" && r.ActionHash != want.ActionHash {
		return r, rerr(ErrReceiptBinding, "action hash mismatch: the receipt binds %s, expected %s", r.ActionHash, want.ActionHash)
	}
	wd := want.Decision
	if wd == "" {
		wd = Approved
	}
	if r.Decision != wd {
		return r, rerr(ErrReceiptDecision, "decision is %s, not %s", r.Decision, wd)
	}
	if !now.Before(c.RegisteredClaims.ExpiresAt.Time) {
		return r, rerr(ErrReceiptExpired, "receipt expired at %s", c.RegisteredClaims.ExpiresAt.Time.UTC().Format(time.RFC3339))
	}
	return r, nil
}

// JWK is one public key as /.well-known/alertengine-keys lists it.
type JWK struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

// JWKS is the body of /.well-known/alertengine-keys.
type JWKS struct {
	Keys []JWK `json:"keys"`
}

// KeySet returns the key set that publishes pub.
func KeySet(pub ed25519.PublicKey) JWKS {
	return JWKS{Keys: []JWK{{Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(pub), Kid: KeyID(pub), Alg: "EdDSA", Use: "sig"}}}
}

// ParsePublicKey reads a public key given as a JWKS document (its first Ed25519 key),
// one JWK, or base64 (standard or URL) of the 32 raw bytes.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "{") {
		var set JWKS
		if err := json.Unmarshal([]byte(s), &set); err == nil && len(set.Keys) > 0 {
			for _, k := range set.Keys {
				if k.Kty == "OKP" && k.Crv == "Ed25519" {
					return ParsePublicKey(k.X)
				}
			}
			return nil, errors.New("key set has no Ed25519 key")
		}
		var k JWK
		if err := json.Unmarshal([]byte(s), &k); err != nil || k.Crv != "Ed25519" {
			return nil, errors.New("not a JWKS or an Ed25519 JWK")
		}
		return ParsePublicKey(k.X)
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == ed25519.PublicKeySize {
			return ed25519.PublicKey(b), nil
		}
	}
	return nil, errors.New("public key: want a JWKS, a JWK or base64 of 32 bytes")
}
