package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"github.com/alertengine/alertengine/bot/app"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/redis/go-redis/v9"
)

const (
	groupID        = int64(-1001234567890)
	recoverySecret = "recovery-secret-for-tests"
	amToken        = "am-token-for-tests"
)

var (
	userTendai = telegramtest.User{ID: 11, FirstName: "Tendai", Username: "tendai"}
	userRudo   = telegramtest.User{ID: 22, FirstName: "Rudo", Username: "rudo"}
	userVimbai = telegramtest.User{ID: 33, FirstName: "Vimbai", Username: "vimbai"}
)

// recoveryHook is the tenant's recovery webhook: it checks the signature and records
// every call it answered.
type recoveryHook struct {
	mu     sync.Mutex
	keys   []string
	bodies []string
	bad    int
	srv    *httptest.Server
	status func(n int) int // status for the n-th call (1-based)
	calls  chan string
}

func newRecoveryHook(t testing.TB) *recoveryHook {
	h := &recoveryHook{status: func(int) int { return http.StatusOK }, calls: make(chan string, 100)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := executor.VerifySignature(recoverySecret, r.Header.Get("X-AlertEngine-Signature"), body, time.Now(), time.Minute); err != nil {
			h.mu.Lock()
			h.bad++
			h.mu.Unlock()
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		h.mu.Lock()
		h.keys = append(h.keys, r.Header.Get("Idempotency-Key"))
		h.bodies = append(h.bodies, string(body))
		n := len(h.keys)
		h.mu.Unlock()
		w.WriteHeader(h.status(n))
		h.calls <- r.Header.Get("Idempotency-Key")
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *recoveryHook) count() (int, []string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.keys), append([]string(nil), h.keys...)
}

// harness is one tenant's world: Redis, the fake Telegram, the recovery webhook, the
// config file and the environment of the bots under test.
type harness struct {
	t      testing.TB
	tg     *telegramtest.Server
	redis  *ledgertest.Server
	prefix string
	hook   *recoveryHook
	env    config.Env
	file   *config.File
	vars   env
	dir    string
	// llmCallTimeout, when set, bounds each LLM call of the bots started.
	llmCallTimeout time.Duration
	// replicas are the bots started, first first.
	replicas []*replica
	cfgPath  string
}

func newHarness(t testing.TB) *harness { return newHarnessTo(t, "") }

// newHarnessTo is newHarness with the recovery webhook at recoveryURL instead of the
// recording hook.
func newHarnessTo(t testing.TB, recoveryURL string) *harness {
	return newHarnessWith(t, recoveryURL, "")
}

// newHarnessWith is newHarnessTo with extra appended to the tenant's mapping (YAML at the
// tenant's indentation).
func newHarnessWith(t testing.TB, recoveryURL, extra string) *harness {
	h := &harness{t: t, tg: telegramtest.New(t), redis: ledgertest.NewServer(t), hook: newRecoveryHook(t), dir: t.TempDir()}
	if recoveryURL == "" {
		recoveryURL = h.hook.srv.URL
	}
	h.prefix = h.redis.Prefix(t)
	h.tg.AddChat(telegramtest.Chat{ID: groupID, Type: "supergroup", Title: "acme on-call"})
	cfg := fmt.Sprintf(`tenants:
  - id: acme
    services:
      - name: checkout
      - name: payments
    chats:
      telegram: [%d]
    people:
      - {name: tendai, role: approver, telegram: %d}
      - {name: rudo, role: approver, telegram: %d}
      - {name: vimbai, role: viewer, telegram: %d}
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
    limits: {incidents_per_hour: 100000}
`, groupID, userTendai.ID, userRudo.ID, userVimbai.ID, recoveryURL, recoverySecret, amToken) + extra
	path := filepath.Join(h.dir, "alertengine.yaml")
	h.cfgPath = path
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h.vars = env{
		"REDIS_URL":          h.redis.URL,
		"ALERT_SECRET":       strings.Repeat("a", 40),
		"LEDGER_SIGNING_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32)),
		"TELEGRAM_BOT_TOKEN": h.tg.Token(),
		"TELEGRAM_API_URL":   h.tg.URL(),
		"LOG_LEVEL":          "error",
		// serve's default (/var/lib/alertengine) is not the test's to write.
		"LEDGER_CHECKPOINT_FILE": filepath.Join(h.dir, "state", "checkpoints.json"),
	}
	var err error
	if h.env, err = config.LoadEnv(h.vars.lookup, config.Serve); err != nil {
		t.Fatal(err)
	}
	if h.file, err = config.Load(path, h.vars.lookup, h.env, app.ChatChannels(h.vars.lookup)...); err != nil {
		t.Fatal(err)
	}
	return h
}

// replica is one running instance.
type replica struct {
	sys  *app.App
	base string
	stop func()
}

// start builds and runs one bot instance (a replica) on a free port.
func (h *harness) start(webhook bool) *replica {
	t := h.t
	e := h.env
	if webhook {
		e.PublicURL = "http://127.0.0.1"
		e.TelegramWebhookSecret = "hook-secret"
	}
	key, _ := e.SigningKey()
	opt, _ := redis.ParseURL(h.redis.URL)
	rc := redis.NewClient(opt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	sys, err := app.New(app.Options{Env: e, File: h.file, Lookup: h.vars.lookup, Redis: rc, Logger: log, Signer: key, Secret: []byte(e.AlertSecret.Reveal()), Listener: ln, KeyPrefix: h.prefix,
		LLMCallTimeout: h.llmCallTimeout, ExecutorPoll: 50 * time.Millisecond}) // a bot stops within one poll: keep it short
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- sys.Run(ctx) }()
	b := &replica{sys: sys, base: "http://" + addr}
	h.replicas = append(h.replicas, b)
	var once sync.Once
	b.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("bot stopped with %v", err)
				}
			case <-time.After(40 * time.Second):
				t.Error("bot did not stop")
			}
			rc.Close()
		})
	}
	t.Cleanup(b.stop)
	waitStatus(t, b.base+"/readyz", http.StatusOK)
	return b
}

