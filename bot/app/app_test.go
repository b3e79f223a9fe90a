package app

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

const fakeChannel conversation.Channel = "fake"

// fakeChat is a chat platform: it records what the engine sends, hands what its webhook
// receives to the handler, and its loop fails as often as told before it runs.
type fakeChat struct {
	mu       sync.Mutex
	opened   []string
	posted   []string
	runs     int
	failRuns int
	check    error
	running  chan struct{}
}

func (f *fakeChat) Channel() conversation.Channel { return fakeChannel }
func (f *fakeChat) Capabilities() conversation.Capabilities {
	return conversation.Capabilities{Buttons: true, Threads: true}
}

func (f *fakeChat) OpenThread(_ context.Context, chat conversation.Chat, title string, msg conversation.Message) (conversation.Thread, conversation.MessageRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.opened = append(f.opened, title)
	id := fmt.Sprint(len(f.opened))
	return conversation.Thread{Chat: chat, Root: id}, conversation.MessageRef{Chat: chat, ID: id}, nil
}

func (f *fakeChat) Post(_ context.Context, th conversation.Thread, m conversation.Message) (conversation.MessageRef, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, b := range m.Blocks {
		f.posted = append(f.posted, b.Text)
	}
	return conversation.MessageRef{Chat: th.Chat, ID: "p"}, nil
}

func (f *fakeChat) Edit(context.Context, conversation.MessageRef, conversation.Message) error {
	return nil
}

func (f *fakeChat) Routes(h conversation.Handler) []channel.Route {
	return []channel.Route{{Pattern: "POST /fake/webhook", Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		rep, err := h.Handle(r.Context(), conversation.Inbound{Chat: conversation.Chat{Channel: fakeChannel, ID: "room"},
			User: conversation.User{ID: "u1", Name: "tendai"}, Text: string(body)})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		_ = json.NewEncoder(w).Encode(rep)
	}), MaxBody: 64}}
}

func (f *fakeChat) Run(ctx context.Context, _ conversation.Handler) error {
	f.mu.Lock()
	f.runs++
	fail := f.runs <= f.failRuns
	f.mu.Unlock()
	if fail {
		return errors.New("platform down")
	}
	close(f.running)
	<-ctx.Done()
	return nil
}

func (f *fakeChat) Check(context.Context) error { return f.check }

func fakeSpec(chat *fakeChat) channel.Spec {
	return channel.Spec{Name: fakeChannel, Title: "Fake", Setting: "FAKE_TOKEN",
		EnabledBy: func(l channel.Lookup) bool { return l.Get("FAKE_TOKEN") != "" },
		New: func(d channel.Deps) (channel.Adapter, error) {
			if d.Lookup.Get("FAKE_TOKEN") != "t0ken" || d.Redis == nil || d.Registry == nil {
				return nil, errors.New("deps not given")
			}
			return chat, nil
		}}
}

func testFile() *config.File {
	return &config.File{Name: "test", Tenants: []config.Tenant{{ID: "acme", Services: []config.Service{{Name: "checkout"}},
		Recovery: config.Recovery{DefaultAction: "restart_workers", Actions: []config.Action{{Name: "restart_workers", Risk: config.RiskLow}}},
		Policy:   config.Policy{MinScoreToAlert: 70, ApprovalTTL: 5 * time.Minute, EscalateAfter: 3 * time.Minute},
		People:   []config.Person{{Name: "tendai", Role: config.RoleApprover}}}}}
}

// newTestApp builds the bot with the fake platform registered; lookup is its environment.
func newTestApp(t *testing.T, chat *fakeChat, lookup map[string]string) *App {
	t.Helper()
	rs := ledgertest.NewServer(t)
	rc := rs.Client(t)
	a, err := New(Options{File: testFile(), Redis: rc, KeyPrefix: rs.Prefix(t), Addr: "127.0.0.1:0", Signer: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)),
		Secret: bytes.Repeat([]byte{2}, 32), Channels: []channel.Spec{fakeSpec(chat)}, ExecutorPoll: 50 * time.Millisecond,
		Lookup: func(k string) (string, bool) { v, ok := lookup[k]; return v, ok },
		Tenants: func(ts []conversation.Tenant) []conversation.Tenant {
			ts[0].Chats = append(ts[0].Chats, conversation.Chat{Channel: fakeChannel, ID: "room"})
			ts[0].People[0].IDs = map[conversation.Channel]string{fakeChannel: "u1"}
			return ts
		}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a
}

