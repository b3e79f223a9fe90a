package main

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
)

func TestVerifyReceiptSaysExactlyWhatFails(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{3}, 32)) // the seed of serveEnv's LEDGER_SIGNING_KEY
	_, other, _ := ed25519.GenerateKey(nil)
	now := time.Now().UTC().Truncate(time.Second)
	hash, _ := agent.ActionHash("acme", "scale_up", []byte(`{"replicas":6}`))
	r := agent.Receipt{Approval: "apr_x", Tenant: "acme", Agent: "sre-bot", Action: "scale_up", ActionHash: hash, Decision: agent.Approved,
		Approvers: []string{"tendai"}, PolicyVersion: "pol-1", DecidedAt: now, ExpiresAt: now.Add(10 * time.Minute), Ledger: agent.LedgerRef{Seq: 4, Hash: strings.Repeat("a", 64)}}
	write := func(name string, v any) string {
		p := filepath.Join(dir, name)
		var b []byte
		if s, ok := v.(string); ok {
			b = []byte(s)
		} else {
			b, _ = json.Marshal(v)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good, _ := agent.SignReceipt(key, r)
	keys, _ := json.Marshal(agent.KeySet(key.Public().(ed25519.PublicKey)))
	keyFile := write("keys.json", string(keys))
	answer := write("answer.json", map[string]any{"id": "apr_x", "status": "approved", "action_hash": hash, "receipt": good})
	bare := write("receipt.jws", good)
	flipped := []byte(good)
	flipped[len(flipped)-5] ^= 1
	if flipped[len(flipped)-5] == '-' || flipped[len(flipped)-5] == '_' {
		flipped[len(flipped)-5] = 'Q'
	}
	otherSigned, _ := agent.SignReceipt(other, r)
	exp := r
	exp.ExpiresAt = now.Add(-time.Minute)
	expired, _ := agent.SignReceipt(key, exp)
	beta := r
	beta.Tenant = "beta"
	betaSigned, _ := agent.SignReceipt(key, beta)

	ok := []struct {
		name string
		args []string
	}{
		{"answer file, key file", []string{"verify-receipt", answer, "--key", keyFile}},
		{"flags first", []string{"verify-receipt", "--key", keyFile, answer}},
		{"bare receipt, hash given", []string{"verify-receipt", bare, "--key", keyFile, "--action-hash", hash, "--tenant", "acme"}},
	}
	for _, c := range ok {
		code, out, stderr := runCLI(t, env{}, c.args...)
		if code != exitOK || !strings.HasPrefix(out, "receipt ok: apr_x of tenant acme, scale_up approved by tendai") {
			t.Errorf("%s: exit %d, %q %q", c.name, code, out, stderr)
		}
	}
	// No --key: the public half of LEDGER_SIGNING_KEY.
	if code, out, stderr := runCLI(t, env{"LEDGER_SIGNING_KEY": seed}, "verify-receipt", answer); code != exitOK {
		t.Errorf("key from the env: exit %d, %q %q", code, out, stderr)
	}
	bad := []struct {
		name string
		args []string
		says string
	}{
		{"one changed byte", []string{"verify-receipt", write("f.jws", string(flipped)), "--key", keyFile, "--action-hash", hash}, "signature does not verify"},
		{"another key", []string{"verify-receipt", write("o.jws", otherSigned), "--key", keyFile, "--action-hash", hash}, "signed by key"},
		{"another action", []string{"verify-receipt", bare, "--key", keyFile, "--action-hash", strings.Repeat("0", 64)}, "action hash mismatch"},
		{"another tenant", []string{"verify-receipt", write("b.jws", betaSigned), "--key", keyFile, "--action-hash", hash, "--tenant", "acme"}, "tenant beta, not acme"},
		{"expired", []string{"verify-receipt", write("e.jws", expired), "--key", keyFile, "--action-hash", hash}, "receipt expired at"},
		{"no hash", []string{"verify-receipt", bare, "--key", keyFile}, "no action hash"},
		{"not a receipt", []string{"verify-receipt", write("x.json", `{"hello":1}`), "--key", keyFile}, "without a \"receipt\""},
	}
	for _, c := range bad {
		code, out, stderr := runCLI(t, env{}, c.args...)
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if code != exitFailed || out != "" || len(lines) != 1 || !strings.Contains(stderr, c.says) {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want exit 1 and one line saying %q", c.name, code, out, stderr, c.says)
		}
	}
	if code, _, stderr := runCLI(t, env{}, "verify-receipt"); code != exitUsage || !strings.Contains(stderr, "FILE") {
		t.Errorf("no file: exit %d %q", code, stderr)
	}
}
