package whatsapp

import (
	"context"
	"encoding/json"
	"errors"

	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/conversation"
)

// provider is the wire of one WhatsApp provider (Twilio, Meta's Cloud API): how a
// message leaves, what it may carry, how the provider's requests come in. Everything
// else — rendering, the 24-hour session window, templates outside it, reply codes,
// typed commands, de-duplication, what a quoted reply points at — is the channel's, in
// Adapter, and the same for every provider.
type provider interface {
	// maxBody is the longest text message, in characters (UTF-16 units are counted).
	maxBody() int
	// hasTemplate reports whether an approval template is configured.
	hasTemplate() bool
	// replyButtons are the interactive reply buttons msg gets inside the session window,
	// nil when the provider has none (Twilio: quick replies only through the template).
	replyButtons(msg conversation.Message) []conversation.Button
	// sendText sends one text message to the +E164 number; png, when set, is the chart,
	// sent with or just before it. A chart that cannot be sent is logged, not an error.
	sendText(ctx context.Context, to, body string, png []byte) (string, error)
	// sendTemplate sends the approval template with its variables (templateVariables).
	sendTemplate(ctx context.Context, to string, vars map[string]string) (string, error)
	// sendButtons sends body with interactive reply buttons (only where replyButtons
	// returned some).
	sendButtons(ctx context.Context, to, body string, buttons []conversation.Button) (string, error)
	// routes are the provider's webhook (verified, parsed into Form, handed to
	// Adapter.handle) and whatever else it serves.
	routes(h conversation.Handler) []channel.Route
	// check is the provider's cheapest authenticated request (Adapter.Check).
	check(ctx context.Context) error
	// run is the provider's loop (Adapter.Run); it returns when ctx ends.
	run(ctx context.Context) error
}

// twilio is the provider over Twilio's REST API (twilio-go) and its signed form posts.
type twilio struct{ a *Adapter }

var _ provider = twilio{}

func (twilio) maxBody() int { return MaxBody }

func (p twilio) hasTemplate() bool { return p.a.o.ContentSID != "" }

func (twilio) replyButtons(conversation.Message) []conversation.Button { return nil }

func (p twilio) sendText(ctx context.Context, to, body string, png []byte) (string, error) {
	a := p.a
	params := (&api.CreateMessageParams{}).SetTo("whatsapp:" + to).SetFrom(a.o.From)
	if png != nil {
		u, err := a.storeImage(ctx, png)
		if err != nil {
			a.log.Warn("chart not sent", "err", err)
		} else {
			params.SetMediaUrl([]string{u})
		}
	}
	if body != "" {
		params.SetBody(body)
	}
	return p.create(ctx, params)
}

func (p twilio) sendTemplate(ctx context.Context, to string, vars map[string]string) (string, error) {
	js, _ := json.Marshal(vars)
	params := (&api.CreateMessageParams{}).SetTo("whatsapp:" + to).SetFrom(p.a.o.From).
		SetContentSid(p.a.o.ContentSID).SetContentVariables(string(js))
	return p.create(ctx, params)
}

func (twilio) sendButtons(context.Context, string, string, []conversation.Button) (string, error) {
	return "", errors.New("whatsapp: Twilio sends quick replies only through the approval template")
}

func (p twilio) create(ctx context.Context, params *api.CreateMessageParams) (string, error) {
	m, err := call(ctx, p.a, "send message", func() (*api.ApiV2010Message, error) { return p.a.rest.Api.CreateMessage(params) })
	if err != nil {
		return "", err
	}
	if m.Sid == nil || *m.Sid == "" {
		return "", errors.New("whatsapp: twilio returned a message without a SID")
	}
	return *m.Sid, nil
}

func (p twilio) routes(h conversation.Handler) []channel.Route {
	return []channel.Route{
		{Pattern: "POST " + WebhookPath, Handler: p.a.WebhookHandler(h), MaxBody: MaxRequestBody},
		{Pattern: "GET " + MediaPath, Handler: p.a.MediaHandler()},
	}
}

func (p twilio) check(ctx context.Context) error { return p.a.checkTwilio(ctx) }

// run checks the approval template once and warns when it is unusable (cards then fall
// back to reply codes, which always work).
func (p twilio) run(ctx context.Context) error {
	if err := p.a.CheckTemplate(ctx); err != nil && ctx.Err() == nil {
		p.a.log.Warn("TWILIO_APPROVAL_CONTENT_SID: approvals fall back to reply codes", "err", err)
	}
	<-ctx.Done()
	return nil
}
