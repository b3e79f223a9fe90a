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

// Spec registers WhatsApp with the assembly, on the provider WHATSAPP_PROVIDER names:
// "twilio" (the default when TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and
// TWILIO_WHATSAPP_FROM are set) or "cloud" (Meta's Cloud API: WHATSAPP_CLOUD_TOKEN,
// WHATSAPP_CLOUD_PHONE_NUMBER_ID, WHATSAPP_CLOUD_APP_SECRET, WHATSAPP_CLOUD_VERIFY_TOKEN;
// optional WHATSAPP_CLOUD_TEMPLATE, WHATSAPP_CLOUD_WABA_ID (to check that template) and
// WHATSAPP_CLOUD_API_URL). The secrets may be
// given as NAME_FILE.
var Spec = channel.Spec{
	Name:         conversation.WhatsApp,
	Title:        "WhatsApp",
	Enabled:      func(env config.Env) bool { return env.WhatsAppEnabled() },
	EnabledBy:    enabledBy,
	Setting:      "WhatsApp is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM; or WHATSAPP_PROVIDER=cloud with WHATSAPP_CLOUD_TOKEN, WHATSAPP_CLOUD_PHONE_NUMBER_ID, WHATSAPP_CLOUD_APP_SECRET, WHATSAPP_CLOUD_VERIFY_TOKEN)",
	New:          newFromDeps,
	ParseChat:    ParseNumber,
	ParsePerson:  ParseNumber,
	Capabilities: (*Adapter)(nil).Capabilities(),
}

// Providers.
const (
	ProviderTwilio = "twilio"
	ProviderCloud  = "cloud"
)

func set(l channel.Lookup, name string) bool { return l.Get(name) != "" || l.Get(name+"_FILE") != "" }

// provider is WHATSAPP_PROVIDER, lower-cased; unset: "cloud" when only the Cloud API's
// variables are set, else "twilio".
func providerOf(l channel.Lookup) string {
	p := strings.ToLower(strings.TrimSpace(l.Get("WHATSAPP_PROVIDER")))
	if p == "" && set(l, "WHATSAPP_CLOUD_TOKEN") && !set(l, "TWILIO_ACCOUNT_SID") {
		p = ProviderCloud
	}
	if p == "" {
		p = ProviderTwilio
	}
	return p
}

func enabledBy(l channel.Lookup) bool {
	switch providerOf(l) {
	case ProviderCloud:
		return set(l, "WHATSAPP_CLOUD_TOKEN") && l.Get("WHATSAPP_CLOUD_PHONE_NUMBER_ID") != ""
	case ProviderTwilio:
		return l.Get("TWILIO_ACCOUNT_SID") != "" && set(l, "TWILIO_AUTH_TOKEN") && l.Get("TWILIO_WHATSAPP_FROM") != ""
	}
	return true // an unknown provider: New says so
}

func newFromDeps(d channel.Deps) (channel.Adapter, error) {
	switch p := providerOf(d.Lookup); p {
	case ProviderTwilio:
		a, err := New(Options{AccountSID: d.Env.TwilioAccountSID, AuthToken: d.Env.TwilioAuthToken.Reveal(),
			From: d.Env.TwilioWhatsAppFrom, APIURL: d.Env.TwilioAPIURL, ContentSID: d.Env.TwilioApprovalContentSID,
			PublicURL: d.Env.PublicURL, Redis: d.Redis, KeyPrefix: d.KeyPrefix, Logger: d.Logger, Clock: d.Clock})
		if err != nil {
			return nil, err
		}
		return a, nil
	case ProviderCloud:
		o := CloudOptions{PhoneNumberID: d.Lookup.Get("WHATSAPP_CLOUD_PHONE_NUMBER_ID"), APIURL: d.Lookup.Get("WHATSAPP_CLOUD_API_URL"),
			Template: d.Lookup.Get("WHATSAPP_CLOUD_TEMPLATE"), WABAID: d.Lookup.Get("WHATSAPP_CLOUD_WABA_ID"), Redis: d.Redis, KeyPrefix: d.KeyPrefix, Logger: d.Logger, Clock: d.Clock, Registry: d.Registry}
		for name, dst := range map[string]*string{"WHATSAPP_CLOUD_TOKEN": &o.Token, "WHATSAPP_CLOUD_APP_SECRET": &o.AppSecret, "WHATSAPP_CLOUD_VERIFY_TOKEN": &o.VerifyToken} {
			s, err := channel.Secret(d.Lookup, name)
			if err != nil {
				return nil, fmt.Errorf("whatsapp: %w", err)
			}
			if !s.IsSet() {
				return nil, fmt.Errorf("whatsapp: WHATSAPP_PROVIDER=cloud needs %s", name)
			}
			*dst = s.Reveal()
		}
		a, err := NewCloud(o)
		if err != nil {
			return nil, err
		}
		return a, nil
	default:
		return nil, fmt.Errorf("whatsapp: WHATSAPP_PROVIDER is %q; want twilio or cloud", p)
	}
}

var _ channel.Adapter = (*Adapter)(nil)

// Routes are the provider's: Twilio's webhook (POST WebhookPath) and the chart images
// Twilio fetches (GET MediaPath…); the Cloud API's webhook (GET and POST
// CloudWebhookPath).
func (a *Adapter) Routes(h conversation.Handler) []channel.Route { return a.wire.routes(h) }

// Run is the provider's loop: on Twilio it checks the approval template once and warns
// when it is unusable (cards then fall back to reply codes, which always work); then it
// waits for ctx: messages come to Routes.
func (a *Adapter) Run(ctx context.Context, _ conversation.Handler) error { return a.wire.run(ctx) }

// Check is the provider's cheapest authenticated request: an error wrapping
// channel.ErrRefused when the provider refuses the credentials, another error when it
// cannot be reached or the account is not usable.
func (a *Adapter) Check(ctx context.Context) error { return a.wire.check(ctx) }

// checkTwilio fetches the Twilio account: an error wrapping channel.ErrRefused when
// Twilio refuses the credentials (401, 403), another error when Twilio cannot be reached
// or the account is not active.
func (a *Adapter) checkTwilio(ctx context.Context) error {
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
