package whatsapp

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// BenchmarkWebhook is one inbound message through the handler: body read, signature
// check (twilio-go), form parsing, Redis de-duplication, mapping; the engine is a
// recorder.
func BenchmarkWebhook(b *testing.B) {
	e := &env{fake: twiliotest.New(b)}
	e.rdb, e.prefix = ledgertest.Redis(b)
	a, err := New(Options{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken, From: botNumber, APIURL: e.fake.URL(),
		PublicURL: publicURL, Redis: e.rdb, KeyPrefix: e.prefix})
	if err != nil {
		b.Fatal(err)
	}
	h := a.WebhookHandler(&recorder{})
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		form := twiliotest.Inbound{From: ana, Body: "STATUS checkout", SID: fmt.Sprintf("SM%032x", i)}.Form(botNumber)
		req := httptest.NewRequest(http.MethodPost, WebhookPath, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Twilio-Signature", twiliotest.Sign(twiliotest.AuthToken, publicURL+WebhookPath, form))
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}

// BenchmarkRenderSplit renders a long incident card and splits it under 1,600 characters.
func BenchmarkRenderSplit(b *testing.B) {
	m := conversation.Message{Blocks: []conversation.Block{{Style: conversation.Title, Text: "🚨 checkout degraded — INC-7F3"}}}
	for i := range 80 {
		m.Blocks = append(m.Blocks, conversation.Block{Text: fmt.Sprintf("timeline %02d %s", i, strings.Repeat("détail ", 8))})
	}
	b.ReportAllocs()
	for b.Loop() {
		if len(split(render(m, "INC-7F3"), MaxBody)) < 2 {
			b.Fatal("not split")
		}
	}
}
