package slack

import (
	"testing"

	"github.com/alertengine/alertengine/conversation/conversationtest"
)

func TestTransportContract(t *testing.T) {
	for _, tc := range []struct{ name, chat string }{{"channel", general}, {"direct message", alice}} {
		t.Run(tc.name, func(t *testing.T) {
			conversationtest.Run(t, func(t *testing.T) conversationtest.Subject {
				a, fake, _ := newAdapter(t)
				where := tc.chat
				if where == alice {
					where = "D" + alice[1:] // the bot's direct messages with alice
				}
				return conversationtest.Subject{
					Transport: a,
					Chat:      chat(tc.chat),
					Delivered: func() []string { return fake.Texts(where) },
				}
			})
		})
	}
}
