package whatsapp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/webhook"
	"github.com/alertengine/alertengine/bot/whatsapp/cloudtest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/conversationtest"
	"github.com/alertengine/alertengine/fixtures/testkit"
)

const cloudTemplate = "alertengine_approval:en_US"

type cloudEnv struct {
	*env
	fake *cloudtest.Server
	log  *testkit.Log
}

func newCloudEnv(t *testing.T) *cloudEnv {
	t.Helper()
	e := &cloudEnv{env: newEnv(t), fake: cloudtest.New(t), log: &testkit.Log{}}
	e.fake.AddTemplate(cloudtest.Template{Name: "alertengine_approval", Language: "en_US", BodyParams: 3, QuickReplies: 2})
	return e
}

func (e *cloudEnv) adapter(mod ...func(*CloudOptions)) (*Adapter, *testkit.Sleeps) {
	e.t.Helper()
	rec := &testkit.Sleeps{}
	o := CloudOptions{Token: cloudtest.Token, PhoneNumberID: cloudtest.PhoneNumberID, AppSecret: cloudtest.AppSecret,
		VerifyToken: cloudtest.VerifyToken, APIURL: e.fake.URL(), Redis: e.rdb, KeyPrefix: e.prefix, Sleep: rec.Sleep,
		Logger: slog.New(slog.NewTextHandler(io.MultiWriter(e.t.Output(), e.log), &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, m := range mod {
		m(&o)
	}
	a, err := NewCloud(o)
	if err != nil {
		e.t.Fatalf("NewCloud: %v", err)
	}
	return a, rec
}

// serveCloud mounts the adapter's routes on a local server and returns the webhook URL.
func serveCloud(t *testing.T, a *Adapter, h conversation.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	for _, r := range a.Routes(h) {
		mux.Handle(r.Pattern, webhook.Limit(r.Handler, r.MaxBody))
	}
	return newServer(t, mux) + CloudWebhookPath
}

func texts(ms []cloudtest.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Text())
	}
	return out
}

// TestCloudTransportContract: the outbound contract, to a person who wrote today.
func TestCloudTransportContract(t *testing.T) {
	conversationtest.Run(t, func(t *testing.T) conversationtest.Subject {
		e := newCloudEnv(t)
		a, _ := e.adapter()
		e.fake.Opened(ana, time.Now())
		a.seen(t.Context(), ana)
		return conversationtest.Subject{Transport: a, Chat: chatOf(ana), Delivered: func() []string { return texts(e.fake.MessagesTo(ana)) }}
	})
}

// TestCloudInboundContract: people write and press reply buttons through Meta's
// signed webhook; Meta delivers a message twice; someone posts with a signature made
// with another secret.
func TestCloudInboundContract(t *testing.T) {
	conversationtest.RunInbound(t, func(t *testing.T, h conversation.Handler) conversationtest.Platform {
		e := newCloudEnv(t)
		a, _ := e.adapter()
		hook := serveCloud(t, a, h)
		send := func(t *testing.T, in cloudtest.Inbound) {
			t.Helper()
			code, _, err := e.fake.Send(t.Context(), hook, in)
			if err != nil || code != http.StatusOK {
				t.Fatalf("webhook answered %d, %v", code, err)
			}
		}
		return conversationtest.Platform{
			Write: func(t *testing.T, text string, direct bool) bool {
				if !direct {
					return false
				}
				send(t, cloudtest.Inbound{From: ana, Name: "Ana", Text: text})
				return true
			},
			Command: func(name, args string) string { return strings.ToUpper(name) + " " + args },
			Press: func(t *testing.T, data string) string {
				before := len(e.fake.MessagesTo(ana))
				send(t, cloudtest.Inbound{From: ana, Name: "Ana", Reply: &cloudtest.Button{ID: data, Title: "Approve"}})
				return strings.Join(texts(e.fake.MessagesTo(ana)[before:]), "\n")
			},
			Redeliver: func(t *testing.T, text string) {
				in := cloudtest.Inbound{ID: "wamid.HBgMredelivered0001", From: ana, Name: "Ana", Text: text}
				send(t, in)
				send(t, in)
			},
			Forge: func(t *testing.T, text string) int {
				body, _ := cloudtest.Inbound{From: ana, Name: "Ana", Text: text}.Body(time.Now())
				code, err := e.fake.Post(t.Context(), hook, "ffffffffffffffffffffffffffffffff", body)
				if err != nil {
					t.Fatal(err)
				}
				return code
			},
		}
	})
}

// TestCloudForgedSignatures: a missing, malformed or wrong X-Hub-Signature-256 is
// answered 401 and nothing reaches the engine, whatever the body says.
func TestCloudForgedSignatures(t *testing.T) {
	e := newCloudEnv(t)
	a, _ := e.adapter()
	rec := &recorder{}
	hook := serveCloud(t, a, rec)
	body, _ := cloudtest.Inbound{From: ana, Name: "Ana", Text: "APPROVE 7F3-K9"}.Body(time.Now())
	for name, sig := range map[string]string{
		"none":             "",
		"sha1":             "sha1=" + strings.TrimPrefix(cloudtest.Sign(cloudtest.AppSecret, body), "sha256="),
		"not hex":          "sha256=zz",
		"other secret":     cloudtest.Sign("another app secret", body),
		"other body":       cloudtest.Sign(cloudtest.AppSecret, append(body, ' ')),
		"truncated digest": cloudtest.Sign(cloudtest.AppSecret, body)[:40],
	} {
		req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, hook, strings.NewReader(string(body)))
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: answered %d, want 401", name, resp.StatusCode)
		}
	}
	if got := rec.all(); len(got) != 0 {
		t.Errorf("forged requests reached the engine: %+v", got)
	}
	// The same body, signed: it goes through.
	if code, err := e.fake.Post(t.Context(), hook, cloudtest.AppSecret, body); err != nil || code != http.StatusOK {
		t.Fatalf("signed: %d, %v", code, err)
	}
	if got := rec.all(); len(got) != 1 || got[0].Text != "/approve 7F3-K9" || got[0].User.ID != ana || got[0].User.Name != "Ana" {
		t.Errorf("handled %+v", got)
	}
}

