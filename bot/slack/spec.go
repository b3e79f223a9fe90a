package slack

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/alertengine/alertengine/bot/channel"
)

// Environment variables of the Slack channel.
const (
	EnvBotToken      = "SLACK_BOT_TOKEN"
	EnvSigningSecret = "SLACK_SIGNING_SECRET"
	EnvAppToken      = "SLACK_APP_TOKEN"
	EnvAPIURL        = "SLACK_API_URL"
	EnvCommand       = "SLACK_COMMAND"
)

var (
	chatIDPattern = regexp.MustCompile(`^[CGD][A-Z0-9]{6,20}$`)
	userIDPattern = regexp.MustCompile(`^[UW][A-Z0-9]{6,20}$`)
)

func validChatID(s string) bool { return chatIDPattern.MatchString(s) }
func validUserID(s string) bool { return userIDPattern.MatchString(s) }

// Spec registers Slack: enabled by SLACK_BOT_TOKEN (or SLACK_BOT_TOKEN_FILE), with
// SLACK_SIGNING_SECRET for the HTTP routes and SLACK_APP_TOKEN for Socket Mode.
var Spec = channel.Spec{
	Name:         Channel,
	Title:        "Slack",
	Setting:      EnvBotToken + " is not set",
	EnabledBy:    enabled,
	New:          build,
	ParseChat:    ParseChat,
	ParsePerson:  ParsePerson,
	Capabilities: (*Adapter)(nil).Capabilities(),
}

func enabled(lookup channel.Lookup) bool {
	return lookup.Get(EnvBotToken) != "" || lookup.Get(EnvBotToken+"_FILE") != ""
}

// build reads the Slack variables and builds the adapter.
func build(d channel.Deps) (channel.Adapter, error) {
	opts, err := OptionsFromEnv(d.Lookup)
	if err != nil {
		return nil, err
	}
	opts.Redis, opts.KeyPrefix, opts.Logger, opts.Registry = d.Redis, d.KeyPrefix, d.Logger, d.Registry
	if d.Clock != nil {
		opts.Now = d.Clock
	}
	if !opts.SigningSecret.IsSet() && !opts.AppToken.IsSet() {
		return nil, fmt.Errorf("slack: set %s (HTTP events under PUBLIC_URL) or %s (Socket Mode): without either nothing people do in Slack reaches the bot", EnvSigningSecret, EnvAppToken)
	}
	if opts.SigningSecret.IsSet() && d.Env.PublicURL == "" && !opts.AppToken.IsSet() && d.Logger != nil {
		d.Logger.Warn("slack: SLACK_SIGNING_SECRET is set but PUBLIC_URL is not: point the Slack app's Request URLs at this server's /slack/events, /slack/interactivity and /slack/commands")
	}
	return New(opts)
}

// OptionsFromEnv reads the Slack variables (each secret also as NAME_FILE). Secrets stay
// config.Secret, so they never reach a log.
func OptionsFromEnv(lookup channel.Lookup) (Options, error) {
	var o Options
	var problems []string
	var err error
	if o.Token, err = channel.Secret(lookup, EnvBotToken); err != nil {
		problems = append(problems, err.Error())
	}
	if o.SigningSecret, err = channel.Secret(lookup, EnvSigningSecret); err != nil {
		problems = append(problems, err.Error())
	}
	if o.AppToken, err = channel.Secret(lookup, EnvAppToken); err != nil {
		problems = append(problems, err.Error())
	}
	o.APIURL = lookup.Get(EnvAPIURL)
	o.Command = lookup.Get(EnvCommand)
	if len(problems) > 0 {
		return Options{}, fmt.Errorf("slack: %s", strings.Join(problems, "; "))
	}
	return o, nil
}

// ParseChat checks a Slack channel id as written under `chats: {slack: [...]}`. Its
// error says only what was wanted (the tenants file's reader adds what it got).
func ParseChat(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case validChatID(s):
		return s, nil
	case strings.HasPrefix(s, "#"):
		return "", errors.New("want the channel's id, not its name: C… (in Slack, the channel's details, under About)")
	case validUserID(s):
		return "", errors.New("want a channel id (C… or G…), not a member id")
	}
	return "", errors.New("want a Slack channel id: C… or G…, capital letters and digits (e.g. C0123ABCDEF)")
}

// ParsePerson checks a Slack member id as written under `ids: {slack: ...}`.
func ParsePerson(s string) (string, error) {
	s = strings.TrimSpace(s)
	switch {
	case validUserID(s):
		return s, nil
	case strings.HasPrefix(s, "@"):
		return "", errors.New("want the person's member id, not a display name: U… (in Slack, their profile, ⋮ → Copy member ID)")
	case validChatID(s):
		return "", errors.New("want a member id (U… or W…), not a channel id")
	}
	return "", errors.New("want a Slack member id: U… or W…, capital letters and digits (e.g. U0123ABCDEF)")
}
