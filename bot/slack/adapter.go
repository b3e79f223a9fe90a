package slack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	slackapi "github.com/slack-go/slack"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/claim"
)

// Channel is Slack's name in the tenants file (`chats: {slack: [C…]}`, `ids: {slack: U…}`).
const Channel conversation.Channel = "slack"

// DefaultAPIURL is Slack's Web API; every method is this URL plus its name.
const DefaultAPIURL = "https://slack.com/api/"

// Defaults of Options.
const (
	DefaultCallTimeout   = 15 * time.Second
	DefaultHandleTimeout = time.Minute
	DefaultWorkers       = 8
	// maxRetries is how many times a call refused with 429 is tried again.
	maxRetries = 3
	// maxRetryWait is the longest Retry-After honoured; beyond it the call fails, so the
	// engine is not held for minutes by one method's limit.
	maxRetryWait = time.Minute
)

// Options configure an Adapter.
type Options struct {
	// Token is the bot token (xoxb-…). Required; never logged.
	Token config.Secret
	// SigningSecret verifies every HTTP request Slack makes (Events, Interactivity, slash
	// commands). Without it the HTTP routes refuse everything; Socket Mode needs none.
	SigningSecret config.Secret
	// AppToken (xapp-…) turns on Socket Mode: Run then connects to Slack and receives
	// events over a websocket, so no public URL is needed.
	AppToken config.Secret
	// APIURL is the Web API base URL, ending with "/"; default DefaultAPIURL (a proxy or a
	// test fake otherwise).
	APIURL string
	// Redis remembers which events were handled, across replicas. Required.
	Redis redis.UniversalClient
	// KeyPrefix starts every Redis key the adapter writes.
	KeyPrefix string
	// Logger receives the adapter's logs; default: discarded.
	Logger *slog.Logger
	// HTTPClient makes the Web API calls; default a client without timeout (every call
	// has CallTimeout).
	HTTPClient *http.Client
	// Sleep waits d or until ctx ends; it is how the adapter waits out a 429's
	// Retry-After. Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// Now is the clock (rate-limit windows); default time.Now.
	Now func() time.Time
	// CallTimeout bounds each Web API call; default 15 s.
	CallTimeout time.Duration
	// HandleTimeout bounds the engine's handling of one event, after it was acknowledged;
	// default 1 min.
	HandleTimeout time.Duration
	// Workers bounds how many events are handled at once; default 8.
	Workers int
	// Registry takes the adapter's metrics (alertengine_slack_*); nil keeps them
	// unregistered.
	Registry prometheus.Registerer
	// Command is the one slash command that takes the bot's commands as its text
	// ("/alertengine status checkout"); default "/alertengine". Slash commands named after
	// a bot command ("/status") are taken as they are.
	Command string
}

