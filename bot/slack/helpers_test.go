package slack

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/slack/slacktest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

const general = "CGENERAL01"

const (
	alice = "UALICE0001"
	bob   = "UBOB000001"
)

// sleeps records the waits an adapter asked for instead of waiting.
// Its clock moves only by what was slept.
type sleeps struct {
	mu    sync.Mutex
	took  []time.Duration
	clock time.Time
}

func (s *sleeps) sleep(ctx context.Context, d time.Duration) error {
	s.mu.Lock()
	s.took = append(s.took, d)
	s.clock = s.clock.Add(d)
	s.mu.Unlock()
	return ctx.Err()
}

func (s *sleeps) now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.clock
}

func (s *sleeps) all() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.took...)
}

// newAdapter builds an adapter on a fresh fake and Redis prefix; change edits its
// options first.
func newAdapter(t *testing.T, change ...func(*Options)) (*Adapter, *slacktest.Server, *sleeps) {
	t.Helper()
	fake := slacktest.New(t)
	rdb, prefix := ledgertest.Redis(t)
	sl := &sleeps{clock: time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)}
	o := Options{Token: slacktest.BotToken, SigningSecret: slacktest.SigningSecret, APIURL: fake.URL,
		Redis: rdb, KeyPrefix: prefix, Sleep: sl.sleep, Now: sl.now, HandleTimeout: 10 * time.Second}
	for _, c := range change {
		c(&o)
	}
	a, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return a, fake, sl
}

// recorder is an engine that records what it is handed and answers with toast.
type recorder struct {
	mu    sync.Mutex
	got   []conversation.Inbound
	toast string
	err   error
}

func newRecorder(toast string) *recorder {
	return &recorder{toast: toast}
}

func (r *recorder) Handle(_ context.Context, in conversation.Inbound) (conversation.Reply, error) {
	r.mu.Lock()
	r.got = append(r.got, in)
	r.mu.Unlock()
	return conversation.Reply{Toast: r.toast}, r.err
}

func (r *recorder) inbound() []conversation.Inbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]conversation.Inbound(nil), r.got...)
}

// serve mounts the adapter's routes on a test server and returns its base URL.
func serve(t *testing.T, a *Adapter, h conversation.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	for _, r := range a.Routes(h) {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL
}

func tinyPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func text(s string) conversation.Message {
	return conversation.Message{Blocks: []conversation.Block{{Style: conversation.Plain, Text: s}}}
}

func chat(id string) conversation.Chat { return conversation.Chat{Channel: Channel, ID: id} }
