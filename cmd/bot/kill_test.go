package main

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger"
)

// botProcess returns a command that runs the bot's main with args in a process of its
// own: this test binary re-executed into TestMainProcess (the args one a line). It is the
// same main as the built binary's, without compiling and linking the bot again (which
// costs minutes on a cold cache).
func botProcess(args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "-test.run=^TestMainProcess$")
	cmd.Env = []string{"BOT_TEST_MAIN=" + strings.Join(args, "\n")}
	return cmd
}

// TestKilledAfterAuthorizationExecutesOnceAfterRestart: the bot is killed with SIGKILL
// after the AUTHORIZED entry is durable and before the recovery webhook received any
// request (the webhook's host accepts the connection but has read nothing). A restarted
// bot finishes the execution: exactly one request reaches the webhook, with the
// idempotency key derived from the consumed approval.
func TestKilledAfterAuthorizationExecutesOnceAfterRestart(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		testkit.Skip(t, "subprocess crash test: skipped with -short")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h := newHarnessTo(t, "http://"+ln.Addr().String())
	addr := freeAddr(t)
	environ := []string{"ADDR=" + addr, "REDIS_KEY_PREFIX=" + h.prefix, "LOG_LEVEL=warn"}
	for k, v := range h.vars {
		environ = append(environ, k+"="+v)
	}
	start := func() *exec.Cmd {
		cmd := botProcess("serve", "--config", h.cfgPath)
		cmd.Env = append(cmd.Env, environ...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		waitStatus(t, "http://"+addr+"/readyz", http.StatusOK)
		return cmd
	}
	first := start()
	(&replica{base: "http://" + addr}).alert(t, "firing")
	card := h.card(t)
	inc := incidentCode(t, card)

	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err == nil {
			accepted <- c
		}
	}()
	h.tg.PressButton(groupID, card.MessageID, userTendai, card.Buttons()[0][0].CallbackData)
	var conn net.Conn
	select {
	case conn = <-accepted:
	case <-time.After(30 * time.Second):
		t.Fatal("the bot never dialled the recovery webhook")
	}
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	first.Wait()
	conn.Close()
	if st := h.stage(t, inc); st != ledger.Authorized {
		t.Fatalf("after the kill the incident is %s, want AUTHORIZED (durable before the call)", st)
	}
	if n, _ := h.hook.count(); n != 0 {
		t.Fatalf("%d requests reached the webhook before the kill", n)
	}

	// The webhook's host comes back to life on the same address; the bot restarts.
	go http.Serve(ln, h.hook.srv.Config.Handler)
	start()
	select {
	case <-h.hook.calls:
	case <-time.After(120 * time.Second):
		t.Fatal("the restarted bot never executed the approved recovery")
	}
	if _, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, hasText("Recovery restart_workers executed")); err != nil {
		t.Fatalf("no execution message: %v", err)
	}
	in, _, err := ledgerOf(t, h).Incident(context.Background(), "acme", inc)
	if err != nil {
		t.Fatal(err)
	}
	n, keys := h.hook.count()
	if n != 1 || in.Stage != ledger.Executed {
		t.Fatalf("%d webhook requests, stage %s; want exactly one and EXECUTED", n, in.Stage)
	}
	if want := executor.IdempotencyKey("acme", inc, in.Approval); keys[0] != want {
		t.Fatalf("idempotency key %q, want %q (derived from the consumed approval)", keys[0], want)
	}
}

func ledgerOf(t *testing.T, h *harness) *ledger.Ledger {
	l, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(h.redis.Client(t), h.prefix)})
	if err != nil {
		t.Fatal(err)
	}
	return l
}
