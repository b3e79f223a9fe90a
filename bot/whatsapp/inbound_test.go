package whatsapp

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/conversation"
)

// Twilio's published example (Security docs): auth token 12345, this URL and these
// parameters sign to 0/KCTR6DLpKmkAf8muzZqo1nDgQ=.
var (
	exampleForm = url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"},
		"From": {"+12349013030"}, "To": {"+18005551212"}}
	exampleSignature = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
)

func post(t *testing.T, base, path string, form url.Values, sig string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, base+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if sig != "" {
		req.Header.Set("X-Twilio-Signature", sig)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestPublishedSignatureExample(t *testing.T) {
	e := newEnv(t)
	with := func(mod func(url.Values)) url.Values {
		f := url.Values{}
		for k, v := range exampleForm {
			f[k] = append([]string(nil), v...)
		}
		mod(f)
		return f
	}
	cases := []struct {
		name   string
		public string
		path   string
		form   url.Values
		want   int
	}{
		// The example is a voice request, not a WhatsApp message: a valid signature is
		// answered 200 and the request ignored.
		{"the published example validates", "https://mycompany.com", "/myapp.php?foo=1&bar=2", exampleForm, http.StatusOK},
		{"with the default port in PUBLIC_URL", "https://mycompany.com:443", "/myapp.php?foo=1&bar=2", exampleForm, http.StatusOK},
		{"a changed param", "https://mycompany.com", "/myapp.php?foo=1&bar=2", with(func(f url.Values) { f.Set("Digits", "1235") }), http.StatusForbidden},
		{"an added param", "https://mycompany.com", "/myapp.php?foo=1&bar=2", with(func(f url.Values) { f.Set("Body", "APPROVE") }), http.StatusForbidden},
		{"a removed param", "https://mycompany.com", "/myapp.php?foo=1&bar=2", with(func(f url.Values) { f.Del("Caller") }), http.StatusForbidden},
		{"a changed URL", "https://mycompany.com", "/myapp.php?foo=1&bar=3", exampleForm, http.StatusForbidden},
		{"another host", "https://othercompany.com", "/myapp.php?foo=1&bar=2", exampleForm, http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, _ := e.adapter(func(o *Options) { o.AuthToken, o.PublicURL = "12345", tc.public })
			rec := &recorder{}
			mux := http.NewServeMux()
			mux.Handle("POST /myapp.php", a.WebhookHandler(rec))
			srv := newServer(t, mux)
			if got := post(t, srv, tc.path, tc.form, exampleSignature); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
			if len(rec.all()) != 0 {
				t.Errorf("the handler was called: %+v", rec.all())
			}
		})
	}
	t.Run("a signed WhatsApp message with a changed body is refused and not recorded", func(t *testing.T) {
		a, _ := e.adapter()
		rec := &recorder{}
		base := serve(t, a, rec)
		form := twiliotest.Inbound{From: ana, Body: "STATUS"}.Form(botNumber)
		sig := twiliotest.Sign(twiliotest.AuthToken, publicURL+WebhookPath, form)
		form.Set("Body", "APPROVE 7F3-K9")
		if got := post(t, base, WebhookPath, form, sig); got != http.StatusForbidden {
			t.Fatalf("status %d", got)
		}
		if got := post(t, base, WebhookPath, form, ""); got != http.StatusForbidden {
			t.Fatalf("unsigned: status %d", got)
		}
		if len(rec.all()) != 0 {
			t.Fatalf("handled: %+v", rec.all())
		}
		if n, _ := e.rdb.Exists(context.Background(), e.prefix+"wa:dedup:"+form.Get("MessageSid")).Result(); n != 0 {
			t.Error("a refused request left a duplicate marker")
		}
	})
}

func TestWebhookMapsMessages(t *testing.T) {
	e := newEnv(t)
	a, _ := e.adapter()
	rec := &recorder{}
	base := serve(t, a, rec)
	ctx := t.Context()
	// A card the bot sent, so a reply to it can be mapped to its incident.
	th, card, err := a.OpenThread(ctx, chatOf(ana), "INC-7F3 · checkout", conversation.Message{Blocks: []conversation.Block{{Style: conversation.Title, Text: "🚨 checkout degraded"}}})
	if err != nil {
		t.Fatal(err)
	}
	if th.Topic != "INC-7F3" {
		t.Fatalf("thread %+v", th)
	}
	user := conversation.User{Channel: conversation.WhatsApp, ID: ana, Name: "Ana"}
	steps := []step{
		{"a word command", twiliotest.Inbound{From: ana, Name: "Ana", Body: "STATUS checkout", SID: sid("SM", 1)},
			&conversation.Inbound{Chat: chatOf(ana), User: user, Text: "/status checkout", MessageID: sid("SM", 1), Direct: true}, ""},
		{"JOIN is /start", twiliotest.Inbound{From: ana, Name: "Ana", Body: "join abcd2345", SID: sid("SM", 2)},
			&conversation.Inbound{Chat: chatOf(ana), User: user, Text: "/start abcd2345", MessageID: sid("SM", 2), Direct: true}, ""},
		{"REPLAY with an incident", twiliotest.Inbound{From: ana, Name: "Ana", Body: "Replay INC-7F3", SID: sid("SM", 3)},
			&conversation.Inbound{Chat: chatOf(ana), User: user, Text: "/replay INC-7F3", MessageID: sid("SM", 3), Direct: true}, ""},
		{"free text stays text", twiliotest.Inbound{From: ana, Name: "Ana", Body: "why is it slow?", SID: sid("SM", 4)},
			&conversation.Inbound{Chat: chatOf(ana), User: user, Text: "why is it slow?", MessageID: sid("SM", 4), Direct: true}, ""},
		{"a reply to the card points at it and its incident", twiliotest.Inbound{From: ana, Name: "Ana", Body: "what changed?", RepliedTo: card.ID, SID: sid("SM", 5)},
			&conversation.Inbound{Chat: chatOf(ana), User: user, Text: "what changed?", ReplyTo: card.ID, Topic: "INC-7F3", MessageID: sid("SM", 5), Direct: true}, ""},
		{"a quick reply is a press", twiliotest.Inbound{From: ana, Name: "Ana", Body: "Approve", ButtonPayload: "ap:AAAAAAAAAAABBBBBBBBBBB", ButtonText: "Approve", RepliedTo: card.ID, SID: sid("SM", 6)},
			&conversation.Inbound{Chat: chatOf(ana), User: user, Data: "ap:AAAAAAAAAAABBBBBBBBBBB", ReplyTo: card.ID, Topic: "INC-7F3", MessageID: sid("SM", 6), Direct: true}, ""},
		{"the same MessageSid again is processed once", twiliotest.Inbound{From: ana, Name: "Ana", Body: "STATUS checkout", SID: sid("SM", 1)}, nil, ""},
		{"a message to another sender of the account is not this bot's", twiliotest.Inbound{From: ana, Name: "Ana", Body: "HELP", SID: sid("SM", 7)}, nil, "whatsapp:+14155550100"},
	}
	for _, st := range steps {
		before := len(rec.all())
		code, err := e.fake.Post(ctx, base+WebhookPath, publicURL+WebhookPath, st.in.Form(st.to(botNumber)), nil)
		if err != nil || code != http.StatusOK {
			t.Fatalf("%s: status %d, %v", st.name, code, err)
		}
		got := rec.all()[before:]
		if st.want == nil {
			if len(got) != 0 {
				t.Errorf("%s: handled %+v", st.name, got)
			}
			continue
		}
		if len(got) != 1 {
			t.Fatalf("%s: handled %d times", st.name, len(got))
		}
		if d := cmp.Diff(*st.want, got[0]); d != "" {
			t.Errorf("%s (-want +got):\n%s", st.name, d)
		}
	}
	// The press was answered in the chat, labelled with its incident; the message to
	// another sender got no answer.
	msgs := e.fake.MessagesTo("whatsapp:" + ana)
	if last := msgs[len(msgs)-1]; last.Body != "INC-7F3 · Pressed ap:AAAAAAAAAAABBBBBBBBBBB" {
		t.Errorf("press answer %q", last.Body)
	}
}

func TestWebhookAcrossReplicasAndLimits(t *testing.T) {
	e := newEnv(t)
	a1, _ := e.adapter()
	a2, _ := e.adapter()
	rec := &recorder{}
	b1, b2 := serve(t, a1, rec), serve(t, a2, rec)
	ctx := t.Context()
	form := twiliotest.Inbound{From: ana, Body: "HELP"}.Form(botNumber)
	for _, b := range []string{b1, b2, b1} {
		if code, err := e.fake.Post(ctx, b+WebhookPath, publicURL+WebhookPath, form, nil); err != nil || code != http.StatusOK {
			t.Fatalf("status %d %v", code, err)
		}
	}
	if n := len(rec.all()); n != 1 {
		t.Fatalf("one message delivered to two replicas three times was handled %d times", n)
	}
	// A retry names its delivery by I-Twilio-Idempotency-Token too.
	retry := twiliotest.Inbound{From: ana, Body: "HELP"}.Form(botNumber)
	token := http.Header{"I-Twilio-Idempotency-Token": {"idem-token-1"}}
	if code, _ := e.fake.Post(ctx, b1+WebhookPath, publicURL+WebhookPath, retry, token); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	retry.Set("MessageSid", sid("SM", 77))
	retry.Set("SmsMessageSid", sid("SM", 77))
	if code, _ := e.fake.Post(ctx, b2+WebhookPath, publicURL+WebhookPath, retry, token); code != http.StatusOK {
		t.Fatalf("status %d", code)
	}
	if n := len(rec.all()); n != 2 {
		t.Fatalf("a delivery repeated under one idempotency token was handled %d times in all", n)
	}
	before := len(rec.all())
	big := twiliotest.Inbound{From: ana, Body: strings.Repeat("x", MaxRequestBody)}.Form(botNumber)
	if code, _ := e.fake.Post(ctx, b1+WebhookPath, publicURL+WebhookPath, big, nil); code != http.StatusRequestEntityTooLarge {
		t.Errorf("over 1 MiB: status %d", code)
	}
	resp, err := http.Get(b1 + WebhookPath)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d", resp.StatusCode)
	}
	// An SMS (not whatsapp:) or another account's message, validly signed, is ignored.
	sms := twiliotest.Inbound{From: ana, Body: "HELP"}.Form(botNumber)
	sms.Set("From", ana)
	other := twiliotest.Inbound{From: ana, Body: "HELP"}.Form(botNumber)
	other.Set("AccountSid", "AC"+strings.Repeat("f", 32))
	for _, f := range []url.Values{sms, other} {
		if code, _ := e.fake.Post(ctx, b1+WebhookPath, publicURL+WebhookPath, f, nil); code != http.StatusOK {
			t.Errorf("status %d", code)
		}
	}
	if n := len(rec.all()); n != before {
		t.Errorf("ignored messages reached the engine: %d", n-before)
	}
}

func sid(prefix string, n int) string {
	s := strings.Repeat("0", 32)
	d := []byte(s)
	d[31] = byte('0' + n%10)
	d[30] = byte('0' + n/10%10)
	return prefix + string(d)
}

// step is one inbound of TestWebhookMapsMessages: sent to To ("" = the bot's sender).
type step struct {
	name string
	in   twiliotest.Inbound
	want *conversation.Inbound
	To   string
}

func (s step) to(bot string) string {
	if s.To != "" {
		return s.To
	}
	return bot
}
