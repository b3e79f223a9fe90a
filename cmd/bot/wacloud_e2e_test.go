package main

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/whatsapp"
	"github.com/alertengine/alertengine/bot/whatsapp/cloudtest"
	"github.com/alertengine/alertengine/ledger"
)

// waVimbai is a viewer's WhatsApp number.
const waVimbai = "+263773333333"

// newCloudHarness is a tenant with a Telegram group and tendai's WhatsApp number as
// incident chats, WhatsApp on Meta's Cloud API (the fake) with the approval template,
// checked in the WhatsApp Business Account.
func newCloudHarness(t *testing.T) (*harness, *cloudtest.Server) {
	t.Helper()
	wa := cloudtest.New(t)
	wa.AddTemplate(cloudtest.Template{Name: "alertengine_approval", Language: "en_US", BodyParams: 3, QuickReplies: 2})
	h := newSecondChatHarness(t, secondChat{name: "whatsapp", chat: `["` + waTendai + `"]`, tendai: waTendai, rudo: waRudo, vimbai: waVimbai,
		vars: env{
			"WHATSAPP_PROVIDER":              "cloud",
			"WHATSAPP_CLOUD_TOKEN":           cloudtest.Token,
			"WHATSAPP_CLOUD_PHONE_NUMBER_ID": cloudtest.PhoneNumberID,
			"WHATSAPP_CLOUD_APP_SECRET":      cloudtest.AppSecret,
			"WHATSAPP_CLOUD_VERIFY_TOKEN":    cloudtest.VerifyToken,
			"WHATSAPP_CLOUD_TEMPLATE":        "alertengine_approval:en_US",
			"WHATSAPP_CLOUD_WABA_ID":         cloudtest.WABAID,
			"WHATSAPP_CLOUD_API_URL":         wa.URL(),
			"PUBLIC_URL":                     waPublic,
		}})
	return h, wa
}

// cloudSays delivers what a person sends on WhatsApp to the replica's Cloud API webhook,
// signed by "Meta", and wants it handled (200).
func cloudSays(t *testing.T, wa *cloudtest.Server, r *replica, in cloudtest.Inbound) {
	t.Helper()
	code, _, err := wa.Send(ctxT(t, 30*time.Second), r.base+whatsapp.CloudWebhookPath, in)
	if err != nil || code != http.StatusOK {
		t.Fatalf("webhook: HTTP %d %v", code, err)
	}
}

// waitCloud waits for a message to number that ok accepts.
func waitCloud(t *testing.T, wa *cloudtest.Server, number, what string, ok func(cloudtest.Message) bool) cloudtest.Message {
	t.Helper()
	var found cloudtest.Message
	eventually(t, "a WhatsApp message "+what+" to "+number, func() bool {
		for _, m := range wa.MessagesTo(number) {
			if ok(m) {
				found = m
				return true
			}
		}
		return false
	}, func() string {
		var got []string
		for _, m := range wa.MessagesTo(number) {
			got = append(got, m.Text())
		}
		return fmt.Sprintf("sent %q", got)
	})
	return found
}

func hasCloudText(sub string) func(cloudtest.Message) bool {
	return func(m cloudtest.Message) bool { return strings.Contains(m.Text(), sub) }
}

