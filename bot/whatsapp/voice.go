package whatsapp

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	api "github.com/twilio/twilio-go/rest/api/v2010"
)

// CallerOptions configure voice escalation calls.
type CallerOptions struct {
	AccountSID, AuthToken string
	// From is the caller id, +E164 (TWILIO_VOICE_FROM).
	From        string
	APIURL      string
	Logger      *slog.Logger
	CallTimeout time.Duration
	Sleep       func(ctx context.Context, d time.Duration) error
}

// Caller places voice calls that speak a summary (Calls API, TwiML <Say>).
type Caller struct {
	a *Adapter // the REST client and its retry rules; no chat side
}

// maxSpeech bounds what a call says (Twilio allows 4,000 characters of TwiML).
const maxSpeech = 1500

// NewCaller builds a caller. It makes no call to Twilio.
func NewCaller(o CallerOptions) (*Caller, error) {
	if !sidPattern.MatchString(o.AccountSID) || o.AuthToken == "" {
		return nil, errors.New("whatsapp: caller needs an account SID and an auth token")
	}
	if !e164.MatchString(o.From) {
		return nil, errors.New("whatsapp: caller id must be +E164")
	}
	if o.APIURL == "" {
		o.APIURL = DefaultAPIURL
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.CallTimeout <= 0 {
		o.CallTimeout = 10 * time.Second
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	rest, err := newREST(o.AccountSID, o.AuthToken, o.APIURL, o.CallTimeout)
	if err != nil {
		return nil, err
	}
	return &Caller{a: &Adapter{o: Options{From: o.From, CallTimeout: o.CallTimeout, Sleep: o.Sleep}, log: o.Logger.With("channel", "voice"), rest: rest}}, nil
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

// Call rings phone (+E164) and says speech.
func (c *Caller) Call(ctx context.Context, phone, speech string) error {
	if !e164.MatchString(phone) {
		return fmt.Errorf("%w: %q", ErrBadAddress, redact(phone))
	}
	doc, err := TwiML(speech)
	if err != nil {
		return fmt.Errorf("whatsapp: call script: %w", err)
	}
	params := (&api.CreateCallParams{}).SetTo(phone).SetFrom(c.a.o.From).SetTwiml(doc).SetTimeout(30)
	_, err = call(ctx, c.a, "place call", func() (*api.ApiV2010Call, error) { return c.a.rest.Api.CreateCall(params) })
	return err
}