func (b *replica) alert(t testing.TB, status string) {
	t.Helper()
	payload := fmt.Sprintf(`{"version":"4","groupKey":"{}:{alertname=\"CheckoutSlow\"}","status":%q,"receiver":"alertengine",
"groupLabels":{"alertname":"CheckoutSlow"},"commonLabels":{"alertname":"CheckoutSlow","service":"checkout"},"commonAnnotations":{},
"externalURL":"http://alertmanager","alerts":[{"status":%q,"labels":{"alertname":"CheckoutSlow","service":"checkout","severity":"page"},
"annotations":{"summary":"checkout p95 above 2 s"},"startsAt":"2026-11-27T09:00:00Z","endsAt":"0001-01-01T00:00:00Z",
"generatorURL":"http://prometheus/graph","fingerprint":"c0ffee"}]}`, status, status)
	req, _ := http.NewRequest(http.MethodPost, b.base+"/alertmanager/webhook", strings.NewReader(payload))
	req.Header.Set("Authorization", "Bearer "+amToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("alertmanager webhook: %d %s", resp.StatusCode, body)
	}
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func hasText(sub string) func(telegramtest.Message) bool {
	return func(m telegramtest.Message) bool { return strings.Contains(m.Text+m.Caption, sub) }
}

// card waits for the incident card in the group.
func (h *harness) card(t testing.TB) telegramtest.Message {
	t.Helper()
	m, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, func(m telegramtest.Message) bool {
		return strings.Contains(m.Text+m.Caption, "🚨") && len(m.Buttons()) > 0
	})
	if err != nil {
		t.Fatalf("no incident card: %v; group: %+v", err, h.tg.Sent(groupID))
	}
	// A reply sent the instant the card arrives could beat the engine to remembering
	// where the card is (a person never types that fast): wait for the placement.
	if len(h.replicas) > 0 {
		waitPresented(t, h.replicas[len(h.replicas)-1], incidentCode(t, m))
	}
	return m
}

// waitPresented waits until the engine has remembered the card's placement (and so the
// route from a reply to its incident), which it does just after Telegram took the card.
// It checks the state on a short tick and ends as soon as the placement is there.
func waitPresented(t testing.TB, r *replica, inc string) {
	t.Helper()
	ctx := ctxT(t, 30*time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		missing, err := r.sys.Engine().Unpresented(ctx, "acme", inc)
		if err == nil && !missing {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s never recorded as presented: %v", inc, err)
		case <-tick.C:
		}
	}
}

func incidentCode(t testing.TB, card telegramtest.Message) string {
	i := strings.Index(card.Text+card.Caption, "INC-")
	if i < 0 {
		t.Fatalf("card names no incident: %q", card.Text)
	}
	f := strings.Fields((card.Text + card.Caption)[i:])
	return strings.TrimRight(f[0], ".,")
}

