package twiliotest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// Message is a message the bot asked Twilio to send.
type Message struct {
	SID              string
	To, From         string
	Body             string
	MediaURLs        []string
	ContentSID       string
	ContentVariables map[string]string
	// Rendered is a template message's body with its variables filled in.
	Rendered string
	At       time.Time
}

// Refusal is a message Twilio refused for its template variables.
type Refusal struct {
	Code      int
	Message   string
	Variables map[string]string
}

// Call is a call the bot asked Twilio to place.
type Call struct {
	SID      string
	To, From string
	TwiML    string
	At       time.Time
}

// Content is a registered content template.
type Content struct {
	SID          string
	FriendlyName string
	// Types is the template's content types as Twilio returns them, e.g.
	// {"twilio/quick-reply": {"body": "{{1}}", "actions": [...]}}.
	Types map[string]any
}

// Server is the fake.
type Server struct {
	t        testing.TB
	srv      *httptest.Server
	account  string
	token    string
	now      func() time.Time
	mu       sync.Mutex
	messages []Message
	calls    []Call
	content  map[string]Content
	failures map[string][]int // resource → statuses to answer next
	refused  []Refusal
	requests int
	changed  chan struct{} // closed and replaced whenever a message or call is recorded
}

// Option configures the fake.
type Option func(*Server)

// WithClock sets the fake's clock (the time recorded on messages and calls).
func WithClock(now func() time.Time) Option { return func(s *Server) { s.now = now } }

// Test credentials: an account SID of the right shape and an auth token.
const (
	AccountSID = "AC0123456789abcdef0123456789abcdef"
	AuthToken  = "0123456789abcdef0123456789abcdef"
)

// New starts a fake for account AccountSID with AuthToken; it stops with the test.
func New(t testing.TB, opts ...Option) *Server {
	s := &Server{t: t, account: AccountSID, token: AuthToken, now: time.Now, content: map[string]Content{}, failures: map[string][]int{}, changed: make(chan struct{})}
	for _, o := range opts {
		o(s)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{account}/Messages.json", s.createMessage)
	mux.HandleFunc("POST /2010-04-01/Accounts/{account}/Calls.json", s.createCall)
	mux.HandleFunc("GET /v1/Content/{sid}", s.fetchContent)
	mux.HandleFunc("GET /2010-04-01/Accounts/{file}", s.fetchAccount)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.fail(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
	})
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the fake's base URL (TWILIO_API_URL).
func (s *Server) URL() string { return s.srv.URL }

// AddContent registers a content template.
func (s *Server) AddContent(c Content) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.content[c.SID] = c
}

// ApprovalTemplateBody is the approval template's body as the README tells a tenant to
// register it.
const ApprovalTemplateBody = "AlertEngine: {{1}}\n{{5}}\nApprove runs {{4}}. Nothing runs without an approval."

// QuickReplyTemplate is an approval template as the README tells a tenant to register
// it: ApprovalTemplateBody and Approve/Reject quick replies whose ids are variables 2
// and 3.
func QuickReplyTemplate(sid string) Content {
	return Content{SID: sid, FriendlyName: "alertengine_approval", Types: map[string]any{
		"twilio/quick-reply": map[string]any{
			"body": ApprovalTemplateBody,
			"actions": []map[string]string{
				{"type": "QUICK_REPLY", "title": "Approve", "id": "{{2}}"},
				{"type": "QUICK_REPLY", "title": "Reject", "id": "{{3}}"},
			},
		},
		"twilio/text": map[string]any{"body": ApprovalTemplateBody},
	}}
}

// MaxVariable is the longest template variable the fake accepts, in characters: the
// strictest of Twilio's documented limits for Content variables.
const MaxVariable = 250

var (
	placeholder = regexp.MustCompile(`\{\{([0-9]+)\}\}`)
	fiveSpaces  = regexp.MustCompile(` {5,}`)
)

// checkVariables applies WhatsApp's rules for template parameters to the variables of a
// message sent with content c: every variable the template uses is given and not blank,
// at most MaxVariable characters (else Twilio's 21656), with no newline, no tab and no
// more than four consecutive spaces (else WhatsApp's refusal, Twilio's 63013). It returns
// the body as the person would read it.
func checkVariables(c Content, vars map[string]string) (string, int, string) {
	used := map[string]bool{}
	var body string
	for _, t := range c.Types {
		tm, _ := t.(map[string]any)
		if b, ok := tm["body"].(string); ok {
			body = b
			for _, m := range placeholder.FindAllStringSubmatch(b, -1) {
				used[m[1]] = true
			}
		}
		if acts, ok := tm["actions"].([]map[string]string); ok {
			for _, a := range acts {
				for _, m := range placeholder.FindAllStringSubmatch(a["id"]+a["title"], -1) {
					used[m[1]] = true
				}
			}
		}
	}
	for k := range used {
		v, ok := vars[k]
		switch {
		case !ok || strings.TrimSpace(v) == "":
			return "", 21656, fmt.Sprintf("The Content Variables parameter is invalid: variable {{%s}} is missing or empty", k)
		case len([]rune(v)) > MaxVariable:
			return "", 21656, fmt.Sprintf("The Content Variables parameter is invalid: variable {{%s}} is longer than %d characters", k, MaxVariable)
		case strings.ContainsAny(v, "\n\r\t") || fiveSpaces.MatchString(v):
			return "", 63013, fmt.Sprintf("Channel policy violation: WhatsApp template parameter {{%s}} cannot have new-line/tab characters or more than 4 consecutive spaces", k)
		}
	}
	return placeholder.ReplaceAllStringFunc(body, func(p string) string { return vars[placeholder.FindStringSubmatch(p)[1]] }), 0, ""
}

