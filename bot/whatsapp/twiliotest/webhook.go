package twiliotest

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
)

// Sign computes X-Twilio-Signature the way Twilio does for a form POST: HMAC-SHA1, keyed
// by the auth token, over the full URL followed by every parameter name and value,
// sorted by name; base64. This is Twilio's side, for the fake to sign what it posts;
// the bot checks signatures with twilio-go's RequestValidator.
func Sign(authToken, fullURL string, form url.Values) string {
	keys := make([]string, 0, len(form))
	for k := range form {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString(fullURL)
	for _, k := range keys {
		for _, v := range form[k] {
			b.WriteString(k)
			b.WriteString(v)
		}
	}
	mac := hmac.New(sha1.New, []byte(authToken))
	mac.Write([]byte(b.String()))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Inbound is a WhatsApp message as Twilio posts it to the bot's webhook.
type Inbound struct {
	From string // "+263771234567" (the fake adds whatsapp:)
	Name string // ProfileName
	Body string
	// ButtonPayload and ButtonText are set for a quick-reply press.
	ButtonPayload, ButtonText string
	// RepliedTo is the SID of the bot message this one quotes (OriginalRepliedMessageSid).
	RepliedTo string
	// SID is the MessageSid; a fresh one when empty.
	SID string
}

// Form is the inbound as Twilio's form parameters, for the bot's number to.
func (in Inbound) Form(to string) url.Values {
	sid := in.SID
	if sid == "" {
		sid = newSID("SM")
	}
	f := url.Values{
		"MessageSid": {sid}, "SmsMessageSid": {sid}, "SmsSid": {sid}, "AccountSid": {AccountSID},
		"From": {"whatsapp:" + in.From}, "To": {to}, "Body": {in.Body}, "NumMedia": {"0"}, "NumSegments": {"1"},
		"ProfileName": {in.Name}, "WaId": {strings.TrimPrefix(in.From, "+")}, "SmsStatus": {"received"}, "ApiVersion": {"2010-04-01"},
		"MessageType": {"text"},
	}
	if in.ButtonPayload != "" {
		f.Set("ButtonPayload", in.ButtonPayload)
		f.Set("ButtonText", in.ButtonText)
		f.Set("MessageType", "button")
	}
	if in.RepliedTo != "" {
		f.Set("OriginalRepliedMessageSid", in.RepliedTo)
		f.Set("OriginalRepliedMessageSender", to)
	}
	return f
}

// Post delivers form to the bot's webhook at postURL, signed as Twilio signs it for
// signedURL (the public URL Twilio was configured with, which a proxy may have rewritten
// before the bot sees it). It returns the HTTP status.
func (s *Server) Post(ctx context.Context, postURL, signedURL string, form url.Values, header http.Header) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, postURL, strings.NewReader(form.Encode()))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-Twilio-Signature", Sign(s.token, signedURL, form))
	req.Header.Set("I-Twilio-Idempotency-Token", newSID(""))
	for k, vs := range header {
		req.Header[k] = vs
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, fmt.Errorf("post webhook: %w", err)
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}