// Validate checks the options and fills in defaults.
func (o *Options) Validate() error {
	var problems []string
	if t := o.Token.Reveal(); !strings.HasPrefix(t, "xoxb-") || len(t) < 10 || strings.ContainsAny(t, " \t\r\n") {
		problems = append(problems, "SLACK_BOT_TOKEN must be a bot token (xoxb-…)")
	}
	if t := o.AppToken.Reveal(); t != "" && (!strings.HasPrefix(t, "xapp-") || strings.ContainsAny(t, " \t\r\n")) {
		problems = append(problems, "SLACK_APP_TOKEN must be an app-level token (xapp-…) with the connections:write scope")
	}
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	if u, err := url.Parse(o.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("SLACK_API_URL %q is not an absolute http(s) URL", o.APIURL))
	}
	if !strings.HasSuffix(o.APIURL, "/") {
		o.APIURL += "/"
	}
	if o.Redis == nil {
		problems = append(problems, "no Redis client (needed to handle each event once)")
	}
	if o.CallTimeout < 0 || o.HandleTimeout < 0 || o.Workers < 0 {
		problems = append(problems, "timeouts and workers must not be negative")
	}
	if o.Command == "" {
		o.Command = "/alertengine"
	}
	if !strings.HasPrefix(o.Command, "/") || strings.ContainsAny(o.Command, " \t") {
		problems = append(problems, fmt.Sprintf("slash command %q must be one word starting with /", o.Command))
	}
	if len(problems) > 0 {
		return fmt.Errorf("slack options: %s", strings.Join(problems, "; "))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Sleep == nil {
		o.Sleep = channel.Sleep
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.CallTimeout == 0 {
		o.CallTimeout = DefaultCallTimeout
	}
	if o.HandleTimeout == 0 {
		o.HandleTimeout = DefaultHandleTimeout
	}
	if o.Workers == 0 {
		o.Workers = DefaultWorkers
	}
	return nil
}

// Adapter is the Slack transport and inbound side of the conversation.
type Adapter struct {
	opts Options
	log  *slog.Logger
	api  *slackapi.Client
	// events claims each event for one handling across replicas.
	events *claim.Claims
	m      *metrics
	// work bounds concurrent handling; pending counts the handlings not yet done.
	work    chan struct{}
	pending sync.WaitGroup

	meMu sync.Mutex
	me   identity

	limitMu sync.Mutex
	// blocked holds, per Web API method, when its rate limit window ends.
	blocked map[string]time.Time

	chatMu sync.Mutex
	// unusable holds, per channel id, why posting there failed (channel_not_found,
	// not_in_channel): logged once, reported by Check until a post there succeeds.
	unusable map[string]string
}

// identity is who the bot is, from auth.test.
type identity struct {
	userID, botID, team string
}

var (
	_ conversation.Transport = (*Adapter)(nil)
	_ channel.Adapter        = (*Adapter)(nil)
)

// New builds an adapter. It makes no call to Slack (Check does).
func New(opts Options) (*Adapter, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	a := &Adapter{
		opts:     opts,
		log:      opts.Logger.With("channel", string(Channel)),
		work:     make(chan struct{}, opts.Workers),
		blocked:  map[string]time.Time{},
		unusable: map[string]string{},
	}
	events, err := claim.New(claim.Options{Redis: opts.Redis, Lease: opts.HandleTimeout + claimSlack, Keep: dedupTTL, Timeout: opts.CallTimeout})
	if err != nil {
		return nil, fmt.Errorf("slack: %w", err)
	}
	a.events = events
	if a.m, err = newMetrics(opts.Registry); err != nil {
		return nil, err
	}
	a.api = slackapi.New(opts.Token.Reveal(),
		slackapi.OptionAPIURL(opts.APIURL),
		slackapi.OptionHTTPClient(opts.HTTPClient),
		slackapi.OptionAppLevelToken(opts.AppToken.Reveal()),
	)
	return a, nil
}

// Channel is "slack".
func (a *Adapter) Channel() conversation.Channel { return Channel }

// MaxButtonData is Slack's limit on a button's value, in bytes.
const MaxButtonData = 2000

// Capabilities: Block Kit buttons with values up to 2,000 bytes, uploaded images, threads
// hanging from a root message, and direct messages to a user id (the app's Messages tab).
// Commands are typed with a slash (registered slash commands), so not as Words.
func (a *Adapter) Capabilities() conversation.Capabilities {
	return conversation.Capabilities{Name: "Slack", Buttons: true, MaxButtonData: MaxButtonData, Direct: true, Media: true, Threads: true}
}

// refusedErrors are the auth.test (and any method's) errors that mean the token itself
// is not accepted: it will not fix itself.
var refusedErrors = []string{"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired", "no_permission", "ekm_access_denied"}

// chatErrors are the errors that mean a channel cannot be written to until someone acts
// (invites the app, fixes the tenants file).
var chatErrors = map[string]string{
	"channel_not_found": "the channel does not exist or the app cannot see it (for a private channel, invite the app: /invite @app)",
	"not_in_channel":    "the app is not a member of the channel (invite it: /invite @app)",
	"is_archived":       "the channel is archived",
}

// apiError returns Slack's error code ("channel_not_found") of err, or "".
func apiError(err error) string {
	var e slackapi.SlackErrorResponse
	if errors.As(err, &e) {
		return e.Err
	}
	return ""
}

// call runs one Web API call with its deadline, waiting out rate limits: while a method
// is limited every call of it waits for the window to end, and a 429 is retried after its
// Retry-After (through Options.Sleep), at most maxRetries times. A 429 means Slack did
// nothing, so the retry cannot duplicate a message; other errors are not retried.
func call[T any](ctx context.Context, a *Adapter, method string, fn func(ctx context.Context) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		if wait := a.limited(method); wait > 0 {
			if wait > maxRetryWait {
				var zero T
				return zero, fmt.Errorf("slack %s: rate limited for %s more", method, wait.Round(time.Second))
			}
			if err := a.opts.Sleep(ctx, wait); err != nil {
				var zero T
				return zero, fmt.Errorf("slack %s: waiting out the rate limit: %w", method, err)
			}
		}
		cctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
		v, err := fn(cctx)
		cancel()
		if err == nil {
			return v, nil
		}
		var limited *slackapi.RateLimitedError
		isLimited := errors.As(err, &limited)
		switch code := apiError(err); {
		case isLimited:
			a.m.apiErrors.WithLabelValues(method, "ratelimited").Inc()
		case code != "":
			a.m.apiErrors.WithLabelValues(method, code).Inc()
		default:
			a.m.apiErrors.WithLabelValues(method, "transport").Inc()
		}
		if !isLimited {
			if code := apiError(err); slices.Contains(refusedErrors, code) {
				return v, fmt.Errorf("slack %s: %w: %w", method, channel.ErrRefused, err)
			}
			return v, fmt.Errorf("slack %s: %w", method, err)
		}
		wait := max(limited.RetryAfter, time.Second)
		a.limit(method, wait)
		if attempt >= maxRetries || wait > maxRetryWait {
			return v, fmt.Errorf("slack %s: rate limited, giving up after %d attempts (retry after %s): %w", method, attempt+1, wait, err)
		}
		a.log.Warn("slack rate limit, waiting", "method", method, "retry_after", wait, "attempt", attempt+1)
	}
}

