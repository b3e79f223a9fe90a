package telegram

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"
	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/claim"
)

// DefaultAPIURL is the Bot API of Telegram itself.
const DefaultAPIURL = "https://api.telegram.org"

// Defaults of Options.
const (
	DefaultCallTimeout   = 15 * time.Second
	DefaultHandleTimeout = time.Minute
	DefaultWorkers       = 4
	// maxRetries is how many times a call refused with 429 is tried again.
	maxRetries = 3
	// maxRetryWait is the longest retry_after honoured; beyond it the call fails, so a
	// caller is not held for minutes by a flood wait.
	maxRetryWait = time.Minute
	// pollTimeout is the long poll's length; getUpdates asks for one second less.
	pollTimeout = 30 * time.Second
	// forumTTL is how long whether a chat is a forum is remembered.
	forumTTL = time.Hour
)

// Options configure an Adapter.
type Options struct {
	// Token is the bot token from @BotFather ("123456:ABC…"). Required; never logged.
	Token string
	// APIURL is the Bot API base URL; default DefaultAPIURL (a self-hosted Bot API server or
	// a test fake otherwise).
	APIURL string
	// Redis remembers which updates were handled, across replicas. Required.
	Redis redis.UniversalClient
	// KeyPrefix starts every Redis key the adapter writes.
	KeyPrefix string
	// Logger receives the adapter's logs; default: discarded.
	Logger *slog.Logger
	// WebhookSecret is the secret_token Telegram sends with every webhook request
	// (X-Telegram-Bot-Api-Secret-Token): 1 to 256 of A-Z a-z 0-9 _ -. Required for
	// WebhookHandler and SetWebhook; without it every webhook request is refused.
	WebhookSecret string
	// PublicURL, with WebhookSecret, puts the adapter in webhook mode: Routes serves
	// WebhookPath and Run registers PublicURL + WebhookPath as the bot's webhook. Without
	// it Run long-polls and there are no routes.
	PublicURL string
	// Sleep waits d or until ctx ends; it is how the adapter waits out flood control
	// (429 retry_after). Default: a timer.
	Sleep func(ctx context.Context, d time.Duration) error
	// CallTimeout bounds each Bot API call other than the long poll; default 15 s.
	CallTimeout time.Duration
	// HandleTimeout bounds the engine's handling of one update; default 1 min.
	HandleTimeout time.Duration
	// Workers is how many updates are handled at once when long polling; default 4. With
	// more than one, updates that arrive together may be handled in any order.
	Workers int
}

