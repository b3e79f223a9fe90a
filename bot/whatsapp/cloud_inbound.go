package whatsapp

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/webhook"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/claim"
)

// CloudWebhookPath is where Meta verifies (GET) and posts (POST) the Cloud API webhook:
// register PUBLIC_URL + CloudWebhookPath as the app's callback URL.
const CloudWebhookPath = "/whatsapp/cloud/webhook"

func (w *cloudWire) routes(h conversation.Handler) []channel.Route {
	return []channel.Route{
		{Pattern: "GET " + CloudWebhookPath, Handler: w.a.CloudVerifyHandler()},
		{Pattern: "POST " + CloudWebhookPath, Handler: w.a.CloudWebhookHandler(h), MaxBody: MaxRequestBody},
	}
}

// maxChallenge bounds the hub.challenge echoed back.
const maxChallenge = 256

// CloudVerifyHandler answers Meta's verification request: hub.mode=subscribe and
// hub.verify_token equal (in constant time) to the configured verify token → 200 with
// hub.challenge as the body; anything else → 403.
func (a *Adapter) CloudVerifyHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.cloud == nil {
			http.NotFound(w, r)
			return
		}
		q := r.URL.Query()
		challenge := q.Get("hub.challenge")
		ok := q.Get("hub.mode") == "subscribe" &&
			subtle.ConstantTimeCompare([]byte(q.Get("hub.verify_token")), []byte(a.cloud.o.VerifyToken)) == 1 &&
			challenge != "" && len(challenge) <= maxChallenge && printable(challenge)
		if !ok {
			a.cloud.refused.WithLabelValues("verify_token").Inc()
			a.log.Warn("refused a webhook verification request", "remote", r.RemoteAddr)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		_, _ = io.WriteString(w, challenge)
	})
}

