package agent_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/alertengine/alertengine/ledger"
)

// TestResultClosesTheIncident: after its consume, the agent reports how the action went,
// once; the incident leaves AUTHORIZED for RESOLVED (ok) or WEBHOOK_FAILED (failed), the
// ledger names the agent as the one reporting, and the answer shows the stage.
func TestResultClosesTheIncident(t *testing.T) {
	w := newWorld(t)
	consumed := func(key string) (string, string) {
		st := approved(t, w, key)
		id := st["id"].(string)
		if code, c := w.call("POST", "/v1/approvals/"+id+"/consume", acmeSecret, map[string]any{"action_hash": st["action_hash"]}); code != 200 {
			t.Fatalf("consume: %d %v", code, c)
		}
		return id, st["incident"].(string)
	}
	// Before its consume there is nothing to report.
	early := approved(t, w, "r0")["id"].(string)
	if code, out := w.call("POST", "/v1/approvals/"+early+"/result", acmeSecret, map[string]any{"ok": true}); code != http.StatusConflict {
		t.Errorf("result before consume: %d %v", code, out)
	}

	id, inc := consumed("r1")
	for _, c := range []struct {
		secret string
		body   any
		code   int
	}{
		{acmeSecret, map[string]any{"detail": "no ok"}, http.StatusBadRequest},
		{slowSecret, map[string]any{"ok": true}, http.StatusForbidden}, // another agent of the tenant
		{betaSecret, map[string]any{"ok": true}, http.StatusNotFound},  // another tenant
		{"", map[string]any{"ok": true}, http.StatusUnauthorized},
	} {
		if code, out := w.call("POST", "/v1/approvals/"+id+"/result", c.secret, c.body); code != c.code {
			t.Errorf("result %v: %d %v, want %d", c.body, code, out, c.code)
		}
	}
	code, out := w.call("POST", "/v1/approvals/"+id+"/result", acmeSecret, map[string]any{"ok": true, "detail": "6 replicas up"})
	if code != 200 || out["stage"] != string(ledger.Resolved) {
		t.Fatalf("result ok: %d %v", code, out)
	}
	if code, out := w.call("POST", "/v1/approvals/"+id+"/result", acmeSecret, map[string]any{"ok": false}); code != http.StatusConflict {
		t.Errorf("second result: %d %v", code, out)
	}
	in, hist, err := w.led.Incident(context.Background(), "acme", inc)
	if err != nil {
		t.Fatal(err)
	}
	last := hist[len(hist)-2:]
	if in.Stage != ledger.Resolved || last[0].Event != ledger.Execute || last[1].Event != ledger.Resolve ||
		last[0].Actor.ID != "agent:sre-bot" || last[0].Data["detail"] != "6 replicas up" || last[0].Data["outcome"] != "ok" {
		t.Errorf("after ok: stage %s, last entries %+v", in.Stage, last)
	}
	if _, st := w.call("GET", "/v1/approvals/"+id, acmeSecret, nil); st["execution"] != string(ledger.Resolved) || st["status"] != "approved" {
		t.Errorf("GET after the result: %v", st)
	}

	id, inc = consumed("r2")
	if code, out := w.call("POST", "/v1/approvals/"+id+"/result", acmeSecret, map[string]any{"ok": false, "detail": "pods crash-loop"}); code != 200 || out["stage"] != string(ledger.WebhookFailed) {
		t.Fatalf("result failed: %d %v", code, out)
	}
	if in, _, _ := w.led.Incident(context.Background(), "acme", inc); in.Stage != ledger.WebhookFailed {
		t.Errorf("after a failure: stage %s", in.Stage)
	}
}
