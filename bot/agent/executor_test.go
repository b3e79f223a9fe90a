package agent_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/executor"
)

// The executor prepares an approved agent request only when the agent asked it to run it;
// an action the agent runs itself is never called by the executor, and only the agent's
// consume stands for it.
func TestExecutorRunsOnlyWhatTheAgentAskedItToRun(t *testing.T) {
	w := newWorld(t)
	x, err := executor.New(executor.Options{Redis: w.rc, KeyPrefix: w.prefix, Ledger: w.led,
		Targets: func(string) (executor.Target, bool) { return executor.Target{}, false }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	self := approved(t, w, "self")
	if _, err := x.Prepare(ctx, "acme", self["incident"].(string)); !errors.Is(err, executor.ErrRunByAgent) {
		t.Fatalf("executor prepared an action the agent runs itself: %v", err)
	}
	code, st := w.request(acmeSecret, map[string]any{"action": "restart_workers", "summary": "restart the workers", "idempotency_key": "ex", "execute": true})
	if code != http.StatusCreated {
		t.Fatalf("POST: %d %v", code, st)
	}
	w.press(approverUser, w.card(st["incident"].(string)), "Approve")
	_, st = w.call("GET", "/v1/approvals/"+st["id"].(string)+"?wait=2s", acmeSecret, nil)
	if st["status"] != "approved" || st["execution"] != "AUTHORIZED" {
		t.Fatalf("approved for the executor: %v", st)
	}
	ex, err := x.Prepare(ctx, "acme", st["incident"].(string))
	if err != nil || ex.Action != "restart_workers" || len(ex.ApprovedBy) != 1 {
		t.Fatalf("executor: %+v %v", ex, err)
	}
	code, c := w.call("POST", "/v1/approvals/"+st["id"].(string)+"/consume", acmeSecret, map[string]any{"action_hash": st["action_hash"]})
	if code != http.StatusConflict || !strings.Contains(c["error"].(string), "executor runs") {
		t.Fatalf("consume of an executor-run approval: %d %v", code, c)
	}
	// Asking the executor to run an external action is refused.
	code, c = w.request(acmeSecret, map[string]any{"action": "scale_up", "summary": "s", "idempotency_key": "ex2", "execute": true})
	if code != http.StatusBadRequest || !strings.Contains(c["error"].(string), "external") {
		t.Fatalf("execute an external action: %d %v", code, c)
	}
}
