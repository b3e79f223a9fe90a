// Package cloudtest is a fake of the Meta Graph API endpoints the WhatsApp adapter uses
// on the Cloud API — GET /{phone-number-id}, POST /{phone-number-id}/messages, POST
// /{phone-number-id}/media, GET /{waba-id}/message_templates — speaking their JSON and
// enforcing their documented limits and errors: a bearer token (190 when wrong or
// expired), text bodies of at most 4,096 characters, interactive reply buttons (1 to 3,
// titles of 1 to 20 characters unique in the message, ids of 1 to 256 characters without
// surrounding spaces, a body of at most 1,024 characters), templates (registered name and
// language and APPROVED — PENDING, REJECTED, PAUSED and DISABLED ones are listed but
// not sent — the exact number of body parameters, no newline, tab or more than four
// consecutive spaces in one, a payload for each quick reply), the 24-hour
// customer-service window (131047 for anything but a template to a number that has not
// written within it), media ids that must have been uploaded, and rate limits on demand
// (80007). It also sends the webhook: messages and status callbacks signed with the app
// secret (X-Hub-Signature-256), or forged.
package cloudtest

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"
)

// Test settings.
const (
	Token         = "EAAtest0123456789"
	PhoneNumberID = "106540352242922"
	AppSecret     = "0123456789abcdef0123456789abcdef"
	VerifyToken   = "verify-me-please"
	// WABAID is the WhatsApp Business Account the phone number and the templates belong to.
	WABAID = "102290129340398"
)

// Template is a registered template: its body parameters and quick-reply buttons, and
// its review status (APPROVED when empty; PENDING, REJECTED, PAUSED, DISABLED). Only an
// APPROVED template can be sent.
type Template struct {
	Name, Language string
	BodyParams     int
	QuickReplies   int
	Status         string
}

func (t Template) status() string {
	if t.Status == "" {
		return "APPROVED"
	}
	return t.Status
}

// Button is a reply button as sent.
type Button struct{ ID, Title string }

// Message is a message the bot sent.
type Message struct {
	ID, To, Type string
	Body         string   // text body, or an interactive message's body
	Buttons      []Button // interactive reply buttons
	Template     string
	Params       []string // template body parameters
	Payloads     []string // template quick-reply payloads
	MediaID      string
	At           time.Time
}

// Text is the message as its reader sees it.
func (m Message) Text() string {
	switch m.Type {
	case "interactive":
		var t []string
		for _, b := range m.Buttons {
			t = append(t, "["+b.Title+"]")
		}
		return m.Body + "\n" + strings.Join(t, " ")
	case "template":
		return m.Template + ": " + strings.Join(m.Params, " | ")
	case "image":
		return "[image]"
	}
	return m.Body
}

// Server is the fake.
type Server struct {
	t         testing.TB
	srv       *httptest.Server
	mu        sync.Mutex
	now       func() time.Time
	token     string
	expired   bool
	templates map[string]Template
	lastIn    map[string]time.Time // wa_id → when it last wrote
	messages  []Message
	media     map[string][]byte
	rateLimit int
	requests  int
}

// New starts the fake; it stops with the test.
func New(t testing.TB) *Server {
	s := &Server{t: t, now: time.Now, token: Token, templates: map[string]Template{}, lastIn: map[string]time.Time{}, media: map[string][]byte{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the fake's base URL (WHATSAPP_CLOUD_API_URL).
func (s *Server) URL() string { return s.srv.URL + "/v23.0" }

// SetClock replaces the fake's clock (the 24-hour window follows it).
func (s *Server) SetClock(now func() time.Time) { s.mu.Lock(); s.now = now; s.mu.Unlock() }

// AddTemplate registers a template (one per name and language; again replaces it).
func (s *Server) AddTemplate(t Template) {
	s.mu.Lock()
	s.templates[t.Name+":"+t.Language] = t
	s.mu.Unlock()
}

// ExpireToken makes every request fail as with an expired token (190).
func (s *Server) ExpireToken() { s.mu.Lock(); s.expired = true; s.mu.Unlock() }

// RateLimitNext refuses the next n message requests with 80007.
func (s *Server) RateLimitNext(n int) { s.mu.Lock(); s.rateLimit = n; s.mu.Unlock() }

// Opened records that number (+E164) wrote at the given time: its window opens.
func (s *Server) Opened(number string, at time.Time) {
	s.mu.Lock()
	s.lastIn[strings.TrimPrefix(number, "+")] = at
	s.mu.Unlock()
}

// MessagesTo returns what was sent to number (+E164), oldest first.
func (s *Server) MessagesTo(number string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, m := range s.messages {
		if m.To == strings.TrimPrefix(number, "+") {
			out = append(out, m)
		}
	}
	return out
}

// Requests counts the requests the fake answered.
func (s *Server) Requests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.requests }

type graphError struct {
	status  int
	code    int
	typ     string
	message string
	details string
}

func fail(w http.ResponseWriter, e graphError) {
	if e.typ == "" {
		e.typ = "OAuthException"
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": e.message, "type": e.typ, "code": e.code,
		"error_data": map[string]any{"messaging_product": "whatsapp", "details": e.details}, "fbtrace_id": "Afake"}})
}

