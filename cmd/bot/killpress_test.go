package main

// This file drives the built `bot` binary from outside only — its environment, a tenants
// file, HTTP and the Redis it shares — so it holds whatever the code inside is arranged as.

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/alertengine/alertengine/ledger/ledgertest/redisfault"
)

const (
	kpGroup        = int64(-1001234500001)
	kpRecovery     = "kp-recovery-secret"
	kpAMToken      = "kp-am-token"
	kpHookSecret   = "kp-hook-secret"
	kpUpdateID     = int64(731_000_001)
	kpTenant       = "acme"
	kpSigningSeed  = 9
	kpAlertService = "checkout"
)

var kpTendai = telegramtest.User{ID: 71, FirstName: "Tendai", Username: "tendai"}

// kpHook is the tenant's recovery webhook: it checks each call's signature and records
// its Idempotency-Key.
type kpHook struct {
	mu   sync.Mutex
	keys []string
	bad  int
	srv  *httptest.Server
}

func newKPHook(t *testing.T) *kpHook {
	h := &kpHook{}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if err := executor.VerifySignature(kpRecovery, r.Header.Get("X-AlertEngine-Signature"), body, time.Now(), time.Minute); err != nil {
			h.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		h.keys = append(h.keys, r.Header.Get("Idempotency-Key"))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *kpHook) calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.keys...)
}

// kpReplica is one `bot serve` process.
type kpReplica struct {
	name string
	base string
	cmd  *exec.Cmd
	log  *bytes.Buffer
	mu   *sync.Mutex
}

func (r *kpReplica) logText() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.log.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func kpFreeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startServe runs `bot serve` with env plus REDIS_URL=redisURL on a free port, and waits
// until it is ready.
func startServe(t *testing.T, name, cfg, redisURL string, env []string) *kpReplica {
	t.Helper()
	addr := kpFreeAddr(t)
	cmd := botProcess("serve", "--config", cfg)
	cmd.Env = append(append(append(cmd.Env, "PATH="+os.Getenv("PATH")), env...), "REDIS_URL="+redisURL, "ADDR="+addr,
		"LEDGER_CHECKPOINT_FILE="+filepath.Join(t.TempDir(), "checkpoints.json"))
	r := &kpReplica{name: name, base: "http://" + addr, cmd: cmd, log: &bytes.Buffer{}, mu: &sync.Mutex{}}
	cmd.Stdout, cmd.Stderr = lockedWriter{r.mu, r.log}, lockedWriter{r.mu, r.log}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("replica %s log:\n%s", name, r.logText())
		}
	})
	c := http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		// Polling readiness: the process offers nothing else to wait on.
		resp, err := c.Get(r.base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica %s not ready: %v\n%s", name, err, r.logText())
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// post sends body to url and returns the status (0 when the connection broke).
func post(ctx context.Context, url, body string, header map[string]string) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// TestReplicaKilledMidPressOnTheFullServe: two `bot serve` replicas share one Redis; an
// incident reaches its approval card; Telegram delivers the Approve press to replica A,
// which is SIGKILLed in the middle of handling it — after it claimed the update, while
// its read of the approval is held at the Redis proxy in front of it, so the kill lands
// there every run. Telegram redelivers the same update to replica B. B answers 500 while
// A's claim is live (so Telegram delivers again rather than the press being dropped);
// once the claim's lease lapses, B handles it: the presser is told it was approved, the
// recovery webhook is called exactly once with the approval's Idempotency-Key, and the
// ledger verifies with one authorization.
func TestReplicaKilledMidPressOnTheFullServe(t *testing.T) {
	killPress(t, killAt{
		hold:     func(ref string) redisfault.Match { return redisfault.Command("MGET", "tok:"+ref) },
		stage:    ledger.Validated,
		approved: true,
	})
}

// TestReplicaKilledAfterItsAuthorizationMidPress: as above, but A is killed after Redis
// applied its AUTHORIZED entry (the reply to that append is held at the proxy): the
// approval is used, the incident authorized, nothing enqueued to run and the presser not
// answered. B's handling of the redelivery answers the presser (the approval was used:
// a recorded refusal), and A, restarted as a supervisor would, finishes the execution:
// the webhook is still called exactly once, with the approval's key.
func TestReplicaKilledAfterItsAuthorizationMidPress(t *testing.T) {
	killPress(t, killAt{
		hold: func(string) redisfault.Match {
			return redisfault.Any(redisfault.Command("EVALSHA", `"event":"authorize"`), redisfault.Command("EVAL", `"event":"authorize"`))
		},
		stage:   ledger.Authorized,
		restart: true,
	})
}

// killAt says where replica A dies in the press, and what follows.
type killAt struct {
	// hold matches the Redis command (of A's handling of the press of ref) whose reply is
	// held while A is killed.
	hold func(ref string) redisfault.Match
	// stage is the incident's stage the kill leaves in Redis.
	stage ledger.Stage
	// approved: B's handling approves (else it answers with a recorded refusal).
	approved bool
	// restart: A is started again after B's handling (its start finishes half-done work).
	restart bool
}

func killPress(t *testing.T, at killAt) {
	if testing.Short() {
		testkit.Skip(t, "runs two serve processes: skipped with -short")
	}
	t.Parallel()
	srv := ledgertest.NewServer(t)
	rc, prefix := srv.Client(t), srv.Prefix(t)
	proxy := redisfault.Start(t, rc.Options().Addr)
	tg := telegramtest.New(t)
	tg.AddChat(telegramtest.Chat{ID: kpGroup, Type: "supergroup", Title: "acme on-call"})
	hook := newKPHook(t)

	cfg := filepath.Join(t.TempDir(), "alertengine.yaml")
	yaml := fmt.Sprintf(`tenants:
  - id: %s
    services:
      - name: %s
    chats:
      telegram: [%d]
    people:
      - {name: tendai, role: approver, telegram: %d}
    recovery:
      url: %s/recover
      secret: %s
      allow_private_network: true
      actions:
        - {name: restart_workers, risk: low}
    policy:
      approval_ttl: 5m
      escalate_after: 3m
    alertmanager:
      token: %s
`, kpTenant, kpAlertService, kpGroup, kpTendai.ID, hook.srv.URL, kpRecovery, kpAMToken)
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{kpSigningSeed}, 32))
	env := []string{
		"REDIS_KEY_PREFIX=" + prefix,
		"ALERT_SECRET=" + strings.Repeat("s", 40),
		"LEDGER_SIGNING_KEY=" + base64.StdEncoding.EncodeToString(key.Seed()),
		"TELEGRAM_BOT_TOKEN=" + tg.Token(),
		"TELEGRAM_API_URL=" + tg.URL(),
		"PUBLIC_URL=http://127.0.0.1",
		"TELEGRAM_WEBHOOK_SECRET=" + kpHookSecret,
		"LOG_LEVEL=info",
	}
	a := startServe(t, "A", cfg, proxy.URL(), env)
	b := startServe(t, "B", cfg, "redis://"+rc.Options().Addr, env)

	// The alert opens an incident; its card, with the Approve button, reaches the group.
	alert := fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"CheckoutSlow\"}","status":"firing","receiver":"alertengine",
