package whatsapp

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/conversation"
)

// Session is WhatsApp's customer-care window: the bot may send free-form messages to a
// number only within 24 hours of that number's last message.
const Session = 24 * time.Hour

// memoryTTL bounds how long sent messages and images are remembered.
const memoryTTL = 7 * 24 * time.Hour

var incidentID = regexp.MustCompile(`^INC-[0-9A-F]{1,16}$`)

// OpenThread sends msg as the first message of an incident's thread. WhatsApp has no
// threads: the Thread's Topic is the incident id from title ("INC-7F3 · checkout"),
// which labels every later message, and its Root the first message sent.
func (a *Adapter) OpenThread(ctx context.Context, chat conversation.Chat, title string, msg conversation.Message) (conversation.Thread, conversation.MessageRef, error) {
	th := conversation.Thread{Chat: chat}
	if id, _, _ := strings.Cut(title, " "); incidentID.MatchString(id) {
		th.Topic = id
	}
	first, last, err := a.send(ctx, th, msg)
	if err != nil {
		return conversation.Thread{}, conversation.MessageRef{}, err
	}
	th.Root = first
	return th, conversation.MessageRef{Chat: chat, ID: last}, nil
}

// Post sends msg to th's number, labelled with th's incident.
func (a *Adapter) Post(ctx context.Context, th conversation.Thread, msg conversation.Message) (conversation.MessageRef, error) {
	_, last, err := a.send(ctx, th, msg)
	if err != nil {
		return conversation.MessageRef{}, err
	}
	return conversation.MessageRef{Chat: th.Chat, ID: last}, nil
}

// Edit cannot change a sent WhatsApp message: it sends the update instead, the last
// block of msg (the closing line of a card: "✅ Approved by …"), labelled with the
// incident of the message it updates.
func (a *Adapter) Edit(ctx context.Context, ref conversation.MessageRef, msg conversation.Message) error {
	if len(msg.Blocks) == 0 {
		return nil
	}
	label, _ := a.sent(ctx, ref.ID)
	upd := conversation.Message{Blocks: msg.Blocks[len(msg.Blocks)-1:]}
	_, _, err := a.send(ctx, conversation.Thread{Chat: ref.Chat, Topic: label}, upd)
	return err
}

// send delivers msg in parts and returns the ids of the first and the last. A card
// carrying an approval goes through the approval template when one is configured: with
// the number inside its 24-hour session window the full card goes first as text (a
// session message), then the template with its one-tap replies; outside the window only
// the template can be delivered, so its short variables say what the card is about. A
// provider with interactive reply buttons (the Cloud API) sends, inside the window, the
// card as text and then its buttons, which need no template.
func (a *Adapter) send(ctx context.Context, th conversation.Thread, msg conversation.Message) (string, string, error) {
	to, err := number(th.Chat)
	if err != nil {
		return "", "", err
	}
	label := th.Topic
	text := render(msg, label)
	approve, reject := quickReplies(msg)
	inSession := a.inSession(ctx, to)
	var buttons []conversation.Button
	if inSession {
		buttons = a.wire.replyButtons(msg)
	}
	template := a.wire.hasTemplate() && approve != "" && buttons == nil
	if !template && !inSession {
		a.log.Warn("sending outside the 24 h session window; WhatsApp accepts only templates there", "to", redact(to))
	}
	var parts []string
	if !template || inSession {
		parts = split(text, a.wire.maxBody())
	}
	var image []byte
	if msg.Image != nil && (!template || inSession) {
		image = msg.Image.PNG
	}
	var ids []string
	sendOne := func(i, n int, fn func() (string, error)) error {
		id, err := fn()
		if err != nil {
			if len(ids) > 0 {
				return fmt.Errorf("send part %d of %d: %w", i+1, n, err)
			}
			return err
		}
		if id == "" {
			return errors.New("whatsapp: the provider returned a message without an id")
		}
		ids = append(ids, id)
		return nil
	}
	n := len(parts)
	if template || buttons != nil {
		n++
	}
	for i, p := range parts {
		var png []byte
		if i == 0 {
			png = image
		}
		if err = sendOne(i, n, func() (string, error) { return a.wire.sendText(ctx, to, p, png) }); err != nil {
			break
		}
	}
	if err == nil && template {
		// The template is its own last message: it has no media, and its variables are
		// the short single-line fields WhatsApp accepts.
		vars := templateVariables(msg, label, approve, reject)
		err = sendOne(n-1, n, func() (string, error) { return a.wire.sendTemplate(ctx, to, vars) })
	}
	if err == nil && buttons != nil {
		// The buttons' message says what they decide: the card's title, and the action
		// an approval would run.
		vars := templateVariables(msg, label, approve, reject)
		body := vars["1"]
		if approve != "" {
			body += "\nApprove: " + vars["4"]
		}
		err = sendOne(n-1, n, func() (string, error) { return a.wire.sendButtons(ctx, to, body, buttons) })
	}
	if len(ids) == 0 {
		return "", "", err
	}
	first, last := ids[0], ids[len(ids)-1]
	// Replies quoting any part belong where the message does: remember each part's
	// incident label and the id the engine knows the message by.
	pipe := a.o.Redis.Pipeline()
	for _, id := range ids {
		pipe.Set(ctx, a.key("msg", id), label+"|"+last, memoryTTL)
	}
	if _, perr := pipe.Exec(ctx); perr != nil {
		a.log.Warn("remember sent message", "err", perr)
	}
	return first, last, err
}

