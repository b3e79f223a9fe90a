package whatsapp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/conversation"
)

func TestRenderWhatsAppSyntax(t *testing.T) {
	m := conversation.Message{Blocks: []conversation.Block{
		{Style: conversation.Title, Text: "🚨 checkout degraded — INC-7F3"},
		{Style: conversation.Plain, Text: "Health 23/100 · P95 2.8 s"},
		{Style: conversation.Bold, Text: "a *sneaky* title"},
		{Style: conversation.Muted, Text: "Nothing runs without your approval."},
		{Style: conversation.Code, Text: "Reply APPROVE 7F3-K9 — Approve restart_workers"},
	}}
	got := render(m, "INC-7F3")
	want := "*🚨 checkout degraded — INC-7F3*\nHealth 23/100 · P95 2.8 s\n*a ∗sneaky∗ title*\n_Nothing runs without your approval._\n```Reply APPROVE 7F3-K9 — Approve restart_workers```"
	if got != want {
		t.Errorf("render:\n%s\nwant:\n%s", got, want)
	}
	if got := render(conversation.Message{Blocks: []conversation.Block{{Text: "✅ Resolved"}}}, "INC-7F3"); got != "INC-7F3 · ✅ Resolved" {
		t.Errorf("label: %q", got)
	}
}

func TestSplitKeepsEverythingUnderTheLimit(t *testing.T) {
	var lines []string
	for i := range 200 {
		lines = append(lines, fmt.Sprintf("line %03d %s", i, strings.Repeat("🚨é", i%40)))
	}
	lines = append(lines, strings.Repeat("x", 4000)) // one line longer than a message
	text := strings.Join(lines, "\n")
	parts := split(text, MaxBody)
	if len(parts) < 2 {
		t.Fatalf("%d parts", len(parts))
	}
	for i, p := range parts {
		if units(p) > MaxBody || !utf8.ValidString(p) || p == "" {
			t.Errorf("part %d: %d units, valid %v", i, units(p), utf8.ValidString(p))
		}
	}
	if strings.ReplaceAll(strings.Join(parts, "\n"), "\n", "") != strings.ReplaceAll(text, "\n", "") {
		t.Error("text was lost or changed in the split")
	}
}

