package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/conversation"
)

// Spec registers WhatsApp (through Twilio) with the assembly: on when TWILIO_ACCOUNT_SID,
// TWILIO_AUTH_TOKEN and TWILIO_WHATSAPP_FROM are set.
var Spec = channel.Spec{
	Name:    conversation.WhatsApp,
	Title:   "WhatsApp",
	Enabled: func(env config.Env) bool { return env.WhatsAppEnabled() },
	Setting: "WhatsApp is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM)",
	New: func(d channel.Deps) (channel.Adapter, error) {
		a, err := New(Options{AccountSID: d.Env.TwilioAccountSID, AuthToken: d.Env.TwilioAuthToken.Reveal(),
			From: d.Env.TwilioWhatsAppFrom, APIURL: d.Env.TwilioAPIURL, ContentSID: d.Env.TwilioApprovalContentSID,
			PublicURL: d.Env.PublicURL, Redis: d.Redis, KeyPrefix: d.KeyPrefix, Logger: d.Logger, Clock: d.Clock})
		if err != nil {
			return nil, err
		}
		return a, nil
	},
	ParseChat:   ParseNumber,
	ParsePerson: ParseNumber,
}

var _ channel.Adapter = (*Adapter)(nil)

// Routes are Twilio's webhook (POST WebhookPath) and the chart images Twilio fetches for
// messages that carry one (GET MediaPath…).
func (a *Adapter) Routes(h conversation.Handler) []channel.Route {
	return []channel.Route{
		{Pattern: "POST " + WebhookPath, Handler: a.WebhookHandler(h), MaxBody: MaxRequestBody},
		{Pattern: "GET " + MediaPath, Handler: a.MediaHandler()},
	}
}

// Run checks the approval template once and warns when it is unusable (cards then fall
// back to reply codes, which always work), then waits for ctx: messages come to Routes.
func (a *Adapter) Run(ctx context.Context, _ conversation.Handler) error {
	if err := a.CheckTemplate(ctx); err != nil && ctx.Err() == nil {
		a.log.Warn("TWILIO_APPROVAL_CONTENT_SID: approvals fall back to reply codes", "err", err)
	}
	<-ctx.Done()
	return nil
}

// Check fetches the Twilio account, the cheapest authenticated request: an error wrapping
// channel.ErrRefused when Twilio refuses the credentials (401, 403), another error when
// Twilio cannot be reached or the account is not active.
func (a *Adapter) Check(ctx context.Context) error {
	acct, err := within(ctx, a.o.CallTimeout, func() (*api.ApiV2010Account, error) { return a.rest.Api.FetchAccount(a.o.AccountSID) })
	var te *client.TwilioRestError
	if errors.As(err, &te) && (te.Status == http.StatusUnauthorized || te.Status == http.StatusForbidden) {
		return fmt.Errorf("whatsapp: %w: Twilio answered %d %d %s", channel.ErrRefused, te.Status, te.Code, te.Message)
	}
	if err != nil {
		return fmt.Errorf("whatsapp: fetch account: %w", err)
	}
	if acct.Status != nil && *acct.Status != "active" {
		return fmt.Errorf("whatsapp: the Twilio account is %s", *acct.Status)
	}
	return nil
}

// errNumber is what ParseNumber wants; the tenants file's reader adds what it got.
var errNumber = errors.New(`want an E.164 number like "+263771234567"`)

// ParseNumber checks a WhatsApp number as written in the tenants file: +E164, with or
// without a "whatsapp:" prefix and surrounding spaces. It returns the bare +E164 number,
// the form of conversation.Chat.ID and conversation.User.ID.
func ParseNumber(s string) (string, error) {
	n := strings.TrimPrefix(strings.TrimSpace(s), "whatsapp:")
	if !e164.MatchString(n) {
		return "", errNumber
	}
	return n, nil
}
