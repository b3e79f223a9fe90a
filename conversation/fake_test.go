package conversation_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/conversationtest"
)

// memTransport is an in-memory chat platform: it keeps every chat's messages as they now
// stand, numbered per chat like Telegram does, and forum topics for chats marked as forums.
type memTransport struct {
	mu     sync.Mutex
	ch     conversation.Channel
	forums map[string]bool
	next   map[string]int
	msgs   map[string][]*sent
	topics int
	caps   *conversation.Capabilities
}

type sent struct {
	ID      string
	Topic   string
	ReplyTo string
	Msg     conversation.Message
	Edits   int
}

func newMem(ch conversation.Channel, forums ...string) *memTransport {
	m := &memTransport{ch: ch, forums: map[string]bool{}, next: map[string]int{}, msgs: map[string][]*sent{}}
	for _, f := range forums {
		m.forums[f] = true
	}
	return m
}

func (m *memTransport) Channel() conversation.Channel { return m.ch }

// Capabilities are Telegram's, unless the test set others.
func (m *memTransport) Capabilities() conversation.Capabilities {
	if m.caps != nil {
		return *m.caps
	}
	return conversation.Capabilities{Name: "Telegram", Buttons: true, MaxButtonData: 64, Direct: true, Media: true, Threads: true}
}

func (m *memTransport) add(chat conversation.Chat, topic, replyTo string, msg conversation.Message) conversation.MessageRef {
	m.next[chat.ID]++
	s := &sent{ID: fmt.Sprint(m.next[chat.ID]), Topic: topic, ReplyTo: replyTo, Msg: msg}
	m.msgs[chat.ID] = append(m.msgs[chat.ID], s)
	return conversation.MessageRef{Chat: chat, ID: s.ID}
}

func (m *memTransport) OpenThread(ctx context.Context, chat conversation.Chat, title string, msg conversation.Message) (conversation.Thread, conversation.MessageRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.forums[chat.ID] {
		m.topics++
		topic := fmt.Sprint(1000 + m.topics)
		ref := m.add(chat, topic, "", msg)
		return conversation.Thread{Chat: chat, Topic: topic}, ref, nil
	}
	ref := m.add(chat, "", "", msg)
	return conversation.Thread{Chat: chat, Root: ref.ID}, ref, nil
}

func (m *memTransport) Post(ctx context.Context, th conversation.Thread, msg conversation.Message) (conversation.MessageRef, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.add(th.Chat, th.Topic, th.Root, msg), nil
}

func (m *memTransport) Edit(ctx context.Context, ref conversation.MessageRef, msg conversation.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, s := range m.msgs[ref.Chat.ID] {
		if s.ID == ref.ID {
			s.Msg = msg
			s.Edits++
			return nil
		}
	}
	return fmt.Errorf("message %s not found", ref.ID)
}

// all returns a chat's messages.
func (m *memTransport) all(chat string) []sent {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []sent
	for _, s := range m.msgs[chat] {
		out = append(out, *s)
	}
	return out
}

// last returns the newest message of a chat whose text contains sub.
func (m *memTransport) find(chat, sub string) (sent, bool) {
	all := m.all(chat)
	for i := len(all) - 1; i >= 0; i-- {
		if strings.Contains(all[i].Msg.Text(), sub) {
			return all[i], true
		}
	}
	return sent{}, false
}

// TestMemTransportKeepsTheContract: the engine's tests speak through memTransport, so it
// must behave as the adapters do.
func TestMemTransportKeepsTheContract(t *testing.T) {
	for _, forum := range []bool{false, true} {
		t.Run(fmt.Sprintf("forum=%v", forum), func(t *testing.T) {
			conversationtest.Run(t, func(t *testing.T) conversationtest.Subject {
				chat := conversation.Chat{Channel: conversation.Telegram, ID: "-1001"}
				m := newMem(conversation.Telegram)
				if forum {
					m = newMem(conversation.Telegram, chat.ID)
				}
				return conversationtest.Subject{Transport: m, Chat: chat, Delivered: func() []string {
					var out []string
					for _, s := range m.all(chat.ID) {
						out = append(out, s.Msg.Text())
					}
					return out
				}}
			})
		})
	}
}
