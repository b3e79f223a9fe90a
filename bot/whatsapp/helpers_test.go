package whatsapp

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/bot/webhook"
	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

const (
	botNumber  = "whatsapp:+14155238886"
	ana        = "+263771234567"
	publicURL  = "https://bot.example.com"
	contentSID = "HX0123456789abcdef0123456789abcdef"
)

type env struct {
	t      *testing.T
	fake   *twiliotest.Server
	rdb    *redis.Client
	prefix string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	rdb, prefix := ledgertest.Redis(t)
	return &env{t: t, fake: twiliotest.New(t), rdb: rdb, prefix: prefix}
}

func (e *env) adapter(mod ...func(*Options)) (*Adapter, *testkit.Sleeps) {
	e.t.Helper()
	rec := &testkit.Sleeps{}
	o := Options{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken, From: botNumber, APIURL: e.fake.URL(),
		PublicURL: publicURL, Redis: e.rdb, KeyPrefix: e.prefix, Sleep: rec.Sleep,
		Logger: slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))}
	for _, m := range mod {
		m(&o)
	}
	a, err := New(o)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	return a, rec
}

// serve mounts the adapter's webhook on a local server; Twilio signs for publicURL.
func serve(t *testing.T, a *Adapter, h conversation.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("POST "+WebhookPath, webhook.Limit(a.WebhookHandler(h), MaxRequestBody))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

type recorder struct {
	mu  sync.Mutex
	got []conversation.Inbound
}

func (r *recorder) Handle(_ context.Context, in conversation.Inbound) (conversation.Reply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, in)
	if in.Pressed() {
		return conversation.Reply{Toast: "Pressed " + in.Data}, nil
	}
	return conversation.Reply{}, nil
}

func (r *recorder) all() []conversation.Inbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]conversation.Inbound(nil), r.got...)
}

func chatOf(n string) conversation.Chat {
	return conversation.Chat{Channel: conversation.WhatsApp, ID: n}
}

func tinyPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 8, 4))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func newServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}
