package agent_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/agent"
)

// TestCheckReceiptFileSaysWhatIsWrong: bot verify-receipt's three ways to fail are told
// apart: the file cannot be read, the key cannot be had (a usage error: --key does not
// parse, or there is neither --key nor a signing key), or the receipt does not hold (its
// error names the file).
func TestCheckReceiptFileSaysWhatIsWrong(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "receipt.jws")
	if err := os.WriteFile(file, []byte("not-a-receipt"), 0o600); err != nil {
		t.Fatal(err)
	}
	signing := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	pub := base64.StdEncoding.EncodeToString(signing.Public().(ed25519.PublicKey))
	check := agent.Check{ActionHash: "sha256:00"}

	_, err := agent.CheckReceiptFile(filepath.Join(dir, "missing.jws"), pub, nil, check)
	if !errors.Is(err, fs.ErrNotExist) || errors.As(err, new(*agent.KeyError)) {
		t.Errorf("missing file: %v", err)
	}
	_, err = agent.CheckReceiptFile(file, "", nil, check)
	if !errors.As(err, new(*agent.KeyError)) || err.Error() != "no --key and no LEDGER_SIGNING_KEY to take the public key from" {
		t.Errorf("no key: %v", err)
	}
	_, err = agent.CheckReceiptFile(file, "garbage", nil, check)
	if !errors.As(err, new(*agent.KeyError)) || !strings.HasPrefix(err.Error(), "--key: ") {
		t.Errorf("bad --key: %v", err)
	}
	for _, c := range []struct {
		key     string
		signing ed25519.PrivateKey
	}{{pub, nil}, {"", signing}} {
		_, err = agent.CheckReceiptFile(file, c.key, c.signing, check)
		if err == nil || errors.As(err, new(*agent.KeyError)) || !strings.HasPrefix(err.Error(), file+": ") {
			t.Errorf("junk receipt (key %q): %v", c.key, err)
		}
	}
}
