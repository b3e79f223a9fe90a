package conversation_test

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
)

const waChat = "+263771234567"

var tendaiWA = conversation.User{Channel: conversation.WhatsApp, ID: waChat, Name: "Tendai"}

// newTwoChannelWorld is newWorld plus a chat app without buttons, threads or edits in
// place (WhatsApp's capabilities), where tendai is reachable too.
func newTwoChannelWorld(t *testing.T) (*world, *memTransport) {
	t.Helper()
	w := newWorld(t, false)
	wa := newMem(conversation.WhatsApp)
	wa.caps = &conversation.Capabilities{Name: "WhatsApp", Direct: true, Words: true, NoEdit: true}
	w.tenants[0].Chats = append(w.tenants[0].Chats, conversation.Chat{Channel: conversation.WhatsApp, ID: waChat})
	w.tenants[0].People[0].IDs[conversation.WhatsApp] = waChat
	eng, err := conversation.New(conversation.Options{Ledger: w.led, Approvals: w.ap, Redis: w.rc, KeyPrefix: w.prefix,
		Clock: func() time.Time { return w.now }, Transports: []conversation.Transport{w.tg, wa}, Tenants: w.tenants})
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	return w, wa
}

var codeLine = regexp.MustCompile(`Reply APPROVE ([2-9A-Z]{3}-[2-9A-Z]{2}) — Approve restart_workers`)

func TestButtonlessChatGetsReplyCodes(t *testing.T) {
	w, wa := newTwoChannelWorld(t)
	w.open()
	tgCard := w.card()
	if strings.Contains(tgCard.Msg.Text(), "Reply APPROVE") {
		t.Errorf("the Telegram card got a typed alternative:\n%s", tgCard.Msg.Text())
	}
	waCard, ok := wa.find(waChat, "🚨")
	if !ok {
		t.Fatal("no card in the WhatsApp chat")
	}
	m := codeLine.FindStringSubmatch(waCard.Msg.Text())
	if m == nil {
		t.Fatalf("WhatsApp card has no reply code:\n%s", waCard.Msg.Text())
	}
	if !strings.Contains(waCard.Msg.Text(), "Reply REJECT "+w.incident+" — Reject") {
		t.Errorf("WhatsApp card has no typed reject:\n%s", waCard.Msg.Text())
	}
	if waCard.Msg.Image != nil {
		t.Error("an image went to a chat without media")
	}

	w.handle(conversation.Inbound{Chat: conversation.Chat{Channel: conversation.WhatsApp, ID: waChat}, User: tendaiWA, Direct: true, Text: "/approve " + strings.ToLower(m[1])})
	if got := w.stage(); got != ledger.Authorized {
		t.Fatalf("stage after the code = %s", got)
	}
	// Both channels are told who decided, and where.
	card := w.card()
	if !strings.Contains(card.Msg.Text(), "Approved by tendai in WhatsApp") || len(card.Msg.Buttons) != 0 {
		t.Errorf("Telegram card after a WhatsApp approval:\n%s\n%+v", card.Msg.Text(), card.Msg.Buttons)
	}
	// The same code again is refused with who decided.
	w.handle(conversation.Inbound{Chat: conversation.Chat{Channel: conversation.WhatsApp, ID: waChat}, User: tendaiWA, Direct: true, Text: "/approve " + m[1]})
	if last, ok := wa.find(waChat, "Already approved by tendai"); !ok {
		t.Errorf("second use of the code not refused; last messages: %+v", last)
	}
	if got := w.stage(); got != ledger.Authorized {
		t.Fatalf("stage after a second use = %s", got)
	}
}

func TestUnknownCodesAreBounded(t *testing.T) {
	w, wa := newTwoChannelWorld(t)
	w.open()
	in := conversation.Inbound{Chat: conversation.Chat{Channel: conversation.WhatsApp, ID: waChat}, User: tendaiWA, Direct: true, Text: "/approve ZZZ-ZZ"}
	for range conversation.MaxCodeFailures {
		w.handle(in)
	}
	if _, ok := wa.find(waChat, "Too many unknown codes"); ok {
		t.Fatal("cut off before the bound")
	}
	w.handle(in)
	if _, ok := wa.find(waChat, "Too many unknown codes"); !ok {
		t.Fatal("guessing was not cut off")
	}
	if w.stage() != ledger.Validated {
		t.Fatalf("stage %s", w.stage())
	}
}

func TestUnthreadedFreeTextFindsTheIncident(t *testing.T) {
	w, wa := newTwoChannelWorld(t)
	w.open()
	ctx := context.Background()
	chat := conversation.Chat{Channel: conversation.WhatsApp, ID: waChat}
	// No reply, no id: the tenant's most recent open incident.
	w.handle(conversation.Inbound{Chat: chat, User: tendaiWA, Direct: true, Text: "why?", MessageID: "SM1"})
	_, hist, err := w.led.Incident(ctx, "acme", w.incident)
	if err != nil {
		t.Fatal(err)
	}
	if hist[len(hist)-1].Event != ledger.Answer {
		t.Fatalf("free text was not taken as a question on %s: last entry %s", w.incident, hist[len(hist)-1].Event)
	}
	if _, ok := wa.find(waChat, "Detected because"); !ok {
		t.Error("no answer in the WhatsApp chat")
	}
	// On Telegram, free text in a group outside a thread is people talking.
	before := len(w.tg.all(group))
	w.handle(conversation.Inbound{Chat: conversation.Chat{Channel: conversation.Telegram, ID: "-1001"}, User: tendai, Text: "why?", MessageID: "99"})
	if len(w.tg.all(group)) != before {
		t.Error("the bot answered chatter outside a thread")
	}
}