func TestSendLongCardWithChartAndTemplate(t *testing.T) {
	e := newEnv(t)
	e.fake.AddContent(twiliotest.QuickReplyTemplate(contentSID))
	a, _ := e.adapter(func(o *Options) { o.ContentSID = contentSID })
	ctx := t.Context()
	a.seen(ctx, ana) // inside the session window: the full card goes as text first
	m := conversation.Message{Image: &conversation.Image{PNG: tinyPNG(t), Alt: "chart"}}
	m.Blocks = append(m.Blocks, conversation.Block{Style: conversation.Title, Text: "🚨 checkout degraded — INC-7F3"})
	for i := range 60 {
		m.Blocks = append(m.Blocks, conversation.Block{Text: fmt.Sprintf("timeline %02d %s", i, strings.Repeat("detail ", 8))})
	}
	m.Buttons = [][]conversation.Button{{{Label: "Approve restart_workers", Data: "ap:AAAAAAAAAAABBBBBBBBBBB"}, {Label: "Reject", Data: "/reject INC-7F3"}}}
	th, ref, err := a.OpenThread(ctx, chatOf(ana), "INC-7F3 · checkout", m)
	if err != nil {
		t.Fatal(err)
	}
	msgs := e.fake.MessagesTo("whatsapp:" + ana)
	if len(msgs) < 2 {
		t.Fatalf("%d messages", len(msgs))
	}
	if th.Root != msgs[0].SID || ref.ID != msgs[len(msgs)-1].SID {
		t.Errorf("thread root %s / card %s, messages %s … %s", th.Root, ref.ID, msgs[0].SID, msgs[len(msgs)-1].SID)
	}
	last := msgs[len(msgs)-1]
	if last.ContentSID != contentSID || last.ContentVariables["2"] != "ap:AAAAAAAAAAABBBBBBBBBBB" || last.ContentVariables["3"] != "/reject INC-7F3" || last.Body != "" {
		t.Errorf("the card's last part did not go through the template: %+v", last)
	}
	for k, v := range last.ContentVariables {
		if len([]rune(v)) > MaxVariable || strings.ContainsAny(v, "\n\t") {
			t.Errorf("variable {{%s}} breaks WhatsApp's rules: %q", k, v)
		}
	}
	if len(msgs[0].MediaURLs) != 1 || !strings.HasPrefix(msgs[0].MediaURLs[0], publicURL+MediaPath) {
		t.Fatalf("chart not attached: %+v", msgs[0].MediaURLs)
	}
	// Twilio fetches the chart from PUBLIC_URL.
	rec := httptest.NewRecorder()
	a.MediaHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, strings.TrimPrefix(msgs[0].MediaURLs[0], publicURL), nil))
	if body, _ := io.ReadAll(rec.Result().Body); rec.Code != http.StatusOK || string(body) != string(tinyPNG(t)) || rec.Header().Get("Content-Type") != "image/png" {
		t.Errorf("media: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	rec = httptest.NewRecorder()
	a.MediaHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, MediaPath+"AAAAAAAAAAAAAAAAAAAAAA.png", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("unknown media: %d", rec.Code)
	}
	var all strings.Builder
	for _, m := range msgs {
		all.WriteString(m.Text())
	}
	for i := range 60 {
		if !strings.Contains(all.String(), fmt.Sprintf("timeline %02d", i)) {
			t.Errorf("line %d lost", i)
		}
	}
	// Edit cannot edit on WhatsApp: the closing line goes out, labelled.
	closed := conversation.Message{Blocks: append(m.Blocks, conversation.Block{Style: conversation.Bold, Text: "✅ Approved by tendai in Telegram at 09:01 UTC: restart_workers"})}
	if err := a.Edit(ctx, ref, closed); err != nil {
		t.Fatal(err)
	}
	msgs = e.fake.MessagesTo("whatsapp:" + ana)
	if got := msgs[len(msgs)-1].Body; got != "INC-7F3 · *✅ Approved by tendai in Telegram at 09:01 UTC: restart_workers*" {
		t.Errorf("edit sent %q", got)
	}
}

func TestRateLimitedAndFailingTwilio(t *testing.T) {
	e := newEnv(t)
	a, slept := e.adapter()
	ctx := t.Context()
	msg := conversation.Message{Blocks: []conversation.Block{{Text: "hello"}}}
	e.fake.FailNext("Messages", http.StatusTooManyRequests, 2)
	if _, err := a.Post(ctx, conversation.Thread{Chat: chatOf(ana)}, msg); err != nil {
		t.Fatalf("a 429 twice should be waited out: %v", err)
	}
	if got := slept.All(); len(got) != 2 || got[0] != time.Second || got[1] != 2*time.Second {
		t.Errorf("waits %v", got)
	}
	if n := len(e.fake.Messages()); n != 1 {
		t.Errorf("%d messages sent", n)
	}
	e.fake.FailNext("Messages", http.StatusInternalServerError, 1)
	before := e.fake.Requests()
	_, err := a.Post(ctx, conversation.Thread{Chat: chatOf(ana)}, msg)
	if !errors.Is(err, ErrRefused) {
		t.Fatalf("a 500: %v", err)
	}
	if e.fake.Requests() != before+1 {
		t.Error("a 5xx was retried (the message might have gone out)")
	}
	if strings.Contains(err.Error(), twiliotest.AuthToken) {
		t.Error("the auth token leaked into an error")
	}
	if _, err := a.Post(ctx, conversation.Thread{Chat: conversation.Chat{Channel: conversation.WhatsApp, ID: "12345"}}, msg); !errors.Is(err, ErrBadAddress) {
		t.Errorf("a bad number: %v", err)
	}
	bad, _ := e.adapter(func(o *Options) { o.AuthToken = "ffffffffffffffffffffffffffffffff" })
	if _, err := bad.Post(ctx, conversation.Thread{Chat: chatOf(ana)}, msg); !errors.Is(err, ErrRefused) || strings.Contains(err.Error(), "ffffffff") {
		t.Errorf("wrong credentials: %v", err)
	}
}

