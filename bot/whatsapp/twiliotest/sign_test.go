package twiliotest

import (
	"net/url"
	"testing"

	"github.com/twilio/twilio-go/client"
)

func TestSignMatchesTwiliosPublishedExample(t *testing.T) {
	form := url.Values{"CallSid": {"CA1234567890ABCDE"}, "Caller": {"+12349013030"}, "Digits": {"1234"}, "From": {"+12349013030"}, "To": {"+18005551212"}}
	const u = "https://mycompany.com/myapp.php?foo=1&bar=2"
	got := Sign("12345", u, form)
	t.Logf("signature %s", got)
	if got != "0/KCTR6DLpKmkAf8muzZqo1nDgQ=" {
		t.Errorf("Sign = %q, want Twilio's published 0/KCTR6DLpKmkAf8muzZqo1nDgQ=", got)
	}
	v := client.NewRequestValidator("12345")
	params := map[string]string{}
	for k := range form {
		params[k] = form.Get(k)
	}
	if !v.Validate(u, params, got) {
		t.Error("twilio-go's RequestValidator refuses the fake's signature")
	}
}
