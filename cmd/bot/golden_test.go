package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
)

var update = flag.Bool("update", false, "rewrite the golden files")

const hostile = `<b>bold</b><script>alert(1)</script> & "quoted" &amp; مرحبا بالعالم שלום 🔥🚒 ` + "\u202Eevil"

// normalize replaces what changes between runs (incident codes, approval references,
// times, policy hashes) so the golden file holds only what the templates decide.
func normalize(s string) string {
	for _, r := range []struct{ re, with string }{
		{`ap:[A-Za-z0-9_-]{22}`, "ap:REF"},
		{`INC-[0-9A-F]+`, "INC-N"},
		{`\d\d:\d\d(:\d\d)? UTC`, "HH:MM UTC"},
		{`\b\d\d:\d\d:\d\d\b`, "HH:MM:SS"},
		{`pol-[0-9a-f]+`, "pol-HASH"},
		{`\d+ min ago`, "N min ago"},
	} {
		s = regexp.MustCompile(r.re).ReplaceAllString(s, r.with)
	}
	return s
}

// TestTelegramConversationGolden drives a whole incident through the real templates and
// the real adapter — a hostile alert text, every command, a question, a long timeline
// that must be split, an approval — and compares every message as Telegram received it
// (HTML source and keyboard) with testdata/telegram_conversation.golden. The fake Bot API
// refuses HTML Telegram would refuse and text over Telegram's limits, so every message in
// the file was also accepted as Telegram would.
func TestTelegramConversationGolden(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	r := h.start(false)
	alert := strings.ReplaceAll(strings.ReplaceAll(hostile, `\`, `\\`), `"`, `\"`)
	payload := fmt.Sprintf(`{"version":"4","groupKey":"g","status":"firing","receiver":"ae","groupLabels":{},"commonLabels":{},
"commonAnnotations":{},"externalURL":"http://am","alerts":[{"status":"firing","labels":{"alertname":"CheckoutSlow","service":"checkout"},
"annotations":{"summary":"%s"},"startsAt":"2026-11-27T09:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://p","fingerprint":"f1"}]}`, alert)
	req, _ := http.NewRequest(http.MethodPost, r.base+"/alertmanager/webhook", strings.NewReader(payload))
	req.Header.Set("Authorization", "Bearer "+amToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("alert: %v %v", err, resp)
	}
	resp.Body.Close()
	card := h.card(t)
	inc := incidentCode(t, card)
	// say sends text as user and waits for the bot's answer (a reply to it).
	say := func(u telegramtest.User, text string, opts ...telegramtest.SendOption) {
		t.Helper()
		h.tg.SendText(groupID, u, text, opts...)
		hist := h.tg.History(groupID)
		mine := hist[len(hist)-1].MessageID
		if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, func(m telegramtest.Message) bool {
			return m.ReplyToMessage != nil && m.ReplyToMessage.MessageID == mine
		}); err != nil {
			t.Fatalf("no answer to %q: %v", text, err)
		}
	}
	say(userVimbai, "/help")
	say(userVimbai, "/status")
	say(userVimbai, "/incidents")
	say(userVimbai, "/details "+inc)
	say(userVimbai, "why?", telegramtest.ReplyTo(card.MessageID))
	say(userVimbai, "/silence checkout 30m")
	say(userVimbai, "/frobnicate")
	for i := 0; i < 30; i++ {
		say(userRudo, fmt.Sprintf("show p95 (%d)", i), telegramtest.ReplyTo(card.MessageID))
	}
	h.tg.SendText(groupID, userVimbai, "/replay "+inc)
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("ledger entries; policy")); err != nil {
		t.Fatalf("replay: %v", err)
	}
	q := h.tg.PressButton(groupID, card.MessageID, userTendai, card.Buttons()[0][0].CallbackData)
	waitAnswer(t, h.tg, q)
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("Recovery restart_workers executed")); err != nil {
		t.Fatal(err)
	}

	var b strings.Builder
	for _, m := range h.tg.Sent(groupID) {
		if m.ReplyToMessage != nil && strings.HasPrefix(m.ReplyToMessage.Text, "show p95") && !strings.Contains(m.ReplyToMessage.Text, "(29)") {
			continue // 29 of 30 identical answers; the last one and the replay show them
		}
		if units := len(utf16.Encode([]rune(m.Text + m.Caption))); units > 4096 {
			t.Errorf("message %d is %d UTF-16 units long", m.MessageID, units)
		}
		kb, _ := json.Marshal(m.ReplyMarkup)
		fmt.Fprintf(&b, "--- message (parse_mode %s, reply %v)\n%s\n", m.ParseMode, m.ReplyToMessage != nil, m.Source)
		if m.ReplyMarkup != nil {
			fmt.Fprintf(&b, "keyboard: %s\n", kb)
		}
	}
	got := normalize(b.String())
	if strings.Contains(got, "<script>") || strings.Contains(got, "\u202E") {
		t.Fatal("hostile alert text reached Telegram unescaped")
	}
	if !strings.Contains(got, "&lt;script&gt;") {
		t.Fatalf("the hostile text is not on the card, escaped:\n%s", got)
	}
	path := filepath.Join("testdata", "telegram_conversation.golden")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		os.WriteFile(path+".got", []byte(got), 0o644)
		t.Fatalf("messages differ from %s; see %s.got", path, path)
	}
}
