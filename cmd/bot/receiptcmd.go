package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
)

// runVerifyReceipt checks an agent approval's receipt offline (agent.CheckReceipt). One
// line either way.
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
	raw, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(a.stderr, "verify-receipt: %v\n", err)
		return exitFailed
	}
	pub, code, ok := a.receiptKey(*keyArg)
	if !ok {
		return code
	}
	v, err := agent.CheckReceipt(raw, pub, agent.Check{ActionHash: *hashArg, Tenant: *tenant, Now: time.Now()})
	if err != nil {
		fmt.Fprintf(a.stderr, "verify-receipt: %s: %v\n", file, err)
		return exitFailed
	}
	fmt.Fprintln(a.stdout, v)
	return exitOK
}

// receiptKey reads --key (a file or inline text), or falls back to the ledger key.
func (a *cli) receiptKey(arg string) (ed25519.PublicKey, int, bool) {
	if arg != "" {
		pub, err := agent.ReadPublicKey(arg)
		if err != nil {
			fmt.Fprintf(a.stderr, "verify-receipt: --key: %v\n", err)
			return nil, exitUsage, false
		}
		return pub, 0, true
	}
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
