package console

import (
	"strings"
	"testing"

	"github.com/alertengine/alertengine/conversation/conversationtest"
)

func TestTransportContract(t *testing.T) {
	conversationtest.Run(t, func(t *testing.T) conversationtest.Subject {
		f := newFixture(t)
		return conversationtest.Subject{
			Transport: f.c,
			Chat:      Chat("acme"),
			// What a visitor sees: every message's text, as the page holds it now.
			Delivered: func() []string {
				var out []string
				for _, m := range f.c.snapshot() {
					var b []string
					for _, bl := range m.Blocks {
						b = append(b, bl.Text)
					}
					out = append(out, strings.Join(b, "\n"))
				}
				return out
			},
		}
	})
}
