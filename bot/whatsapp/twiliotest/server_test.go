package twiliotest

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// request makes one REST request as Twilio's clients do (form body, basic auth) and
// returns the status and the decoded JSON answer.
func request(t *testing.T, s *Server, method, path string, form url.Values, user, pass string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, s.URL()+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("%s %s: the answer is not JSON: %v", method, path, err)
	}
	return resp.StatusCode, out
}

const (
	messagesPath = "/2010-04-01/Accounts/" + AccountSID + "/Messages.json"
	callsPath    = "/2010-04-01/Accounts/" + AccountSID + "/Calls.json"
	bot          = "whatsapp:+14155238886"
	person       = "whatsapp:+263771234567"
	templateSID  = "HX0123456789abcdef0123456789abcdef"
)

// code is Twilio's error code in an error answer (0 for a success).
func code(out map[string]any) int {
	c, _ := out["code"].(float64)
	return int(c)
}

func TestMessagesEnforceTwiliosLimits(t *testing.T) {
	s := New(t)
	s.AddContent(QuickReplyTemplate(templateSID))
	vars := func(v map[string]string) string {
		b, _ := json.Marshal(v)
		return string(b)
	}
	good := map[string]string{"1": "checkout degraded", "2": "ap:one", "3": "ap:two", "4": "restart_workers", "5": "Health 23/100"}
	with := func(k, v string) string {
		m := map[string]string{}
		for a, b := range good {
			m[a] = b
		}
		m[k] = v
		return vars(m)
	}
	for _, tc := range []struct {
		name       string
		form       url.Values
		user, pass string
		status     int
		code       int
	}{
		{"a text message", url.Values{"To": {person}, "From": {bot}, "Body": {"hello"}}, AccountSID, AuthToken, http.StatusCreated, 0},
		{"1600 characters", url.Values{"To": {person}, "From": {bot}, "Body": {strings.Repeat("é", 1600)}}, AccountSID, AuthToken, http.StatusCreated, 0},
		{"1601 characters", url.Values{"To": {person}, "From": {bot}, "Body": {strings.Repeat("é", 1601)}}, AccountSID, AuthToken, http.StatusBadRequest, 21617},
		{"no body nor media", url.Values{"To": {person}, "From": {bot}}, AccountSID, AuthToken, http.StatusBadRequest, 21619},
		{"a To without whatsapp:", url.Values{"To": {"+263771234567"}, "From": {bot}, "Body": {"x"}}, AccountSID, AuthToken, http.StatusBadRequest, 21211},
		{"a To that is not E.164", url.Values{"To": {"whatsapp:0771234567"}, "From": {bot}, "Body": {"x"}}, AccountSID, AuthToken, http.StatusBadRequest, 21211},
		{"a From that is no channel", url.Values{"To": {person}, "From": {"+14155238886"}, "Body": {"x"}}, AccountSID, AuthToken, http.StatusBadRequest, 63007},
		{"a relative media URL", url.Values{"To": {person}, "From": {bot}, "MediaUrl": {"/chart.png"}}, AccountSID, AuthToken, http.StatusBadRequest, 21620},
		{"media only", url.Values{"To": {person}, "From": {bot}, "MediaUrl": {"https://bot.example/chart.png"}}, AccountSID, AuthToken, http.StatusCreated, 0},
		{"an unknown template", url.Values{"To": {person}, "From": {bot}, "ContentSid": {"HX" + strings.Repeat("f", 32)}}, AccountSID, AuthToken, http.StatusBadRequest, 21656},
		{"a template with its variables", url.Values{"To": {person}, "From": {bot}, "ContentSid": {templateSID}, "ContentVariables": {vars(good)}}, AccountSID, AuthToken, http.StatusCreated, 0},
		{"a missing variable", url.Values{"To": {person}, "From": {bot}, "ContentSid": {templateSID}, "ContentVariables": {with("5", "")}}, AccountSID, AuthToken, http.StatusBadRequest, 21656},
		{"a variable over the limit", url.Values{"To": {person}, "From": {bot}, "ContentSid": {templateSID}, "ContentVariables": {with("1", strings.Repeat("x", MaxVariable+1))}}, AccountSID, AuthToken, http.StatusBadRequest, 21656},
		{"a variable with a newline", url.Values{"To": {person}, "From": {bot}, "ContentSid": {templateSID}, "ContentVariables": {with("5", "a\nb")}}, AccountSID, AuthToken, http.StatusBadRequest, 63013},
		{"a variable with five spaces", url.Values{"To": {person}, "From": {bot}, "ContentSid": {templateSID}, "ContentVariables": {with("5", "a     b")}}, AccountSID, AuthToken, http.StatusBadRequest, 63013},
		{"variables that are not JSON", url.Values{"To": {person}, "From": {bot}, "ContentSid": {templateSID}, "ContentVariables": {"{1:"}}, AccountSID, AuthToken, http.StatusBadRequest, 21656},
		{"a wrong auth token", url.Values{"To": {person}, "From": {bot}, "Body": {"x"}}, AccountSID, "ffffffffffffffffffffffffffffffff", http.StatusUnauthorized, 20003},
		{"no credentials", url.Values{"To": {person}, "From": {bot}, "Body": {"x"}}, "", "", http.StatusUnauthorized, 20003},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Messages())
			status, out := request(t, s, http.MethodPost, messagesPath, tc.form, tc.user, tc.pass)
			if status != tc.status || code(out) != tc.code {
				t.Fatalf("%d %d %v; want %d %d", status, code(out), out["message"], tc.status, tc.code)
			}
			sent := len(s.Messages()) - before
			if ok := status == http.StatusCreated; ok != (sent == 1) || sent > 1 {
				t.Fatalf("%d messages recorded for a %d", sent, status)
			}
			if status == http.StatusCreated {
				if sid, _ := out["sid"].(string); !strings.HasPrefix(sid, "SM") || len(sid) != 34 {
					t.Errorf("sid %q", sid)
				}
			}
		})
	}
	// A template message is recorded as the person reads it; refusals are kept apart.
	for _, m := range s.Messages() {
		if m.ContentSID == templateSID && !strings.Contains(m.Rendered, "checkout degraded") {
			t.Errorf("rendered %q", m.Rendered)
		}
	}
	if r := s.Refused(); len(r) != 4 || r[0].Code != 21656 || r[2].Code != 63013 {
		t.Errorf("refusals %+v", r)
	}
}

