package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
)

// runVerifyReceipt checks an agent approval's receipt offline (agent.CheckReceiptFile).
// One line either way.
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
	var signing ed25519.PrivateKey
	if *keyArg == "" {
		env, err := a.toolEnv()
		if err != nil {
			return err
		}
		signing, _ = env.SigningKey()
	}
	v, err := agent.CheckReceiptFile(file, *keyArg, signing, agent.Check{ActionHash: *hashArg, Tenant: *tenant, Now: time.Now()})
	switch {
	case errors.As(err, new(*agent.KeyError)):
		return usagef("verify-receipt: %v", err)
	case err != nil:
		return failedf("verify-receipt: %v", err)
	}
	fmt.Fprintln(a.stdout, v)
	return nil
}
