package whatsapp

import (
	"net/http"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/conversationtest"
)

func TestTransportContract(t *testing.T) {
	conversationtest.Run(t, func(t *testing.T) conversationtest.Subject {
		e := newEnv(t)
		a, _ := e.adapter()
		return conversationtest.Subject{Transport: a, Chat: chatOf(ana), Delivered: func() []string {
			var out []string
			for _, m := range e.fake.MessagesTo("whatsapp:" + ana) {
				out = append(out, m.Text())
			}
			return out
		}}
	})
}

// TestInboundContract drives WhatsApp through Twilio's fake: people write to the bot's
// number (WhatsApp has no groups here), press quick replies, Twilio retries a delivery,
// and someone posts with a signature Twilio did not make.
func TestInboundContract(t *testing.T) {
	conversationtest.RunInbound(t, func(t *testing.T, h conversation.Handler) conversationtest.Platform {
		e := newEnv(t)
		a, _ := e.adapter()
		base := serve(t, a, h)
		post := func(t *testing.T, form map[string][]string, header http.Header) int {
			t.Helper()
			code, err := e.fake.Post(t.Context(), base+WebhookPath, publicURL+WebhookPath, form, header)
			if err != nil {
				t.Fatal(err)
			}
			return code
		}
		return conversationtest.Platform{
			Write: func(t *testing.T, text string, direct bool) bool {
				if !direct {
					return false
				}
				if code := post(t, twiliotest.Inbound{From: ana, Name: "Ana", Body: text}.Form(botNumber), nil); code != http.StatusOK {
					t.Fatalf("webhook answered %d", code)
				}
				return true
			},
			Command: func(name, args string) string { return strings.ToUpper(name) + " " + args },
			Press: func(t *testing.T, data string) string {
				before := len(e.fake.MessagesTo("whatsapp:" + ana))
				in := twiliotest.Inbound{From: ana, Name: "Ana", ButtonPayload: data, ButtonText: "Approve"}
				if code := post(t, in.Form(botNumber), nil); code != http.StatusOK {
					t.Fatalf("webhook answered %d", code)
				}
				var shown []string
				for _, m := range e.fake.MessagesTo("whatsapp:" + ana)[before:] {
					shown = append(shown, m.Text())
				}
				return strings.Join(shown, "\n")
			},
			Redeliver: func(t *testing.T, text string) {
				form := twiliotest.Inbound{From: ana, Name: "Ana", Body: text}.Form(botNumber)
				for range 2 {
					if code := post(t, form, nil); code != http.StatusOK {
						t.Fatalf("webhook answered %d", code)
					}
				}
			},
			Forge: func(t *testing.T, text string) int {
				form := twiliotest.Inbound{From: ana, Name: "Ana", Body: text}.Form(botNumber)
				return post(t, form, http.Header{"X-Twilio-Signature": {twiliotest.Sign("ffffffffffffffffffffffffffffffff", publicURL+WebhookPath, form)}})
			},
		}
	})
}