func TestAnotherAccountsResourcesAreNotFound(t *testing.T) {
	s := New(t)
	other := "/2010-04-01/Accounts/AC" + strings.Repeat("f", 32) + "/Messages.json"
	if status, out := request(t, s, http.MethodPost, other, url.Values{"To": {person}, "From": {bot}, "Body": {"x"}}, AccountSID, AuthToken); status != http.StatusNotFound || code(out) != 20404 {
		t.Errorf("another account's messages: %d %v", status, out)
	}
	if status, _ := request(t, s, http.MethodGet, "/2010-04-01/Accounts/AC"+strings.Repeat("f", 32)+".json", nil, AccountSID, AuthToken); status != http.StatusNotFound {
		t.Errorf("another account: %d", status)
	}
	if status, out := request(t, s, http.MethodGet, "/2010-04-01/Accounts/"+AccountSID+".json", nil, AccountSID, AuthToken); status != http.StatusOK || out["status"] != "active" || out["sid"] != AccountSID {
		t.Errorf("the account: %d %v", status, out)
	}
	if status, _ := request(t, s, http.MethodGet, "/2010-04-01/Accounts/"+AccountSID, nil, AccountSID, AuthToken); status != http.StatusNotFound {
		t.Errorf("the account without .json: %d", status)
	}
	if status, _ := request(t, s, http.MethodGet, "/v1/Content/"+templateSID, nil, AccountSID, AuthToken); status != http.StatusNotFound {
		t.Errorf("an unknown template: %d", status)
	}
	if status, out := request(t, s, http.MethodGet, "/nothing", nil, AccountSID, AuthToken); status != http.StatusNotFound || code(out) != 20404 {
		t.Errorf("an unknown path: %d %v", status, out)
	}
}