func TestCheckTemplate(t *testing.T) {
	e := newEnv(t)
	a, _ := e.adapter(func(o *Options) { o.ContentSID = contentSID })
	if err := a.CheckTemplate(t.Context()); !errors.Is(err, ErrTemplate) {
		t.Fatalf("unknown template: %v", err)
	}
	e.fake.AddContent(twiliotest.Content{SID: contentSID, Types: map[string]any{"twilio/text": map[string]any{"body": "{{1}}"}}})
	if err := a.CheckTemplate(t.Context()); !errors.Is(err, ErrTemplate) {
		t.Fatalf("a text-only template: %v", err)
	}
	e.fake.AddContent(twiliotest.QuickReplyTemplate(contentSID))
	if err := a.CheckTemplate(t.Context()); err != nil {
		t.Fatalf("the README's template: %v", err)
	}
}

func TestShortTemplatedCardSendsTheChartFirst(t *testing.T) {
	e := newEnv(t)
	e.fake.AddContent(twiliotest.QuickReplyTemplate(contentSID))
	a, _ := e.adapter(func(o *Options) { o.ContentSID = contentSID })
	m := conversation.Message{Image: &conversation.Image{PNG: tinyPNG(t), Alt: "chart"},
		Blocks:  []conversation.Block{{Style: conversation.Title, Text: "🚨 checkout degraded — INC-7F3"}},
		Buttons: [][]conversation.Button{{{Label: "Approve restart_workers", Data: "ap:AAAAAAAAAAABBBBBBBBBBB"}}}}
	// Outside the session window only the template can reach the number.
	if _, _, err := a.OpenThread(t.Context(), chatOf(ana), "INC-7F3 · checkout", m); err != nil {
		t.Fatal(err)
	}
	msgs := e.fake.MessagesTo("whatsapp:" + ana)
	if len(msgs) != 1 || msgs[0].ContentSID != contentSID || len(msgs[0].MediaURLs) != 0 {
		t.Fatalf("outside the window: messages %+v", msgs)
	}
	// Inside it: the card with its chart as a session message, then the template.
	a.seen(t.Context(), ana)
	if _, _, err := a.OpenThread(t.Context(), chatOf(ana), "INC-7F3 · checkout", m); err != nil {
		t.Fatal(err)
	}
	msgs = e.fake.MessagesTo("whatsapp:" + ana)[1:]
	if len(msgs) != 2 || len(msgs[0].MediaURLs) != 1 || msgs[0].ContentSID != "" || msgs[1].ContentSID != contentSID || len(msgs[1].MediaURLs) != 0 {
		t.Fatalf("inside the window: messages %+v", msgs)
	}
}

