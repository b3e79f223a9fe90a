package main

import (
	"context"
	"fmt"
	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/channel"
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/console"
	"github.com/alertengine/alertengine/bot/demo"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/alertengine/alertengine/sdk"
	"github.com/redis/go-redis/v9"
)

// storyChat is the demo tenant's console chat as the engine writes to it: every thread,
// post and edit, with a signal when a thread opens.
type storyChat struct {
	mu     sync.Mutex
	n      int
	msgs   map[string]conversation.Message
	opened chan string // the first message's id of each new thread
	edited chan string // the text of every edit
}

func (c *storyChat) Channel() conversation.Channel { return conversation.Console }
func (c *storyChat) Capabilities() conversation.Capabilities {
	return conversation.Capabilities{Buttons: true, Media: true, Threads: true}
}
func (c *storyChat) add(msg conversation.Message) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n++
	id := fmt.Sprintf("m%d", c.n)
	c.msgs[id] = msg
	return id
}
func (c *storyChat) OpenThread(_ context.Context, chat conversation.Chat, _ string, msg conversation.Message) (conversation.Thread, conversation.MessageRef, error) {
	id := c.add(msg)
	c.opened <- id
	return conversation.Thread{Chat: chat, Root: id}, conversation.MessageRef{Chat: chat, ID: id}, nil
}
func (c *storyChat) Post(_ context.Context, th conversation.Thread, msg conversation.Message) (conversation.MessageRef, error) {
	return conversation.MessageRef{Chat: th.Chat, ID: c.add(msg)}, nil
}
func (c *storyChat) Edit(_ context.Context, ref conversation.MessageRef, msg conversation.Message) error {
	c.mu.Lock()
	c.msgs[ref.ID] = msg
	c.mu.Unlock()
	text, _ := c.text(ref.ID)
	select {
	case c.edited <- text:
	default:
	}
	return nil
}
func (c *storyChat) text(id string) (string, []conversation.Button) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, bl := range c.msgs[id].Blocks {
		b.WriteString(bl.Text + "\n")
	}
	var buttons []conversation.Button
	for _, row := range c.msgs[id].Buttons {
		buttons = append(buttons, row...)
	}
	return b.String(), buttons
}

// TestDemoTellsTheREADMEStoryTenTimes runs the demo's first incident ten times on a
// driven clock, each with the spike landing at a different point of a second: the demo
// service's fault (its real Outcome, 40 requests a second) is shipped as the SDK ships it,
// one summary per second, to the bot built exactly as the demo builds it (the real
// detector with its 10 s window, the offline council, the demo commit through the signed
// GitHub webhook). Every run must tell the README's tour: both lenses agree on rollback,
// tendai's press records 1 of 2 and rudo's completes it.
func TestDemoTellsTheREADMEStoryTenTimes(t *testing.T) {
	t.Parallel()
	for run := range 10 {
		t.Run(fmt.Sprintf("run %d", run+1), func(t *testing.T) {
			t.Parallel()
			demoStory(t, time.Duration(run)*97*time.Millisecond)
		})
	}
}

