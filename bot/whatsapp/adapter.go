package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/twilio/twilio-go/client"
	api "github.com/twilio/twilio-go/rest/api/v2010"
	content "github.com/twilio/twilio-go/rest/content/v1"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/claim"
)

// DefaultAPIURL is Twilio's REST API.
const DefaultAPIURL = "https://api.twilio.com"

// Errors.
var (
	// ErrBadAddress: a chat or number is not a WhatsApp number this adapter can reach.
	ErrBadAddress = errors.New("whatsapp: not a +E164 number")
	// ErrRefused: Twilio refused a request (the error wraps Twilio's code and message).
	ErrRefused = errors.New("whatsapp: twilio refused the request")
)

// Options configure the adapter.
type Options struct {
	AccountSID string
	AuthToken  string
	// From is the WhatsApp sender, "whatsapp:+E164".
	From string
	// APIURL replaces Twilio's hosts (api.twilio.com, content.twilio.com) when it is not
	// DefaultAPIURL: a proxy, or twiliotest.
	APIURL string
	// ContentSID is the quick-reply approval template (HX…), optional.
	ContentSID string
	// PublicURL is the bot's external base URL: Twilio signs webhook requests over it,
	// and fetches chart images from it.
	PublicURL string
	Redis     redis.UniversalClient
	KeyPrefix string
	Logger    *slog.Logger
	Clock     func() time.Time
	// CallTimeout bounds each Twilio request (default 10 s).
	CallTimeout time.Duration
	// Sleep waits out a 429 before retrying (default: a timer honouring ctx).
	Sleep func(ctx context.Context, d time.Duration) error
}

var (
	sidPattern     = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	contentPattern = regexp.MustCompile(`^HX[0-9a-fA-F]{32}$`)
	e164           = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// Validate checks the options and fills defaults.
func (o *Options) Validate() error {
	switch {
	case !sidPattern.MatchString(o.AccountSID):
		return errors.New("whatsapp: account SID must be AC followed by 32 hex digits")
	case o.AuthToken == "":
		return errors.New("whatsapp: no auth token")
	case !strings.HasPrefix(o.From, "whatsapp:") || !e164.MatchString(strings.TrimPrefix(o.From, "whatsapp:")):
		return errors.New("whatsapp: From must be whatsapp:+E164")
	case o.ContentSID != "" && !contentPattern.MatchString(o.ContentSID):
		return errors.New("whatsapp: content SID must be HX followed by 32 hex digits")
	case o.Redis == nil:
		return errors.New("whatsapp: no Redis")
	}
	u, err := url.Parse(o.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return errors.New("whatsapp: PublicURL must be an absolute http(s) URL")
	}
	o.PublicURL = strings.TrimRight(o.PublicURL, "/")
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	if u, err := url.Parse(o.APIURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return errors.New("whatsapp: APIURL must be an absolute http(s) URL")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = channel.Sleep
	}
	return nil
}

// Adapter is the WhatsApp transport and webhook.
type Adapter struct {
	o    Options
	log  *slog.Logger
	rest *restClient
	// validator checks X-Twilio-Signature (twilio-go's).
	validator client.RequestValidator
	// deliveries claims each incoming message for one handling across replicas.
	deliveries *claim.Claims
	// wire is the provider: Twilio, or Meta's Cloud API.
	wire provider
	// cloud is the Cloud API's client and settings (nil on Twilio).
	cloud *cloudWire
}

var _ conversation.Transport = (*Adapter)(nil)

// New builds an adapter. It makes no call to Twilio.
func New(o Options) (*Adapter, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	rest, err := newREST(o.AccountSID, o.AuthToken, o.APIURL, o.CallTimeout)
	if err != nil {
		return nil, err
	}
	deliveries, err := claim.New(claim.Options{Redis: o.Redis, Lease: claimLease, Keep: dedupTTL, Timeout: o.CallTimeout})
	if err != nil {
		return nil, fmt.Errorf("whatsapp: %w", err)
	}
	a := &Adapter{o: o, log: o.Logger.With("channel", string(conversation.WhatsApp)), rest: rest,
		validator: client.NewRequestValidator(o.AuthToken), deliveries: deliveries}
	a.wire = twilio{a}
	return a, nil
}

// newREST is a twilio-go REST client whose requests go to apiURL instead of Twilio's
// hosts when apiURL is not the default, with a timeout on every request and no redirects
// followed.
// restClient holds the two Twilio APIs the adapter calls. The root twilio package's
// RestClient would link every Twilio API into the binary.
type restClient struct {
	Api       *api.ApiService
	ContentV1 *content.ApiService
}

func newREST(sid, token, apiURL string, timeout time.Duration) (*restClient, error) {
	var rt http.RoundTripper = http.DefaultTransport
	if strings.TrimRight(apiURL, "/") != DefaultAPIURL {
		base, err := url.Parse(apiURL)
		if err != nil {
			return nil, fmt.Errorf("whatsapp: API URL: %w", err)
		}
		rt = rewriteHost{base: base, next: http.DefaultTransport}
	}
	c := &client.Client{
		Credentials: client.NewCredentials(sid, token),
		HTTPClient: &http.Client{Timeout: timeout, Transport: rt,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }},
	}
	c.SetAccountSid(sid)
	return &restClient{Api: api.NewApiServiceWithClient(c), ContentV1: content.NewApiServiceWithClient(c)}, nil
}

