package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/telegram"
	"github.com/alertengine/alertengine/bot/whatsapp"
	"github.com/alertengine/alertengine/conversation"
)

// channels are the chat platforms the bot knows, one line each; the environment says
// which are on.
var channels = []channel.Spec{telegramSpec, whatsappSpec}

// voiceCaller is the escalation caller when TWILIO_VOICE_FROM is set, else nil.
func voiceCaller(o *Options) (conversation.Caller, error) {
	if o.Env.TwilioVoiceFrom == "" {
		return nil, nil
	}
	return whatsapp.NewCaller(whatsapp.CallerOptions{AccountSID: o.Env.TwilioAccountSID, AuthToken: o.Env.TwilioAuthToken.Reveal(),
		From: o.Env.TwilioVoiceFrom, APIURL: o.Env.TwilioAPIURL, Logger: o.Logger})
}

var telegramSpec = channel.Spec{Name: conversation.Telegram, Title: "Telegram", Setting: "TELEGRAM_BOT_TOKEN",
	Enabled: func(env config.Env) bool { return env.TelegramEnabled() },
	New: func(d channel.Deps) (channel.Adapter, error) {
		a, err := telegram.New(telegram.Options{Token: d.Env.TelegramBotToken.Reveal(), APIURL: d.Env.TelegramAPIURL, Redis: d.Redis,
			KeyPrefix: d.KeyPrefix, Logger: d.Logger, WebhookSecret: d.Env.TelegramWebhookSecret.Reveal()})
		if err != nil {
			return nil, err
		}
		return &telegramChannel{Adapter: a, webhook: d.Env.TelegramWebhook(), publicURL: d.Env.PublicURL, log: d.Logger}, nil
	}}

// telegramChannel gives the Telegram adapter the channel contract.
type telegramChannel struct {
	*telegram.Adapter
	webhook   bool
	publicURL string
	log       *slog.Logger
}

func (t *telegramChannel) Routes(h conversation.Handler) []channel.Route {
	if !t.webhook {
		return nil
	}
	return []channel.Route{{Pattern: "POST /telegram/webhook", Handler: t.WebhookHandler(h)}}
}

func (t *telegramChannel) Run(ctx context.Context, h conversation.Handler) error {
	if !t.webhook {
		err := t.Adapter.Run(ctx, h)
		if err == nil && ctx.Err() == nil {
			err = errors.New("long polling stopped")
		}
		return err
	}
	if err := t.SetWebhook(ctx, t.publicURL+"/telegram/webhook"); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (t *telegramChannel) Check(ctx context.Context) error {
	name, err := t.Adapter.Check(ctx)
	if errors.Is(err, telegram.ErrTokenRefused) {
		return fmt.Errorf("TELEGRAM_BOT_TOKEN: Telegram refused the token (getMe: 401 Unauthorized): %w", channel.ErrRefused)
	}
	if err == nil {
		t.log.Debug("telegram bot", "username", name)
	}
	return err
}

var whatsappSpec = channel.Spec{Name: conversation.WhatsApp, Title: "WhatsApp", Setting: "TWILIO_WHATSAPP_FROM",
	Enabled: func(env config.Env) bool { return env.WhatsAppEnabled() },
	New: func(d channel.Deps) (channel.Adapter, error) {
		a, err := whatsapp.New(whatsapp.Options{AccountSID: d.Env.TwilioAccountSID, AuthToken: d.Env.TwilioAuthToken.Reveal(),
			From: d.Env.TwilioWhatsAppFrom, APIURL: d.Env.TwilioAPIURL, ContentSID: d.Env.TwilioApprovalContentSID,
			PublicURL: d.Env.PublicURL, Redis: d.Redis, KeyPrefix: d.KeyPrefix, Logger: d.Logger, Clock: d.Clock})
		if err != nil {
			return nil, err
		}
		return &whatsappChannel{Adapter: a, log: d.Logger}, nil
	}}

// whatsappChannel gives the WhatsApp adapter the channel contract.
type whatsappChannel struct {
	*whatsapp.Adapter
	log *slog.Logger
}

func (w *whatsappChannel) Routes(h conversation.Handler) []channel.Route {
	return []channel.Route{
		{Pattern: "POST " + whatsapp.WebhookPath, Handler: w.WebhookHandler(h)},
		{Pattern: "GET " + whatsapp.MediaPath, Handler: w.MediaHandler()},
	}
}

// Run warns once when the approval template is unusable (cards then fall back to reply
// codes, which always work); there is nothing else to run.
func (w *whatsappChannel) Run(ctx context.Context, _ conversation.Handler) error {
	if err := w.CheckTemplate(ctx); err != nil && ctx.Err() == nil {
		w.log.Warn("TWILIO_APPROVAL_CONTENT_SID: approvals fall back to reply codes", "err", err)
	}
	return nil
}

func (w *whatsappChannel) Check(context.Context) error { return nil }
