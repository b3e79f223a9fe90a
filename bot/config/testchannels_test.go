package config

import (
	"errors"
	"strconv"
	"strings"
)

// testChannels are Telegram and WhatsApp as these tests register them: the key names and
// settings of the real platforms, with id rules of their own (each adapter package owns
// and tests its real ones).
func testChannels() []ChatChannel {
	return []ChatChannel{
		{Name: "telegram", Title: "Telegram", Enabled: Env.TelegramEnabled, Setting: "TELEGRAM_BOT_TOKEN is not set",
			Chat: func(s string) (string, error) {
				id, err := strconv.ParseInt(s, 10, 64)
				if err != nil || id == 0 {
					return "", errors.New("want a numeric Telegram chat id (groups are negative, e.g. -1001234567890)")
				}
				return strconv.FormatInt(id, 10), nil
			},
			Person: func(s string) (string, error) {
				id, err := strconv.ParseInt(strings.TrimPrefix(s, "+"), 10, 64)
				if err != nil || id <= 0 {
					return "", errors.New("want the person's numeric Telegram user id (a positive number)")
				}
				return strconv.FormatInt(id, 10), nil
			}},
		{Name: "whatsapp", Title: "WhatsApp", Enabled: Env.WhatsAppEnabled,
			Setting: "WhatsApp is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM)",
			Chat:    testNumber, Person: testNumber},
	}
}

func testNumber(s string) (string, error) {
	n, ok := normalizeWhatsApp(s)
	if !ok {
		return "", errors.New(`want an E.164 number like "+263771234567"`)
	}
	return n, nil
}

// parseT and loadT are Parse and Load with testChannels registered when the test gives
// no channels.
func parseT(name string, data []byte, lookup func(string) (string, bool), env Env, channels ...ChatChannel) (*File, error) {
	if len(channels) == 0 {
		channels = testChannels()
	}
	return Parse(name, data, lookup, env, channels...)
}

func loadT(path string, lookup func(string) (string, bool), env Env, channels ...ChatChannel) (*File, error) {
	if len(channels) == 0 {
		channels = testChannels()
	}
	return Load(path, lookup, env, channels...)
}
