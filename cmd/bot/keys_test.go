package main

import (
	"crypto/ed25519"

	"github.com/alertengine/alertengine/bot/config"
)

func serveEnvKey() (ed25519.PrivateKey, bool) {
	e, err := config.LoadEnv(env{"LEDGER_SIGNING_KEY": seed}.lookup, config.Demo)
	if err != nil {
		return nil, false
	}
	return e.SigningKey()
}