// FailNext makes the next n requests to resource ("Messages", "Calls", "Content")
// answer status (429, 500, 503…) without doing anything.
func (s *Server) FailNext(resource string, status, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failures[resource] = append(s.failures[resource], status)
	}
}

// Messages returns the messages sent so far, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.messages...)
}

// MessagesTo returns the messages sent to address ("whatsapp:+…").
func (s *Server) MessagesTo(to string) []Message {
	var out []Message
	for _, m := range s.Messages() {
		if m.To == to {
			out = append(out, m)
		}
	}
	return out
}

// Refused returns the messages refused for their template variables, oldest first.
func (s *Server) Refused() []Refusal {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Refusal(nil), s.refused...)
}

// Calls returns the calls placed so far, oldest first.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.calls...)
}

// Requests counts the requests that reached the fake (failed ones included).
func (s *Server) Requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

type restError struct {
	Code     int    `json:"code"`
	Message  string `json:"message"`
	MoreInfo string `json:"more_info"`
	Status   int    `json:"status"`
}

func (s *Server) fail(w http.ResponseWriter, status, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(restError{Code: code, Message: msg, MoreInfo: fmt.Sprintf("https://www.twilio.com/docs/errors/%d", code), Status: status})
}

func (s *Server) ok(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// admit checks credentials and injected failures; false means it answered.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, resource string) bool {
	s.mu.Lock()
	s.requests++
	var injected int
	if q := s.failures[resource]; len(q) > 0 {
		injected, s.failures[resource] = q[0], q[1:]
	}
	s.mu.Unlock()
	user, pass, ok := r.BasicAuth()
	if !ok || user != s.account || pass != s.token {
		s.fail(w, http.StatusUnauthorized, 20003, "Authenticate")
		return false
	}
	if a := r.PathValue("account"); resource != "Content" && a != s.account {
		s.fail(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return false
	}
	switch {
	case injected == http.StatusTooManyRequests:
		s.fail(w, injected, 20429, "Too Many Requests")
		return false
	case injected != 0:
		s.fail(w, injected, 20500, "Internal Server Error")
		return false
	}
	return true
}

var e164 = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)

func newSID(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// maxBody is Twilio's limit on a message body, in characters.
const maxBody = 1600

func (s *Server) createMessage(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, "Messages") {
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, http.StatusBadRequest, 21601, "malformed form")
		return
	}
	f := r.PostForm
	m := Message{To: f.Get("To"), From: f.Get("From"), Body: f.Get("Body"), MediaURLs: f["MediaUrl"], ContentSID: f.Get("ContentSid"), At: s.now()}
	to, toOK := strings.CutPrefix(m.To, "whatsapp:")
	from, fromOK := strings.CutPrefix(m.From, "whatsapp:")
	switch {
	case !toOK || !e164.MatchString(to):
		s.fail(w, http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", m.To))
		return
	case !fromOK || !e164.MatchString(from):
		s.fail(w, http.StatusBadRequest, 63007, "Twilio could not find a Channel with the specified From address")
		return
	case m.Body == "" && m.ContentSID == "" && len(m.MediaURLs) == 0:
		s.fail(w, http.StatusBadRequest, 21619, "A text message body or media urls must be specified.")
		return
	case len([]rune(m.Body)) > maxBody:
		s.fail(w, http.StatusBadRequest, 21617, "The concatenated message body exceeds the 1600 character limit.")
		return
	}
	for _, u := range m.MediaURLs {
		if !strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") {
			s.fail(w, http.StatusBadRequest, 21620, "Invalid media URL(s)")
			return
		}
	}
	if m.ContentSID != "" {
		s.mu.Lock()
		c, known := s.content[m.ContentSID]
		s.mu.Unlock()
		if !known {
			s.fail(w, http.StatusBadRequest, 21656, "The ContentSid is Invalid")
			return
		}
		if v := f.Get("ContentVariables"); v != "" {
			if err := json.Unmarshal([]byte(v), &m.ContentVariables); err != nil {
				s.fail(w, http.StatusBadRequest, 21656, "The Content Variables parameter is invalid")
				return
			}
		}
		rendered, code, why := checkVariables(c, m.ContentVariables)
		if code != 0 {
			s.mu.Lock()
			s.refused = append(s.refused, Refusal{Code: code, Message: why, Variables: m.ContentVariables})
			s.mu.Unlock()
			s.fail(w, http.StatusBadRequest, code, why)
			return
		}
		m.Rendered = rendered
	}
	m.SID = newSID("SM")
	s.mu.Lock()
	s.messages = append(s.messages, m)
	s.notifyLocked()
	s.mu.Unlock()
	s.ok(w, http.StatusCreated, map[string]any{
		"sid": m.SID, "account_sid": s.account, "to": m.To, "from": m.From, "body": m.Body, "status": "queued",
		"num_segments": "1", "num_media": fmt.Sprint(len(m.MediaURLs)), "direction": "outbound-api", "api_version": "2010-04-01",
		"date_created": m.At.UTC().Format(time.RFC1123Z), "uri": "/2010-04-01/Accounts/" + s.account + "/Messages/" + m.SID + ".json",
	})
}

