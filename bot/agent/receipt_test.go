package agent_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
)

func TestReceiptVerification(t *testing.T) {
	pub, key, _ := ed25519.GenerateKey(nil)
	otherPub, otherKey, _ := ed25519.GenerateKey(nil)
	now := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	r := agent.Receipt{Approval: "apr_x", Tenant: "acme", Agent: "sre-bot", Action: "scale_up", ActionHash: "h1", Decision: agent.Approved,
		Approvers: []string{"tendai"}, PolicyVersion: "pol-1", DecidedAt: now, ExpiresAt: now.Add(10 * time.Minute), Ledger: agent.LedgerRef{Seq: 7, Hash: "ab"}}
	jws, err := agent.SignReceipt(key, r)
	if err != nil {
		t.Fatal(err)
	}
	got, err := agent.VerifyReceipt(jws, pub, agent.Want{ActionHash: "h1", Tenant: "acme"}, now.Add(time.Minute))
	if err != nil || got.Approval != "apr_x" || got.Ledger.Seq != 7 {
		t.Fatalf("good receipt: %+v %v", got, err)
	}
	otherJWS, _ := agent.SignReceipt(otherKey, r)
	beta := r
	beta.Tenant = "beta"
	betaJWS, _ := agent.SignReceipt(key, beta)
	rejected := r
	rejected.Decision = agent.Rejected
	rejJWS, _ := agent.SignReceipt(key, rejected)
	p := strings.IndexByte(jws, '.')
	cases := []struct {
		name string
		jws  string
		want agent.Want
		at   time.Time
		kind error
	}{
		{"changed byte", jws[:len(jws)-2] + flip(jws[len(jws)-2]) + jws[len(jws)-1:], agent.Want{}, now, agent.ErrReceiptSignature},
		{"changed payload", jws[:p+10] + flip(jws[p+10]) + jws[p+11:], agent.Want{}, now, agent.ErrReceiptSignature},
		{"changed header", jws[:5] + flip(jws[5]) + jws[6:], agent.Want{}, now, agent.ErrReceiptMalformed},
		{"another key", otherJWS, agent.Want{}, now, agent.ErrReceiptSignature},
		{"another tenant", betaJWS, agent.Want{Tenant: "acme"}, now, agent.ErrReceiptBinding},
		{"another action", jws, agent.Want{ActionHash: "h2"}, now, agent.ErrReceiptBinding},
		{"expired", jws, agent.Want{}, now.Add(10 * time.Minute), agent.ErrReceiptExpired},
		{"rejection", rejJWS, agent.Want{}, now, agent.ErrReceiptDecision},
		{"not a JWS", "hello", agent.Want{}, now, agent.ErrReceiptMalformed},
	}
	for _, c := range cases {
		if _, err := agent.VerifyReceipt(c.jws, pub, c.want, c.at); !errors.Is(err, c.kind) {
			t.Errorf("%s: %v, want %v", c.name, err, c.kind)
		}
	}
	_ = otherPub
	// The published key set verifies.
	b, _ := json.Marshal(agent.KeySet(pub))
	k, err := agent.ParsePublicKey(string(b))
	if err != nil || !k.Equal(pub) {
		t.Fatalf("key set round trip: %v", err)
	}
}

func flip(c byte) string {
	if c == 'A' {
		return "B"
	}
	return "A"
}
