package telegram

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/prometheus/client_golang/prometheus"
)

func TestParseIDs(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		user     bool
		ok       bool
	}{
		{in: "-1001234567890", want: "-1001234567890", ok: true},
		{in: "42", want: "42", ok: true},
		{in: "+42", want: "42", ok: true},
		{in: "0"},
		{in: "abc"},
		{in: ""},
		{in: "1.5"},
		{in: "99999999999999999999"},
		{in: "42", want: "42", user: true, ok: true},
		{in: "-42", user: true},
		{in: "0", user: true},
		{in: "ana", user: true},
	} {
		parse, wantErr := ParseChatID, "want a numeric Telegram chat id (groups are negative, e.g. -1001234567890)"
		if tc.user {
			parse, wantErr = ParseUserID, "want the person's numeric Telegram user id (a positive number)"
		}
		got, err := parse(tc.in)
		switch {
		case tc.ok && (err != nil || got != tc.want):
			t.Errorf("parse(%q, user %v) = %q, %v; want %q", tc.in, tc.user, got, err, tc.want)
		case !tc.ok && (err == nil || err.Error() != wantErr):
			t.Errorf("parse(%q, user %v) = %q, %v; want the error %q", tc.in, tc.user, got, err, wantErr)
		}
	}
}

// deps are what the assembly would give the spec for env.
func (e *env) deps(env config.Env) channel.Deps {
	return channel.Deps{Env: env, Redis: e.rdb, KeyPrefix: e.prefix, Logger: slog.New(slog.NewTextHandler(e.t.Output(), nil)),
		Clock: time.Now, Registry: prometheus.NewRegistry()}
}

func (e *env) telegramEnv(webhook bool) config.Env {
	env := config.Env{TelegramBotToken: config.Secret(e.fake.Token()), TelegramAPIURL: e.fake.URL()}
	if webhook {
		env.PublicURL = "https://bot.example"
		env.TelegramWebhookSecret = config.Secret(secret)
	}
	return env
}

// TestSpecLongPolling: with a token only, the adapter long-polls and serves no route.
func TestSpecLongPolling(t *testing.T) {
	e := newEnv(t)
	if Spec.Enabled(config.Env{}) || !Spec.Enabled(e.telegramEnv(false)) {
		t.Fatal("Enabled does not follow TELEGRAM_BOT_TOKEN")
	}
	a, err := Spec.New(e.deps(e.telegramEnv(false)))
	if err != nil {
		t.Fatal(err)
	}
	if a.Channel() != conversation.Telegram || a.Capabilities().Name != "Telegram" {
		t.Errorf("channel %q named %q", a.Channel(), a.Capabilities().Name)
	}
	rec := newRecorder()
	if routes := a.Routes(rec); len(routes) != 0 {
		t.Errorf("long polling serves routes %+v", routes)
	}
	ctx, cancel := context.WithCancel(deadline(t))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, rec) }()
	e.fake.SendText(groupChat, ana, "/status checkout")
	if in := rec.next(t, deadline(t)); in.Text != "/status checkout" {
		t.Errorf("got %+v", in)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestSpecWebhook: with PUBLIC_URL and TELEGRAM_WEBHOOK_SECRET, Run registers the webhook
// and keeps it until its context ends; the route takes the updates.
func TestSpecWebhook(t *testing.T) {
	e := newEnv(t)
	a, err := Spec.New(e.deps(e.telegramEnv(true)))
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	routes := a.Routes(rec)
	if len(routes) != 1 || routes[0].Pattern != "POST /telegram/webhook" || routes[0].MaxBody != MaxWebhookBody {
		t.Fatalf("routes %+v", routes)
	}
	ctx, cancel := context.WithCancel(deadline(t))
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, rec) }()
	if _, err := e.fake.WaitFor(deadline(t), func(c telegramtest.Call) bool { return c.Method == "setWebhook" }); err != nil {
		t.Fatal(err)
	}
	if url, got := e.fake.Webhook(); url != "https://bot.example/telegram/webhook" || got != secret {
		t.Errorf("webhook %q with secret %q", url, got)
	}
	select {
	case err := <-done:
		t.Fatalf("Run returned before its context ended: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	mux := http.NewServeMux()
	mux.Handle(routes[0].Pattern, routes[0].Handler)
	srv := httptest.NewServer(mux)
	defer srv.Close()
	if status, err := e.fake.PostWebhook(deadline(t), srv.URL+"/telegram/webhook", secret, messageUpdate(t, 7, ana, "hello")); err != nil || status != http.StatusOK {
		t.Fatalf("webhook delivery: %d, %v", status, err)
	}
	if got := rec.all(); len(got) != 1 || got[0].Text != "hello" {
		t.Errorf("handled %+v", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestSpecWebhookNeedsSecret(t *testing.T) {
	e := newEnv(t)
	for name, o := range map[string]Options{
		"no secret":    {PublicURL: "https://bot.example"},
		"relative URL": {PublicURL: "bot.example", WebhookSecret: secret},
	} {
		o.Token, o.Redis = e.fake.Token(), e.rdb
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestCheckRefusedToken: a token Telegram answers 401 stops start-up: the error is both
// ErrTokenRefused and channel.ErrRefused.
func TestCheckRefusedToken(t *testing.T) {
	e := newEnv(t)
	good, _ := e.adapter()
	if err := good.Check(deadline(t)); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if name, err := good.Username(deadline(t)); err != nil || name != e.fake.Bot().Username {
		t.Errorf("Username = %q, %v", name, err)
	}
	bad, _ := e.adapter(func(o *Options) { o.Token = "999:not-the-token" })
	err := bad.Check(deadline(t))
	if !errors.Is(err, ErrTokenRefused) || !errors.Is(err, channel.ErrRefused) {
		t.Errorf("Check with a refused token = %v", err)
	}
}
