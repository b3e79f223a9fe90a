package slack

import (
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/slack/slacktest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/conversationtest"
)

// TestInboundContract drives the adapter over HTTP (signed Events, Interactivity) on the
// fake. Each step returns once the adapter has handled what it acknowledged (Wait).
func TestInboundContract(t *testing.T) {
	conversationtest.RunInbound(t, func(t *testing.T, h conversation.Handler) conversationtest.Platform {
		a, fake, _ := newAdapter(t)
		base := serve(t, a, h)
		dm := "D" + alice[1:]
		say := func(t *testing.T, text string, direct bool) slacktest.Delivery {
			where := general
			if direct {
				where = dm
			}
			_, ds := fake.Say(where, alice, text, "")
			return ds[0]
		}
		return conversationtest.Platform{
			Write: func(t *testing.T, text string, direct bool) bool {
				send(t, fake, base, say(t, text, direct), slacktest.Sign{})
				a.Wait()
				return true
			},
			// In the bot's direct messages a command is its bare word (a leading "/"
			// would be taken by Slack's composer as a slash command).
			Command: func(name, args string) string { return strings.TrimSpace(name + " " + args) },
			Press: func(t *testing.T, data string) string {
				m := text("press-me")
				m.Buttons = [][]conversation.Button{{{Label: "Press", Data: data}}}
				ref, err := a.Post(t.Context(), conversation.Thread{Chat: chat(alice)}, m)
				if err != nil {
					t.Fatal(err)
				}
				_, ts := splitRef(alice, ref.ID)
				d, err := fake.Press(dm, ts, alice, "Press")
				if err != nil {
					t.Fatal(err)
				}
				send(t, fake, base, d, slacktest.Sign{})
				a.Wait()
				var shown []string
				for _, e := range fake.Ephemerals(dm, alice) {
					shown = append(shown, e.Text)
				}
				return strings.Join(shown, "\n")
			},
			Redeliver: func(t *testing.T, text string) {
				d := say(t, text, true)
				send(t, fake, base, d, slacktest.Sign{})
				send(t, fake, base, d, slacktest.Sign{Retry: 1})
				a.Wait()
			},
			Forge: func(t *testing.T, text string) int {
				code, _, err := fake.Send(base, say(t, text, true), slacktest.Sign{Secret: "forged"})
				if err != nil {
					t.Fatal(err)
				}
				a.Wait()
				return code
			},
		}
	})
}