// TestButtonlessApproverGetsOwnLinks: with LinkURL configured, the approver whose
// button-less chat got the card is also sent a link approval per offer, issued to them
// alone; opening it previews without effect, confirming it authorizes, and the card's
// reply code for the same approval is then refused. Chats with buttons get no links.
func TestButtonlessApproverGetsOwnLinks(t *testing.T) {
	w, wa := newTwoChannelWorld(t)
	eng, err := conversation.New(conversation.Options{Ledger: w.led, Approvals: w.ap, Redis: w.rc, KeyPrefix: w.prefix,
		Clock: func() time.Time { return w.now }, Transports: []conversation.Transport{w.tg, wa}, Tenants: w.tenants,
		LinkURL: func(ref string) string { return "https://bot.example/action/recover?ref=" + ref }})
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	w.open()
	links, ok := wa.find(waChat, "Or approve in your browser")
	if !ok {
		t.Fatalf("no link approvals in the approver's WhatsApp chat: %+v", wa.all(waChat))
	}
	m := regexp.MustCompile(`restart_workers: https://bot\.example/action/recover\?ref=(lk:\S+)`).FindStringSubmatch(links.Msg.Text())
	if m == nil {
		t.Fatalf("no link for the offered action:\n%s", links.Msg.Text())
	}
	if _, ok := w.tg.find(group, "Or approve in your browser"); ok {
		t.Error("a chat with buttons was sent links")
	}
	ctx := context.Background()
	for range 2 {
		pv, err := w.eng.PreviewLink(ctx, m[1])
		if err != nil {
			t.Fatal(err)
		}
		if pv.Person != "tendai" || pv.Action != "restart_workers" || pv.State != "pending" {
			t.Fatalf("preview %+v", pv)
		}
	}
	if w.stage() != ledger.Validated {
		t.Fatalf("a preview changed the stage to %s", w.stage())
	}
	waCard, _ := wa.find(waChat, "🚨")
	code := codeLine.FindStringSubmatch(waCard.Msg.Text())
	if code == nil {
		t.Fatalf("WhatsApp card has no reply code:\n%s", waCard.Msg.Text())
	}
	if _, err := w.eng.ConfirmLink(ctx, m[1]); err != nil {
		t.Fatal(err)
	}
	if got := w.stage(); got != ledger.Authorized {
		t.Fatalf("stage after the link = %s", got)
	}
	w.handle(conversation.Inbound{Chat: conversation.Chat{Channel: conversation.WhatsApp, ID: waChat}, User: tendaiWA, Direct: true, Text: "/approve " + code[1]})
	if _, ok := wa.find(waChat, "Already approved by tendai"); !ok {
		t.Error("the reply code of the approval the link used was not refused")
	}
}

// TestHelpSpeaksTheChatsSyntax: HELP on WhatsApp (commands are words) lists the words
// people type there — JOIN CODE, STATUS — never Telegram's /start; Telegram's help keeps
// its slashes.
func TestHelpSpeaksTheChatsSyntax(t *testing.T) {
	w, wa := newTwoChannelWorld(t)
	w.handle(conversation.Inbound{Chat: conversation.Chat{Channel: conversation.WhatsApp, ID: waChat}, User: tendaiWA, Direct: true, Text: "/help"})
	h, ok := wa.find(waChat, "AlertEngine commands")
	if !ok {
		t.Fatal("no help on WhatsApp")
	}
	txt := h.Msg.Text()
	if !strings.Contains(txt, "JOIN CODE") || !strings.Contains(txt, "STATUS [service]") || strings.Contains(txt, "/") {
		t.Errorf("WhatsApp help:\n%s", txt)
	}
	w.handle(conversation.Inbound{Chat: conversation.Chat{Channel: conversation.WhatsApp, ID: waChat}, User: tendaiWA, Direct: true, Text: "/frobnicate"})
	if _, ok := wa.find(waChat, "I don't know FROBNICATE."); !ok {
		t.Error("an unknown word is not named as typed")
	}
	tg := w.tg.all(group)
	w.handle(conversation.Inbound{Chat: conversation.Chat{Channel: conversation.Telegram, ID: group}, User: conversation.User{Channel: conversation.Telegram, ID: "1001"}, Text: "/help"})
	var found bool
	for _, s := range w.tg.all(group)[len(tg):] {
		found = found || strings.Contains(s.Msg.Text(), "/start CODE")
	}
	if !found {
		t.Error("Telegram's help lost /start CODE")
	}
}