func TestCallsEnforceTwiliosLimits(t *testing.T) {
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	s := New(t, WithClock(func() time.Time { return now }))
	twiml := `<Response><Say>checkout</Say></Response>`
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   int
	}{
		{"a call", url.Values{"To": {"+263771234567"}, "From": {"+14155550100"}, "Twiml": {twiml}}, http.StatusCreated, 0},
		{"a To that is not E.164", url.Values{"To": {"0771234567"}, "From": {"+14155550100"}, "Twiml": {twiml}}, http.StatusBadRequest, 21211},
		{"a From that is not E.164", url.Values{"To": {"+263771234567"}, "From": {"14155550100"}, "Twiml": {twiml}}, http.StatusBadRequest, 21212},
		{"no script", url.Values{"To": {"+263771234567"}, "From": {"+14155550100"}}, http.StatusBadRequest, 21205},
		{"TwiML over 4000 characters", url.Values{"To": {"+263771234567"}, "From": {"+14155550100"}, "Twiml": {strings.Repeat("x", 4001)}}, http.StatusBadRequest, 21218},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, out := request(t, s, http.MethodPost, callsPath, tc.form, AccountSID, AuthToken)
			if status != tc.status || code(out) != tc.code {
				t.Errorf("%d %d %v; want %d %d", status, code(out), out["message"], tc.status, tc.code)
			}
		})
	}
	calls := s.Calls()
	if len(calls) != 1 || calls[0].TwiML != twiml || !calls[0].At.Equal(now) || !strings.HasPrefix(calls[0].SID, "CA") {
		t.Errorf("calls %+v", calls)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if c, err := s.WaitForCall(ctx, func(c Call) bool { return c.To == "+263771234567" }); err != nil || c.SID != calls[0].SID {
		t.Errorf("WaitForCall = %+v, %v", c, err)
	}
}

// TestInjectedFailures: FailNext answers the next requests of a resource with the status
// asked for, without doing anything; a 429 says when to retry.
func TestInjectedFailures(t *testing.T) {
	s := New(t)
	s.FailNext("Messages", http.StatusTooManyRequests, 1)
	s.FailNext("Messages", http.StatusServiceUnavailable, 1)
	form := url.Values{"To": {person}, "From": {bot}, "Body": {"x"}}
	req := func() *http.Response {
		r, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+messagesPath, strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.SetBasicAuth(AccountSID, AuthToken)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := req(); resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("first: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := req(); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second: %d", resp.StatusCode)
	}
	if resp := req(); resp.StatusCode != http.StatusCreated {
		t.Errorf("third: %d", resp.StatusCode)
	}
	if n, r := len(s.Messages()), s.Requests(); n != 1 || r != 3 {
		t.Errorf("%d messages from %d requests; want 1 from 3", n, r)
	}
	// Failures are per resource: a call is not affected by the messages' queue.
	s.FailNext("Messages", http.StatusInternalServerError, 1)
	if status, _ := request(t, s, http.MethodPost, callsPath, url.Values{"To": {"+263771234567"}, "From": {"+14155550100"}, "Twiml": {"<Response/>"}}, AccountSID, AuthToken); status != http.StatusCreated {
		t.Errorf("a call behind a message failure: %d", status)
	}
}

// TestInboundFormIsTwiliosShape: what the fake posts to the bot carries the parameters
// Twilio sends, a quick-reply press its payload, and a signature the bot can check.
func TestInboundFormIsTwiliosShape(t *testing.T) {
	f := Inbound{From: "+263771234567", Name: "Ana", Body: "STATUS", RepliedTo: "SM" + strings.Repeat("a", 32)}.Form(bot)
	for k, want := range map[string]string{"From": person, "To": bot, "AccountSid": AccountSID, "Body": "STATUS", "ProfileName": "Ana",
		"WaId": "263771234567", "MessageType": "text", "OriginalRepliedMessageSid": "SM" + strings.Repeat("a", 32)} {
		if got := f.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if sid := f.Get("MessageSid"); len(sid) != 34 || !strings.HasPrefix(sid, "SM") || f.Get("SmsMessageSid") != sid {
		t.Errorf("MessageSid %q", sid)
	}
	press := Inbound{From: "+263771234567", ButtonPayload: "ap:x", ButtonText: "Approve"}.Form(bot)
	if press.Get("ButtonPayload") != "ap:x" || press.Get("MessageType") != "button" {
		t.Errorf("press %v", press)
	}
	s := New(t)
	got := make(chan http.Header, 1)
	hook := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	defer hook.Close()
	if status, err := s.Post(t.Context(), hook.URL+"/whatsapp/webhook", "https://bot.example/whatsapp/webhook", f, nil); err != nil || status != http.StatusOK {
		t.Fatalf("Post: %d, %v", status, err)
	}
	h := <-got
	if h.Get("X-Twilio-Signature") != Sign(AuthToken, "https://bot.example/whatsapp/webhook", f) || h.Get("I-Twilio-Idempotency-Token") == "" {
		t.Errorf("headers %v", h)
	}
}