// Validate checks the options and fills in defaults.
func (o *Options) Validate() error {
	var problems []string
	if !validToken(o.Token) {
		problems = append(problems, "token must look like 123456:ABC-DEF (digits, a colon, then letters, digits, _ or -)")
	}
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	if u, err := url.Parse(o.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		problems = append(problems, fmt.Sprintf("API URL %q is not an absolute http(s) URL", o.APIURL))
	}
	o.APIURL = strings.TrimRight(o.APIURL, "/")
	if o.Redis == nil {
		problems = append(problems, "no Redis client (needed to handle each update once)")
	}
	if o.WebhookSecret != "" && !validSecret(o.WebhookSecret) {
		problems = append(problems, "webhook secret must be 1 to 256 of A-Z, a-z, 0-9, _ and -")
	}
	if o.PublicURL != "" {
		if u, err := url.Parse(o.PublicURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems = append(problems, fmt.Sprintf("public URL %q is not an absolute http(s) URL", o.PublicURL))
		}
		if o.WebhookSecret == "" {
			problems = append(problems, "webhook mode (a public URL) needs a webhook secret")
		}
		o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	}
	if o.CallTimeout < 0 || o.HandleTimeout < 0 || o.Workers < 0 {
		problems = append(problems, "timeouts and workers must not be negative")
	}
	if len(problems) > 0 {
		return fmt.Errorf("telegram options: %s", strings.Join(problems, "; "))
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Sleep == nil {
		o.Sleep = channel.Sleep
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

func validToken(t string) bool {
	id, secret, ok := strings.Cut(t, ":")
	if !ok || id == "" || secret == "" {
		return false
	}
	if _, err := strconv.ParseUint(id, 10, 64); err != nil {
		return false
	}
	for _, c := range secret {
		if !isWordChar(c) && c != '-' {
			return false
		}
	}
	return true
}

func validSecret(s string) bool {
	if len(s) > 256 {
		return false
	}
	for _, c := range s {
		if !isWordChar(c) && c != '-' {
			return false
		}
	}
	return s != ""
}

func isWordChar(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_'
}

// Adapter is the Telegram transport and inbound side of the conversation.
type Adapter struct {
	opts  Options
	log   *slog.Logger
	api   *tgbot.Bot
	botID string
	now   func() time.Time
	// updates claims each update for one handling across replicas.
	updates *claim.Claims

	meMu     sync.Mutex
	username string // the bot's @username, from getMe

	forumMu sync.Mutex
	forums  map[int64]forumEntry
}

type forumEntry struct {
	forum bool
	until time.Time
}

var _ channel.Adapter = (*Adapter)(nil)

// New builds an adapter. It makes no call to Telegram: the bot's username is fetched
// (getMe) when first needed.
func New(opts Options) (*Adapter, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	a := &Adapter{
		opts:   opts,
		log:    opts.Logger.With("channel", string(conversation.Telegram)),
		botID:  strings.SplitN(opts.Token, ":", 2)[0],
		now:    time.Now,
		forums: map[int64]forumEntry{},
	}
	updates, err := claim.New(claim.Options{Redis: opts.Redis, Lease: opts.HandleTimeout + claimSlack, Keep: dedupTTL, Timeout: opts.CallTimeout})
	if err != nil {
		return nil, fmt.Errorf("telegram: %w", err)
	}
	a.updates = updates
	api, err := a.newClient()
	if err != nil {
		return nil, err
	}
	a.api = api
	return a, nil
}

// newClient builds a go-telegram/bot client on the adapter's options; extra options
// configure polling.
func (a *Adapter) newClient(extra ...tgbot.Option) (*tgbot.Bot, error) {
	opts := append([]tgbot.Option{
		tgbot.WithServerURL(a.opts.APIURL),
		tgbot.WithSkipGetMe(),
		// The client timeout is a backstop above the long poll; every call also has its
		// own deadline (CallTimeout).
		tgbot.WithHTTPClient(pollTimeout, &http.Client{Timeout: pollTimeout + 15*time.Second, Transport: apiTransport()}),
		tgbot.WithErrorsHandler(func(err error) { a.log.Warn("telegram client", "err", err) }),
		tgbot.WithDefaultHandler(func(context.Context, *tgbot.Bot, *models.Update) {}),
	}, extra...)
	b, err := tgbot.New(a.opts.Token, opts...)
	if err != nil {
		return nil, fmt.Errorf("telegram client: %w", err)
	}
	return b, nil
}

// apiIdleConns is how many idle connections to the Bot API are kept for reuse. A burst of
// presses is answered by as many concurrent answerCallbackQuery calls; with Go's default
// of two, each burst opened (and, against api.telegram.org, TLS-handshook) a connection
// per answer.
const apiIdleConns = 128

func apiTransport() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns, t.MaxIdleConnsPerHost = apiIdleConns, apiIdleConns
	return t
}

// Channel is conversation.Telegram.
func (a *Adapter) Channel() conversation.Channel { return conversation.Telegram }

// MaxButtonData is Telegram's limit on a button's callback_data, in bytes.
const MaxButtonData = 64

// Capabilities: inline keyboards, photos, forum topics and reply chains, and private
// chats whose id is the user's id.
func (a *Adapter) Capabilities() conversation.Capabilities {
	return conversation.Capabilities{Name: "Telegram", Buttons: true, MaxButtonData: MaxButtonData, Direct: true, Media: true, Threads: true}
}

// call runs one Bot API call with its deadline, waiting out flood control: a 429 is
// retried after retry_after (through Options.Sleep), at most maxRetries times. A 429 means
// Telegram did nothing, so the retry cannot duplicate a message. Other errors are not
// retried: after a timeout the message may have been delivered.
func call[T any](ctx context.Context, a *Adapter, method string, fn func(ctx context.Context) (T, error)) (T, error) {
	for attempt := 0; ; attempt++ {
		cctx, cancel := context.WithTimeout(ctx, a.opts.CallTimeout)
		v, err := fn(cctx)
		cancel()
		if err == nil {
			return v, nil
		}
		var flood *tgbot.TooManyRequestsError
		if !errors.As(err, &flood) {
			return v, fmt.Errorf("telegram %s: %w", method, err)
		}
		wait := time.Duration(flood.RetryAfter) * time.Second
		if wait <= 0 {
			wait = time.Second
		}
		if attempt >= maxRetries || wait > maxRetryWait {
			return v, fmt.Errorf("telegram %s: flood control, giving up after %d attempts (retry after %s): %w", method, attempt+1, wait, err)
		}
		a.log.Warn("telegram flood control, waiting", "method", method, "retry_after", wait, "attempt", attempt+1)
		if err := a.opts.Sleep(ctx, wait); err != nil {
			return v, fmt.Errorf("telegram %s: waiting out flood control: %w", method, err)
		}
	}
}

// ErrTokenRefused: Telegram does not accept the bot token (getMe answered 401). It wraps
// channel.ErrRefused, so the assembly stops start-up on it.
var ErrTokenRefused = fmt.Errorf("telegram refused the bot token: %w", channel.ErrRefused)

// Check asks Telegram who the bot is (getMe), now, so a wrong token is found at start-up:
// an error wrapping ErrTokenRefused (and so channel.ErrRefused) for a token Telegram
// rejects, another error when Telegram cannot be reached (which need not stop the bot).
func (a *Adapter) Check(ctx context.Context) error {
	a.meMu.Lock()
	defer a.meMu.Unlock()
	return a.getMe(ctx)
}

// Username is the bot's @username (without the @), asking getMe the first time; its
// errors are Check's.
func (a *Adapter) Username(ctx context.Context) (string, error) { return a.me(ctx) }

// me returns the bot's username, asking getMe once.
func (a *Adapter) me(ctx context.Context) (string, error) {
	a.meMu.Lock()
	defer a.meMu.Unlock()
	if a.username == "" {
		if err := a.getMe(ctx); err != nil {
			return "", err
		}
	}
	return a.username, nil
}

// getMe asks Telegram for the bot's username and remembers it; meMu is held.
func (a *Adapter) getMe(ctx context.Context) error {
	u, err := call(ctx, a, "getMe", a.api.GetMe)
	if errors.Is(err, tgbot.ErrorUnauthorized) {
		return fmt.Errorf("%w: %w", ErrTokenRefused, err)
	}
	if err != nil {
		return err
	}
	if u.Username == "" {
		return errors.New("telegram getMe: the bot has no username")
	}
	a.username = u.Username
	return nil
}

// chatID parses a conversation chat of this channel.
func chatID(c conversation.Chat) (int64, error) {
	if c.Channel != "" && c.Channel != conversation.Telegram {
		return 0, fmt.Errorf("telegram: chat of channel %q", c.Channel)
	}
	id, err := strconv.ParseInt(c.ID, 10, 64)
	if err != nil || id == 0 || strconv.FormatInt(id, 10) != c.ID {
		return 0, fmt.Errorf("telegram: chat id %q is not a Telegram chat id", c.ID)
	}
	return id, nil
}

// optionalID parses an optional message or topic id ("" is 0).
func optionalID(what, s string) (int, error) {
	if s == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 || strconv.Itoa(n) != s {
		return 0, fmt.Errorf("telegram: %s %q is not a Telegram message id", what, s)
	}
	return n, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

func chatOf(id int64) conversation.Chat {
	return conversation.Chat{Channel: conversation.Telegram, ID: strconv.FormatInt(id, 10)}
}
