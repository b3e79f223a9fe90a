package main

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/bot/whatsapp"
	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

const (
	waTendai      = "+263771234567"
	waRudo        = "+263772222222"
	waBot         = "whatsapp:+14155238886"
	waPublic      = "https://bot.example.com"
	waContentSID  = "HX0123456789abcdef0123456789abcdef"
	waVoiceCaller = "+14155550100"
)

// newWhatsAppHarness is a tenant with a Telegram group and tendai's WhatsApp number as
// incident chats; with template, the approval quick-reply template is configured.
func newWhatsAppHarness(t *testing.T, template bool) (*harness, *twiliotest.Server) {
	t.Helper()
	h := &harness{t: t, tg: telegramtest.New(t), redis: ledgertest.NewServer(t), hook: newRecoveryHook(t), dir: t.TempDir()}
	tw := twiliotest.New(t)
	h.prefix = h.redis.Prefix(t)
	h.tg.AddChat(telegramtest.Chat{ID: groupID, Type: "supergroup", Title: "acme on-call"})
	cfg := fmt.Sprintf(`tenants:
  - id: acme
    services:
      - name: checkout
    chats:
      telegram: [%d]
      whatsapp: ["%s"]
    people:
      - {name: tendai, role: approver, telegram: %d, whatsapp: "%s", phone: "%s"}
      - {name: rudo, role: approver, telegram: %d, whatsapp: "%s"}
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
`, groupID, waTendai, userTendai.ID, waTendai, waTendai, userRudo.ID, waRudo, h.hook.srv.URL, recoverySecret, amToken)
	h.cfgPath = filepath.Join(h.dir, "alertengine.yaml")
	if err := os.WriteFile(h.cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	h.vars = env{
		"REDIS_URL":            h.redis.URL,
		"ALERT_SECRET":         strings.Repeat("a", 40),
		"LEDGER_SIGNING_KEY":   base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{5}, 32)),
		"TELEGRAM_BOT_TOKEN":   h.tg.Token(),
		"TELEGRAM_API_URL":     h.tg.URL(),
		"TWILIO_ACCOUNT_SID":   twiliotest.AccountSID,
		"TWILIO_AUTH_TOKEN":    twiliotest.AuthToken,
		"TWILIO_WHATSAPP_FROM": waBot,
		"TWILIO_API_URL":       tw.URL(),
		"TWILIO_VOICE_FROM":    waVoiceCaller,
		"PUBLIC_URL":           waPublic,
		"LOG_LEVEL":            "error",
	}
	if template {
		h.vars["TWILIO_APPROVAL_CONTENT_SID"] = waContentSID
		tw.AddContent(twiliotest.QuickReplyTemplate(waContentSID))
	}
	var err error
	if h.env, err = config.LoadEnv(h.vars.lookup, config.Serve); err != nil {
		t.Fatal(err)
	}
	if h.file, err = config.Load(h.cfgPath, h.vars.lookup, h.env, app.ChatChannels(h.vars.lookup)...); err != nil {
		t.Fatal(err)
	}
	return h, tw
}

// whatsappSays posts what a person sends on WhatsApp to a replica, signed by "Twilio".
func whatsappSays(t *testing.T, tw *twiliotest.Server, r *replica, in twiliotest.Inbound) {
	t.Helper()
	code, err := tw.Post(ctxT(t, 30*time.Second), r.base+whatsapp.WebhookPath, waPublic+whatsapp.WebhookPath, in.Form(waBot), nil)
	if err != nil || code != 200 {
		t.Fatalf("webhook: %d %v", code, err)
	}
}

func waCard(t *testing.T, tw *twiliotest.Server) twiliotest.Message {
	t.Helper()
	m, err := tw.WaitForMessage(ctxT(t, 30*time.Second), func(m twiliotest.Message) bool {
		// Outside the session window the card is the approval template alone.
		return m.To == "whatsapp:"+waTendai && (strings.Contains(m.Text(), "Reply APPROVE") || m.ContentSID != "")
	})
	if err != nil {
		t.Fatalf("no WhatsApp card: %v; sent %+v", err, tw.Messages())
	}
	return m
}

func waitWhatsApp(t *testing.T, tw *twiliotest.Server, sub string) twiliotest.Message {
	t.Helper()
	m, err := tw.WaitForMessage(ctxT(t, 30*time.Second), func(m twiliotest.Message) bool {
		return m.To == "whatsapp:"+waTendai && strings.Contains(m.Text(), sub)
	})
	if err != nil {
		t.Fatalf("no WhatsApp message with %q: %v; sent %+v", sub, err, tw.Messages())
	}
	return m
}

// executedOnce waits for the recovery webhook's call and the EXECUTED stage.
func executedOnce(t *testing.T, h *harness, incident string) {
	t.Helper()
	select {
	case <-h.hook.calls:
	case <-time.After(60 * time.Second):
		t.Fatal("the recovery webhook was not called")
	}
	deadline := time.Now().Add(30 * time.Second)
	for st := h.stage(t, incident); st != ledger.Executed && st != ledger.Resolved; st = h.stage(t, incident) {
		if time.Now().After(deadline) {
			t.Fatalf("stage %s", st)
		}
		<-time.After(20 * time.Millisecond)
	}
}

var incidentRe = regexp.MustCompile(`INC-[0-9A-F]+`)

