package outhook_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/outhook"
	"github.com/alertengine/alertengine/ledger"
)

// BenchmarkEncodeAndSign is the CPU cost of one attempt before the network: the payload
// of a typical entry (a 300-rune reason) encoded and signed.
func BenchmarkEncodeAndSign(b *testing.B) {
	e := ledger.Entry{Tenant: "acme", Incident: "INC-2A", Seq: 42, At: time.Now(), From: ledger.Validated, To: ledger.Authorized,
		Event: ledger.Authorize, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "alice"}, Service: "checkout", Action: "rollback",
		Reason: strings.Repeat("error rate 31% > 5% ", 15), Hash: strings.Repeat("9f", 32)}
	key := []byte("0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for b.Loop() {
		body, err := json.Marshal(outhook.NewPayload(e, outhook.TypeApproved))
		if err != nil {
			b.Fatal(err)
		}
		_ = outhook.Sign(key, outhook.MessageID(e), 1700000000, body)
	}
}