func invalid(details string) graphError {
	return graphError{status: 400, code: 100, message: "(#100) Invalid parameter", details: details}
}

func newID(prefix string) string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests++
	auth, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	switch {
	case !ok || auth != s.token:
		fail(w, graphError{status: 401, code: 190, message: "Invalid OAuth access token - Cannot parse access token"})
		return
	case s.expired:
		fail(w, graphError{status: 401, code: 190, message: "Error validating access token: Session has expired"})
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/v23.0")
	switch {
	case r.Method == http.MethodGet && path == "/"+PhoneNumberID:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]string{"id": PhoneNumberID, "display_phone_number": "+1 555 010 0000", "verified_name": "AlertEngine"})
	case r.Method == http.MethodGet && path == "/"+WABAID+"/message_templates":
		s.listTemplates(w, r)
	case r.Method == http.MethodGet && strings.HasSuffix(path, "/message_templates"):
		fail(w, graphError{status: 400, code: 100, typ: "GraphMethodException",
			message: fmt.Sprintf("Unsupported get request. Object with ID '%s' does not exist, cannot be loaded due to missing permissions, or does not support this operation.",
				strings.TrimSuffix(strings.TrimPrefix(path, "/"), "/message_templates"))})
	case r.Method == http.MethodPost && path == "/"+PhoneNumberID+"/media":
		s.upload(w, r)
	case r.Method == http.MethodPost && path == "/"+PhoneNumberID+"/messages":
		s.message(w, r)
	default:
		fail(w, graphError{status: 400, code: 100, message: "Unsupported request - method type: " + strings.ToLower(r.Method)})
	}
}

// listTemplates answers GET /{waba-id}/message_templates as the Graph API does: {"data":
// [...], "paging": {...}}, filtered by the name parameter (templates whose name contains
// it), each with the fields asked for (default id, name, language, status, category).
func (s *Server) listTemplates(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	fields := []string{"id", "name", "language", "status", "category"}
	if f := q.Get("fields"); f != "" {
		fields = strings.Split(f, ",")
	}
	data := []map[string]any{}
	for _, t := range s.templates {
		if name := q.Get("name"); name != "" && !strings.Contains(t.Name, name) {
			continue
		}
		all := map[string]any{"id": fmt.Sprintf("%d", 1000000+len(t.Name)*31+len(t.Language)), "name": t.Name,
			"language": t.Language, "status": t.status(), "category": "UTILITY", "parameter_format": "POSITIONAL"}
		row := map[string]any{}
		for _, f := range fields {
			if v, ok := all[strings.TrimSpace(f)]; ok {
				row[strings.TrimSpace(f)] = v
			}
		}
		row["id"] = all["id"]
		data = append(data, row)
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"data": data,
		"paging": map[string]any{"cursors": map[string]string{"before": "QVFIUmZAk", "after": "QVFIUmZAz"}}})
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseMultipartForm(8 << 20); err != nil {
		fail(w, invalid("not a multipart form"))
		return
	}
	if r.FormValue("messaging_product") != "whatsapp" {
		fail(w, invalid("messaging_product must be whatsapp"))
		return
	}
	f, h, err := r.FormFile("file")
	if err != nil {
		fail(w, invalid("no file"))
		return
	}
	defer f.Close()
	data, _ := io.ReadAll(f)
	if h.Header.Get("Content-Type") != "image/png" || r.FormValue("type") != "image/png" || !bytes.HasPrefix(data, []byte("\x89PNG")) {
		fail(w, graphError{status: 400, code: 131053, message: "Media upload error", details: "unsupported media type"})
		return
	}
	if len(data) > 5<<20 {
		fail(w, graphError{status: 400, code: 131053, message: "Media upload error", details: "image over 5 MB"})
		return
	}
	id := newID("")
	s.media[id] = data
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]string{"id": id})
}

var waID = regexp.MustCompile(`^[1-9][0-9]{6,14}$`)

