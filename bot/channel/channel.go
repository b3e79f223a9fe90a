// Package channel is the contract a chat platform signs to join the bot. An adapter
// package (bot/telegram, bot/whatsapp, bot/slack…) exports one [Spec]; the assembly lists
// the specs, one line each, and does the rest: it builds the adapters that the environment
// enables, hands their transports to the conversation engine, mounts their routes, runs
// their loops (restarting a failed loop with backoff, so a platform being down never stops
// detection or execution), asks their readiness checks, and has the tenants file's chat and
// person ids for the channel validated by the spec that owns it.
//
// The package depends only on the conversation model and the environment, so adapters can
// import it without importing the assembly.
package channel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/conversation"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// Adapter is one chat platform, built and ready to use.
type Adapter interface {
	// Transport is how the engine speaks on the platform.
	conversation.Transport
	// Routes are the HTTP routes the platform (or the people using it) call: webhooks,
	// media the platform fetches, a web page. Each hands what people say to h. None when
	// the adapter receives some other way (long polling, a socket).
	Routes(h conversation.Handler) []Route
	// Run receives from the platform until ctx ends: long polling, a socket, registering a
	// webhook and keeping it. It returns nil at once when there is nothing to run. The
	// assembly runs it again after a failure, waiting 1 s doubling to 1 min.
	Run(ctx context.Context, h conversation.Handler) error
	// Check asks the platform whether it accepts the adapter's credentials and settings
	// now. Start-up and /readyz use it. An error wrapping [ErrRefused] stops start-up
	// (a wrong token will not fix itself); any other error is logged and retried.
	Check(ctx context.Context) error
}

// ErrRefused: the platform refused the adapter's credentials (HTTP 401/403, invalid_auth).
var ErrRefused = errors.New("credentials refused")

// Route is one HTTP route of an adapter.
type Route struct {
	// Pattern is a net/http ServeMux pattern with its method: "POST /telegram/webhook".
	Pattern string
	Handler http.Handler
	// MaxBody bounds the request body in bytes; 0 means the server's default (1 MiB).
	MaxBody int64
}

// Deps is what the assembly gives every adapter it builds.
type Deps struct {
	Env config.Env
	// Lookup reads the environment (os.LookupEnv in cmd/bot), for the variables of a
	// channel that config.Env does not carry (SLACK_BOT_TOKEN…); see [Secret]. Never nil.
	Lookup    Lookup
	Redis     redis.UniversalClient
	KeyPrefix string
	Logger    *slog.Logger
	Clock     func() time.Time
	// Registry takes the adapter's own metrics; never nil.
	Registry prometheus.Registerer
}

// Spec is how a chat platform registers: its name, whether the environment turns it on,
// how to build it, and how its ids are written in the tenants file.
type Spec struct {
	// Name is the channel's name, also its key under a tenant's `chats:` and a person's
	// `ids:` in the tenants file ("telegram", "whatsapp", "slack").
	Name conversation.Channel
	// Title is the channel as people write it ("Telegram", "WhatsApp", "Slack").
	Title string
	// Enabled reports whether env configures the channel; its chats may only be listed
	// when it does. Setting names a missing setting for that problem's message
	// ("TELEGRAM_BOT_TOKEN is not set").
	Enabled func(env config.Env) bool
	Setting string
	// EnabledBy, when set, is used instead of Enabled: for a channel whose variables
	// config.Env does not carry, it reads them through lookup (the same one as
	// Deps.Lookup).
	EnabledBy func(lookup Lookup) bool
	// New builds the adapter; it is called only when Enabled.
	New func(d Deps) (Adapter, error)
	// ParseChat checks one chat id as written under `chats: {<name>: [...]}` and returns it
	// in the form the transport uses (conversation.Chat.ID). The error says only what was
	// wanted ("want a numeric Telegram chat id (…)"): the caller adds where and what it
	// got, which may be the value of an environment variable it must not print.
	ParseChat func(s string) (string, error)
	// ParsePerson does the same for a person's id under `ids: {<name>: ...}` (the form in
	// conversation.User.ID).
	ParsePerson func(s string) (string, error)
	// Capabilities are what the platform's transport can do, known without building it
	// (the governance simulation gives its simulated platform the real one's).
	Capabilities conversation.Capabilities
}

// Lookup reads one environment variable, as os.LookupEnv does. A variable set to the
// empty string counts as unset.
type Lookup func(name string) (string, bool)

// Get returns the variable's value, "" when unset or empty; a nil Lookup reads nothing.
func (l Lookup) Get(name string) string {
	if l == nil {
		return ""
	}
	v, _ := l(name)
	return v
}

// Secret reads a secret variable the way config reads its own: NAME, or the content of
// the file that NAME_FILE names (config.ReadSecretFile: trailing newlines trimmed, 64 KiB at
// most), never both. Unset is an empty Secret and no error. The error names the variable
// and the file, never the content.
func Secret(lookup Lookup, name string) (config.Secret, error) {
	v, file := lookup.Get(name), lookup.Get(name+"_FILE")
	switch {
	case v != "" && file != "":
		return "", fmt.Errorf("both %s and %s_FILE are set; set only one", name, name)
	case file == "":
		return config.Secret(v), nil
	}
	s, err := config.ReadSecretFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", name, err)
	}
	return config.Secret(s), nil
}

// Sleep waits d, or until ctx ends (returning its cause): the wait adapters use by
// default between retries, such as out of a platform's rate limit.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}
