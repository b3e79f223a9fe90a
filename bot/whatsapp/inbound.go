package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alertengine/alertengine/bot/webhook"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/claim"
)

// WebhookPath is where Twilio posts incoming WhatsApp messages.
const WebhookPath = "/whatsapp/webhook"

// MaxRequestBody bounds a webhook request (the route's limit).
const MaxRequestBody = 1 << 20

// dedupTTL is how long a handled MessageSid is remembered; Twilio retries within minutes.
const dedupTTL = 48 * time.Hour

// handleTimeout bounds the handling of one message: Twilio waits 15 s for an answer.
const handleTimeout = 14 * time.Second

// claimLease is how long a message stays claimed by a replica that neither finished nor
// gave it up (it died); after it, Twilio's retry is handled by whichever replica gets it.
const claimLease = handleTimeout + 16*time.Second

// maxPayload bounds a quick-reply payload (ours are approval references and commands).
const maxPayload = 256

// emptyTwiML answers Twilio without sending anything back through TwiML: replies go out
// through the REST API, so they are labelled, split and remembered like every message.
const emptyTwiML = `<?xml version="1.0" encoding="UTF-8"?><Response></Response>`

// Form is an incoming WhatsApp message as the adapter reads Twilio's form.
type Form struct {
	AccountSID string
	MessageSID string
	From       string // +E164
	To         string // the bot's sender it was sent to, "whatsapp:+E164"
	Name       string // ProfileName
	Body       string
	Payload    string // ButtonPayload of a quick reply
	RepliedTo  string // OriginalRepliedMessageSid
}

// Errors of ParseForm.
var (
	ErrNotWhatsApp = errors.New("whatsapp: not a WhatsApp message")
	ErrBadForm     = errors.New("whatsapp: malformed message form")
	ErrOtherSender = errors.New("whatsapp: message to another sender than TWILIO_WHATSAPP_FROM")
)

// ParseForm reads Twilio's parameters; it refuses anything but a WhatsApp message with a
// message SID and a valid sender.
func ParseForm(v url.Values) (Form, error) {
	f := Form{AccountSID: v.Get("AccountSid"), MessageSID: v.Get("MessageSid"), To: v.Get("To"), Name: v.Get("ProfileName"), Body: v.Get("Body"),
		Payload: v.Get("ButtonPayload"), RepliedTo: v.Get("OriginalRepliedMessageSid")}
	from, ok := strings.CutPrefix(v.Get("From"), "whatsapp:")
	if !ok {
		return Form{}, ErrNotWhatsApp
	}
	switch {
	case !e164.MatchString(from):
		return Form{}, ErrBadForm
	case !sidLike(f.MessageSID, "SM") && !sidLike(f.MessageSID, "MM"):
		return Form{}, ErrBadForm
	case f.RepliedTo != "" && !sidLike(f.RepliedTo, "SM") && !sidLike(f.RepliedTo, "MM"):
		f.RepliedTo = ""
	}
	if len(f.Payload) > maxPayload || !utf8.ValidString(f.Payload) {
		f.Payload = ""
	}
	f.From = from
	f.Name = strings.ToValidUTF8(strings.TrimSpace(f.Name), "")
	if utf8.RuneCountInString(f.Name) > 64 {
		f.Name = string([]rune(f.Name)[:64])
	}
	f.Body = strings.ToValidUTF8(f.Body, "\uFFFD")
	return f, nil
}