type sendRequest struct {
	MessagingProduct string `json:"messaging_product"`
	To               string `json:"to"`
	Type             string `json:"type"`
	Text             *struct {
		Body string `json:"body"`
	} `json:"text"`
	Image *struct {
		ID string `json:"id"`
	} `json:"image"`
	Interactive *struct {
		Type string `json:"type"`
		Body struct {
			Text string `json:"text"`
		} `json:"body"`
		Action struct {
			Buttons []struct {
				Type  string `json:"type"`
				Reply struct {
					ID    string `json:"id"`
					Title string `json:"title"`
				} `json:"reply"`
			} `json:"buttons"`
		} `json:"action"`
	} `json:"interactive"`
	Template *struct {
		Name     string `json:"name"`
		Language struct {
			Code string `json:"code"`
		} `json:"language"`
		Components []struct {
			Type       string `json:"type"`
			SubType    string `json:"sub_type"`
			Index      string `json:"index"`
			Parameters []struct {
				Type    string `json:"type"`
				Text    string `json:"text"`
				Payload string `json:"payload"`
			} `json:"parameters"`
		} `json:"components"`
	} `json:"template"`
}

var badParam = regexp.MustCompile(`[\n\t]| {5,}`)

func (s *Server) message(w http.ResponseWriter, r *http.Request) {
	var req sendRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		fail(w, invalid("unreadable JSON"))
		return
	}
	if s.rateLimit > 0 {
		s.rateLimit--
		fail(w, graphError{status: 400, code: 80007, message: "(#80007) Rate limit issues"})
		return
	}
	if req.MessagingProduct != "whatsapp" || !waID.MatchString(req.To) {
		fail(w, invalid("messaging_product must be whatsapp and to a phone number"))
		return
	}
	m := Message{ID: "wamid." + newID("HBgM"), To: req.To, Type: req.Type, At: s.now()}
	switch req.Type {
	case "text":
		if req.Text == nil || req.Text.Body == "" || utf8.RuneCountInString(req.Text.Body) > 4096 {
			fail(w, invalid("text.body must be 1 to 4096 characters"))
			return
		}
		m.Body = req.Text.Body
	case "image":
		if req.Image == nil || s.media[req.Image.ID] == nil {
			fail(w, invalid("image.id is not an uploaded media id"))
			return
		}
		m.MediaID = req.Image.ID
	case "interactive":
		in := req.Interactive
		if in == nil || in.Type != "button" {
			fail(w, invalid("interactive.type must be button"))
			return
		}
		if n := utf8.RuneCountInString(in.Body.Text); n == 0 || n > 1024 {
			fail(w, invalid("interactive.body.text must be 1 to 1024 characters"))
			return
		}
		bs := in.Action.Buttons
		if len(bs) < 1 || len(bs) > 3 {
			fail(w, invalid("interactive.action.buttons must have 1 to 3 buttons"))
			return
		}
		titles := map[string]bool{}
		for _, b := range bs {
			t, id := b.Reply.Title, b.Reply.ID
			switch {
			case b.Type != "reply":
				fail(w, invalid("button type must be reply"))
				return
			case t == "" || utf8.RuneCountInString(t) > 20:
				fail(w, invalid("button title must be 1 to 20 characters"))
				return
			case titles[t]:
				fail(w, invalid("button titles must be unique"))
				return
			case id == "" || utf8.RuneCountInString(id) > 256 || strings.TrimSpace(id) != id:
				fail(w, invalid("button id must be 1 to 256 characters without leading or trailing spaces"))
				return
			}
			titles[t] = true
			m.Buttons = append(m.Buttons, Button{ID: id, Title: t})
		}
		m.Body = in.Body.Text
	case "template":
		tp := req.Template
		if tp == nil {
			fail(w, invalid("no template"))
			return
		}
		reg, ok := s.templates[tp.Name+":"+tp.Language.Code]
		if !ok {
			fail(w, graphError{status: 404, code: 132001, message: "(#132001) Template name does not exist in the translation"})
			return
		}
		if reg.status() == "PAUSED" || reg.status() == "DISABLED" {
			fail(w, graphError{status: 400, code: 132015, message: "(#132015) Template is paused", details: "Template is " + reg.status()})
			return
		}
		if reg.status() != "APPROVED" {
			fail(w, graphError{status: 400, code: 132001, message: "(#132001) Template name does not exist in the translation",
				details: "template " + tp.Name + " is not approved"})
			return
		}
		payloads := map[string]string{}
		for _, c := range tp.Components {
			switch {
			case c.Type == "body":
				for _, p := range c.Parameters {
					if p.Type != "text" || p.Text == "" || badParam.MatchString(p.Text) {
						fail(w, graphError{status: 400, code: 132018, message: "(#132018) There was an issue with the parameters in your template",
							details: "Param text cannot have new-line/tab characters or more than 4 consecutive spaces"})
						return
					}
					m.Params = append(m.Params, p.Text)
				}
			case c.Type == "button" && c.SubType == "quick_reply":
				if len(c.Parameters) != 1 || c.Parameters[0].Type != "payload" || c.Parameters[0].Payload == "" {
					fail(w, invalid("a quick_reply button needs one payload parameter"))
					return
				}
				payloads[c.Index] = c.Parameters[0].Payload
			default:
				fail(w, invalid("unknown template component"))
				return
			}
		}
		if len(m.Params) != reg.BodyParams {
			fail(w, graphError{status: 400, code: 132000, message: "(#132000) Number of parameters does not match the expected number of params",
				details: fmt.Sprintf("body: number of localizable_params (%d) does not match the expected number of params (%d)", len(m.Params), reg.BodyParams)})
			return
		}
		for i := range reg.QuickReplies {
			p, ok := payloads[fmt.Sprint(i)]
			if !ok {
				fail(w, invalid(fmt.Sprintf("quick reply %d has no payload", i)))
				return
			}
			m.Payloads = append(m.Payloads, p)
		}
		m.Template = tp.Name
	default:
		fail(w, invalid("unsupported message type "+req.Type))
		return
	}
	if req.Type != "template" {
		last, ok := s.lastIn[req.To]
		if !ok || s.now().Sub(last) > 24*time.Hour {
			fail(w, graphError{status: 400, code: 131047, message: "(#131047) Re-engagement message",
				details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number."})
			return
		}
	}
	s.messages = append(s.messages, m)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"messaging_product": "whatsapp",
		"contacts": []map[string]string{{"input": req.To, "wa_id": req.To}}, "messages": []map[string]string{{"id": m.ID}}})
}

