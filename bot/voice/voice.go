// Package voice places the phone calls of voice escalation: Twilio's Calls API rings an
// approver and a TwiML <Say> reads them the incident's summary. It is used whenever
// TWILIO_VOICE_FROM is set, whether or not WhatsApp is on, and needs no chat platform.
//
// The client is a small one over net/http for the one request it makes: every request
// has a context and a timeout, no redirect is followed, and a 429 (Twilio did nothing) is
// retried after a growing wait; a 5xx or a timeout is not, as the phone may be ringing.
package voice

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/conversation"
)

// DefaultAPIURL is Twilio's REST API.
const DefaultAPIURL = "https://api.twilio.com"

// Errors.
var (
	// ErrBadAddress: a phone number is not +E164.
	ErrBadAddress = errors.New("voice: not a +E164 number")
	// ErrRefused: Twilio refused the call (the error wraps Twilio's status, code and
	// message).
	ErrRefused = errors.New("voice: twilio refused the call")
)

// Options configure a Caller.
type Options struct {
	AccountSID, AuthToken string
	// From is the caller id, +E164 (TWILIO_VOICE_FROM).
	From string
	// APIURL replaces DefaultAPIURL: a proxy, or twiliotest.
	APIURL string
	Logger *slog.Logger
	// CallTimeout bounds each request (default 10 s).
	CallTimeout time.Duration
	// Sleep waits out a 429 before retrying (default: a timer honouring ctx).
	Sleep func(ctx context.Context, d time.Duration) error
}

var (
	sidPattern = regexp.MustCompile(`^AC[0-9a-fA-F]{32}$`)
	e164       = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
)

// maxSpeech bounds what a call says (Twilio allows 4,000 characters of TwiML).
const maxSpeech = 1500

// maxRetries bounds the retries of a request Twilio answered 429.
const maxRetries = 3

// Caller places voice calls that speak a summary.
type Caller struct {
	o        Options
	log      *slog.Logger
	endpoint string
	http     *http.Client
}

var _ conversation.Caller = (*Caller)(nil)

// New builds a caller. It makes no call to Twilio.
func New(o Options) (*Caller, error) {
	if !sidPattern.MatchString(o.AccountSID) || o.AuthToken == "" {
		return nil, errors.New("voice: caller needs an account SID and an auth token")
	}
	if !e164.MatchString(o.From) {
		return nil, errors.New("voice: caller id must be +E164")
	}
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	if u, err := url.Parse(o.APIURL); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, errors.New("voice: APIURL must be an absolute http(s) URL")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = channel.Sleep
	}
	return &Caller{o: o, log: o.Logger.With("channel", "voice"),
		endpoint: strings.TrimRight(o.APIURL, "/") + "/2010-04-01/Accounts/" + o.AccountSID + "/Calls.json",
		http:     &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}, nil
}

// twimlResponse is a TwiML document with one <Say>.
type twimlResponse struct {
	XMLName xml.Name `xml:"Response"`
	Say     struct {
		Loop int    `xml:"loop,attr"`
		Text string `xml:",chardata"`
	} `xml:"Say"`
}

// TwiML is the call's script: speech said twice; encoding/xml escapes it.
func TwiML(speech string) (string, error) {
	speech = strings.ToValidUTF8(strings.Join(strings.Fields(speech), " "), "")
	if r := []rune(speech); len(r) > maxSpeech {
		speech = string(r[:maxSpeech])
	}
	var doc twimlResponse
	doc.Say.Loop, doc.Say.Text = 2, speech
	b, err := xml.Marshal(doc)
	if err != nil {
		return "", err
	}
	return xml.Header + string(b), nil
}

// Call rings phone (+E164) and says speech; it lets it ring 30 s.
func (c *Caller) Call(ctx context.Context, phone, speech string) error {
	if !e164.MatchString(phone) {
		return fmt.Errorf("%w: %q", ErrBadAddress, redact(phone))
	}
	doc, err := TwiML(speech)
	if err != nil {
		return fmt.Errorf("voice: call script: %w", err)
	}
	form := url.Values{"To": {phone}, "From": {c.o.From}, "Twiml": {doc}, "Timeout": {"30"}}.Encode()
	wait := time.Second
	for attempt := 0; ; attempt++ {
		status, terr, err := c.post(ctx, form)
		switch {
		case err != nil:
			return fmt.Errorf("voice: place call: %w", err)
		case status == http.StatusCreated || status == http.StatusOK:
			return nil
		case status == http.StatusTooManyRequests && attempt < maxRetries:
			c.log.Warn("twilio rate limit, waiting", "request", "place call", "wait", wait, "attempt", attempt+1)
			if err := c.o.Sleep(ctx, wait); err != nil {
				return fmt.Errorf("voice: place call: %w", err)
			}
			wait *= 2
		default:
			return fmt.Errorf("%w: place call: %d %d %s", ErrRefused, status, terr.Code, terr.Message)
		}
	}
}

// twilioError is the body of a Twilio error answer.
type twilioError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// maxAnswer bounds what is read of an answer.
const maxAnswer = 64 << 10

// post makes one request: its status, and Twilio's error when it is not a success.
func (c *Caller) post(ctx context.Context, form string) (int, twilioError, error) {
	ctx, cancel := context.WithTimeout(ctx, c.o.CallTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, strings.NewReader(form))
	if err != nil {
		return 0, twilioError{}, err
	}
	req.SetBasicAuth(c.o.AccountSID, c.o.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, twilioError{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return 0, twilioError{}, err
	}
	var te twilioError
	if resp.StatusCode/100 != 2 {
		if json.Unmarshal(body, &te) != nil || te.Message == "" {
			te.Message = http.StatusText(resp.StatusCode)
		}
	}
	return resp.StatusCode, te, nil
}

// redact keeps the last four digits of a number, for errors and logs.
func redact(n string) string {
	if len(n) <= 4 {
		return "…"
	}
	return "…" + n[len(n)-4:]
}
