package config

import (
	"errors"
	"strings"
)

// ChatChannel is a chat platform as the tenants file sees it: the key of its chats
// (`chats: {<name>: [ids]}`) and of its person ids (`ids: {<name>: id}`), whether the
// environment turns it on, and how its ids are written. The assembly builds one per
// registered platform and passes them to [Parse] or [Load]. Each platform's id rules live
// in its own adapter package; this package knows none of them.
type ChatChannel struct {
	// Name is the key in the file ("telegram"); Title the channel as people write it
	// ("Telegram").
	Name, Title string
	// Enabled reports whether env configures the channel; in serve mode its chats may only
	// be listed when it does. Setting says what is missing, for that problem
	// ("TELEGRAM_BOT_TOKEN is not set").
	Enabled func(env Env) bool
	Setting string
	// Chat checks one chat id as written and returns it in the form the platform's
	// transport uses; Person does the same for a person's id. Their error says what was
	// wanted ("want a numeric Telegram chat id …"); the problem line adds the value given.
	// Nil accepts any non-empty text.
	Chat, Person func(s string) (string, error)
}

// Chat is one incident chat of a tenant: a chat id on a channel.
type Chat struct {
	// Channel is the channel's name (ChatChannel.Name).
	Channel string
	// ID is the chat's id, as the channel's Chat function returned it.
	ID string
}

func (c ChatChannel) title() string {
	if c.Title != "" {
		return c.Title
	}
	return c.Name
}

func (c ChatChannel) chat(s string) (string, error) { return parseID(c.Chat, s) }

func (c ChatChannel) person(s string) (string, error) { return parseID(c.Person, s) }

func parseID(parse func(string) (string, error), s string) (string, error) {
	if parse != nil {
		return parse(s)
	}
	if strings.TrimSpace(s) == "" {
		return "", errors.New("want an id")
	}
	return s, nil
}

func channelNames(channels []ChatChannel) []string {
	names := make([]string, len(channels))
	for i, c := range channels {
		names[i] = c.Name
	}
	return names
}

func channelByName(channels []ChatChannel, name string) *ChatChannel {
	for i := range channels {
		if channels[i].Name == name {
			return &channels[i]
		}
	}
	return nil
}