func sidLike(s, prefix string) bool {
	if len(s) != 34 || !strings.HasPrefix(s, prefix) {
		return false
	}
	for _, c := range s[2:] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// WebhookHandler serves Twilio's posts to WebhookPath (mount it for POST only, under a
// body limit: Routes does): 413 over the route's limit (MaxRequestBody), 403
// unless X-Twilio-Signature verifies over PUBLIC_URL + path and the form (twilio-go's
// RequestValidator, which accepts the URL with and without the default port), 503 when
// the message was not handled — it could not be claimed, another replica is handling it,
// or the engine failed (the claim is then given up, so Twilio's retry is handled) — 200
// otherwise: a message of another account or channel is ignored, and one already
// processed (same MessageSid or I-Twilio-Idempotency-Token, on any replica) is not
// handled again.
func (a *Adapter) WebhookHandler(h conversation.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := webhook.ReadBody(w, r)
		if !ok {
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil {
			a.log.Warn("refused a webhook request: unreadable form", "remote", r.RemoteAddr)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		if !a.signed(r, form) {
			a.log.Warn("refused a webhook request: bad X-Twilio-Signature", "remote", r.RemoteAddr)
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		f, err := ParseForm(form)
		if err == nil && f.AccountSID != a.o.AccountSID {
			err = ErrBadForm
		}
		if err == nil && f.To != a.o.From {
			// Sent to another sender of the account (a second number, the sandbox): not
			// this bot's to answer, and never from TWILIO_WHATSAPP_FROM.
			err = ErrOtherSender
		}
		if err != nil {
			a.log.Info("ignored a webhook request", "reason", err)
			writeTwiML(w)
			return
		}
		held, outcome, err := a.claim(r.Context(), f.MessageSID, r.Header.Get("I-Twilio-Idempotency-Token"))
		switch {
		case err != nil:
			a.log.Error("webhook duplicate check", "err", err)
			http.Error(w, "try again", http.StatusServiceUnavailable)
			return
		case outcome == claim.Busy:
			a.log.Info("message being handled by another replica; Twilio may retry", "message", f.MessageSID)
			http.Error(w, "in progress; try again", http.StatusServiceUnavailable)
			return
		case outcome == claim.Handled:
			a.log.Info("duplicate webhook delivery ignored", "message", f.MessageSID)
			writeTwiML(w)
			return
		}
		// The engine may talk to Twilio several times; the request is answered when it is
		// done, within Twilio's 15 s, and the work is not cut short if Twilio hangs up.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), handleTimeout)
		defer cancel()
		if err := a.handle(ctx, h, f); err != nil {
			a.log.Error("handle whatsapp message; given up for Twilio's retry", "message", f.MessageSID, "err", err)
			for _, cl := range held {
				if err := cl.Release(ctx); err != nil {
					a.log.Warn("whatsapp message not given up; its retry waits for the lease", "message", f.MessageSID, "err", err)
				}
			}
			http.Error(w, "not handled; try again", http.StatusServiceUnavailable)
			return
		}
		for _, cl := range held {
			if err := cl.Done(ctx); err != nil {
				a.log.Warn("whatsapp message handled but not recorded as handled", "message", f.MessageSID, "err", err)
			}
		}
		writeTwiML(w)
	})
}

// claim claims a delivery by its MessageSid and, when Twilio sent one, its
// I-Twilio-Idempotency-Token (a retry repeats both): Mine with both claims held, else what
// the first claim not ours found (nothing is left held then).
func (a *Adapter) claim(ctx context.Context, messageSID, token string) ([]*claim.Claim, claim.Outcome, error) {
	keys := []string{a.key("dedup", messageSID)}
	if token != "" && len(token) <= 128 {
		keys = append(keys, a.key("dedup-token", token))
	}
	var held []*claim.Claim
	giveUp := func() {
		for _, cl := range held {
			_ = cl.Release(ctx)
		}
	}
	for _, k := range keys {
		cl, outcome, err := a.deliveries.Take(ctx, k)
		if err != nil {
			giveUp()
			return nil, 0, fmt.Errorf("whatsapp: duplicate check: %w", err)
		}
		if outcome != claim.Mine {
			giveUp()
			return nil, outcome, nil
		}
		held = append(held, cl)
	}
	return held, claim.Mine, nil
}

func writeTwiML(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	_, _ = io.WriteString(w, emptyTwiML)
}

// signed checks X-Twilio-Signature over the public URL of the request and its form.
func (a *Adapter) signed(r *http.Request, form url.Values) bool {
	sig := r.Header.Get("X-Twilio-Signature")
	if sig == "" {
		return false
	}
	u := a.o.PublicURL + r.URL.Path
	if r.URL.RawQuery != "" {
		u += "?" + r.URL.RawQuery
	}
	params := make(map[string]string, len(form))
	for k, vs := range form {
		if len(vs) != 1 {
			return false // Twilio never repeats a parameter of a message webhook
		}
		params[k] = vs[0]
	}
	return a.validator.Validate(u, params, sig)
}

// Inbound is the engine's view of a form: a quick-reply press as Data, a typed word
// command as "/name args", free text as it is; a reply quoting a bot message points at
// that message (ReplyTo) and its incident (Topic).
func (a *Adapter) Inbound(ctx context.Context, f Form) conversation.Inbound {
	chat := conversation.Chat{Channel: conversation.WhatsApp, ID: f.From}
	in := conversation.Inbound{Chat: chat, User: conversation.User{Channel: conversation.WhatsApp, ID: f.From, Name: f.Name},
		MessageID: f.MessageSID, Direct: true}
	if f.RepliedTo != "" {
		in.ReplyTo = f.RepliedTo
		if label, head := a.sent(ctx, f.RepliedTo); head != "" {
			in.ReplyTo, in.Topic = head, label
		}
	}
	if f.Payload != "" {
		in.Data = f.Payload
		return in
	}
	in.Text, _ = Command(f.Body)
	return in
}

// handle runs one message through the engine. A press gets its answer as a message,
// since WhatsApp has no toast — also when the engine failed (its error is returned, for
// the message to be given up to Twilio's retry).
func (a *Adapter) handle(ctx context.Context, h conversation.Handler, f Form) error {
	a.seen(ctx, f.From)
	in := a.Inbound(ctx, f)
	if !in.Pressed() && strings.TrimSpace(in.Text) == "" {
		return nil
	}
	r, err := h.Handle(ctx, in)
	if in.Pressed() && r.Toast != "" {
		th := conversation.Thread{Chat: in.Chat, Topic: in.Topic}
		if _, err := a.Post(ctx, th, conversation.Message{Blocks: []conversation.Block{{Style: conversation.Plain, Text: r.Toast}}}); err != nil {
			a.log.Warn("answer a quick reply", "err", err)
		}
	}
	return err
}