// TestCloudVerification: Meta's GET handshake echoes the challenge only for the right
// verify token and mode.
func TestCloudVerification(t *testing.T) {
	e := newCloudEnv(t)
	a, _ := e.adapter()
	hook := serveCloud(t, a, &recorder{})
	get := func(q url.Values) (int, string) {
		resp, err := http.Get(hook + "?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get(url.Values{"hub.mode": {"subscribe"}, "hub.verify_token": {cloudtest.VerifyToken}, "hub.challenge": {"1158201444"}}); code != 200 || body != "1158201444" {
		t.Errorf("handshake: %d %q", code, body)
	}
	for name, q := range map[string]url.Values{
		"wrong token":   {"hub.mode": {"subscribe"}, "hub.verify_token": {cloudtest.VerifyToken + "x"}, "hub.challenge": {"1"}},
		"no token":      {"hub.mode": {"subscribe"}, "hub.challenge": {"1"}},
		"wrong mode":    {"hub.mode": {"unsubscribe"}, "hub.verify_token": {cloudtest.VerifyToken}, "hub.challenge": {"1"}},
		"no challenge":  {"hub.mode": {"subscribe"}, "hub.verify_token": {cloudtest.VerifyToken}},
		"markup echoed": {"hub.mode": {"subscribe"}, "hub.verify_token": {cloudtest.VerifyToken}, "hub.challenge": {"<script>x</script> y"}},
	} {
		if code, body := get(q); code != http.StatusForbidden || strings.Contains(body, "script") {
			t.Errorf("%s: %d %q; want 403", name, code, body)
		}
	}
}

func approvalCard() conversation.Message {
	return conversation.Message{Blocks: []conversation.Block{
		{Style: conversation.Title, Text: "🚨 checkout degraded — INC-7F3"},
		{Style: conversation.Plain, Text: "Health 23/100 · P95 2.8 s"},
		{Style: conversation.Code, Text: "Reply APPROVE 7F3-K9 — Approve restart_workers"},
	}, Buttons: [][]conversation.Button{
		{{Label: "Details", Data: "/details INC-7F3"}, {Label: "Approve restart_workers", Data: "ap:AAAAAAAAAAABBBBBBBBBBB"}},
		{{Label: "Reject", Data: "/reject INC-7F3"}, {Label: "Silence 1h", Data: "/silence INC-7F3 1h"}},
	}}
}

// TestCloudApprovalButtonInWindow: inside the window the card goes as text and then as
// real reply buttons (approval first, at most three, titles cut to 20 characters, the
// approval reference as the id); pressing Approve reaches the engine as that reference,
// pointing at the card, and the engine's answer is sent back.
func TestCloudApprovalButtonInWindow(t *testing.T) {
	e := newCloudEnv(t)
	a, _ := e.adapter(func(o *CloudOptions) { o.Template = cloudTemplate })
	rec := &recorder{}
	hook := serveCloud(t, a, rec)
	if code, _, err := e.fake.Send(t.Context(), hook, cloudtest.Inbound{From: ana, Name: "Ana", Text: "hi"}); err != nil || code != 200 {
		t.Fatalf("hello: %d %v", code, err)
	}
	th, ref, err := a.OpenThread(t.Context(), chatOf(ana), "INC-7F3 · checkout", approvalCard())
	if err != nil {
		t.Fatal(err)
	}
	ms := e.fake.MessagesTo(ana)
	if len(ms) != 2 || ms[0].Type != "text" || !strings.Contains(ms[0].Body, "*🚨 checkout degraded — INC-7F3*") || ms[1].Type != "interactive" {
		t.Fatalf("sent %+v; want the card as text, then its buttons", ms)
	}
	want := []cloudtest.Button{{ID: "ap:AAAAAAAAAAABBBBBBBBBBB", Title: "Approve restart_wor…"}, {ID: "/reject INC-7F3", Title: "Reject"}, {ID: "/details INC-7F3", Title: "Details"}}
	if got := ms[1].Buttons; len(got) != 3 || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Errorf("buttons %+v, want %+v", got, want)
	}
	if !strings.Contains(ms[1].Body, "restart_workers") || ref.ID != ms[1].ID || th.Root != ms[0].ID {
		t.Errorf("buttons message %q (%s); card ref %q, root %q", ms[1].Body, ms[1].ID, ref.ID, th.Root)
	}
	press := cloudtest.Inbound{From: ana, Name: "Ana", Reply: &cloudtest.Button{ID: "ap:AAAAAAAAAAABBBBBBBBBBB", Title: "Approve restart_wor…"}, Context: ms[1].ID}
	if code, _, err := e.fake.Send(t.Context(), hook, press); err != nil || code != 200 {
		t.Fatalf("press: %d %v", code, err)
	}
	got := rec.all()
	if len(got) != 2 || got[1].Data != "ap:AAAAAAAAAAABBBBBBBBBBB" || got[1].Text != "" || got[1].ReplyTo != ref.ID || got[1].Topic != "INC-7F3" {
		t.Fatalf("handled %+v", got)
	}
	if all := e.fake.MessagesTo(ana); len(all) != 3 || !strings.Contains(all[2].Body, "Pressed ap:AAAAAAAAAAABBBBBBBBBBB") || !strings.HasPrefix(all[2].Body, "INC-7F3 · ") {
		t.Errorf("the answer to the press: %q", texts(all))
	}
}

