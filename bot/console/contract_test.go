package console

import (
	"crypto/ed25519"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"

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

// TestInboundContract drives the console as a visitor's browser does: the page's form
// posts what they type and press, with the session's token and the page's origin. The
// console has no redelivery: every post is a new message.
func TestInboundContract(t *testing.T) {
	conversationtest.RunInbound(t, func(t *testing.T, h conversation.Handler) conversationtest.Platform {
		c, err := New(Options{Tenant: "acme", People: []Person{{"tendai", RoleApprover}}, Ledger: ledger.NewMemStore(), Signer: ed25519.NewKeyFromSeed(make([]byte, 32))})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		for _, r := range c.Routes(h) {
			mux.Handle(r.Pattern, r.Handler)
		}
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		f := &fixture{c: c, srv: srv}
		v := f.visit(t)
		return conversationtest.Platform{
			Write: func(t *testing.T, text string, direct bool) bool {
				if !direct {
					return false // the page is the tenant's one chat; it has no groups
				}
				if code, out := v.post("/say", url.Values{"as": {"tendai"}, "text": {text}}, nil); code != http.StatusOK {
					t.Fatalf("say: %d %v", code, out)
				}
				return true
			},
			Command: func(name, args string) string { return "/" + name + " " + args },
			Press: func(t *testing.T, data string) string {
				ref, err := c.Post(t.Context(), conversation.Thread{Chat: Chat("acme")}, card("Approve?", conversation.Button{Label: "Approve", Data: data}))
				if err != nil {
					t.Fatal(err)
				}
				code, out := v.post("/press", url.Values{"as": {"tendai"}, "msg": {ref.ID}, "data": {data}}, nil)
				if code != http.StatusOK {
					t.Fatalf("press: %d %v", code, out)
				}
				return out["toast"]
			},
			Forge: func(t *testing.T, text string) int {
				code, _ := v.post("/say", url.Values{"as": {"tendai"}, "text": {text}}, map[string]string{"Origin": "https://evil.example"})
				return code
			},
		}
	})
}

// TestRoutesNeedAHandler: a console mounted without the engine would take what visitors
// say and drop it; it stops the assembly instead.
func TestRoutesNeedAHandler(t *testing.T) {
	c, err := New(Options{Tenant: "acme", People: []Person{{"tendai", RoleApprover}}, Ledger: ledger.NewMemStore(), Signer: ed25519.NewKeyFromSeed(make([]byte, 32))})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("Routes(nil) did not panic")
		}
	}()
	c.Routes(nil)
}