func demoStory(t *testing.T, phase time.Duration) {
	rs := ledgertest.NewServer(t)
	prefix := rs.Prefix(t)
	e := env{"REDIS_URL": rs.URL, "ADDR": "127.0.0.1:0", "LOG_LEVEL": "error"}
	cfgEnv, err := config.LoadEnv(e.lookup, config.Demo)
	if err != nil {
		t.Fatal(err)
	}
	cfgEnv.GitHubWebhookSecret = config.Secret(strings.Repeat("g", 32))
	rc := redis.NewClient(mustParseRedisURL(t, rs.URL))
	t.Cleanup(func() { _ = rc.Close() })
	// The driven clock starts at the wall clock's time: a real Redis (REDIS_URL) expires
	// keys at absolute times the bot computes from this clock.
	clock := &fakeClock{now: time.Now().UTC().Truncate(time.Second)}
	key, _ := cfgEnv.SigningKey()
	secret := strings.Repeat("r", 24)
	chat := &storyChat{msgs: map[string]conversation.Message{}, opened: make(chan string, 4), edited: make(chan string, 16)}
	sys, err := app.New(app.Options{Env: cfgEnv, File: demo.Config("http://127.0.0.1:9/recover", secret), Redis: rc, Logger: newLogger(cfgEnv, io.Discard),
		Signer: key, Secret: []byte(strings.Repeat("s", 32)), Addr: "127.0.0.1:0", KeyPrefix: prefix, Tenants: demo.WithConsole, Clock: clock.Now,
		Adapters: []func(app.Parts) (channel.Adapter, error){func(app.Parts) (channel.Adapter, error) { return sendOnly{chat}, nil }}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pipeDone := make(chan struct{})
	go func() { defer close(pipeDone); _ = sys.Pipeline().Run(ctx) }()
	defer func() { cancel(); <-pipeDone }()
	if err := sys.Detector().EnsureGroups(ctx); err != nil {
		t.Fatal(err)
	}

	// The demo service, for its fault's shape only: its requests are simulated below.
	svc, err := demo.New(demo.Options{Tenant: demo.Tenant, Service: demo.ServiceName, RedisURL: rs.URL, KeyPrefix: prefix + "unused:", RecoverySecret: secret,
		Actions: []string{"restart_workers", "rollback"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })

	const rate = 40
	start := clock.Now()
	spikeAt := start.Add(20*time.Second + phase) // the baseline is learned first
	// completed[bucket] are the latencies and statuses of the requests that ended in it.
	type bucket struct {
		lat   []float64
		codes []int
	}
	completed := map[int64]*bucket{}
	var faultN uint64
	for i := 0; ; i++ {
		at := start.Add(time.Duration(i) * time.Second / rate)
		if at.After(spikeAt.Add(40 * time.Second)) {
			break
		}
		wait, code := 8*time.Millisecond+time.Duration(i%3)*time.Millisecond, 200
		if !at.Before(spikeAt) {
			faultN++
			var fail bool
			wait, fail = svc.Outcome(faultN)
			wait += time.Duration(i%5) * wait / 20 // the service's jitter, up to a quarter
			if fail {
				code = 500
			}
		}
		end := at.Add(wait).Unix()
		b := completed[end]
		if b == nil {
			b = &bucket{}
			completed[end] = b
		}
		b.lat = append(b.lat, float64(wait.Milliseconds()))
		b.codes = append(b.codes, code)
	}

	// The demo commit goes through the bot's real GitHub webhook just before the spike.
	srv := httptest.NewServer(sys.Handler())
	defer srv.Close()
	deployer, err := demo.NewDeployer(demo.DeployerOptions{WebhookURL: srv.URL + "/github/webhook", Secret: []byte(cfgEnv.GitHubWebhookSecret.Reveal()),
		Repo: demo.Repo, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}

	stream := sdk.StreamKey(prefix, demo.Tenant, demo.ServiceName)
	var card string
	pushed := false
	for step := 0; card == "" && step < 4*70; step++ {
		clock.Advance(250 * time.Millisecond)
		now := clock.Now()
		if !pushed && !now.Before(spikeAt.Add(-time.Second)) {
			if _, err := deployer.Push(ctx); err != nil {
				t.Fatal(err)
			}
			pushed = true
		}
		// The SDK ships a bucket once it is over.
		if now.Truncate(time.Second).Equal(now) {
			sec := now.Add(-time.Second).Unix()
			if b := completed[sec]; b != nil {
				s := sdk.NewSummaryForTest(demo.Tenant, demo.ServiceName, "demo-1", time.Unix(sec, 0), b.lat, b.codes)
				if err := rc.XAdd(ctx, &redis.XAddArgs{Stream: stream, Values: s.Fields()}).Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, err := sys.Detector().Ingest(ctx); err != nil {
			t.Fatal(err)
		}
		if err := sys.Detector().Evaluate(ctx, now); err != nil {
			t.Fatal(err)
		}
		st, err := sys.Detector().Status(ctx, demo.Tenant, demo.ServiceName)
		if err != nil {
			t.Fatal(err)
		}
		if st.Alerting {
			if now.Before(spikeAt) {
				t.Fatalf("an incident opened before the spike: %+v", st.Last)
			}
			select {
			case card = <-chat.opened:
			case <-time.After(time.Minute):
				t.Fatal("the detector opened an incident but no card came within a minute")
			}
		}
	}
	if card == "" {
		t.Fatal("no incident opened within 50 s of the spike")
	}
	text, buttons := chat.text(card)
	// The card is in the chat as soon as OpenThread returns; the engine then stores where
	// it is, which is what the approval's edit reads. A person cannot press in between,
	// this test can: wait for the placement first.
	code := regexp.MustCompile(`INC-[0-9A-Z]+`).FindString(text)
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		missing, err := sys.Engine().Unpresented(ctx, demo.Tenant, code)
		if err != nil {
			t.Fatal(err)
		}
		if !missing {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the card of %s was posted but its placement never stored", code)
		}
	}
	if !strings.Contains(text, "Both lenses agree") || strings.Contains(text, "disagree") {
		t.Fatalf("the first card is not the README's (both lenses agree):\n%s", text)
	}
	var approve conversation.Button
	for _, b := range buttons {
		if strings.HasPrefix(b.Data, "ap:") {
			approve = b
		}
	}
	if !strings.Contains(approve.Label, "rollback") {
		t.Fatalf("the card's approval is %q, not rollback:\n%s", approve.Label, text)
	}
	press := func(who string) string {
		rep, err := sys.Engine().Handle(ctx, conversation.Inbound{Chat: console.Chat(demo.Tenant), User: console.UserOf(who), Data: approve.Data, ReplyTo: card, Direct: true})
		if err != nil {
			t.Fatalf("%s's press: %v", who, err)
		}
		return rep.Toast
	}
	if toast := press("tendai"); !strings.Contains(toast, "second approver is needed") {
		t.Fatalf("tendai's press: %q, want 1 of 2 recorded", toast)
	}
	if toast := press("rudo"); !strings.Contains(toast, "Approved") {
		t.Fatalf("rudo's press: %q, want the approval completed", toast)
	}
	// The card is edited to say who approved (the engine edits it after answering).
	approved := regexp.MustCompile(`Approved by (rudo and tendai|tendai and rudo) at`)
	for {
		select {
		case text := <-chat.edited:
			if approved.MatchString(text) {
				return
			}
		case <-time.After(time.Minute):
			text, _ := chat.text(card)
			t.Fatalf("the card does not say rudo and tendai approved:\n%s", text)
		}
	}
}

// sendOnly is a chat that only receives what the engine sends: no routes, no loop.
type sendOnly struct{ conversation.Transport }

func (sendOnly) Routes(conversation.Handler) []channel.Route     { return nil }
func (sendOnly) Run(context.Context, conversation.Handler) error { return nil }
func (sendOnly) Check(context.Context) error                     { return nil }