// TestCloudTemplateOutsideWindow: to a number that has not written for 24 hours a card
// with an approval goes only as the template, its parameters single lines and its quick
// replies the approval reference and the reject; without a template the Cloud API
// refuses the card (131047), which the adapter returns and logs.
func TestCloudTemplateOutsideWindow(t *testing.T) {
	e := newCloudEnv(t)
	a, _ := e.adapter(func(o *CloudOptions) { o.Template = cloudTemplate })
	card := approvalCard()
	card.Blocks = append(card.Blocks, conversation.Block{Style: conversation.Plain, Text: "Diagnosis:\n\tworkers    stuck on a lock"})
	if _, _, err := a.OpenThread(t.Context(), chatOf(ana), "INC-7F3 · checkout", card); err != nil {
		t.Fatal(err)
	}
	ms := e.fake.MessagesTo(ana)
	if len(ms) != 1 || ms[0].Type != "template" || ms[0].Template != "alertengine_approval" {
		t.Fatalf("sent %+v; want the template only", ms)
	}
	p := ms[0].Params
	if len(p) != 3 || p[0] != "INC-7F3 · 🚨 checkout degraded — INC-7F3" && p[0] != "🚨 checkout degraded — INC-7F3" || p[1] != "restart_workers" || !strings.Contains(p[2], "Diagnosis: workers stuck on a lock") {
		t.Errorf("parameters %q", p)
	}
	if pl := ms[0].Payloads; len(pl) != 2 || pl[0] != "ap:AAAAAAAAAAABBBBBBBBBBB" || pl[1] != "/reject INC-7F3" {
		t.Errorf("quick replies %q", pl)
	}
	// A plain message outside the window, and a card without a template: refused.
	b, _ := e.adapter()
	if _, err := b.Post(t.Context(), conversation.Thread{Chat: chatOf(ana), Topic: "INC-7F3"}, card); !errors.Is(err, ErrWindowClosed) {
		t.Errorf("card outside the window without a template: %v; want ErrWindowClosed", err)
	}
	if !e.log.Contains("131047") {
		t.Errorf("the refusal was not logged:\n%s", e.log.String())
	}
	// A template press (type button) reaches the engine as its payload.
	rec := &recorder{}
	hook := serveCloud(t, a, rec)
	if code, _, err := e.fake.Send(t.Context(), hook, cloudtest.Inbound{From: ana, Payload: "ap:AAAAAAAAAAABBBBBBBBBBB", Context: ms[0].ID}); err != nil || code != 200 {
		t.Fatalf("press: %d %v", code, err)
	}
	if got := rec.all(); len(got) != 1 || got[0].Data != "ap:AAAAAAAAAAABBBBBBBBBBB" || got[0].Topic != "INC-7F3" {
		t.Errorf("handled %+v", got)
	}
}

