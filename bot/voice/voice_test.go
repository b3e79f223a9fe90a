package voice

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/fixtures/testkit"
)

func caller(t *testing.T, fake *twiliotest.Server, mod ...func(*Options)) (*Caller, *testkit.Sleeps) {
	t.Helper()
	sl := &testkit.Sleeps{}
	o := Options{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken, From: "+14155550100", APIURL: fake.URL(), Sleep: sl.Sleep}
	for _, m := range mod {
		m(&o)
	}
	c, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	return c, sl
}

func TestCallSaysTheSummary(t *testing.T) {
	fake := twiliotest.New(t)
	c, _ := caller(t, fake)
	if err := c.Call(t.Context(), "+263771234567", `checkout <degraded> & "slow"`); err != nil {
		t.Fatal(err)
	}
	calls := fake.Calls()
	if len(calls) != 1 || calls[0].To != "+263771234567" || calls[0].From != "+14155550100" {
		t.Fatalf("calls %+v", calls)
	}
	want := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Response><Say loop="2">checkout &lt;degraded&gt; &amp; &#34;slow&#34;</Say></Response>`
	if calls[0].TwiML != want {
		t.Errorf("TwiML\n%s\nwant\n%s", calls[0].TwiML, want)
	}
	if err := c.Call(t.Context(), "0771", "x"); !errors.Is(err, ErrBadAddress) {
		t.Errorf("bad number: %v", err)
	}
	if len(fake.Calls()) != 1 {
		t.Error("a bad number reached Twilio")
	}
}

// TestLongSpeechFitsTwilio: a summary of any length is cut to what a call may say, and
// Twilio takes it.
func TestLongSpeechFitsTwilio(t *testing.T) {
	fake := twiliotest.New(t)
	c, _ := caller(t, fake)
	if err := c.Call(t.Context(), "+263771234567", strings.Repeat("checkout is slow & failing. ", 400)); err != nil {
		t.Fatal(err)
	}
	if calls := fake.Calls(); len(calls) != 1 || len(calls[0].TwiML) > 4000 {
		t.Fatalf("calls %+v", calls)
	}
}

// TestRateLimitIsWaitedOut: a 429 (Twilio placed nothing) is retried after a growing
// wait; a 5xx is not (the phone may be ringing), nor is a refusal.
func TestRateLimitIsWaitedOut(t *testing.T) {
	fake := twiliotest.New(t)
	c, sl := caller(t, fake)
	fake.FailNext("Calls", http.StatusTooManyRequests, 2)
	if err := c.Call(t.Context(), "+263771234567", "checkout"); err != nil {
		t.Fatal(err)
	}
	if got := sl.All(); len(got) != 2 || got[0] != time.Second || got[1] != 2*time.Second {
		t.Errorf("waits %v", got)
	}
	if n := len(fake.Calls()); n != 1 {
		t.Fatalf("%d calls placed", n)
	}

	fake.FailNext("Calls", http.StatusTooManyRequests, 1+maxRetries)
	if err := c.Call(t.Context(), "+263771234567", "checkout"); !errors.Is(err, ErrRefused) {
		t.Errorf("rate limited past the retries: %v", err)
	}

	fake.FailNext("Calls", http.StatusInternalServerError, 1)
	before := fake.Requests()
	if err := c.Call(t.Context(), "+263771234567", "checkout"); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "500") {
		t.Errorf("5xx: %v", err)
	}
	if fake.Requests() != before+1 {
		t.Error("a 5xx was retried")
	}
}

func TestRefusedCredentials(t *testing.T) {
	fake := twiliotest.New(t)
	c, _ := caller(t, fake, func(o *Options) { o.AuthToken = "ffffffffffffffffffffffffffffffff" })
	err := c.Call(t.Context(), "+263771234567", "checkout")
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "401 20003") {
		t.Errorf("wrong token: %v", err)
	}
	if strings.Contains(err.Error(), "ffff") {
		t.Error("the error carries the token")
	}
}

func TestOptionsAreValidated(t *testing.T) {
	for name, o := range map[string]Options{
		"no account":         {AuthToken: "x", From: "+14155550100"},
		"no token":           {AccountSID: twiliotest.AccountSID, From: "+14155550100"},
		"bad caller id":      {AccountSID: twiliotest.AccountSID, AuthToken: "x", From: "14155550100"},
		"relative API URL":   {AccountSID: twiliotest.AccountSID, AuthToken: "x", From: "+14155550100", APIURL: "api.twilio.com"},
		"not an http(s) URL": {AccountSID: twiliotest.AccountSID, AuthToken: "x", From: "+14155550100", APIURL: "ftp://api.twilio.com"},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
