package agent_test

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
)

func scaleUp(key string) map[string]any {
	return map[string]any{"action": "scale_up", "params": map[string]any{"service": "checkout", "replicas": 6},
		"summary": "checkout p95 is 2.8 s; add two replicas", "idempotency_key": key, "expires_in": "10m"}
}

// approved runs one request to approval by the approver and returns its answer.
func approved(t *testing.T, w *world, key string) map[string]any {
	t.Helper()
	code, st := w.request(acmeSecret, scaleUp(key))
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, st)
	}
	w.press(approverUser, w.card(st["incident"].(string)), "Approve")
	code, st = w.call("GET", "/v1/approvals/"+st["id"].(string)+"?wait=2s", acmeSecret, nil)
	if code != 200 || st["status"] != agent.Approved {
		t.Fatalf("GET after the press: %d %v", code, st)
	}
	return st
}

func TestRequestBecomesCardAndApprovalIsConsumedOnce(t *testing.T) {
	w := newWorld(t)
	code, st := w.request(acmeSecret, scaleUp("k1"))
	if code != http.StatusCreated || st["status"] != agent.Pending {
		t.Fatalf("POST: %d %v", code, st)
	}
	id, inc := st["id"].(string), st["incident"].(string)
	want, _ := agent.ActionHash("acme", "scale_up", []byte(`{"service":"checkout","replicas":6}`))
	if st["action_hash"] != want {
		t.Fatalf("action_hash %v, want %s", st["action_hash"], want)
	}
	// The same idempotency key is the same approval, and no second card.
	code, again := w.request(acmeSecret, scaleUp("k1"))
	if code != http.StatusOK || again["id"] != id {
		t.Fatalf("repeated POST: %d %v, want 200 and %s", code, again, id)
	}
	if code, st := w.request(acmeSecret, map[string]any{"action": "scale_up", "params": map[string]any{"replicas": 60},
		"summary": "x", "idempotency_key": "k1"}); code != http.StatusConflict {
		t.Fatalf("same key, other params: %d %v, want 409", code, st)
	}
	card := w.card(inc)
	if got := labels(card); !slices.Equal(got, []string{"Approve scale_up", "Reject", "Details"}) {
		t.Fatalf("card buttons %v", got)
	}
	if s := text(card); !strings.Contains(s, "Agent sre-bot asks to run scale_up") || !strings.Contains(s, "checkout p95 is 2.8 s; add two replicas") {
		t.Fatalf("card does not say who asks and what:\n%s", s)
	}
	// Nothing decided yet: a short long-poll answers pending.
	if code, st := w.call("GET", "/v1/approvals/"+id+"?wait=50ms", acmeSecret, nil); code != 200 || st["status"] != agent.Pending || st["receipt"] != nil {
		t.Fatalf("pending GET: %d %v", code, st)
	}
	// A viewer's press is refused; the request stays pending.
	if r := w.press(viewerUser, card, "Approve"); !strings.Contains(strings.ToLower(r.Toast), "approver") {
		t.Fatalf("viewer's press: toast %q", r.Toast)
	}
	if _, st := w.call("GET", "/v1/approvals/"+id, acmeSecret, nil); st["status"] != agent.Pending {
		t.Fatalf("after the viewer's press: %v", st)
	}
	// The approver's press answers a waiting long-poll.
	done := make(chan map[string]any)
	go func() {
		_, st := w.call("GET", "/v1/approvals/"+id+"?wait=5s", acmeSecret, nil)
		done <- st
	}()
	time.Sleep(50 * time.Millisecond)
	w.press(approverUser, card, "Approve")
	st = <-done
	if st["status"] != agent.Approved || !slices.Equal(anyStrings(st["approvers"]), []string{"tendai"}) {
		t.Fatalf("long-poll answer: %v", st)
	}
	r, err := agent.VerifyReceipt(st["receipt"].(string), w.key.Public().(ed25519.PublicKey), agent.Want{ActionHash: want, Tenant: "acme"}, w.clock())
	if err != nil {
		t.Fatal(err)
	}
	if r.Approval != id || r.Decision != agent.Approved || r.PolicyVersion != "pol-1" || r.Ledger.Seq == 0 || len(r.Ledger.Hash) != 64 {
		t.Fatalf("receipt says %+v", r)
	}
	// Consume: once.
	body := map[string]any{"action_hash": want, "receipt": st["receipt"]}
	if code, c := w.call("POST", "/v1/approvals/"+id+"/consume", acmeSecret, body); code != 200 {
		t.Fatalf("consume: %d %v", code, c)
	}
	if code, c := w.call("POST", "/v1/approvals/"+id+"/consume", acmeSecret, body); code != http.StatusConflict || !strings.Contains(c["error"].(string), "already consumed") {
		t.Fatalf("second consume: %d %v", code, c)
	}
	// The ledger holds the request (by the agent), the refused press, the decision and
	// the consume, in the tenant's chain.
	_, hist, err := w.led.Incident(context.Background(), "acme", inc)
	if err != nil {
		t.Fatal(err)
	}
	var evs []string
	for _, e := range hist {
		evs = append(evs, string(e.Event)+"/"+e.Actor.ID)
	}
	for _, e := range []string{"detect/agent:sre-bot", "propose/agent:sre-bot", "refused_press/vimbai", "authorize/tendai", "consume/agent:sre-bot"} {
		if !slices.Contains(evs, e) {
			t.Fatalf("ledger lacks %s: %v", e, evs)
		}
	}
}