// A registered platform the environment enables is built with the assembly's deps, its
// transport reaches the engine (an incident's card is posted on it), its route is
// mounted with its body limit, and its loop runs, restarted after a failure.
func TestRegisteredChannelIsBuiltMountedAndRun(t *testing.T) {
	t.Parallel()
	chat := &fakeChat{failRuns: 1, running: make(chan struct{})}
	a := newTestApp(t, chat, map[string]string{"FAKE_TOKEN": "t0ken"})
	c := a.Components()
	if !slices.Equal(c.Channels, []string{"fake"}) || !slices.Contains(c.Routes, "POST /fake/webhook") || !slices.Contains(c.Loops, "fake") {
		t.Fatalf("components %+v", c)
	}

	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/fake/webhook", "text/plain", strings.NewReader("/status"))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	chat.mu.Lock()
	posted := strings.Join(chat.posted, "\n")
	chat.mu.Unlock()
	if resp.StatusCode != http.StatusOK || !strings.Contains(posted, "checkout") {
		t.Errorf("/status through the platform's route: %d %s; posted %q", resp.StatusCode, body, posted)
	}
	resp, err = http.Post(srv.URL+"/fake/webhook", "text/plain", strings.NewReader(strings.Repeat("x", 65)))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a body over the route's limit: %d, want 413", resp.StatusCode)
	}

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	select {
	case <-chat.running:
	case <-time.After(10 * time.Second):
		t.Fatal("the platform's loop was not restarted after its failures")
	}
	in, err := a.Ledger().Record(ctx, ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout", Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "detector"}})
	if err != nil {
		t.Fatal(err)
	}
	a.Pipeline().Sweep(ctx)
	chat.mu.Lock()
	opened, runs := slices.Clone(chat.opened), chat.runs
	chat.mu.Unlock()
	if len(opened) != 1 || !strings.Contains(opened[0], in.Incident) {
		t.Errorf("threads opened on the platform: %v, want the card of %s", opened, in.Incident)
	}
	if runs != 2 {
		t.Errorf("the loop ran %d times, want 2 (a failure, then running)", runs)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
}

func TestDisabledChannelIsNotBuilt(t *testing.T) {
	t.Parallel()
	a := newTestApp(t, &fakeChat{running: make(chan struct{})}, nil)
	if c := a.Components(); len(c.Channels) != 0 || slices.Contains(c.Routes, "POST /fake/webhook") || slices.Contains(c.Loops, "fake") {
		t.Errorf("a platform the environment does not enable was built: %+v", c)
	}
}

// A refused credential is returned by Check (start-up stops); a platform that is down
// only degrades /readyz.
func TestChannelCheckAtStartAndInReadiness(t *testing.T) {
	t.Parallel()
	chat := &fakeChat{running: make(chan struct{}), check: errors.New("timeout")}
	a := newTestApp(t, chat, map[string]string{"FAKE_TOKEN": "t0ken"})
	if err := a.Check(t.Context()); err != nil {
		t.Errorf("a platform that is down stopped start-up: %v", err)
	}
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"degraded":{"fake":"unavailable"}`) {
		t.Errorf("readyz with the platform down: %d %s", rec.Code, rec.Body)
	}
	// A platform that answered but is not usable as configured is logged as it said, not
	// as unreachable.
	var logged bytes.Buffer
	a.log = slog.New(slog.NewTextHandler(&logged, nil))
	chat.check = errors.New("whatsapp: WHATSAPP_CLOUD_TEMPLATE alertengine_approval:en_US is PAUSED, not APPROVED")
	if err := a.Check(t.Context()); err != nil {
		t.Errorf("a paused template stopped start-up: %v", err)
	}
	if l := logged.String(); !strings.Contains(l, "chat platform fake is degraded at start-up: whatsapp: WHATSAPP_CLOUD_TEMPLATE alertengine_approval:en_US is PAUSED") ||
		strings.Contains(l, "not reachable") {
		t.Errorf("start-up log: %s", l)
	}
	chat.check = fmt.Errorf("FAKE_TOKEN: the platform refused the token: %w", channel.ErrRefused)
	if err := a.Check(t.Context()); !errors.Is(err, channel.ErrRefused) || err.Error() != "FAKE_TOKEN: Fake refused the token" {
		t.Errorf("a refused token: %v, want the platform's ErrRefused", err)
	}
}

func TestOptionsAreChecked(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{}); err == nil {
		t.Error("no Redis, no tenants file: accepted")
	}
}

// The tenants file checks each registered platform's ids by the platform's own rules, and
// a platform configured only through its own variables is on when they are set.
func TestChatChannelsFollowTheRegistration(t *testing.T) {
	t.Parallel()
	var names []string
	for _, c := range ChatChannels(nil) {
		names = append(names, c.Name)
		if c.Chat == nil || c.Person == nil || c.Enabled == nil {
			t.Errorf("%s: id parsers or enablement missing", c.Name)
		}
	}
	if !slices.Equal(names, []string{"telegram", "whatsapp", "slack"}) {
		t.Errorf("channels %v", names)
	}
	if _, err := ChatChannels(nil)[0].Chat("not-a-number"); err == nil {
		t.Error("telegram accepted a chat id that is not a number")
	}
	chat := &fakeChat{}
	on := chatChannels([]channel.Spec{fakeSpec(chat)}, func(k string) (string, bool) { return "t0ken", k == "FAKE_TOKEN" })
	off := chatChannels([]channel.Spec{fakeSpec(chat)}, nil)
	if !on[0].Enabled(config.Env{}) || off[0].Enabled(config.Env{}) {
		t.Error("a platform enabled by its own variable does not follow them")
	}
}

// Driven by hand, the bot needs no address and runs nothing by itself; the taps see what
// the ledger appends and what the pipeline's inbox takes, and Drain handles it.
func TestManualBotIsDrivenByHandAndTapped(t *testing.T) {
	t.Parallel()
	rs := ledgertest.NewServer(t)
	rc := rs.Client(t)
	var mu sync.Mutex
	var appended []string
	a, err := New(Options{File: testFile(), Redis: rc, KeyPrefix: rs.Prefix(t), Manual: true, Replica: "by-hand",
		Signer: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, 32)), Secret: bytes.Repeat([]byte{2}, 32),
		Taps: Taps{Appended: func(tenant string, es []ledger.Entry) {
			mu.Lock()
			defer mu.Unlock()
			for _, e := range es {
				appended = append(appended, tenant+" "+string(e.Event))
			}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	if err := a.Run(t.Context()); err == nil {
		t.Error("Run of a bot driven by hand ran")
	}
	if a.Executor().Consumer() != "by-hand" {
		t.Errorf("executor consumer %q, want the replica's name", a.Executor().Consumer())
	}
	if _, err := a.Ledger().Record(t.Context(), ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout",
		Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "detector"}}); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := slices.Clone(appended)
	mu.Unlock()
	if len(got) != 1 || got[0] != "acme "+string(ledger.Detect) {
		t.Errorf("appended %v, want the DETECTED entry", got)
	}
}
