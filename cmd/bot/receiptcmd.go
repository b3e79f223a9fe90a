package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
)

// runVerifyReceipt checks an agent approval's receipt offline: its Ed25519 signature, what
// it binds (the action hash, and the tenant when given) and its expiry. One line either way.
func runVerifyReceipt(_ context.Context, a *cli, args []string) int {
	fs := a.flags("verify-receipt")
	keyArg := fs.String("key", "", "the receipts' public key: a file or the text of /.well-known/alertengine-keys, a JWK, or base64 of the 32 bytes (default: the public half of LEDGER_SIGNING_KEY)")
	hashArg := fs.String("action-hash", "", "the action hash the receipt must bind (default: the file's action_hash)")
	tenant := fs.String("tenant", "", "the tenant the receipt must be for")
	// FILE may come before or after the flags.
	var file string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		file, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return flagError(fs, err)
	}
	if file == "" && fs.NArg() > 0 {
		file = fs.Arg(0)
		if err := fs.Parse(fs.Args()[1:]); err != nil {
			return flagError(fs, err)
		}
	}
	switch {
	case file == "":
		return usageError(fs, "FILE (the receipt, or the JSON answer of GET /v1/approvals/{id}) is required")
	case fs.NArg() > 0:
		return usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	fail := func(format string, v ...any) int {
		fmt.Fprintf(a.stderr, "verify-receipt: "+format+"\n", v...)
		return exitFailed
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return fail("%v", err)
	}
	jws, fileHash := strings.TrimSpace(string(raw)), ""
	if strings.HasPrefix(jws, "{") {
		var doc struct {
			Receipt    string `json:"receipt"`
			ActionHash string `json:"action_hash"`
		}
		if err := json.Unmarshal(raw, &doc); err != nil || doc.Receipt == "" {
			return fail("%s: JSON without a \"receipt\"", file)
		}
		jws, fileHash = doc.Receipt, doc.ActionHash
	}
	want := *hashArg
	if want == "" {
		want = fileHash
	}
	if want == "" {
		return fail("no action hash to check the binding against: give --action-hash (the file has none)")
	}
	pub, code, ok := a.receiptKey(*keyArg)
	if !ok {
		return code
	}
	r, err := agent.VerifyReceipt(jws, pub, agent.Want{ActionHash: want, Tenant: *tenant}, time.Now())
	if err != nil {
		return fail("%v", err)
	}
	fmt.Fprintf(a.stdout, "receipt ok: %s of tenant %s, %s %s by %s at %s, ledger entry %d, valid until %s\n",
		r.Approval, r.Tenant, r.Action, r.Decision, strings.Join(r.Approvers, " and "),
		r.DecidedAt.UTC().Format(time.RFC3339), r.Ledger.Seq, r.ExpiresAt.UTC().Format(time.RFC3339))
	return exitOK
}

// receiptKey reads --key (a file or inline text), or falls back to the ledger key.
func (a *cli) receiptKey(arg string) (ed25519.PublicKey, int, bool) {
	if arg == "" {
		env, code, ok := a.toolEnv()
		if !ok {
			return nil, code, false
		}
		key, ok := env.SigningKey()
		if !ok {
			fmt.Fprintln(a.stderr, "verify-receipt: no --key and no LEDGER_SIGNING_KEY to take the public key from")
			return nil, exitUsage, false
		}
		return key.Public().(ed25519.PublicKey), 0, true
	}
	text := arg
	if b, err := os.ReadFile(arg); err == nil {
		text = string(b)
	}
	pub, err := agent.ParsePublicKey(text)
	if err != nil {
		fmt.Fprintf(a.stderr, "verify-receipt: --key: %v\n", err)
		return nil, exitUsage, false
	}
	return pub, 0, true
}
