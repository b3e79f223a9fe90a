package telegram

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// Chats of the tests: a forum supergroup and a plain group.
const (
	forumChat = int64(-1001111111111)
	groupChat = int64(-2222222)
)

var (
	ana    = telegramtest.User{ID: 42, FirstName: "Ana", LastName: "Moyo", Username: "ana"}
	tendai = telegramtest.User{ID: 43, FirstName: "Tendai", Username: "tendai"}
)

const secret = "s3cret-Token_for-tests"

// env is a fake Telegram, a Redis and what the adapters under test share.
type env struct {
	t      *testing.T
	fake   *telegramtest.Server
	rdb    redis.UniversalClient
	prefix string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	fake := telegramtest.New(t)
	rdb, prefix := ledgertest.Redis(t)
	return &env{t: t, fake: fake, rdb: rdb, prefix: prefix}
}

// addForum makes chat a forum supergroup.
func (e *env) addForum(chat int64) { e.fake.AddForum(chat) }

// adapter builds an adapter on the fake; mod adjusts its options.
func (e *env) adapter(mod ...func(*Options)) (*Adapter, *testkit.Sleeps) {
	e.t.Helper()
	rec := &testkit.Sleeps{}
	opts := Options{
		Token:         e.fake.Token(),
		APIURL:        e.fake.URL(),
		Redis:         e.rdb,
		KeyPrefix:     e.prefix,
		Logger:        slog.New(slog.NewTextHandler(e.t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
		WebhookSecret: secret,
		Sleep:         rec.Sleep,
		Workers:       1, // updates handled in order, so "ignored" can be told from "not yet"
	}
	for _, m := range mod {
		m(&opts)
	}
	a, err := New(opts)
	if err != nil {
		e.t.Fatalf("New: %v", err)
	}
	return a, rec
}

// deadline is a context that bounds waits on the fake, so a broken adapter fails the test
// instead of hanging it.
func deadline(t *testing.T) context.Context {
	t.Helper()
	c, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	t.Cleanup(cancel)
	return c
}

// recorder is a conversation.Handler that records what it is given.
type recorder struct {
	mu    sync.Mutex
	got   []conversation.Inbound
	ch    chan conversation.Inbound
	reply func(conversation.Inbound) (conversation.Reply, error)
}

func newRecorder() *recorder {
	return &recorder{ch: make(chan conversation.Inbound, 100)}
}

func (r *recorder) Handle(_ context.Context, in conversation.Inbound) (conversation.Reply, error) {
	r.mu.Lock()
	r.got = append(r.got, in)
	reply := r.reply
	r.mu.Unlock()
	r.ch <- in
	if reply != nil {
		return reply(in)
	}
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

// next waits for the handler's next inbound event.
func (r *recorder) next(t *testing.T, c context.Context) conversation.Inbound {
	t.Helper()
	select {
	case in := <-r.ch:
		return in
	case <-c.Done():
		t.Fatalf("the handler was not called: %v", context.Cause(c))
		return conversation.Inbound{}
	}
}

// run starts long polling; it is stopped, and waited for, when the test ends.
func run(t *testing.T, a *Adapter, h conversation.Handler) {
	t.Helper()
	c, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(c, h) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
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

func chat(id int64) conversation.Chat {
	return conversation.Chat{Channel: conversation.Telegram, ID: strconv.FormatInt(id, 10)}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%q is not a message id: %v", s, err)
	}
	return n
}
