package commits

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// Signature errors. Every one is answered 401; none says more than that to the sender.
var (
	// ErrNoSecret: no webhook secret is configured, so nothing can be verified and every
	// delivery is refused (an empty secret would accept unsigned bodies).
	ErrNoSecret = errors.New("no GitHub webhook secret configured")
	// ErrNoSignature: the request has no X-Hub-Signature-256 header (unsigned, or signed
	// with SHA-1 only, which is refused).
	ErrNoSignature = errors.New("missing X-Hub-Signature-256")
	// ErrMalformedSignature: the header is not "sha256=" and 64 hex digits.
	ErrMalformedSignature = errors.New("malformed X-Hub-Signature-256")
	// ErrBadSignature: the signature does not match the body under the secret.
	ErrBadSignature = errors.New("X-Hub-Signature-256 does not match the body")
)

// SignatureHeader is the only signature header accepted. X-Hub-Signature (SHA-1) is
// ignored: a request carrying only that one is unsigned as far as this package goes.
const SignatureHeader = "X-Hub-Signature-256"

// Sign returns the X-Hub-Signature-256 value GitHub sends for body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// VerifySignature checks header (the X-Hub-Signature-256 value) against body: HMAC-SHA256
// under secret, compared in constant time. An empty secret refuses everything.
func VerifySignature(secret []byte, header string, body []byte) error {
	if len(secret) == 0 {
		return ErrNoSecret
	}
	if header == "" {
		return ErrNoSignature
	}
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok || len(hexSig) != 2*sha256.Size {
		return ErrMalformedSignature
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMalformedSignature, err)
	}
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	if !hmac.Equal(got, m.Sum(nil)) {
		return ErrBadSignature
	}
	return nil
}