func (s *Server) createCall(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, "Calls") {
		return
	}
	if err := r.ParseForm(); err != nil {
		s.fail(w, http.StatusBadRequest, 21601, "malformed form")
		return
	}
	f := r.PostForm
	c := Call{To: f.Get("To"), From: f.Get("From"), TwiML: f.Get("Twiml"), At: s.now()}
	switch {
	case !e164.MatchString(c.To):
		s.fail(w, http.StatusBadRequest, 21211, fmt.Sprintf("Invalid 'To' Phone Number: %s", c.To))
		return
	case !e164.MatchString(c.From):
		s.fail(w, http.StatusBadRequest, 21212, fmt.Sprintf("Invalid 'From' Phone Number: %s", c.From))
		return
	case c.TwiML == "" && f.Get("Url") == "":
		s.fail(w, http.StatusBadRequest, 21205, "Url or Twiml parameter is required")
		return
	case len(c.TwiML) > 4000:
		s.fail(w, http.StatusBadRequest, 21218, "Twiml exceeds 4000 characters")
		return
	}
	c.SID = newSID("CA")
	s.mu.Lock()
	s.calls = append(s.calls, c)
	s.notifyLocked()
	s.mu.Unlock()
	s.ok(w, http.StatusCreated, map[string]any{"sid": c.SID, "account_sid": s.account, "to": c.To, "from": c.From, "status": "queued",
		"direction": "outbound-api", "api_version": "2010-04-01"})
}

func (s *Server) fetchContent(w http.ResponseWriter, r *http.Request) {
	if !s.admit(w, r, "Content") {
		return
	}
	s.mu.Lock()
	c, ok := s.content[r.PathValue("sid")]
	s.mu.Unlock()
	if !ok {
		s.fail(w, http.StatusNotFound, 20404, "The requested resource was not found")
		return
	}
	s.ok(w, http.StatusOK, map[string]any{"sid": c.SID, "account_sid": s.account, "friendly_name": c.FriendlyName, "language": "en", "types": c.Types,
		"url": s.srv.URL + "/v1/Content/" + c.SID})
}

// fetchAccount answers GET /2010-04-01/Accounts/{sid}.json: the account, active, to its
// own credentials only.
func (s *Server) fetchAccount(w http.ResponseWriter, r *http.Request) {
	sid, ok := strings.CutSuffix(r.PathValue("file"), ".json")
	r.SetPathValue("account", sid)
	if !ok {
		s.fail(w, http.StatusNotFound, 20404, "The requested resource "+r.URL.Path+" was not found")
		return
	}
	if !s.admit(w, r, "Accounts") {
		return
	}
	s.ok(w, http.StatusOK, map[string]any{"sid": s.account, "friendly_name": "alertengine test", "status": "active", "type": "Full",
		"owner_account_sid": s.account, "uri": "/2010-04-01/Accounts/" + s.account + ".json"})
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Text is what a message shows: its body, or its template's body with the variables.
func (m Message) Text() string { return m.Body + m.Rendered }

// WaitForMessage returns the first message (oldest first) matching pred, waiting for
// one to be sent until ctx ends.
func (s *Server) WaitForMessage(ctx context.Context, pred func(Message) bool) (Message, error) {
	for {
		s.mu.Lock()
		for _, m := range s.messages {
			if pred(m) {
				s.mu.Unlock()
				return m, nil
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Message{}, fmt.Errorf("no such message: %w", context.Cause(ctx))
		}
	}
}

// WaitForCall returns the first call matching pred, waiting until ctx ends.
func (s *Server) WaitForCall(ctx context.Context, pred func(Call) bool) (Call, error) {
	for {
		s.mu.Lock()
		for _, c := range s.calls {
			if pred(c) {
				s.mu.Unlock()
				return c, nil
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Call{}, fmt.Errorf("no such call: %w", context.Cause(ctx))
		}
	}
}
