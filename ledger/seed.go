package ledger

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"strings"
)

// DecodeSeed reads an Ed25519 key given as the base64 of its 32-byte seed (standard or URL
// alphabet, padded or not), the form of LEDGER_SIGNING_KEY and of a witness's key file.
// Its errors say what was wrong without echoing the value.
func DecodeSeed(v string) (ed25519.PrivateKey, error) {
	v = strings.TrimSpace(v)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(v)
		if err != nil {
			continue
		}
		if len(b) != ed25519.SeedSize {
			hint := ""
			if len(b) == ed25519.PrivateKeySize {
				hint = "; this looks like a full private key, give only its first 32 bytes (the seed)"
			}
			return nil, fmt.Errorf("must decode to a %d-byte Ed25519 seed, got %d bytes%s", ed25519.SeedSize, len(b), hint)
		}
		return ed25519.NewKeyFromSeed(b), nil
	}
	return nil, fmt.Errorf("not valid base64 (want base64 of a 32-byte Ed25519 seed, e.g. from `openssl rand -base64 32`)")
}