func (h *harness) stage(t testing.TB, incident string) ledger.Stage {
	t.Helper()
	c := h.redis.Client(t)
	st, err := ledger.NewRedisStore(c, h.prefix).Stage(context.Background(), "acme", incident)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestEndToEndTelegram(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.start(false)
	b.alert(t, "firing")
	card := h.card(t)
	inc := incidentCode(t, card)
	btns := card.Buttons()
	if btns[0][0].Text != "Approve restart_workers" || !strings.HasPrefix(btns[0][0].CallbackData, "ap:") {
		t.Fatalf("card buttons %+v", btns)
	}

	// A question in the thread gets its answer in the same thread.
	h.tg.SendText(groupID, userVimbai, "what changed?", telegramtest.ReplyTo(card.MessageID))
	ans, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("No commits were recorded"))
	if err != nil {
		t.Fatalf("no answer: %v", err)
	}
	if ans.ReplyToMessage == nil {
		t.Fatal("the answer is not in the thread (not a reply)")
	}

	h.tg.SendText(groupID, userTendai, "/replay@"+telegramtest.DefaultBotUsername+" "+inc)
	replay, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("Timeline of "+inc))
	if err != nil || !strings.Contains(replay.Text, "question") {
		t.Fatalf("replay: %v %q", err, replay.Text)
	}
	h.tg.SendText(groupID, userTendai, "/status")
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("open incident "+inc)); err != nil {
		t.Fatalf("/status does not show the open incident: %v", err)
	}

	// A viewer's press is refused and leaves the approval pending; an approver's runs it.
	q := h.tg.PressButton(groupID, card.MessageID, userVimbai, btns[0][0].CallbackData)
	if a := waitAnswer(t, h.tg, q); a.Text != "You are not an approver for acme." {
		t.Fatalf("viewer's press answered %q", a.Text)
	}
	if st := h.stage(t, inc); st != ledger.Validated {
		t.Fatalf("after a viewer's press: %s", st)
	}
	q = h.tg.PressButton(groupID, card.MessageID, userTendai, btns[0][0].CallbackData)
	if a := waitAnswer(t, h.tg, q); !strings.HasPrefix(a.Text, "Approved.") {
		t.Fatalf("approver's press answered %q", a.Text)
	}
	select {
	case <-h.hook.calls:
	case <-time.After(40 * time.Second):
		t.Fatal("the recovery webhook was not called")
	}
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("Recovery restart_workers executed")); err != nil {
		t.Fatalf("no execution message in the thread: %v", err)
	}
	edited, _ := h.tg.Message(groupID, card.MessageID)
	if len(edited.Buttons()) != 0 || !strings.Contains(edited.Text+edited.Caption, "Approved by tendai") {
		t.Fatalf("card not closed: %+v", edited)
	}
	b.alert(t, "resolved")
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("Resolved")); err != nil {
		t.Fatalf("no resolution message: %v", err)
	}
	if st := h.stage(t, inc); st != ledger.Resolved {
		t.Fatalf("final stage %s", st)
	}
	// The card is edited once more: its headline says RESOLVED, who approved stays.
	settled, _ := h.tg.Message(groupID, card.MessageID)
	if v := settled.Text + settled.Caption; !strings.Contains(v, "checkout healthy again — "+inc+" · RESOLVED") ||
		!strings.Contains(v, "Approved by tendai") || strings.Contains(v, "🚨") || len(settled.Buttons()) != 0 {
		t.Fatalf("the resolved card: %+v", settled)
	}
	if n, _ := h.hook.count(); n != 1 {
		t.Fatalf("%d webhook calls, want 1", n)
	}
	_, metrics := get(t, b.base+"/metrics")
	for _, want := range []string{
		`alertengine_detections_total{kind="opened",tenant="acme"} 1`,
		`alertengine_authorizations_total{tenant="acme"} 1`,
		`alertengine_executions_total{outcome="executed",tenant="acme"} 1`,
		`alertengine_detector_alertmanager_refused_total{reason="too_large"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func waitAnswer(t testing.TB, tg *telegramtest.Server, queryID string) telegramtest.CallbackAnswer {
	t.Helper()
	_, err := tg.WaitFor(ctxT(t, 40*time.Second), func(c telegramtest.Call) bool {
		return c.Method == "answerCallbackQuery" && c.Params["callback_query_id"] == queryID
	})
	if err != nil {
		t.Fatalf("press %s never answered: %v", queryID, err)
	}
	a, _ := tg.CallbackAnswer(queryID)
	return a
}

func TestReplyReachesItsIncidentAfterARestart(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.start(false)
	b.alert(t, "firing")
	card := h.card(t)
	b.stop()
	h.start(false)
	h.tg.SendText(groupID, userTendai, "why?", telegramtest.ReplyTo(card.MessageID))
	ans, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("Detected because"))
	if err != nil || ans.ReplyToMessage == nil {
		t.Fatalf("after a restart the reply did not reach its incident: %v", err)
	}
}

// TestEnrolledApproverCanApprove: `bot enroll` prints a one-time code; /start CODE in a
// direct chat with the bot links that Telegram account to the name; that person can then
// approve, and the code cannot be used twice.
func TestEnrolledApproverCanApprove(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.start(false)
	vars := env{"REDIS_URL": h.redis.URL, "REDIS_KEY_PREFIX": h.prefix, "LOG_LEVEL": "error"}
	code, out, errs := runCLI(t, vars, "enroll", "--config", h.cfgPath, "--tenant", "acme", "--name", "farai", "--role", "approver")
	if code != exitOK || !strings.Contains(errs, "/start "+strings.TrimSpace(out)) {
		t.Fatalf("enroll: %d %q %q", code, out, errs)
	}
	farai := telegramtest.User{ID: 44, FirstName: "Farai"}
	h.tg.SendText(farai.ID, farai, "/start "+strings.TrimSpace(out))
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), farai.ID, hasText("Linked: you are farai (approver) for acme.")); err != nil {
		t.Fatalf("no confirmation: %v", err)
	}
	mallory := telegramtest.User{ID: 45, FirstName: "Mallory"}
	h.tg.SendText(mallory.ID, mallory, "/start "+strings.TrimSpace(out))
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), mallory.ID, hasText("unknown, used or expired")); err != nil {
		t.Fatalf("a used code was accepted again: %v", err)
	}
	b.alert(t, "firing")
	card := h.card(t)
	// Offboarding: once revoked, the account approves nothing.
	if code, out, _ := runCLI(t, vars, "enroll", "--config", h.cfgPath, "--tenant", "acme", "--name", "farai", "--revoke"); code != exitOK || !strings.Contains(out, "revoked 1 linked chat account(s) of farai") {
		t.Fatalf("revoke: %d %q", code, out)
	}
	q := h.tg.PressButton(groupID, card.MessageID, farai, card.Buttons()[0][0].CallbackData)
	if a := waitAnswer(t, h.tg, q); a.Text != "You are not an approver for acme." {
		t.Fatalf("revoked approver's press: %q", a.Text)
	}
	code, out, _ = runCLI(t, vars, "enroll", "--config", h.cfgPath, "--tenant", "acme", "--name", "farai", "--role", "approver")
	if code != exitOK {
		t.Fatal("enroll again")
	}
	h.tg.SendText(farai.ID, farai, "/start "+strings.TrimSpace(out))
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), farai.ID, func(m telegramtest.Message) bool {
		return strings.Count(m.Text, "Linked: you are farai") == 1 && m.ReplyToMessage != nil && strings.Contains(m.ReplyToMessage.Text, strings.TrimSpace(out))
	}); err != nil {
		t.Fatalf("re-enrollment: %v", err)
	}
	q = h.tg.PressButton(groupID, card.MessageID, farai, card.Buttons()[0][0].CallbackData)
	if a := waitAnswer(t, h.tg, q); !strings.HasPrefix(a.Text, "Approved.") {
		t.Fatalf("enrolled approver's press: %q", a.Text)
	}
}

// TestServeRefusesATokenTelegramRejects: a bot token of the right shape that Telegram
// does not accept stops serve before it listens, with one line naming the variable.
func TestServeRefusesATokenTelegramRejects(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	vars := env{}
	for k, v := range h.vars {
		vars[k] = v
	}
	vars["TELEGRAM_BOT_TOKEN"] = "7000000001:AAWrongTokenWrongTokenWrongToken00000"
	vars["REDIS_KEY_PREFIX"] = h.prefix
	vars["ADDR"] = freeAddr(t)
	code, _, stderr := runCLI(t, vars, "serve", "--config", h.cfgPath)
	if code != exitUsage || strings.TrimSpace(stderr) != "TELEGRAM_BOT_TOKEN: Telegram refused the token" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if strings.Contains(stderr, "AAWrongToken") {
		t.Fatal("the token leaked")
	}
}

// TestTelegramOutageDoesNotStopTheBot: with the Bot API unreachable at start, serve still
// listens and detects (the ledger records the incident); Telegram is retried.
func TestTelegramOutageDoesNotStopTheBot(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.env.TelegramAPIURL = "http://" + freeAddr(t) // nothing listens there
	b := h.start(false)
	b.alert(t, "firing")
	if st := h.stage(t, "INC-1"); st == ledger.None {
		t.Fatal("no incident recorded while Telegram was down")
	}
	waitStatus(t, b.base+"/readyz", http.StatusOK)
}
