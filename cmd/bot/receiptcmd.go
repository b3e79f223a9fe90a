package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
)

// runVerifyReceipt checks an agent approval's receipt offline (agent.CheckReceipt). One
// line either way.
func runVerifyReceipt(_ context.Context, a *cli, args []string) error {
	fs := a.flags("verify-receipt")
	keyArg := fs.String("key", "", "the receipts' public key: a file or the text of /.well-known/alertengine-keys, a JWK, or base64 of the 32 bytes (default: the public half of LEDGER_SIGNING_KEY)")
	hashArg := fs.String("action-hash", "", "the action hash the receipt must bind (default: the file's action_hash)")
	tenant := fs.String("tenant", "", "the tenant the receipt must be for")
	file, err := a.leading(fs, args)
	switch {
	case err != nil:
		return err
	case file == "":
		return a.usageError(fs, "FILE (the receipt, or the JSON answer of GET /v1/approvals/{id}) is required")
	case fs.NArg() > 0:
		return a.usageError(fs, fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	raw, err := os.ReadFile(file)
	if err != nil {
		return failedf("verify-receipt: %v", err)
	}
	var pub ed25519.PublicKey
	if *keyArg != "" {
		if pub, err = agent.ReadPublicKey(*keyArg); err != nil {
			return usagef("verify-receipt: --key: %v", err)
		}
	} else {
		env, err := a.toolEnv()
		if err != nil {
			return err
		}
		key, ok := env.SigningKey()
		if !ok {
			return usagef("verify-receipt: no --key and no LEDGER_SIGNING_KEY to take the public key from")
		}
		pub = key.Public().(ed25519.PublicKey)
	}
	v, err := agent.CheckReceipt(raw, pub, agent.Check{ActionHash: *hashArg, Tenant: *tenant, Now: time.Now()})
	if err != nil {
		return failedf("verify-receipt: %s: %v", file, err)
	}
	fmt.Fprintln(a.stdout, v)
	return nil
}
