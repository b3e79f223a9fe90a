package telegram

import (
	"testing"

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