func anyStrings(v any) []string {
	var out []string
	xs, _ := v.([]any)
	for _, x := range xs {
		out = append(out, x.(string))
	}
	return out
}

func TestConsumeRefusals(t *testing.T) {
	w := newWorld(t)
	st := approved(t, w, "c1")
	id, hash, rcpt := st["id"].(string), st["action_hash"].(string), st["receipt"].(string)
	path := "/v1/approvals/" + id + "/consume"
	// Another action hash.
	other, _ := agent.ActionHash("acme", "scale_up", []byte(`{"service":"checkout","replicas":60}`))
	if code, c := w.call("POST", path, acmeSecret, map[string]any{"action_hash": other}); code != http.StatusConflict || !strings.Contains(c["error"].(string), "action_hash") {
		t.Fatalf("other hash: %d %v", code, c)
	}
	// A receipt with one byte changed (in the signature, the payload or the header).
	for _, at := range []int{len(rcpt) - 3, len(rcpt) / 2, 5} {
		b := []byte(rcpt)
		if b[at] == 'A' {
			b[at] = 'B'
		} else {
			b[at] = 'A'
		}
		code, c := w.call("POST", path, acmeSecret, map[string]any{"action_hash": hash, "receipt": string(b)})
		if code != http.StatusConflict || !strings.Contains(c["error"].(string), "receipt") {
			t.Fatalf("receipt changed at %d: %d %v", at, code, c)
		}
	}
	// Another tenant's receipt for its own approval.
	bst := func() map[string]any {
		code, b := w.request(betaSecret, scaleUp("b1"))
		if code != http.StatusCreated {
			t.Fatalf("beta POST: %d %v", code, b)
		}
		return b
	}()
	_ = bst
	// Tenant B's token cannot see, consume or learn of tenant A's approval.
	if code, c := w.call("GET", "/v1/approvals/"+id, betaSecret, nil); code != http.StatusNotFound {
		t.Fatalf("B reads A: %d %v", code, c)
	}
	if code, c := w.call("POST", path, betaSecret, map[string]any{"action_hash": hash}); code != http.StatusNotFound {
		t.Fatalf("B consumes A: %d %v", code, c)
	}
	// After expiry: refused.
	w.advance(11 * time.Minute)
	if code, c := w.call("POST", path, acmeSecret, map[string]any{"action_hash": hash}); code != http.StatusConflict || !strings.Contains(c["error"].(string), "expired") {
		t.Fatalf("after expiry: %d %v", code, c)
	}
	if _, err := agent.VerifyReceipt(rcpt, w.key.Public().(ed25519.PublicKey), agent.Want{ActionHash: hash}, w.clock()); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired receipt verified: %v", err)
	}
}