// TestCloudStatusCallbacks: statuses are counted; a failed one is counted by its code
// and logged with it; none reaches the engine.
func TestCloudStatusCallbacks(t *testing.T) {
	e := newCloudEnv(t)
	reg := prometheus.NewRegistry()
	a, _ := e.adapter(func(o *CloudOptions) { o.Registry = reg })
	rec := &recorder{}
	hook := serveCloud(t, a, rec)
	for _, st := range []string{"sent", "delivered", "read"} {
		if code, err := e.fake.Post(t.Context(), hook, cloudtest.AppSecret, cloudtest.StatusBody("wamid.HBgMone", ana, st, 0, "")); err != nil || code != 200 {
			t.Fatalf("%s: %d %v", st, code, err)
		}
	}
	if code, err := e.fake.Post(t.Context(), hook, cloudtest.AppSecret, cloudtest.StatusBody("wamid.HBgMtwo", ana, "failed", CodeUndeliverable, "Message undeliverable")); err != nil || code != 200 {
		t.Fatalf("failed: %d %v", code, err)
	}
	// Meta delivers the failure again: it is recorded once.
	if code, err := e.fake.Post(t.Context(), hook, cloudtest.AppSecret, cloudtest.StatusBody("wamid.HBgMtwo", ana, "failed", CodeUndeliverable, "Message undeliverable")); err != nil || code != 200 {
		t.Fatalf("failed again: %d %v", code, err)
	}
	for st, want := range map[string]float64{"sent": 1, "delivered": 1, "read": 1, "failed": 1} {
		if n := testutil.ToFloat64(a.cloud.statuses.WithLabelValues(st)); n != want {
			t.Errorf("status %s counted %v", st, n)
		}
	}
	if n := testutil.ToFloat64(a.cloud.failures.WithLabelValues("131026")); n != 1 {
		t.Errorf("failures by code 131026: %v", n)
	}
	if !e.log.Contains("WhatsApp reported a message failed") || !e.log.Contains("code=131026") || e.log.Contains(ana) {
		t.Errorf("log:\n%s", e.log.String())
	}
	if got := rec.all(); len(got) != 0 {
		t.Errorf("statuses reached the engine: %+v", got)
	}
	if n, err := testutil.GatherAndCount(reg, "alertengine_whatsapp_cloud_statuses_total"); err != nil || n != 4 {
		t.Errorf("registered series: %d, %v", n, err)
	}
}

