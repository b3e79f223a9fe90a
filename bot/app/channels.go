package app

import (
	"regexp"
	"slices"
	"strings"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/slack"
	"github.com/alertengine/alertengine/bot/telegram"
	"github.com/alertengine/alertengine/bot/voice"
	"github.com/alertengine/alertengine/bot/whatsapp"
	"github.com/alertengine/alertengine/conversation"
)

// channels are the chat platforms the bot knows, one line each; the environment says
// which are on. A new platform is a package exporting a channel.Spec, and a line here.
var channels = []channel.Spec{
	telegram.Spec,
	whatsapp.Spec,
	slack.Spec,
}

// Registered are the chat platforms the bot knows, in their registration order.
func Registered() []channel.Spec { return slices.Clone(channels) }

// ChatChannels are the registered chat platforms as the tenants file sees them (pass them
// to config.Load), so each platform's chat and person ids are checked by its own rules.
// lookup reads the variables of a platform that config.Env does not carry.
func ChatChannels(lookup channel.Lookup) []config.ChatChannel {
	return chatChannels(channels, lookup)
}

func chatChannels(specs []channel.Spec, lookup channel.Lookup) []config.ChatChannel {
	out := make([]config.ChatChannel, 0, len(specs))
	for _, s := range specs {
		enabled := s.Enabled
		if s.EnabledBy != nil {
			by := s.EnabledBy
			enabled = func(config.Env) bool { return by(lookup) }
		}
		out = append(out, config.ChatChannel{Name: string(s.Name), Title: s.Title, Enabled: enabled, Setting: s.Setting,
			Chat: s.ParseChat, Person: s.ParsePerson})
	}
	return out
}

// voiceCaller is the escalation caller when TWILIO_VOICE_FROM is set, else nil.
func voiceCaller(o *Options) (conversation.Caller, error) {
	if o.Env.TwilioVoiceFrom == "" {
		return nil, nil
	}
	return voice.New(voice.Options{AccountSID: o.Env.TwilioAccountSID, AuthToken: o.Env.TwilioAuthToken.Reveal(),
		From: o.Env.TwilioVoiceFrom, APIURL: o.Env.TwilioAPIURL, Logger: o.Logger})
}

// RefusedError: a chat platform refused the bot's credentials at start-up. It wraps the
// adapter's error, and so channel.ErrRefused.
type RefusedError struct {
	// Setting is the variable to fix when the spec names one, else the platform's title.
	Setting, Title string
	Err            error
}

func (e *RefusedError) Error() string {
	if e.Setting == e.Title {
		return e.Title + " refused the bot's credentials"
	}
	return e.Setting + ": " + e.Title + " refused the token"
}

func (e *RefusedError) Unwrap() error { return e.Err }

var variable = regexp.MustCompile(`^[A-Z][A-Z0-9_]+$`)

// refused describes a refusal by the platform of spec s.
func refused(s channel.Spec, err error) error {
	setting, _, _ := strings.Cut(s.Setting, " ")
	if !variable.MatchString(setting) {
		setting = s.Title
	}
	return &RefusedError{Setting: setting, Title: s.Title, Err: err}
}
