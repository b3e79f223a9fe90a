package telegram

import (
	"net/http"
	"testing"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/conversationtest"
)

func TestTransportContract(t *testing.T) {
	for _, tc := range []struct {
		name  string
		chat  int64
		forum bool
	}{{"group", groupChat, false}, {"forum", forumChat, true}, {"private", int64(ana.ID), false}} {
		t.Run(tc.name, func(t *testing.T) {
			conversationtest.Run(t, func(t *testing.T) conversationtest.Subject {
				e := newEnv(t)
				if tc.forum {
					e.addForum(tc.chat)
				}
				a, _ := e.adapter()
				return conversationtest.Subject{
					Transport: a,
					Chat:      chatOf(tc.chat),
					Delivered: func() []string {
						var out []string
						for _, m := range e.fake.Sent(tc.chat) {
							out = append(out, m.Text+m.Caption)
						}
						return out
					},
				}
			})
		})
	}
}

// TestInboundContract drives Telegram through its fake in webhook mode: people write in
// their private chat with the bot and in a group, press buttons under the bot's
// messages, Telegram redelivers an update, and someone posts without the secret.
func TestInboundContract(t *testing.T) {
	conversationtest.RunInbound(t, func(t *testing.T, h conversation.Handler) conversationtest.Platform {
		e := newEnv(t)
		a, _ := e.adapter()
		url := serveWebhook(t, a, h)
		if err := a.SetWebhook(deadline(t), url); err != nil {
			t.Fatal(err)
		}
		deliver := func(t *testing.T) {
			t.Helper()
			if n, err := e.fake.DeliverPending(deadline(t)); err != nil || n != 1 {
				t.Fatalf("DeliverPending = %d, %v; want the update delivered", n, err)
			}
		}
		return conversationtest.Platform{
			Write: func(t *testing.T, text string, direct bool) bool {
				in := groupChat
				if direct {
					in = ana.ID
				}
				e.fake.SendText(in, ana, text)
				deliver(t)
				return true
			},
			Command: func(name, args string) string { return "/" + name + "@" + e.fake.Bot().Username + " " + args },
			Press: func(t *testing.T, data string) string {
				msg := conversation.Message{Blocks: []conversation.Block{{Text: "Approve?"}}, Buttons: [][]conversation.Button{{{Label: "Approve", Data: data}}}}
				ref, err := a.Post(deadline(t), conversation.Thread{Chat: chat(ana.ID)}, msg)
				if err != nil {
					t.Fatal(err)
				}
				query := e.fake.PressButton(ana.ID, atoi(t, ref.ID), ana, data)
				deliver(t)
				answer, ok := e.fake.CallbackAnswer(query)
				if !ok {
					t.Fatal("the press was not answered")
				}
				return answer.Text
			},
			Redeliver: func(t *testing.T, text string) {
				u := messageUpdate(t, 9001, ana, text)
				for range 2 {
					if status, err := e.fake.PostWebhook(deadline(t), url, secret, u); err != nil || status != http.StatusOK {
						t.Fatalf("delivery: %d, %v", status, err)
					}
				}
			},
			Forge: func(t *testing.T, text string) int {
				status, err := e.fake.PostWebhook(deadline(t), url, "forged-"+secret, messageUpdate(t, 9002, ana, text))
				if err != nil {
					t.Fatal(err)
				}
				return status
			},
		}
	})
}