// TestCloudCheckAndRateLimit: Check is refused as channel.ErrRefused for a wrong or
// expired token; a rate-limited message is sent after waiting.
func TestCloudCheckAndRateLimit(t *testing.T) {
	e := newCloudEnv(t)
	a, sleeps := e.adapter()
	if err := a.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	bad, _ := e.adapter(func(o *CloudOptions) { o.Token = "EAAwrong" })
	if err := bad.Check(t.Context()); !errors.Is(err, channel.ErrRefused) {
		t.Errorf("wrong token: %v", err)
	}
	e.fake.Opened(ana, time.Now())
	a.seen(t.Context(), ana)
	e.fake.RateLimitNext(2)
	if _, err := a.Post(t.Context(), conversation.Thread{Chat: chatOf(ana)}, conversation.Message{Blocks: []conversation.Block{{Text: "after the limit"}}}); err != nil {
		t.Fatalf("Post: %v", err)
	}
	if got := sleeps.All(); len(got) != 2 || got[0] != time.Second || got[1] != 2*time.Second {
		t.Errorf("waits %v", got)
	}
	e.fake.ExpireToken()
	if err := a.Check(t.Context()); !errors.Is(err, channel.ErrRefused) {
		t.Errorf("expired token: %v", err)
	}
	if _, err := a.Post(t.Context(), conversation.Thread{Chat: chatOf(ana)}, conversation.Message{Blocks: []conversation.Block{{Text: "x"}}}); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("Post with an expired token: %v", err)
	}
}

// TestCloudSpec: WHATSAPP_PROVIDER=cloud builds the Cloud adapter from the environment
// (secrets from NAME or NAME_FILE); Twilio stays the default.
func TestCloudSpec(t *testing.T) {
	e := newCloudEnv(t)
	vars := map[string]string{"WHATSAPP_PROVIDER": "cloud", "WHATSAPP_CLOUD_TOKEN": cloudtest.Token, "WHATSAPP_CLOUD_PHONE_NUMBER_ID": cloudtest.PhoneNumberID,
		"WHATSAPP_CLOUD_APP_SECRET": cloudtest.AppSecret, "WHATSAPP_CLOUD_VERIFY_TOKEN": cloudtest.VerifyToken, "WHATSAPP_CLOUD_API_URL": e.fake.URL(),
		"WHATSAPP_CLOUD_TEMPLATE": cloudTemplate}
	lookup := channel.Lookup(func(k string) (string, bool) { v, ok := vars[k]; return v, ok && v != "" })
	if !Spec.EnabledBy(lookup) {
		t.Fatal("not enabled by the Cloud API's variables")
	}
	twilioOnly := channel.Lookup(func(k string) (string, bool) {
		v := map[string]string{"TWILIO_ACCOUNT_SID": "AC0123456789abcdef0123456789abcdef", "TWILIO_AUTH_TOKEN": "x", "TWILIO_WHATSAPP_FROM": botNumber}[k]
		return v, v != ""
	})
	if !Spec.EnabledBy(twilioOnly) || Spec.EnabledBy(channel.Lookup(func(string) (string, bool) { return "", false })) {
		t.Error("EnabledBy does not follow Twilio's variables")
	}
	d := channel.Deps{Env: config.Env{PublicURL: publicURL}, Lookup: lookup, Redis: e.rdb, KeyPrefix: e.prefix, Logger: (&testkit.Log{}).Logger(), Clock: time.Now, Registry: prometheus.NewRegistry()}
	ad, err := Spec.New(d)
	if err != nil {
		t.Fatal(err)
	}
	if err := ad.Check(t.Context()); err != nil {
		t.Errorf("Check: %v", err)
	}
	var patterns []string
	for _, r := range ad.Routes(&recorder{}) {
		patterns = append(patterns, r.Pattern)
	}
	if strings.Join(patterns, ",") != "GET "+CloudWebhookPath+",POST "+CloudWebhookPath {
		t.Errorf("routes %q", patterns)
	}
	delete(vars, "WHATSAPP_CLOUD_APP_SECRET")
	d.Registry = prometheus.NewRegistry()
	if _, err := Spec.New(d); err == nil || !strings.Contains(err.Error(), "WHATSAPP_CLOUD_APP_SECRET") {
		t.Errorf("without the app secret: %v", err)
	}
	vars["WHATSAPP_CLOUD_APP_SECRET"], vars["WHATSAPP_PROVIDER"] = cloudtest.AppSecret, "carrier-pigeon"
	if _, err := Spec.New(d); err == nil || !strings.Contains(err.Error(), "WHATSAPP_PROVIDER") {
		t.Errorf("unknown provider: %v", err)
	}
}