func printable(s string) bool {
	for _, c := range s {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// signedBody checks X-Hub-Signature-256: "sha256=" and the hex HMAC-SHA256 of the raw
// body keyed with the app secret, compared in constant time.
func signedBody(secret string, body []byte, header string) bool {
	hexSig, ok := strings.CutPrefix(header, "sha256=")
	if !ok {
		return false
	}
	got, err := hex.DecodeString(hexSig)
	if err != nil || len(got) != sha256.Size {
		return false
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return hmac.Equal(got, m.Sum(nil))
}

// The webhook's JSON, the fields the adapter reads.
type cloudNotification struct {
	Object string `json:"object"`
	Entry  []struct {
		ID      string `json:"id"`
		Changes []struct {
			Field string     `json:"field"`
			Value cloudValue `json:"value"`
		} `json:"changes"`
	} `json:"entry"`
}

type cloudValue struct {
	MessagingProduct string `json:"messaging_product"`
	Metadata         struct {
		PhoneNumberID string `json:"phone_number_id"`
	} `json:"metadata"`
	Contacts []struct {
		WaID    string `json:"wa_id"`
		Profile struct {
			Name string `json:"name"`
		} `json:"profile"`
	} `json:"contacts"`
	Messages []cloudMessage `json:"messages"`
	Statuses []cloudStatus  `json:"statuses"`
}

type cloudMessage struct {
	From    string `json:"from"`
	ID      string `json:"id"`
	Type    string `json:"type"`
	Context struct {
		ID string `json:"id"`
	} `json:"context"`
	Text struct {
		Body string `json:"body"`
	} `json:"text"`
	Interactive struct {
		Type        string `json:"type"`
		ButtonReply struct {
			ID    string `json:"id"`
			Title string `json:"title"`
		} `json:"button_reply"`
	} `json:"interactive"`
	// Button is a template's quick reply.
	Button struct {
		Payload string `json:"payload"`
		Text    string `json:"text"`
	} `json:"button"`
}

type cloudStatus struct {
	ID          string `json:"id"`
	Status      string `json:"status"`
	RecipientID string `json:"recipient_id"`
	Errors      []struct {
		Code    int    `json:"code"`
		Title   string `json:"title"`
		Message string `json:"message"`
	} `json:"errors"`
}

// maxWamid bounds a message id.
const maxWamid = 256

// cloudForm turns one Cloud API message into the channel's Form; ok is false for a
// message the adapter does not take (another type, a malformed sender or id).
func cloudForm(m cloudMessage, names map[string]string) (Form, bool) {
	from := "+" + m.From
	if !e164.MatchString(from) || m.ID == "" || len(m.ID) > maxWamid || !printable(m.ID) {
		return Form{}, false
	}
	f := Form{MessageSID: m.ID, From: from, Name: names[m.From]}
	if c := m.Context.ID; c != "" && len(c) <= maxWamid && printable(c) {
		f.RepliedTo = c
	}
	switch {
	case m.Type == "text":
		f.Body = strings.ToValidUTF8(m.Text.Body, "\uFFFD")
	case m.Type == "interactive" && m.Interactive.Type == "button_reply":
		f.Payload = m.Interactive.ButtonReply.ID
	case m.Type == "button":
		f.Payload = m.Button.Payload
	default:
		return Form{}, false
	}
	if f.Payload != "" && (len(f.Payload) > maxPayload || !utf8.ValidString(f.Payload)) {
		return Form{}, false
	}
	f.Name = strings.ToValidUTF8(strings.TrimSpace(f.Name), "")
	if utf8.RuneCountInString(f.Name) > 64 {
		f.Name = string([]rune(f.Name)[:64])
	}
	return f, true
}

// CloudWebhookHandler serves Meta's posts to CloudWebhookPath (mount it for POST only,
// under a body limit: Routes does): 401 unless X-Hub-Signature-256 verifies over the raw
// body with the app secret — nothing of an unsigned request is read further — 503 when a
// message was not handled (it could not be claimed, another replica is handling it, or
// the engine failed: Meta retries, and the messages already handled are not handled
// again), 200 otherwise. Messages (text, reply-button presses, template quick replies)
// to the configured phone number go to the engine; status callbacks are counted, a
// failed one logged with its error code; anything else is ignored.
func (a *Adapter) CloudWebhookHandler(h conversation.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.cloud == nil {
			http.NotFound(w, r)
			return
		}
		body, ok := webhook.ReadBody(w, r)
		if !ok {
			return
		}
		if !signedBody(a.cloud.o.AppSecret, body, r.Header.Get("X-Hub-Signature-256")) {
			a.cloud.refused.WithLabelValues("signature").Inc()
			a.log.Warn("refused a webhook request: bad X-Hub-Signature-256", "remote", r.RemoteAddr)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var n cloudNotification
		if err := json.Unmarshal(body, &n); err != nil || n.Object != "whatsapp_business_account" {
			a.log.Info("ignored a webhook request", "reason", "not a WhatsApp Business Account notification")
			w.WriteHeader(http.StatusOK)
			return
		}
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), handleTimeout)
		defer cancel()
		failed := false
		for _, e := range n.Entry {
			for _, c := range e.Changes {
				v := c.Value
				if c.Field != "messages" || v.Metadata.PhoneNumberID != a.cloud.o.PhoneNumberID {
					continue
				}
				for _, s := range v.Statuses {
					a.cloud.status(ctx, s)
				}
				names := map[string]string{}
				for _, ct := range v.Contacts {
					names[ct.WaID] = ct.Profile.Name
				}
				for _, m := range v.Messages {
					f, ok := cloudForm(m, names)
					if !ok {
						a.log.Info("ignored a WhatsApp message", "type", oneLine(m.Type, "none"))
						continue
					}
					if !a.handleOnce(ctx, h, f) {
						failed = true
					}
				}
			}
		}
		if failed {
			http.Error(w, "not handled; try again", http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// handleOnce claims a message by its id across replicas and hands it to the engine;
// false when it was not handled and should come again.
func (a *Adapter) handleOnce(ctx context.Context, h conversation.Handler, f Form) bool {
	held, outcome, err := a.claim(ctx, f.MessageSID, "")
	switch {
	case err != nil:
		a.log.Error("webhook duplicate check", "err", err)
		return false
	case outcome == claim.Busy:
		a.log.Info("message being handled by another replica", "message", f.MessageSID)
		return false
	case outcome == claim.Handled:
		a.log.Info("duplicate webhook delivery ignored", "message", f.MessageSID)
		return true
	}
	if err := a.handle(ctx, h, f); err != nil {
		a.log.Error("handle whatsapp message; given up for a retry", "message", f.MessageSID, "err", err)
		for _, cl := range held {
			_ = cl.Release(ctx)
		}
		return false
	}
	for _, cl := range held {
		if err := cl.Done(ctx); err != nil {
			a.log.Warn("whatsapp message handled but not recorded as handled", "message", f.MessageSID, "err", err)
		}
	}
	return true
}

// statusNames are the message statuses the Cloud API reports.
var statusNames = map[string]bool{"sent": true, "delivered": true, "read": true, "failed": true, "deleted": true, "warning": true}

// status records one status callback: counted by status, a failure also by its error
// code and logged. A callback Meta delivers again (same message and status, on any
// replica) is recorded once.
func (w *cloudWire) status(ctx context.Context, s cloudStatus) {
	st := s.Status
	if !statusNames[st] {
		st = "other"
	}
	if s.ID != "" && len(s.ID) <= maxWamid {
		fresh, err := w.a.o.Redis.SetNX(ctx, w.a.key("status", s.ID, st), "1", dedupTTL).Result()
		if err == nil && !fresh {
			return
		}
	}
	w.statuses.WithLabelValues(st).Inc()
	if st != "failed" {
		return
	}
	code, title := 0, ""
	if len(s.Errors) > 0 {
		code, title = s.Errors[0].Code, oneLine(s.Errors[0].Title, "")
		if title == "" {
			title = oneLine(s.Errors[0].Message, "")
		}
	}
	w.failures.WithLabelValues(strconv.Itoa(code)).Inc()
	to := ""
	if n := "+" + s.RecipientID; e164.MatchString(n) {
		to = redact(n)
	}
	w.a.log.Warn("WhatsApp reported a message failed", "message", oneLine(s.ID, ""), "to", to, "code", code, "error", title)
}
