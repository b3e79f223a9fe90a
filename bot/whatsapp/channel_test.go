package whatsapp

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/prometheus/client_golang/prometheus"
)

func TestParseNumber(t *testing.T) {
	for in, want := range map[string]string{
		"+263771234567":           "+263771234567",
		" whatsapp:+263771234567": "+263771234567",
		"+14155238886 ":           "+14155238886",
		"263771234567":            "",
		"+0771234567":             "",
		"+26377":                  "",
		"whatsapp:":               "",
		"":                        "",
		"+2637712345678901":       "",
	} {
		got, err := ParseNumber(in)
		switch {
		case want != "" && (err != nil || got != want):
			t.Errorf("ParseNumber(%q) = %q, %v; want %q", in, got, err, want)
		case want == "" && (err == nil || err.Error() != `want an E.164 number like "+263771234567"`):
			t.Errorf("ParseNumber(%q) = %q, %v; want the E.164 error", in, got, err)
		}
	}
}

func (e *env) whatsappEnv() config.Env {
	return config.Env{TwilioAccountSID: twiliotest.AccountSID, TwilioAuthToken: config.Secret(twiliotest.AuthToken), TwilioWhatsAppFrom: botNumber,
		TwilioAPIURL: e.fake.URL(), TwilioApprovalContentSID: contentSID, PublicURL: publicURL}
}

// TestSpecRoutes: the spec builds the adapter from the environment; its routes are
// Twilio's webhook and the images Twilio fetches.
func TestSpecRoutes(t *testing.T) {
	e := newEnv(t)
	env := e.whatsappEnv()
	if Spec.Enabled(config.Env{TwilioAccountSID: twiliotest.AccountSID}) || !Spec.Enabled(env) {
		t.Fatal("Enabled does not follow the three Twilio settings")
	}
	a, err := Spec.New(channel.Deps{Env: env, Redis: e.rdb, KeyPrefix: e.prefix, Logger: (&testkit.Log{}).Logger(), Clock: time.Now, Registry: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	if a.Channel() != conversation.WhatsApp || a.Capabilities().Name != "WhatsApp" {
		t.Errorf("channel %q named %q", a.Channel(), a.Capabilities().Name)
	}
	rec := &recorder{}
	mux := http.NewServeMux()
	for _, r := range a.Routes(rec) {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	in := twiliotest.Inbound{From: ana, Name: "Ana", Body: "status checkout"}
	if code, err := e.fake.Post(t.Context(), srv.URL+WebhookPath, publicURL+WebhookPath, in.Form(botNumber), nil); err != nil || code != http.StatusOK {
		t.Fatalf("webhook: %d, %v", code, err)
	}
	if got := rec.all(); len(got) != 1 || got[0].Text != "/status checkout" {
		t.Errorf("handled %+v", got)
	}
	// The media route serves what the adapter stored, and nothing else.
	resp, err := http.Get(srv.URL + MediaPath + "AAAAAAAAAAAAAAAAAAAAAA.png")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown image: %d", resp.StatusCode)
	}
}

// TestCheck: the account fetch succeeds with the right credentials and is refused, as
// channel.ErrRefused, with a wrong auth token.
func TestCheck(t *testing.T) {
	e := newEnv(t)
	a, _ := e.adapter()
	if err := a.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	bad, _ := e.adapter(func(o *Options) { o.AuthToken = "ffffffffffffffffffffffffffffffff" })
	if err := bad.Check(t.Context()); !errors.Is(err, channel.ErrRefused) {
		t.Errorf("Check with a wrong token = %v", err)
	}
	e.fake.FailNext("Accounts", http.StatusInternalServerError, 1)
	if err := a.Check(t.Context()); err == nil || errors.Is(err, channel.ErrRefused) {
		t.Errorf("Check when Twilio fails = %v; want an error that is not a refusal", err)
	}
}

// TestRunWarnsOnceAboutTheTemplate: an unusable approval template is said once, in the
// log, and Run keeps going until its context ends.
func TestRunWarnsOnceAboutTheTemplate(t *testing.T) {
	e := newEnv(t)
	var log testkit.Log
	a, _ := e.adapter(func(o *Options) { o.ContentSID, o.Logger = contentSID, log.Logger() })
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, &recorder{}) }()
	deadline := time.Now().Add(10 * time.Second)
	for !log.Contains("TWILIO_APPROVAL_CONTENT_SID: approvals fall back to reply codes") {
		if time.Now().After(deadline) {
			t.Fatalf("no warning; log:\n%s", log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned before its context ended: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}

	// A usable template: no warning.
	e.fake.AddContent(twiliotest.QuickReplyTemplate(contentSID))
	var quiet testkit.Log
	b, _ := e.adapter(func(o *Options) { o.ContentSID, o.Logger = contentSID, quiet.Logger() })
	before := e.fake.Requests()
	ctx, cancel = context.WithCancel(t.Context())
	go func() { done <- b.Run(ctx, &recorder{}) }()
	for e.fake.Requests() == before {
		if time.Now().After(deadline) {
			t.Fatal("Run did not fetch the template")
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the answer reaches Run
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if quiet.Contains("fall back") {
		t.Errorf("warned about a usable template:\n%s", quiet.String())
	}
}
