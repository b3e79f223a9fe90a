package telegram

import (
	"errors"
	"strconv"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/conversation"
)

// Spec registers Telegram with the assembly: on when TELEGRAM_BOT_TOKEN is set, in webhook
// mode when PUBLIC_URL and TELEGRAM_WEBHOOK_SECRET are set too, long polling otherwise.
var Spec = channel.Spec{
	Name:    conversation.Telegram,
	Title:   "Telegram",
	Enabled: func(env config.Env) bool { return env.TelegramEnabled() },
	Setting: "TELEGRAM_BOT_TOKEN is not set",
	New: func(d channel.Deps) (channel.Adapter, error) {
		o := Options{Token: d.Env.TelegramBotToken.Reveal(), APIURL: d.Env.TelegramAPIURL, Redis: d.Redis, KeyPrefix: d.KeyPrefix,
			Logger: d.Logger, WebhookSecret: d.Env.TelegramWebhookSecret.Reveal()}
		if d.Env.TelegramWebhook() {
			o.PublicURL = d.Env.PublicURL
		}
		a, err := New(o)
		if err != nil {
			return nil, err
		}
		return a, nil
	},
	ParseChat:    ParseChatID,
	ParsePerson:  ParseUserID,
	Capabilities: (*Adapter)(nil).Capabilities(),
}

// Routes is POST WebhookPath in webhook mode, nothing when long polling.
func (a *Adapter) Routes(h conversation.Handler) []channel.Route {
	if a.opts.PublicURL == "" {
		return nil
	}
	return []channel.Route{{Pattern: "POST " + WebhookPath, Handler: a.WebhookHandler(h), MaxBody: MaxWebhookBody}}
}

// Errors of ParseChatID and ParseUserID: what was wanted. The tenants file's reader adds
// what it got.
var (
	errChatID = errors.New("want a numeric Telegram chat id (groups are negative, e.g. -1001234567890)")
	errUserID = errors.New("want the person's numeric Telegram user id (a positive number)")
)

// ParseChatID checks a Telegram chat id as written in the tenants file: a non-zero
// integer (groups and channels are negative). It returns it in decimal, the form of
// conversation.Chat.ID.
func ParseChatID(s string) (string, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id == 0 {
		return "", errChatID
	}
	return strconv.FormatInt(id, 10), nil
}

// ParseUserID checks a person's Telegram user id: a positive integer. It returns it in
// decimal, the form of conversation.User.ID.
func ParseUserID(s string) (string, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return "", errUserID
	}
	return strconv.FormatInt(id, 10), nil
}