// TestApprovalTemplateWithinWhatsAppRules: a real dissent card — a long, multi-line
// diagnosis with tabs and runs of spaces — sent to a number outside the session window
// reaches it through the template, every variable one clean line of at most 250
// characters, and the person reads the incident, the action and the diagnosis.
func TestApprovalTemplateWithinWhatsAppRules(t *testing.T) {
	e := newEnv(t)
	e.fake.AddContent(twiliotest.QuickReplyTemplate(contentSID))
	a, _ := e.adapter(func(o *Options) { o.ContentSID = contentSID })
	long := strings.Repeat("the pool is exhausted by slow queries\t\tafter the deploy      ", 12)
	m := conversation.Message{Blocks: []conversation.Block{
		{Style: conversation.Title, Text: "🚨 checkout critical — INC-7F3"},
		{Text: "Health 23/100 · P95 2.8 s · errors 19% · trend degrading"},
		{Style: conversation.Bold, Text: "The lenses disagree:"},
		{Text: "A (llama3.1, 72%): database: " + long + "\n→ restart_workers — check: pool wait"},
		{Text: "B (qwen2.5, 81%): deploy_regression: the isolation-level change → rollback"},
		{Text: "Approving one theory voids the other."},
		{Style: conversation.Muted, Text: "Nothing runs without your approval."},
	}, Buttons: [][]conversation.Button{{{Label: "Trust A: restart_workers", Data: "ap:AAAAAAAAAAABBBBBBBBBBB"}, {Label: "Trust B: rollback", Data: "ap:AAAAAAAAAAACCCCCCCCCCC"},
		{Label: "Reject", Data: "/reject INC-7F3"}}}}
	if _, _, err := a.OpenThread(t.Context(), chatOf(ana), "INC-7F3 · checkout", m); err != nil {
		t.Fatalf("the approval did not reach the approver: %v (refused: %+v)", err, e.fake.Refused())
	}
	msgs := e.fake.MessagesTo("whatsapp:" + ana)
	if len(msgs) != 1 || msgs[0].ContentSID != contentSID {
		t.Fatalf("messages %+v", msgs)
	}
	v := msgs[0].ContentVariables
	for k, x := range v {
		if len([]rune(x)) > MaxVariable || strings.ContainsAny(x, "\n\r\t") || strings.Contains(x, "     ") {
			t.Errorf("variable {{%s}} breaks WhatsApp's rules: %q", k, x)
		}
	}
	if v["1"] != "🚨 checkout critical — INC-7F3" || v["2"] != "ap:AAAAAAAAAAABBBBBBBBBBB" || v["3"] != "/reject INC-7F3" || v["4"] != "restart_workers (theory A)" {
		t.Errorf("variables %q", v)
	}
	if !strings.HasPrefix(v["5"], "Health 23/100 · P95 2.8 s · errors 19% · trend degrading · The lenses disagree: · A (llama3.1, 72%): database: the pool") || !strings.HasSuffix(v["5"], "…") {
		t.Errorf("summary %q", v["5"])
	}
	if txt := msgs[0].Text(); !strings.Contains(txt, "INC-7F3") || !strings.Contains(txt, "Approve runs restart_workers (theory A).") {
		t.Errorf("the approver reads %q", txt)
	}
}

// TestFakeRefusesWhatWhatsAppRefuses: the Twilio fake answers a template variable with a
// newline, a tab, five spaces, over 250 characters or missing as Twilio does, in the
// error shape twilio-go parses.
func TestFakeRefusesWhatWhatsAppRefuses(t *testing.T) {
	e := newEnv(t)
	e.fake.AddContent(twiliotest.QuickReplyTemplate(contentSID))
	a, _ := e.adapter(func(o *Options) { o.ContentSID = contentSID })
	good := map[string]string{"1": "🚨 checkout critical — INC-7F3", "2": "ap:AAAAAAAAAAABBBBBBBBBBB", "3": "/reject INC-7F3", "4": "restart_workers", "5": "Health 23/100"}
	for _, tt := range []struct {
		name, key, value string
		code             int
	}{
		{"newline", "5", "Health 23/100\nP95 2.8 s", 63013},
		{"tab", "1", "INC-7F3\tcheckout", 63013},
		{"five spaces", "4", "restart     workers", 63013},
		{"251 characters", "5", strings.Repeat("x", 251), 21656},
		{"missing", "4", "", 21656},
		{"fine", "5", strings.Repeat("x", 250), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			for k, v := range good {
				vars[k] = v
			}
			vars[tt.key] = tt.value
			if tt.value == "" {
				delete(vars, tt.key)
			}
			js, _ := json.Marshal(vars)
			params := (&api.CreateMessageParams{}).SetTo("whatsapp:" + ana).SetFrom(a.o.From).SetContentSid(contentSID).SetContentVariables(string(js))
			_, err := a.rest.Api.CreateMessage(params)
			var te *client.TwilioRestError
			switch {
			case tt.code == 0 && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.code != 0 && (!errors.As(err, &te) || te.Code != tt.code || te.Status != http.StatusBadRequest):
				t.Fatalf("got %v, want Twilio error %d", err, tt.code)
			}
		})
	}
}
