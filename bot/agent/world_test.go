package agent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/agent"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/redis/go-redis/v9"
)

// chat is an in-memory chat platform with Telegram's capabilities: it keeps every
// message as it now stands.
type chat struct {
	mu   sync.Mutex
	next int
	msgs []*posted
}

type posted struct {
	ID  string
	Msg conversation.Message
}

func (c *chat) Channel() conversation.Channel { return conversation.Telegram }
func (c *chat) Capabilities() conversation.Capabilities {
	return conversation.Capabilities{Name: "Telegram", Buttons: true, MaxButtonData: 64, Direct: true, Media: true, Threads: true}
}
func (c *chat) add(ch conversation.Chat, m conversation.Message) conversation.MessageRef {
	c.next++
	p := &posted{ID: fmt.Sprint(c.next), Msg: m}
	c.msgs = append(c.msgs, p)
	return conversation.MessageRef{Chat: ch, ID: p.ID}
}
func (c *chat) OpenThread(_ context.Context, ch conversation.Chat, _ string, m conversation.Message) (conversation.Thread, conversation.MessageRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ref := c.add(ch, m)
	return conversation.Thread{Chat: ch, Root: ref.ID}, ref, nil
}
func (c *chat) Post(_ context.Context, th conversation.Thread, m conversation.Message) (conversation.MessageRef, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.add(th.Chat, m), nil
}
func (c *chat) Edit(_ context.Context, ref conversation.MessageRef, m conversation.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, p := range c.msgs {
		if p.ID == ref.ID {
			p.Msg = m
			return nil
		}
	}
	return fmt.Errorf("no message %s", ref.ID)
}

func text(m conversation.Message) string {
	var b strings.Builder
	for _, bl := range m.Blocks {
		b.WriteString(bl.Text)
		b.WriteByte('\n')
	}
	return b.String()
}

// find returns the latest message containing s.
func (c *chat) find(s string) (conversation.Message, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := len(c.msgs) - 1; i >= 0; i-- {
		if strings.Contains(text(c.msgs[i].Msg), s) {
			return c.msgs[i].Msg, true
		}
	}
	return conversation.Message{}, false
}

const group = "-100200"

var (
	approverUser = conversation.User{Channel: conversation.Telegram, ID: "11", Name: "Tendai"}
	viewerUser   = conversation.User{Channel: conversation.Telegram, ID: "33", Name: "Vimbai"}
	secondUser   = conversation.User{Channel: conversation.Telegram, ID: "77", Name: "Rudo"}
)

const (
	acmeSecret    = "acme-token-0123456789"
	betaSecret    = "beta-token-0123456789"
	revokedSecret = "revoked-token-0123456789"
	slowSecret    = "slow-token-0123456789"
)

type world struct {
	t      testing.TB
	mu     sync.Mutex
	now    time.Time
	led    *ledger.Ledger
	eng    *conversation.Engine
	gate   *agent.Gate
	tg     *chat
	srv    *httptest.Server
	key    ed25519.PrivateKey
	rc     *redis.Client
	prefix string
}

func (w *world) clock() time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.now
}

func (w *world) advance(d time.Duration) {
	w.mu.Lock()
	w.now = w.now.Add(d)
	w.mu.Unlock()
}

func newWorld(t testing.TB) *world {
	t.Helper()
	return newWorldPoll(t, 10*time.Millisecond)
}

