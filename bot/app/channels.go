package app

import (
	"regexp"
	"strings"

	"github.com/alertengine/alertengine/bot/channel"
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