// rewriteHost sends requests for Twilio's hosts to base, keeping the path and query.
type rewriteHost struct {
	base *url.URL
	next http.RoundTripper
}

func (r rewriteHost) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != "twilio.com" && !strings.HasSuffix(req.URL.Host, ".twilio.com") {
		return nil, fmt.Errorf("whatsapp: refusing a request to %s", req.URL.Host)
	}
	out := req.Clone(req.Context())
	out.URL.Scheme, out.URL.Host = r.base.Scheme, r.base.Host
	out.URL.Path = strings.TrimRight(r.base.Path, "/") + req.URL.Path
	out.Host = r.base.Host
	return r.next.RoundTrip(out)
}

// Channel is conversation.WhatsApp.
func (a *Adapter) Channel() conversation.Channel { return conversation.WhatsApp }

// Capabilities: no buttons the engine can rely on (quick replies only through the
// template), no threads, one-to-one chats, images by URL.
func (a *Adapter) Capabilities() conversation.Capabilities {
	return conversation.Capabilities{Name: "WhatsApp", Direct: true, Media: true, Words: true, NoEdit: true}
}

// maxRetries bounds the retries of a request Twilio answered 429 (it did nothing).
const maxRetries = 3

// call runs one Twilio request with the adapter's timeout, retrying a 429 after a
// growing wait. A 5xx or a timeout is not retried: the message may have gone out.
func call[T any](ctx context.Context, a *Adapter, what string, fn func() (T, error)) (T, error) {
	wait := time.Second
	for attempt := 0; ; attempt++ {
		v, err := within(ctx, a.o.CallTimeout, fn)
		if err == nil {
			return v, nil
		}
		var te *client.TwilioRestError
		if errors.As(err, &te) {
			if te.Status == http.StatusTooManyRequests && attempt < maxRetries {
				a.log.Warn("twilio rate limit, waiting", "request", what, "wait", wait, "attempt", attempt+1)
				if err := a.o.Sleep(ctx, wait); err != nil {
					return v, fmt.Errorf("whatsapp %s: %w", what, err)
				}
				wait *= 2
				continue
			}
			return v, fmt.Errorf("%w: %s: %d %d %s", ErrRefused, what, te.Status, te.Code, te.Message)
		}
		return v, fmt.Errorf("whatsapp %s: %w", what, err)
	}
}

// within runs fn (twilio-go takes no context) and returns when it does or when ctx
// ends; the request itself is bounded by the HTTP client's timeout.
func within[T any](ctx context.Context, timeout time.Duration, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := fn()
		done <- result{v, err}
	}()
	t := time.NewTimer(timeout + time.Second)
	defer t.Stop()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, context.Cause(ctx)
	case <-t.C:
		var zero T
		return zero, errors.New("timed out")
	}
}

// number checks a chat of this channel and returns its +E164 number.
func number(c conversation.Chat) (string, error) {
	if c.Channel != conversation.WhatsApp {
		return "", fmt.Errorf("%w: chat of channel %q", ErrBadAddress, c.Channel)
	}
	n := strings.TrimPrefix(c.ID, "whatsapp:")
	if !e164.MatchString(n) {
		return "", fmt.Errorf("%w: %q", ErrBadAddress, c.ID)
	}
	return n, nil
}

func (a *Adapter) key(parts ...string) string {
	return a.o.KeyPrefix + "wa:" + strings.Join(parts, ":")
}

// ErrTemplate: the approval template is not usable (unknown to Twilio, or without
// quick replies).
var ErrTemplate = errors.New("whatsapp: approval content template not usable")

// CheckTemplate fetches the approval template (Content API) and checks that it has
// quick replies, so a wrong TWILIO_APPROVAL_CONTENT_SID is found at start-up. Without a
// template it does nothing.
func (a *Adapter) CheckTemplate(ctx context.Context) error {
	if a.o.ContentSID == "" {
		return nil
	}
	c, err := call(ctx, a, "fetch content template", func() (*content.ContentV1Content, error) { return a.rest.ContentV1.FetchContent(a.o.ContentSID) })
	if err != nil {
		return fmt.Errorf("%w: %w", ErrTemplate, err)
	}
	if c.Types == nil {
		return fmt.Errorf("%w: it has no content types", ErrTemplate)
	}
	if _, ok := (*c.Types)["twilio/quick-reply"]; !ok {
		return fmt.Errorf("%w: it is not a twilio/quick-reply template", ErrTemplate)
	}
	return nil
}