// sent returns the incident label and the engine-known SID of a message the bot sent.
func (a *Adapter) sent(ctx context.Context, sid string) (label, head string) {
	v, err := a.o.Redis.Get(ctx, a.key("msg", sid)).Result()
	if err != nil {
		return "", ""
	}
	label, head, _ = strings.Cut(v, "|")
	return label, head
}

// quickReplies are the template's payloads: the first approval of msg and its reject.
func quickReplies(msg conversation.Message) (approve, reject string) {
	for _, row := range msg.Buttons {
		for _, b := range row {
			switch {
			case approve == "" && strings.HasPrefix(b.Data, "ap:"):
				approve = b.Data
			case reject == "" && strings.HasPrefix(b.Data, "/reject "):
				reject = b.Data
			}
		}
	}
	if reject == "" {
		reject = "/help"
	}
	return approve, reject
}

// inSession reports whether number wrote within the session window.
func (a *Adapter) inSession(ctx context.Context, number string) bool {
	n, err := a.o.Redis.Exists(ctx, a.key("seen", number)).Result()
	return err == nil && n > 0
}

// seen opens number's session window.
func (a *Adapter) seen(ctx context.Context, number string) {
	a.o.Redis.Set(ctx, a.key("seen", number), "1", Session)
}

// maxImage bounds a chart kept for Twilio to fetch.
const maxImage = 5 << 20

// storeImage keeps a PNG under a random name for Twilio to fetch from PUBLIC_URL.
func (a *Adapter) storeImage(ctx context.Context, png []byte) (string, error) {
	if len(png) == 0 || len(png) > maxImage {
		return "", fmt.Errorf("image of %d bytes", len(png))
	}
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(b)
	if err := a.o.Redis.Set(ctx, a.key("media", id), png, memoryTTL).Err(); err != nil {
		return "", fmt.Errorf("store image: %w", err)
	}
	return a.o.PublicURL + MediaPath + id + ".png", nil
}

// MediaPath is where MediaHandler serves images (GET MediaPath + "{id}.png").
const MediaPath = "/whatsapp/media/"

var mediaName = regexp.MustCompile(`^[A-Za-z0-9_-]{22}\.png$`)

// MediaHandler serves the images sent as media to Twilio, by their unguessable names.
func (a *Adapter) MediaHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, MediaPath)
		if !mediaName.MatchString(name) {
			http.NotFound(w, r)
			return
		}
		png, err := a.o.Redis.Get(r.Context(), a.key("media", strings.TrimSuffix(name, ".png"))).Bytes()
		if errors.Is(err, redis.Nil) {
			http.NotFound(w, r)
			return
		}
		if err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "image/png")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "private, max-age=3600")
		_, _ = w.Write(png)
	})
}

// redact keeps the last four digits of a number, for logs.
func redact(n string) string {
	if len(n) <= 4 {
		return "…"
	}
	return "…" + n[len(n)-4:]
}