// TestCloudIgnoresOthers: a signed notification for another phone number of the
// account, another object, or a message type the bot does not read reaches nothing and
// is answered 200 (Meta would retry anything else).
func TestCloudIgnoresOthers(t *testing.T) {
	e := newCloudEnv(t)
	a, _ := e.adapter()
	rec := &recorder{}
	hook := serveCloud(t, a, rec)
	body, _ := cloudtest.Inbound{From: ana, Text: "STATUS"}.Body(time.Now())
	other := []byte(strings.Replace(string(body), cloudtest.PhoneNumberID, "999999999999999", 1))
	page := []byte(strings.Replace(string(body), "whatsapp_business_account", "page", 1))
	sticker := []byte(strings.Replace(string(body), `"type":"text"`, `"type":"sticker"`, 1))
	badFrom := []byte(strings.Replace(string(body), `"from":"263771234567"`, `"from":"0263"`, 1))
	for name, b := range map[string][]byte{"other number": other, "other object": page, "sticker": sticker, "bad sender": badFrom, "not JSON": []byte("{")} {
		if string(b) == string(body) {
			t.Fatalf("%s: the body was not changed", name)
		}
		if code, err := e.fake.Post(t.Context(), hook, cloudtest.AppSecret, b); err != nil || code != 200 {
			t.Errorf("%s: %d %v", name, code, err)
		}
	}
	if got := rec.all(); len(got) != 0 {
		t.Errorf("reached the engine: %+v", got)
	}
}

type failOnce struct {
	recorder
	failed bool
}

func (f *failOnce) Handle(ctx context.Context, in conversation.Inbound) (conversation.Reply, error) {
	if !f.failed {
		f.failed = true
		return conversation.Reply{}, errors.New("engine down")
	}
	return f.recorder.Handle(ctx, in)
}

// TestCloudRetryAfterFailure: when the engine fails, the webhook answers 503 and Meta's
// retry of the same message is handled (once).
func TestCloudRetryAfterFailure(t *testing.T) {
	e := newCloudEnv(t)
	a, _ := e.adapter()
	h := &failOnce{}
	hook := serveCloud(t, a, h)
	in := cloudtest.Inbound{ID: "wamid.HBgMretry", From: ana, Text: "is it fixed?"}
	if code, _, err := e.fake.Send(t.Context(), hook, in); err != nil || code != http.StatusServiceUnavailable {
		t.Fatalf("first delivery: %d %v; want 503", code, err)
	}
	for range 2 {
		if code, _, err := e.fake.Send(t.Context(), hook, in); err != nil || code != 200 {
			t.Fatalf("retry: %d %v", code, err)
		}
	}
	if got := h.all(); len(got) != 1 || got[0].Text != "is it fixed?" || got[0].MessageID != "wamid.HBgMretry" {
		t.Errorf("handled %+v", got)
	}
}