// TestEndToEndWhatsAppCloud: on the real wiring with WhatsApp on the Cloud API, the card
// reaches an approver who wrote today as an interactive message with reply buttons; a
// request whose X-Hub-Signature-256 is forged is refused and changes nothing; a viewer's
// press of the button is refused; the approver's press runs the recovery once, Telegram
// is told and its buttons are gone, and a second press is answered as already approved;
// the resolution reaches WhatsApp. /readyz and /metrics cover the Cloud API, and a
// template Meta paused shows in /readyz.
func TestEndToEndWhatsAppCloud(t *testing.T) {
	t.Parallel()
	h, wa := newCloudHarness(t)
	r := h.start(false)
	// Meta's webhook set-up: the verification handshake.
	if code, body := get(t, r.base+whatsapp.CloudWebhookPath+"?hub.mode=subscribe&hub.verify_token="+cloudtest.VerifyToken+"&hub.challenge=1158201444"); code != http.StatusOK || body != "1158201444" {
		t.Fatalf("verification: %d %q", code, body)
	}
	if code, _ := get(t, r.base+whatsapp.CloudWebhookPath+"?hub.mode=subscribe&hub.verify_token=guess&hub.challenge=1"); code != http.StatusForbidden {
		t.Fatalf("verification with a wrong token: %d", code)
	}
	// Tendai wrote today: their 24-hour window is open.
	cloudSays(t, wa, r, cloudtest.Inbound{From: waTendai, Name: "Tendai", Text: "STATUS"})
	waitCloud(t, wa, waTendai, "answering STATUS", hasCloudText("Status — acme"))

	r.alert(t, "firing")
	card := waitCloud(t, wa, waTendai, "with the card's reply buttons", func(m cloudtest.Message) bool {
		return m.Type == "interactive" && len(m.Buttons) > 0
	})
	inc := incidentRe.FindString(card.Body)
	approve := card.Buttons[0]
	if inc == "" || !strings.HasPrefix(approve.Title, "Approve") || !strings.HasPrefix(approve.ID, "ap:") {
		t.Fatalf("the card %q has buttons %+v", card.Body, card.Buttons)
	}
	tgCard := h.card(t)

	// A press whose signature does not verify with the app secret: refused, nothing done.
	forged, _ := cloudtest.Inbound{From: waTendai, Name: "Tendai", Reply: &approve, Context: card.ID}.Body(time.Now())
	if code, err := wa.Post(ctxT(t, 30*time.Second), r.base+whatsapp.CloudWebhookPath, "not-the-app-secret", forged); err != nil || code != http.StatusUnauthorized {
		t.Fatalf("a forged press: HTTP %d %v, want 401", code, err)
	}
	if st := h.stage(t, inc); st != ledger.Validated {
		t.Fatalf("after a forged press: %s", st)
	}

	// A viewer sending the button's reply (forwarded, or crafted): refused.
	cloudSays(t, wa, r, cloudtest.Inbound{From: waVimbai, Name: "Vimbai", Reply: &approve, Context: card.ID})
	waitCloud(t, wa, waVimbai, "refusing the viewer", hasCloudText("You are not an approver for acme."))
	if st := h.stage(t, inc); st != ledger.Validated {
		t.Fatalf("after a viewer's press: %s", st)
	}

	// The approver's press: the recovery runs once.
	cloudSays(t, wa, r, cloudtest.Inbound{From: waTendai, Name: "Tendai", Reply: &approve, Context: card.ID})
	executedOnce(t, h, inc)
	if _, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, hasText("Approved by tendai in WhatsApp")); err != nil {
		t.Fatalf("Telegram not told: %v", err)
	}
	if m, _ := h.tg.Message(groupID, tgCard.MessageID); len(m.Buttons()) != 0 {
		t.Fatalf("the Telegram card still has buttons: %+v", m.Buttons())
	}
	waitCloud(t, wa, waTendai, "saying the recovery ran", hasCloudText("Recovery restart_workers executed"))
	cloudSays(t, wa, r, cloudtest.Inbound{From: waTendai, Name: "Tendai", Reply: &approve, Context: card.ID})
	waitCloud(t, wa, waTendai, "refusing the second press", hasCloudText("Already approved by tendai"))

	// Meta reports the card delivered and read.
	for _, st := range []string{"delivered", "read"} {
		if code, err := wa.Post(ctxT(t, 30*time.Second), r.base+whatsapp.CloudWebhookPath, cloudtest.AppSecret, cloudtest.StatusBody(card.ID, waTendai, st, 0, "")); err != nil || code != http.StatusOK {
			t.Fatalf("status %s: HTTP %d %v", st, code, err)
		}
	}

	r.alert(t, "resolved")
	waitCloud(t, wa, waTendai, "saying it is resolved", hasCloudText("Resolved"))
	resolvedAfterOneRun(t, h, inc)
	readyAndCounted(t, r, "whatsapp",
		`alertengine_whatsapp_cloud_requests_refused_total{reason="signature"} 1`,
		`alertengine_whatsapp_cloud_requests_refused_total{reason="verify_token"} 1`,
		`alertengine_whatsapp_cloud_statuses_total{status="delivered"} 1`,
		`alertengine_whatsapp_cloud_statuses_total{status="read"} 1`)
	// Meta pauses the template: readiness says WhatsApp is degraded.
	wa.AddTemplate(cloudtest.Template{Name: "alertengine_approval", Language: "en_US", BodyParams: 3, QuickReplies: 2, Status: "PAUSED"})
	if code, body := get(t, r.base+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"degraded":{"whatsapp":"unavailable"}`) {
		t.Fatalf("/readyz with the template paused: %d %s", code, body)
	}
}

// TestWhatsAppCloudTemplateOutsideTheWindow: to an approver who has not written within
// 24 hours the card goes as the approval template; its quick reply approves, once.
func TestWhatsAppCloudTemplateOutsideTheWindow(t *testing.T) {
	t.Parallel()
	h, wa := newCloudHarness(t)
	r := h.start(false)
	r.alert(t, "firing")
	card := waitCloud(t, wa, waTendai, "with the approval template", func(m cloudtest.Message) bool { return m.Type == "template" })
	if card.Template != "alertengine_approval" || len(card.Payloads) != 2 || !strings.HasPrefix(card.Payloads[0], "ap:") {
		t.Fatalf("template message %+v", card)
	}
	inc := incidentRe.FindString(strings.Join(card.Params, " "))
	if inc == "" {
		inc = incidentCode(t, h.card(t))
	}
	cloudSays(t, wa, r, cloudtest.Inbound{From: waTendai, Name: "Tendai", Payload: card.Payloads[0], Context: card.ID})
	executedOnce(t, h, inc)
	cloudSays(t, wa, r, cloudtest.Inbound{From: waTendai, Name: "Tendai", Payload: card.Payloads[0], Context: card.ID})
	waitCloud(t, wa, waTendai, "refusing the second press", hasCloudText("Already approved by tendai"))
	if n, _ := h.hook.count(); n != 1 {
		t.Fatalf("the recovery webhook was called %d times", n)
	}
}