// newWorldPoll builds the world with the gate's long-poll interval (0: its default).
func newWorldPoll(t testing.TB, poll time.Duration) *world {
	t.Helper()
	rc, prefix := ledgertest.Redis(t)
	w := &world{t: t, now: time.Now().UTC().Truncate(time.Second), tg: &chat{}, rc: rc, prefix: prefix}
	store := ledger.NewRedisStore(rc, prefix)
	led, err := ledger.New(ledger.Options{Store: store, Clock: w.clock})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := approval.New(approval.Options{Redis: rc, KeyPrefix: prefix, Secret: []byte(strings.Repeat("k", 32)), Ledger: led, Clock: w.clock})
	if err != nil {
		t.Fatal(err)
	}
	tenants := []conversation.Tenant{{
		ID: "acme", Chats: []conversation.Chat{{Channel: conversation.Telegram, ID: group}},
		People: []conversation.Person{
			{Name: "tendai", Approver: true, IDs: map[conversation.Channel]string{conversation.Telegram: "11"}},
			{Name: "rudo", Approver: true, IDs: map[conversation.Channel]string{conversation.Telegram: "77"}},
			{Name: "vimbai", IDs: map[conversation.Channel]string{conversation.Telegram: "33"}},
		},
		Actions:       []conversation.Action{{Name: "restart_workers"}, {Name: "rollback", HighRisk: true}},
		DefaultAction: "restart_workers", ApprovalTTL: 5 * time.Minute, PolicyVersion: "pol-1",
	}, {
		ID: "beta", Chats: []conversation.Chat{{Channel: conversation.Telegram, ID: "-100300"}},
		Actions: []conversation.Action{{Name: "restart_workers"}}, ApprovalTTL: 5 * time.Minute, PolicyVersion: "pol-b",
	}}
	w.led = led
	w.eng, err = conversation.New(conversation.Options{Ledger: led, Approvals: ap, Redis: rc, KeyPrefix: prefix, Clock: w.clock,
		Transports: []conversation.Transport{w.tg}, Tenants: tenants})
	if err != nil {
		t.Fatal(err)
	}
	toks, err := agent.NewTokens([]agent.Token{
		{Agent: "sre-bot", Tenant: "acme", SHA256: agent.HashSecret(acmeSecret), Actions: []string{"restart_workers", "rollback"}, External: []string{"scale_up"}, Rate: 1 << 20},
		{Agent: "slow-bot", Tenant: "acme", SHA256: agent.HashSecret(slowSecret), External: []string{"scale_up"}, Rate: 2},
		{Agent: "beta-bot", Tenant: "beta", SHA256: agent.HashSecret(betaSecret), Actions: []string{"restart_workers"}, External: []string{"scale_up"}},
		{Agent: "old-bot", Tenant: "acme", SHA256: agent.HashSecret(revokedSecret), External: []string{"scale_up"}, Revoked: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	_, w.key, _ = ed25519.GenerateKey(nil)
	w.gate, err = agent.New(agent.Options{Redis: rc, KeyPrefix: prefix, Ledger: led, Tokens: toks, Key: w.key, Clock: w.clock,
		Presenter: w.eng, Poll: poll, ProgressEvery: 100 * time.Millisecond, Trees: store, Origin: "ledger.acme.example",
		Tenant: func(id string) (*conversation.Tenant, bool) {
			for i := range tenants {
				if tenants[i].ID == id {
					return &tenants[i], true
				}
			}
			return nil, false
		}})
	if err != nil {
		t.Fatal(err)
	}
	w.srv = httptest.NewServer(w.gate.Handler())
	t.Cleanup(w.srv.Close)
	return w
}

// call sends an API request and decodes the JSON answer.
func (w *world) call(method, path, secret string, body any) (int, map[string]any) {
	w.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	case string:
		rd = strings.NewReader(b)
	default:
		j, _ := json.Marshal(b)
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequest(method, w.srv.URL+path, rd)
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &out); err != nil {
		w.t.Fatalf("%s %s: %d %q is not JSON", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

func (w *world) request(secret string, body map[string]any) (int, map[string]any) {
	return w.call("POST", "/v1/approvals", secret, body)
}

// press presses the card's button whose label starts with label.
func (w *world) press(u conversation.User, card conversation.Message, label string) conversation.Reply {
	w.t.Helper()
	for _, row := range card.Buttons {
		for _, b := range row {
			if strings.HasPrefix(b.Label, label) {
				r, err := w.eng.Handle(context.Background(), conversation.Inbound{Chat: conversation.Chat{Channel: conversation.Telegram, ID: group}, User: u, Data: b.Data})
				if err != nil {
					w.t.Fatal(err)
				}
				return r
			}
		}
	}
	w.t.Fatalf("no button %q on the card %+v", label, card.Buttons)
	return conversation.Reply{}
}

func (w *world) card(incident string) conversation.Message {
	w.t.Helper()
	m, ok := w.tg.find(incident)
	if !ok {
		w.t.Fatalf("no card for %s in the chat", incident)
	}
	return m
}

func labels(m conversation.Message) []string {
	var out []string
	for _, row := range m.Buttons {
		for _, b := range row {
			out = append(out, b.Label)
		}
	}
	return out
}
