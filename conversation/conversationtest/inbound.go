package conversationtest

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/alertengine/alertengine/conversation"
)

// Platform drives a platform's fake to reach the adapter under test: it is how the
// inbound contract makes people write and press on each platform. Every call returns
// once the adapter has taken the event (answered the platform's request), so what
// reached the handler by then is final.
type Platform struct {
	// Write makes a person write text to the bot: in a one-to-one chat when direct, else
	// in a group chat the bot is in. It returns false when the platform has no such chat
	// (no groups), and the check is skipped.
	Write func(t *testing.T, text string, direct bool) bool
	// Command is how a person types the command name with its arguments on this
	// platform: "/status checkout", or "STATUS checkout" where commands are words.
	Command func(name, args string) string
	// Press makes a person press a button carrying data under a message the bot sent to
	// them, and returns what the person is shown in answer (a toast, or the message that
	// carries it where the platform has no toast).
	Press func(t *testing.T, data string) string
	// Redeliver makes the platform deliver the same message (same platform id) twice, as
	// it does when an answer is lost. Nil when the platform never delivers twice.
	Redeliver func(t *testing.T, text string)
	// Forge sends text in a request the platform did not sign (a wrong secret or
	// signature, another origin) and returns the HTTP status the adapter answered.
	Forge func(t *testing.T, text string) int
}

// pressToast is what the suite's handler answers to a press: an adapter must show it.
const pressToast = "Pressed it"

// handler is the engine as the inbound contract sees it: it records what reaches it and
// answers a press with pressToast.
type handler struct {
	mu  sync.Mutex
	got []conversation.Inbound
}

func (h *handler) Handle(_ context.Context, in conversation.Inbound) (conversation.Reply, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.got = append(h.got, in)
	if in.Pressed() {
		return conversation.Reply{Toast: pressToast}, nil
	}
	return conversation.Reply{}, nil
}

// since returns what reached the handler after the first n events.
func (h *handler) since(n int) []conversation.Inbound {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]conversation.Inbound(nil), h.got[n:]...)
}

func (h *handler) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

// RunInbound checks the inbound contract: what people write and press reaches the
// engine the way it expects on every platform. open connects a fresh adapter to h (its
// routes mounted, its loop running) and returns how to drive its platform.
func RunInbound(t *testing.T, open func(t *testing.T, h conversation.Handler) Platform) {
	// one returns the single event that reached h during do.
	one := func(t *testing.T, h *handler, what string, do func()) conversation.Inbound {
		t.Helper()
		before := h.count()
		do()
		got := h.since(before)
		if len(got) != 1 {
			t.Fatalf("%s: %d events reached the handler, want 1: %+v", what, len(got), got)
		}
		return got[0]
	}

	t.Run("a command arrives as /name args", func(t *testing.T) {
		h := &handler{}
		p := open(t, h)
		in := one(t, h, "a command", func() { p.Write(t, p.Command("status", "checkout"), true) })
		if in.Text != "/status checkout" || in.Pressed() {
			t.Errorf("text %q, data %q; want the text %q", in.Text, in.Data, "/status checkout")
		}
		if in.Chat.Channel == "" || in.Chat.ID == "" || in.User.Channel != in.Chat.Channel || in.User.ID == "" {
			t.Errorf("chat %+v, user %+v: want both on the adapter's channel, with ids", in.Chat, in.User)
		}
		if in.MessageID == "" {
			t.Error("a typed message has no MessageID")
		}
	})

	t.Run("Direct is set for one-to-one chats only", func(t *testing.T) {
		h := &handler{}
		p := open(t, h)
		if in := one(t, h, "a one-to-one message", func() { p.Write(t, "hello there", true) }); !in.Direct {
			t.Errorf("a message in a one-to-one chat is not Direct: %+v", in)
		}
		before := h.count()
		if !p.Write(t, "hello all", false) {
			return
		}
		got := h.since(before)
		if len(got) != 1 || got[0].Direct {
			t.Errorf("a message in a group: %+v; want one event, not Direct", got)
		}
	})

	t.Run("free text reaches the handler as written", func(t *testing.T) {
		h := &handler{}
		p := open(t, h)
		const text = "why is checkout slow? it was fine at 09:00 — ¿qué pasó? 🙂"
		in := one(t, h, "free text", func() { p.Write(t, text, true) })
		if in.Text != text || in.Pressed() {
			t.Errorf("text %q, data %q; want the text as written", in.Text, in.Data)
		}
	})

	t.Run("a press arrives as Data and is answered", func(t *testing.T) {
		h := &handler{}
		p := open(t, h)
		const data = "ap:Q2hlY2tvdXRJbmNpZGVudA"
		var answer string
		in := one(t, h, "a press", func() { answer = p.Press(t, data) })
		if in.Data != data || in.Text != "" {
			t.Errorf("data %q, text %q; want the data %q and no text", in.Data, in.Text, data)
		}
		if in.User.ID == "" || in.Chat.ID == "" {
			t.Errorf("a press without its chat or person: %+v", in)
		}
		if !strings.Contains(answer, pressToast) {
			t.Errorf("the person was shown %q, not the engine's answer %q", answer, pressToast)
		}
	})

	t.Run("a redelivered message reaches the handler once", func(t *testing.T) {
		h := &handler{}
		p := open(t, h)
		if p.Redeliver == nil {
			t.Skip("the platform never delivers a message twice")
		}
		before := h.count()
		p.Redeliver(t, "is it fixed?")
		if got := h.since(before); len(got) != 1 || got[0].Text != "is it fixed?" {
			t.Errorf("a message delivered twice reached the handler as %+v; want once", got)
		}
	})

	t.Run("a forged request is refused and never reaches the handler", func(t *testing.T) {
		h := &handler{}
		p := open(t, h)
		before := h.count()
		status := p.Forge(t, "/approve everything")
		if status != http.StatusUnauthorized && status != http.StatusForbidden {
			t.Errorf("a forged request was answered %d, want 401 or 403", status)
		}
		if got := h.since(before); len(got) != 0 {
			t.Errorf("a forged request reached the handler: %+v", got)
		}
	})
}
