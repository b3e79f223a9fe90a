package whatsapp

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/conversation"
)

// FuzzParseForm feeds arbitrary bodies through the webhook's form reading: it never
// panics, accepts only WhatsApp senders with a message SID, and what it accepts is valid
// UTF-8 and bounded.
func FuzzParseForm(f *testing.F) {
	f.Add(twiliotest.Inbound{From: ana, Body: "STATUS checkout", SID: sid("SM", 1)}.Form(botNumber).Encode())
	f.Add(twiliotest.Inbound{From: ana, ButtonPayload: "ap:AAAAAAAAAAABBBBBBBBBBB", RepliedTo: sid("SM", 2), SID: sid("SM", 3)}.Form(botNumber).Encode())
	f.Add("From=whatsapp%3A%2B1&MessageSid=SM&Body=%FF%FE")
	f.Add("From=%2B263771234567&MessageSid=" + sid("SM", 4))
	f.Add("ButtonPayload=" + strings.Repeat("a", 300) + "&From=whatsapp:%2B263771234567&MessageSid=" + sid("SM", 5))
	f.Add("%zz&&==;")
	f.Fuzz(func(t *testing.T, body string) {
		v, err := url.ParseQuery(body)
		if err != nil {
			return
		}
		form, err := ParseForm(v)
		if err != nil {
			return
		}
		if !strings.HasPrefix(v.Get("From"), "whatsapp:+") || !e164.MatchString(form.From) {
			t.Fatalf("accepted sender %q", v.Get("From"))
		}
		if !sidLike(form.MessageSID, "SM") && !sidLike(form.MessageSID, "MM") {
			t.Fatalf("accepted message SID %q", form.MessageSID)
		}
		if len(form.Payload) > maxPayload || !utf8.ValidString(form.Payload) || !utf8.ValidString(form.Body) || !utf8.ValidString(form.Name) {
			t.Fatalf("unbounded or invalid field in %+v", form)
		}
		if utf8.RuneCountInString(form.Name) > 64 {
			t.Fatalf("name of %d runes", utf8.RuneCountInString(form.Name))
		}
		if form.RepliedTo != "" && !sidLike(form.RepliedTo, "SM") && !sidLike(form.RepliedTo, "MM") {
			t.Fatalf("replied-to %q", form.RepliedTo)
		}
	})
}

// FuzzCommand checks the word-command parser: it never panics, a command line it makes
// parses as the engine's command of a known name, and text it does not take is returned
// trimmed.
func FuzzCommand(f *testing.F) {
	for _, s := range []string{"STATUS checkout", "join ABCD", "Replay INC-7F3", "approve 7f3-k9", "why?", "/help", "/", "  HELP  ", "status\ncheckout", "ÄPPROVE", "\xff\xfe", "REJECT."} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		line, ok := Command(text)
		if !utf8.ValidString(line) {
			t.Fatalf("invalid UTF-8 from %q", text)
		}
		if !ok {
			if line != strings.TrimSpace(line) {
				t.Fatalf("not trimmed: %q", line)
			}
			return
		}
		cmd, parsed := conversation.ParseCommand(line)
		if strings.HasPrefix(strings.TrimSpace(text), "/") {
			return // typed with a slash: passed on as the engine's to judge
		}
		if !parsed {
			if len(line) <= conversation.MaxCommandLen {
				t.Fatalf("%q → %q does not parse", text, line)
			}
			return // too long: the engine answers with help
		}
		if _, known := commandWords[cmd.Name]; !known && cmd.Name != "start" {
			t.Fatalf("%q → unknown command %q", text, cmd.Name)
		}
	})
}