func TestThousandConcurrentConsumesOneWins(t *testing.T) {
	w := newWorld(t)
	st := approved(t, w, "race")
	id, hash := st["id"].(string), st["action_hash"].(string)
	var ok, conflict, other atomic.Int32
	var wg sync.WaitGroup
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	cl := &http.Client{Transport: tr}
	defer tr.CloseIdleConnections()
	start := make(chan struct{})
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			req, _ := http.NewRequest("POST", w.srv.URL+"/v1/approvals/"+id+"/consume", strings.NewReader(`{"action_hash":"`+hash+`"}`))
			req.Header.Set("Authorization", "Bearer "+acmeSecret)
			resp, err := cl.Do(req)
			if err != nil {
				other.Add(1)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case http.StatusConflict:
				conflict.Add(1)
			default:
				other.Add(1)
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok.Load() != 1 || conflict.Load() != 999 {
		t.Fatalf("%d consumes succeeded, %d refused, %d failed otherwise; want 1 and 999", ok.Load(), conflict.Load(), other.Load())
	}
	_, hist, _ := w.led.Incident(context.Background(), "acme", st["incident"].(string))
	n := 0
	for _, e := range hist {
		if e.Event == ledger.Consume {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d consume entries in the ledger, want 1", n)
	}
}

func TestUnansweredRequestExpiresAsDenied(t *testing.T) {
	w := newWorld(t)
	_, st := w.request(acmeSecret, scaleUp("late"))
	id, hash := st["id"].(string), st["action_hash"].(string)
	w.advance(6 * time.Minute)
	if err := w.eng.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, st = w.call("GET", "/v1/approvals/"+id+"?wait=1s", acmeSecret, nil)
	if st["status"] != agent.Expired {
		t.Fatalf("after the approval TTL: %v", st)
	}
	said, ok := w.tg.find("The approval expired")
	if !ok || !strings.Contains(text(said), "agent sre-bot is told its request was denied") || len(said.Buttons) != 0 {
		t.Fatalf("the chat was not told the request expired as a denial: %+v", said)
	}
	// No fresh approval for an agent's expired request: the agent was told it was denied.
	r, err := w.eng.Handle(context.Background(), conversation.Inbound{Chat: conversation.Chat{Channel: conversation.Telegram, ID: group}, User: approverUser, Text: "/reissue " + st["incident"].(string)})
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := w.tg.find("is not reissued"); s.Blocks == nil {
		t.Fatalf("reissue of an agent's expired request: %+v", r)
	}
	if code, c := w.call("POST", "/v1/approvals/"+id+"/consume", acmeSecret, map[string]any{"action_hash": hash}); code != http.StatusConflict || !strings.Contains(c["error"].(string), "expired") {
		t.Fatalf("consume of an expired request: %d %v", code, c)
	}
	// The receipt proves the denial, and is no approval.
	if _, err := agent.VerifyReceipt(st["receipt"].(string), w.key.Public().(ed25519.PublicKey), agent.Want{ActionHash: hash}, w.clock()); err == nil || !strings.Contains(err.Error(), "decision is expired") {
		t.Fatalf("expiry receipt as an approval: %v", err)
	}
}

func TestHighRiskNeedsTwoApprovers(t *testing.T) {
	w := newWorld(t)
	code, st := w.request(acmeSecret, map[string]any{"action": "rollback", "summary": "roll back checkout", "idempotency_key": "r1"})
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, st)
	}
	card := w.card(st["incident"].(string))
	w.press(approverUser, card, "Approve")
	if _, s := w.call("GET", "/v1/approvals/"+st["id"].(string), acmeSecret, nil); s["status"] != agent.Pending {
		t.Fatalf("after one of two approvers: %v", s)
	}
	w.press(secondUser, card, "Approve")
	_, s := w.call("GET", "/v1/approvals/"+st["id"].(string)+"?wait=2s", acmeSecret, nil)
	if s["status"] != agent.Approved || len(anyStrings(s["approvers"])) != 2 {
		t.Fatalf("after two approvers: %v", s)
	}
}

func TestAgentCanRaiseRiskToTwoApprovers(t *testing.T) {
	w := newWorld(t)
	q := scaleUp("hr")
	q["risk"] = "high"
	code, st := w.request(acmeSecret, q)
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, st)
	}
	card := w.card(st["incident"].(string))
	if b := card.Buttons[0][0]; !strings.Contains(b.Confirm, "high-risk") {
		t.Fatalf("the Approve button of a high-risk request asks no confirmation: %+v", b)
	}
	w.press(approverUser, card, "Approve")
	if _, s := w.call("GET", "/v1/approvals/"+st["id"].(string), acmeSecret, nil); s["status"] != agent.Pending {
		t.Fatalf("a high-risk request after one approver: %v", s)
	}
	w.press(secondUser, card, "Approve")
	if _, s := w.call("GET", "/v1/approvals/"+st["id"].(string)+"?wait=2s", acmeSecret, nil); s["status"] != agent.Approved {
		t.Fatalf("after two approvers: %v", s)
	}
}