// TestCloudCheckTemplate: with the WhatsApp Business Account's id, Check finds the
// approval template in the account's message_templates and wants it APPROVED in the
// configured language, saying what is wrong otherwise; without the id it logs, once,
// that the template was not checked, and passes.
func TestCloudCheckTemplate(t *testing.T) {
	e := newCloudEnv(t)
	waba := func(o *CloudOptions) { o.Template, o.WABAID = cloudTemplate, cloudtest.WABAID }
	a, _ := e.adapter(waba)
	if err := a.Check(t.Context()); err != nil {
		t.Fatalf("an approved template: %v", err)
	}
	cases := []struct {
		name string
		tpl  cloudtest.Template
		opts func(*CloudOptions)
		want string
	}{
		{"pending", cloudtest.Template{Name: "alertengine_approval", Language: "en_US", Status: "PENDING"}, waba, "is PENDING, not APPROVED"},
		{"paused", cloudtest.Template{Name: "alertengine_approval", Language: "en_US", Status: "PAUSED"}, waba, "is PAUSED, not APPROVED"},
		{"another language", cloudtest.Template{}, func(o *CloudOptions) { o.Template, o.WABAID = "alertengine_approval:pt_BR", cloudtest.WABAID },
			"has no pt_BR translation in the WhatsApp Business Account (it has en_US)"},
		{"missing", cloudtest.Template{}, func(o *CloudOptions) { o.Template, o.WABAID = "alertengine_page:en_US", cloudtest.WABAID },
			"alertengine_page does not exist in the WhatsApp Business Account " + cloudtest.WABAID},
		{"wrong account", cloudtest.Template{}, func(o *CloudOptions) { o.Template, o.WABAID = cloudTemplate, "999999999" },
			"does not exist, cannot be loaded due to missing permissions"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newCloudEnv(t)
			if c.tpl.Name != "" {
				e.fake.AddTemplate(cloudtest.Template{Name: c.tpl.Name, Language: c.tpl.Language, BodyParams: 3, QuickReplies: 2, Status: c.tpl.Status})
			}
			a, _ := e.adapter(c.opts)
			err := a.Check(t.Context())
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, channel.ErrRefused) {
				t.Errorf("Check = %v, want %q (and not a refusal)", err, c.want)
			}
		})
	}
	// A paused template is also refused when sent (132015), as Meta refuses it.
	e.fake.AddTemplate(cloudtest.Template{Name: "alertengine_approval", Language: "en_US", BodyParams: 3, QuickReplies: 2, Status: "PAUSED"})
	if _, err := a.Post(t.Context(), conversation.Thread{Chat: chatOf(ana)}, approvalCard()); err == nil {
		t.Error("a card through a paused template was sent")
	}
	// An expired token is a refusal, whichever request finds it.
	e.fake.ExpireToken()
	if err := a.Check(t.Context()); !errors.Is(err, channel.ErrRefused) {
		t.Errorf("expired token: %v", err)
	}

	// Without the account's id: not checked, said once.
	e = newCloudEnv(t)
	a, _ = e.adapter(func(o *CloudOptions) { o.Template = cloudTemplate })
	before := e.fake.Requests()
	for range 2 {
		if err := a.Check(t.Context()); err != nil {
			t.Fatalf("Check without WHATSAPP_CLOUD_WABA_ID: %v", err)
		}
	}
	if n := e.fake.Requests() - before; n != 2 {
		t.Errorf("%d requests for two checks; want the phone number's alone", n)
	}
	if n := strings.Count(e.log.String(), "WHATSAPP_CLOUD_TEMPLATE was not checked: set WHATSAPP_CLOUD_WABA_ID"); n != 1 {
		t.Errorf("the skipped check was logged %d times:\n%s", n, e.log.String())
	}
	if _, err := NewCloud(CloudOptions{Token: cloudtest.Token, PhoneNumberID: cloudtest.PhoneNumberID, AppSecret: "s", VerifyToken: "v",
		Redis: e.rdb, WABAID: "acme-waba"}); err == nil || !strings.Contains(err.Error(), "Business Account id") {
		t.Errorf("a WABA id that is not digits: %v", err)
	}
}