func TestWhatsAppQuickReplyApprovesOnce(t *testing.T) {
	t.Parallel()
	h, tw := newWhatsAppHarness(t, true)
	r := h.start(false)
	r.alert(t, "firing")
	card := waCard(t, tw)
	incident := incidentRe.FindString(card.Text())
	if card.ContentSID != waContentSID || !strings.HasPrefix(card.ContentVariables["2"], "ap:") {
		t.Fatalf("the card did not carry the quick-reply template: %+v", card)
	}
	// The fake refuses what WhatsApp refuses (a variable with a newline, over 250
	// characters): the real card's variables passed, and the approver reads what it is about.
	if r := tw.Refused(); len(r) > 0 {
		t.Fatalf("Twilio refused %+v", r)
	}
	if txt := card.Text(); !strings.Contains(txt, incident) || !strings.Contains(txt, "Approve runs restart_workers.") || !strings.Contains(txt, "checkout") {
		t.Fatalf("the approver reads %q", txt)
	}
	whatsappSays(t, tw, r, twiliotest.Inbound{From: waTendai, Name: "Tendai", Body: "Approve", ButtonText: "Approve", ButtonPayload: card.ContentVariables["2"], RepliedTo: card.SID})
	executedOnce(t, h, incident)
	// The other channel is told who decided, and where.
	if _, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, hasText("Approved by tendai in WhatsApp")); err != nil {
		t.Fatalf("Telegram not told: %v", err)
	}
	// The same quick reply again: refused, nothing more runs.
	whatsappSays(t, tw, r, twiliotest.Inbound{From: waTendai, Name: "Tendai", Body: "Approve", ButtonPayload: card.ContentVariables["2"], RepliedTo: card.SID})
	waitWhatsApp(t, tw, "Already approved by tendai")
	if n, _ := h.hook.count(); n != 1 {
		t.Fatalf("the recovery webhook was called %d times", n)
	}
}

func TestWhatsAppReplyCodeApprovesOnce(t *testing.T) {
	t.Parallel()
	h, tw := newWhatsAppHarness(t, false)
	r := h.start(false)
	r.alert(t, "firing")
	card := waCard(t, tw)
	incident := incidentRe.FindString(card.Text())
	code := regexp.MustCompile(`Reply APPROVE ([2-9A-Z]{3}-[2-9A-Z]{2})`).FindStringSubmatch(card.Text())
	if code == nil || card.ContentSID != "" {
		t.Fatalf("card %+v", card)
	}
	// A stranger's message is refused politely and changes nothing.
	whatsappSays(t, tw, r, twiliotest.Inbound{From: "+15550001111", Body: "APPROVE " + code[1]})
	if _, err := tw.WaitForMessage(ctxT(t, 30*time.Second), func(m twiliotest.Message) bool {
		return m.To == "whatsapp:+15550001111" && strings.Contains(m.Text(), "not linked")
	}); err != nil {
		t.Fatalf("no refusal for an unknown sender: %v", err)
	}
	whatsappSays(t, tw, r, twiliotest.Inbound{From: waTendai, Name: "Tendai", Body: "approve " + strings.ToLower(code[1])})
	executedOnce(t, h, incident)
	whatsappSays(t, tw, r, twiliotest.Inbound{From: waTendai, Name: "Tendai", Body: "APPROVE " + code[1]})
	waitWhatsApp(t, tw, "Already approved by tendai")
	if n, _ := h.hook.count(); n != 1 {
		t.Fatalf("the recovery webhook was called %d times", n)
	}
	// Words are commands; the status answer is labelled.
	whatsappSays(t, tw, r, twiliotest.Inbound{From: waTendai, Name: "Tendai", Body: "STATUS"})
	waitWhatsApp(t, tw, "Status — acme")
}

// TestWhatsAppLinkApproval: besides the reply code, the approver's WhatsApp chat gets a
// link approval of their own under PUBLIC_URL; opening it has no effect, confirming it
// runs the recovery once, and the card's reply code is then refused.
func TestWhatsAppLinkApproval(t *testing.T) {
	t.Parallel()
	h, tw := newWhatsAppHarness(t, false)
	r := h.start(false)
	r.alert(t, "firing")
	card := waCard(t, tw)
	incident := incidentRe.FindString(card.Text())
	code := regexp.MustCompile(`Reply APPROVE ([2-9A-Z]{3}-[2-9A-Z]{2})`).FindStringSubmatch(card.Text())
	if code == nil {
		t.Fatalf("card %+v", card)
	}
	links := waitWhatsApp(t, tw, "Or approve in your browser")
	m := regexp.MustCompile(`/action/recover\?ref=(\S+)`).FindStringSubmatch(links.Text())
	if m == nil {
		t.Fatalf("no link in %q", links.Text())
	}
	ref, err := url.QueryUnescape(m[1])
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		resp, err := http.Get(r.base + "/action/recover?ref=" + url.QueryEscape(ref))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("preview: %d", resp.StatusCode)
		}
	}
	if st := h.stage(t, incident); st != ledger.Validated {
		t.Fatalf("previews moved the incident to %s", st)
	}
	resp, err := http.PostForm(r.base+"/action/recover/confirm", url.Values{"ref": {ref}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("confirm: %d", resp.StatusCode)
	}
	executedOnce(t, h, incident)
	whatsappSays(t, tw, r, twiliotest.Inbound{From: waTendai, Name: "Tendai", Body: "APPROVE " + code[1]})
	waitWhatsApp(t, tw, "Already approved by tendai")
	if n, _ := h.hook.count(); n != 1 {
		t.Fatalf("the recovery webhook was called %d times", n)
	}
}
