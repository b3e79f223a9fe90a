package agent_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/agent"
	"github.com/alertengine/alertengine/ledger"
)

// TestReceiptProvesTheDecisionInTheSignedLog: an approval's receipt carries the tenant's
// checkpoint note and the decision entry's inclusion proof; both check offline with the
// receipts' key, and a receipt whose proof was altered (and re-signed, so only the proof
// is wrong) says exactly what fails. A receipt without a proof says it has none.
func TestReceiptProvesTheDecisionInTheSignedLog(t *testing.T) {
	w := newWorld(t)
	approved(t, w, "p1")
	st := approved(t, w, "p2") // a second decision: the tree has more than one leaf to prove against
	hash := st["action_hash"].(string)
	v, err := agent.CheckReceipt([]byte(st["receipt"].(string)), w.gate.PublicKey(), agent.Check{ActionHash: hash, Tenant: "acme", Now: w.clock()})
	if err != nil {
		t.Fatalf("receipt of a real approval: %v", err)
	}
	r := v.Receipt
	if !v.Proof.Present || v.Proof.Origin != "ledger.acme.example/acme" || v.Proof.Size < int64(r.Ledger.Seq) || r.Checkpoint.Leaf != int64(r.Ledger.Seq)-1 {
		t.Fatalf("proof %+v of entry %d, checkpoint %+v", v.Proof, r.Ledger.Seq, r.Checkpoint)
	}
	// The cited entry is the decision: the Authorize of the request's incident.
	_, hist, err := w.led.Incident(context.Background(), "acme", st["incident"].(string))
	if err != nil {
		t.Fatal(err)
	}
	var decision ledger.Entry
	for _, e := range hist {
		if e.Event == ledger.Authorize {
			decision = e
		}
	}
	if decision.Seq != r.Ledger.Seq || decision.Hash != r.Ledger.Hash {
		t.Fatalf("receipt cites entry %d %s, the decision is %d %s", r.Ledger.Seq, r.Ledger.Hash, decision.Seq, decision.Hash)
	}
	if !strings.Contains(v.String(), "is at leaf") {
		t.Errorf("summary line: %s", v)
	}

	resign := func(change func(*agent.Receipt)) []byte {
		c := r
		cp := *r.Checkpoint
		cp.Proof = append([]string(nil), cp.Proof...)
		c.Checkpoint = &cp
		change(&c)
		s, err := agent.SignReceipt(w.key, c)
		if err != nil {
			t.Fatal(err)
		}
		return []byte(s)
	}
	other := func(s string) string {
		if strings.HasPrefix(s, "A") {
			return "B" + s[1:]
		}
		return "A" + s[1:]
	}
	bad := []struct {
		name string
		raw  []byte
		says string
	}{
		{"proof hash changed", resign(func(c *agent.Receipt) { c.Checkpoint.Proof[0] = other(c.Checkpoint.Proof[0]) }), "inclusion proof fails"},
		{"another leaf", resign(func(c *agent.Receipt) { c.Checkpoint.Leaf-- }), "is not at leaf"},
		{"another entry", resign(func(c *agent.Receipt) { c.Ledger.Hash = decision.PrevHash }), "inclusion proof fails"},
		{"note changed", resign(func(c *agent.Receipt) {
			c.Checkpoint.Note = strings.Replace(c.Checkpoint.Note, "\n", "\n1", 1)
		}), "checkpoint not signed by key"},
		{"tree not the note's", resign(func(c *agent.Receipt) { c.Checkpoint.Size++ }), "is not the one the receipt names"},
		{"proof without note", resign(func(c *agent.Receipt) { c.Checkpoint.Note = "" }), "carries no signed checkpoint"},
	}
	for _, c := range bad {
		_, err := agent.CheckReceipt(c.raw, w.gate.PublicKey(), agent.Check{ActionHash: hash, Now: w.clock()})
		if !errors.Is(err, agent.ErrReceiptProof) || !strings.Contains(err.Error(), c.says) {
			t.Errorf("%s: %v, want a proof failure saying %q", c.name, err, c.says)
		}
	}

	old := resign(func(c *agent.Receipt) { c.Checkpoint = nil })
	v, err = agent.CheckReceipt(old, w.gate.PublicKey(), agent.Check{ActionHash: hash, Now: w.clock()})
	if err != nil || v.Proof.Present || !strings.Contains(v.String(), "carries no ledger proof") {
		t.Errorf("a receipt from before proofs: %v, %q", err, v)
	}
}
