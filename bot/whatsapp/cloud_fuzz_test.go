package whatsapp

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/alertengine/alertengine/bot/whatsapp/cloudtest"
)

// FuzzCloudForm feeds arbitrary webhook bodies through the Cloud API's parsing: it
// never panics, and every message it takes has a +E164 sender, a bounded printable id,
// a bounded valid payload and valid UTF-8 text.
func FuzzCloudForm(f *testing.F) {
	text, _ := cloudtest.Inbound{From: ana, Name: "Ana", Text: "STATUS checkout"}.Body(time.Now())
	press, _ := cloudtest.Inbound{From: ana, Reply: &cloudtest.Button{ID: "ap:AAAAAAAAAAABBBBBBBBBBB", Title: "Approve"}, Context: "wamid.x"}.Body(time.Now())
	tpl, _ := cloudtest.Inbound{From: ana, Payload: strings.Repeat("p", 300)}.Body(time.Now())
	f.Add(string(text))
	f.Add(string(press))
	f.Add(string(tpl))
	f.Add(string(cloudtest.StatusBody("wamid.y", ana, "failed", 131026, "x")))
	f.Add(`{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages","value":{"messages":[{"from":"+1","id":"\u0000","type":"text","text":{"body":"\xff"}}]}}]}]}`)
	f.Fuzz(func(t *testing.T, body string) {
		var n cloudNotification
		if json.Unmarshal([]byte(body), &n) != nil {
			return
		}
		for _, e := range n.Entry {
			for _, c := range e.Changes {
				names := map[string]string{}
				for _, ct := range c.Value.Contacts {
					names[ct.WaID] = ct.Profile.Name
				}
				for _, m := range c.Value.Messages {
					form, ok := cloudForm(m, names)
					if !ok {
						continue
					}
					if !e164.MatchString(form.From) || form.MessageSID == "" || len(form.MessageSID) > maxWamid || !printable(form.MessageSID) {
						t.Fatalf("accepted sender %q id %q", form.From, form.MessageSID)
					}
					if len(form.Payload) > maxPayload || !utf8.ValidString(form.Payload) || !utf8.ValidString(form.Body) || !utf8.ValidString(form.Name) || utf8.RuneCountInString(form.Name) > 64 {
						t.Fatalf("unbounded or invalid field in %+v", form)
					}
					if form.RepliedTo != "" && (len(form.RepliedTo) > maxWamid || !printable(form.RepliedTo)) {
						t.Fatalf("accepted reply-to %q", form.RepliedTo)
					}
				}
			}
		}
	})
}