// limited is how long method's rate-limit window still lasts.
func (a *Adapter) limited(method string) time.Duration {
	a.limitMu.Lock()
	defer a.limitMu.Unlock()
	until, ok := a.blocked[method]
	if !ok {
		return 0
	}
	d := until.Sub(a.opts.Now())
	if d <= 0 {
		delete(a.blocked, method)
		return 0
	}
	return d
}

func (a *Adapter) limit(method string, d time.Duration) {
	a.limitMu.Lock()
	defer a.limitMu.Unlock()
	if until := a.opts.Now().Add(d); until.After(a.blocked[method]) {
		a.blocked[method] = until
	}
}

// Check asks Slack who the bot is (auth.test). A token Slack does not accept
// (invalid_auth, account_inactive, token_revoked…) is an error wrapping
// channel.ErrRefused. Channels the bot failed to post to (channel_not_found,
// not_in_channel) are reported too, until a post there succeeds, so /readyz says what
// to fix.
func (a *Adapter) Check(ctx context.Context) error {
	a.meMu.Lock()
	a.me = identity{}
	a.meMu.Unlock()
	if _, err := a.identity(ctx); err != nil {
		return err
	}
	a.chatMu.Lock()
	defer a.chatMu.Unlock()
	if len(a.unusable) == 0 {
		return nil
	}
	var ps []string
	for id, why := range a.unusable {
		ps = append(ps, id+": "+why)
	}
	slices.Sort(ps)
	return fmt.Errorf("slack: cannot post to %s", strings.Join(ps, "; "))
}

// identity returns the bot's user id, asking auth.test once.
func (a *Adapter) identity(ctx context.Context) (identity, error) {
	a.meMu.Lock()
	defer a.meMu.Unlock()
	if a.me.userID != "" {
		return a.me, nil
	}
	r, err := call(ctx, a, "auth.test", a.api.AuthTestContext)
	if err != nil {
		return identity{}, err
	}
	if r.UserID == "" {
		return identity{}, errors.New("slack auth.test: no user id in the answer")
	}
	a.me = identity{userID: r.UserID, botID: r.BotID, team: r.TeamID}
	return a.me, nil
}

// noteChat records the outcome of a post to chat: a channel error is logged the first
// time (and kept for Check), a success clears it.
func (a *Adapter) noteChat(chat string, err error) {
	a.chatMu.Lock()
	defer a.chatMu.Unlock()
	if err == nil {
		delete(a.unusable, chat)
		return
	}
	code := apiError(err)
	why, ok := chatErrors[code]
	if !ok {
		return
	}
	if _, seen := a.unusable[chat]; !seen {
		a.log.Error("slack: cannot post to a channel", "chat", chat, "error", code, "fix", why)
	}
	a.unusable[chat] = code + ": " + why
}

// Wait blocks until every event being handled is done (for shutdown and tests).
func (a *Adapter) Wait() { a.pending.Wait() }