"groupLabels":{"alertname":"CheckoutSlow"},"commonLabels":{"alertname":"CheckoutSlow","service":%q},"commonAnnotations":{},
"externalURL":"http://alertmanager","alerts":[{"status":"firing","labels":{"alertname":"CheckoutSlow","service":%q,"severity":"page"},
"annotations":{"summary":"checkout p95 above 2 s"},"startsAt":"2026-12-06T09:00:00Z","endsAt":"0001-01-01T00:00:00Z",
"generatorURL":"http://prometheus/graph","fingerprint":"c0ffee"}]}`, kpAlertService, kpAlertService)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	if st := post(ctx, b.base+"/alertmanager/webhook", alert, map[string]string{"Authorization": "Bearer " + kpAMToken}); st != http.StatusOK {
		t.Fatalf("alertmanager webhook answered %d", st)
	}
	card, err := tg.WaitForMessage(ctx, kpGroup, func(m telegramtest.Message) bool {
		return strings.Contains(m.Text+m.Caption, "🚨") && len(m.Buttons()) > 0
	})
	if err != nil {
		t.Fatalf("no approval card: %v", err)
	}
	data := card.Buttons()[0][0].CallbackData
	if !strings.HasPrefix(data, "ap:") {
		t.Fatalf("first button %+v is not an approval", card.Buttons()[0][0])
	}
	query := tg.PressButton(kpGroup, card.MessageID, kpTendai, data)
	press, err := json.Marshal(map[string]any{"update_id": kpUpdateID, "callback_query": map[string]any{
		"id": query, "from": kpTendai, "message": card, "chat_instance": "7", "data": data}})
	if err != nil {
		t.Fatal(err)
	}
	hdr := map[string]string{"X-Telegram-Bot-Api-Secret-Token": kpHookSecret}

	// A takes the press; its read of the approval (the approval's keys name the reference)
	// is held at the proxy, and A is killed there.
	held := proxy.Hold(at.hold(data), 1)
	go post(context.Background(), a.base+"/telegram/webhook", string(press), hdr)
	select {
	case <-held.Reached():
	case <-ctx.Done():
		t.Fatalf("replica A never reached the held command; its log:\n%s", a.logText())
	}
	if err := a.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = a.cmd.Wait()
	held.Release()
	store := ledger.NewRedisStore(rc, prefix)
	ids, err := store.Incidents(ctx, kpTenant)
	if err != nil || len(ids) != 1 {
		t.Fatalf("incidents %v, %v; want one", ids, err)
	}
	inc := ids[0]
	if st, err := store.Stage(ctx, kpTenant, inc); err != nil || st != at.stage {
		t.Fatalf("after the kill %s is %s (%v), want %s", inc, st, err, at.stage)
	}

	// Telegram redelivers to B. A's claim is still live: B must ask for a redelivery
	// (a 2xx would drop the press), and must not have answered the presser yet.
	webhookB := b.base + "/telegram/webhook"
	if st := post(ctx, webhookB, string(press), hdr); st < 500 {
		t.Fatalf("redelivery to B while the dead replica's claim is live: %d, want a 5xx so Telegram delivers again", st)
	}
	if _, answered := tg.CallbackAnswer(query); answered {
		t.Fatal("the press was answered though no replica handled it")
	}
	// The claim's lease (the handling timeout plus slack, over a minute) lapsing is
	// stood for by expiring the dead replica's claim now: the test's budget is 30 s.
	claims, err := rc.Keys(ctx, prefix+"*telegram*:update:"+fmt.Sprint(kpUpdateID)).Result()
	if err != nil || len(claims) != 1 {
		t.Fatalf("the dead replica's claim on the update: %v, %v; want one key", claims, err)
	}
	if ttl := rc.PTTL(ctx, claims[0]).Val(); ttl <= 0 || ttl > 10*time.Minute {
		t.Fatalf("the dead replica's claim has TTL %v: a claim must lapse, soon", ttl)
	}
	if err := rc.PExpire(ctx, claims[0], time.Millisecond).Err(); err != nil {
		t.Fatal(err)
	}
	if srv.Embedded {
		srv.Mini.FastForward(2 * time.Millisecond) // an embedded Redis's clock moves only when told
	} else {
		time.Sleep(5 * time.Millisecond)
	}
	if st := post(ctx, webhookB, string(press), hdr); st != http.StatusOK {
		t.Fatalf("redelivery to B after the lease lapsed: %d, want 200\n%s", st, b.logText())
	}
	ans, answered := tg.CallbackAnswer(query)
	if !answered {
		t.Fatal("the press ended without an answer to the presser")
	}

	if at.restart {
		startServe(t, "A again", cfg, proxy.URL(), env)
	}
	// The action runs once, with the approval's key.
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		// The executor calls and records on its own time: wait for the EXECUTED entry.
		if st, _ := store.Stage(ctx, kpTenant, inc); st == ledger.Executed {
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	l, err := ledger.New(ledger.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	in, hist, err := l.Incident(ctx, kpTenant, inc)
	if err != nil {
		t.Fatal(err)
	}
	calls := hook.calls()
	if len(calls) == 0 {
		t.Fatalf("the recovery webhook was never called; answer %+v, stage %s", ans, in.Stage)
	}
	want := executor.IdempotencyKey(kpTenant, inc, in.Approval)
	for _, k := range calls {
		if k != want {
			t.Fatalf("webhook calls with keys %q, want each %q (retries of one call)", calls, want)
		}
	}
	if len(calls) != 1 {
		t.Errorf("the recovery webhook was called %d times with the same key, want once", len(calls))
	}
	hook.mu.Lock()
	bad := hook.bad
	hook.mu.Unlock()
	if bad != 0 || in.Stage != ledger.Executed {
		t.Errorf("%d webhook calls with a bad signature, stage %s; want none, EXECUTED", bad, in.Stage)
	}
	auths := 0
	for _, e := range hist {
		if e.Event == ledger.Authorize {
			auths++
		}
	}
	if auths != 1 {
		t.Errorf("%d authorizations, want one", auths)
	}
	refusals := 0
	for _, e := range hist {
		if e.Event == ledger.RefusedPress {
			refusals++
		}
	}
	switch {
	case at.approved && (!strings.Contains(strings.ToLower(ans.Text), "approv") || refusals != 0):
		t.Errorf("answer %q, %d refusals recorded; want the presser told it was approved", ans.Text, refusals)
	case !at.approved && (ans.Text == "" || refusals != 1):
		t.Errorf("answer %q, %d refusals recorded; want the redelivered press answered and its refusal recorded once", ans.Text, refusals)
	}
	if _, err := ledger.VerifyStore(ctx, store, kpTenant, key.Public().(ed25519.PublicKey)); err != nil {
		t.Errorf("ledger after the kill: %v", err)
	}
}