// Sign is X-Hub-Signature-256 for body under secret.
func Sign(secret string, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Inbound is one message a person sends the bot.
type Inbound struct {
	ID      string // wamid; a new one when empty
	From    string // +E164
	Name    string
	Text    string
	Reply   *Button // an interactive reply button pressed
	Payload string  // a template quick reply pressed
	Context string  // the wamid of the bot's message it answers
}

func notification(value map[string]any) []byte {
	value["messaging_product"] = "whatsapp"
	value["metadata"] = map[string]string{"display_phone_number": "15550100000", "phone_number_id": PhoneNumberID}
	b, _ := json.Marshal(map[string]any{"object": "whatsapp_business_account", "entry": []any{map[string]any{"id": "102290129340398",
		"changes": []any{map[string]any{"field": "messages", "value": value}}}}})
	return b
}

// Body is the webhook body of in, with its id (made when empty).
func (in Inbound) Body(at time.Time) ([]byte, string) {
	id := in.ID
	if id == "" {
		id = "wamid." + newID("HBgM")
	}
	wa := strings.TrimPrefix(in.From, "+")
	msg := map[string]any{"from": wa, "id": id, "timestamp": fmt.Sprint(at.Unix())}
	if in.Context != "" {
		msg["context"] = map[string]string{"from": "15550100000", "id": in.Context}
	}
	switch {
	case in.Reply != nil:
		msg["type"] = "interactive"
		msg["interactive"] = map[string]any{"type": "button_reply", "button_reply": map[string]string{"id": in.Reply.ID, "title": in.Reply.Title}}
	case in.Payload != "":
		msg["type"] = "button"
		msg["button"] = map[string]string{"payload": in.Payload, "text": "Approve"}
	default:
		msg["type"] = "text"
		msg["text"] = map[string]string{"body": in.Text}
	}
	return notification(map[string]any{"contacts": []any{map[string]any{"profile": map[string]string{"name": in.Name}, "wa_id": wa}},
		"messages": []any{msg}}), id
}

// StatusBody is a status callback for the bot's message id to number; code and title
// describe the error of a failed one.
func StatusBody(id, number, status string, code int, title string) []byte {
	st := map[string]any{"id": id, "status": status, "timestamp": "1700000000", "recipient_id": strings.TrimPrefix(number, "+")}
	if status == "failed" {
		st["errors"] = []any{map[string]any{"code": code, "title": title, "message": title, "error_data": map[string]string{"details": title}}}
	}
	return notification(map[string]any{"statuses": []any{st}})
}

// Post sends a webhook body to url signed with secret (AppSecret for a real one) and
// returns the status the adapter answered. A message from a person opens their window.
func (s *Server) Post(ctx context.Context, url, secret string, body []byte) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", Sign(secret, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// Send delivers in to the adapter's webhook at url, signed; the sender's window opens
// (as it does at Meta when they write). It returns the answer's status and the wamid.
func (s *Server) Send(ctx context.Context, url string, in Inbound) (int, string, error) {
	s.mu.Lock()
	at := s.now()
	s.lastIn[strings.TrimPrefix(in.From, "+")] = at
	s.mu.Unlock()
	body, id := in.Body(at)
	code, err := s.Post(ctx, url, AppSecret, body)
	return code, id, err
}
