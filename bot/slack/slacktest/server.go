// Package slacktest is a fake Slack for tests: the Web API methods the adapter uses
// (auth.test, chat.postMessage, chat.update, chat.postEphemeral, the external file
// upload, apps.connections.open), spoken over HTTP as Slack speaks them and enforcing
// Slack's documented limits and errors; the Socket Mode websocket with its hello,
// envelopes and acknowledgements; and the signed requests Slack sends to an app's
// Request URLs (Events API, Interactivity, slash commands), forged and stale ones too.
//
// It records what was posted per channel and thread, so a test reads what the people in
// a channel see.
//
// Like Slack, a thread_ts that names no message in the channel is ignored: the message
// is posted into the channel and its answer carries no thread_ts. A thread_ts that names
// a reply puts the message into that reply's thread.
package slacktest

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// Identities of the fake workspace.
const (
	BotToken      = "xoxb-1111-2222-fake"
	AppToken      = "xapp-1-A111-fake"
	SigningSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	BotUser       = "UBOT000001"
	BotID         = "B00000001"
	TeamID        = "T00000001"
	AppID         = "A00000001"
)

// Limits Slack documents for messages and Block Kit.
const (
	MaxBlocks      = 50
	MaxSectionText = 3000
	MaxButtonText  = 75
	MaxActionValue = 2000
	MaxActionElems = 25
	MaxMessageText = 40000
	MaxBlockID     = 255
)

// Message is a message as the fake holds it.
type Message struct {
	Channel  string
	TS       string
	ThreadTS string // the root's ts for a reply; "" for a message in the channel
	User     string // the author: BotUser for the bot
	Text     string // the notification text, as sent (escaped)
	Blocks   []Block
	File     *File
	Edits    int
}

// File is an uploaded file shared into a channel.
type File struct {
	ID, Name, Title, Alt string
	Data                 []byte
}

// Ephemeral is a message only one person sees.
type Ephemeral struct {
	Channel, User, ThreadTS, Text string
}

// Server is the fake Slack.
type Server struct {
	// URL is the Web API base ("http://127.0.0.1:port/api/"): set SLACK_API_URL to it.
	URL string
	srv *httptest.Server

	mu         sync.Mutex
	seq        int
	channels   map[string]*chanState
	users      map[string]string // id → name
	revoked    bool
	limits     map[string]*limit
	calls      map[string]int
	files      map[string]*File
	uploaded   map[string]bool
	ephemerals []Ephemeral
	events     int

	sock sockets
}

type chanState struct {
	member   bool
	messages []*Message
}

type limit struct {
	times      int
	retryAfter int
}

// New starts a fake with one public channel the bot is in (CGENERAL01) and two people
// (UALICE0001, UBOB000001); it stops when the test ends.
func New(t testing.TB) *Server {
	s := &Server{
		channels: map[string]*chanState{},
		users:    map[string]string{BotUser: "alertengine"},
		limits:   map[string]*limit{},
		calls:    map[string]int{},
		files:    map[string]*File{},
		uploaded: map[string]bool{},
	}
	s.sock.init()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/{method}", s.serveMethod)
	mux.HandleFunc("POST /upload/{id}", s.serveUpload)
	mux.HandleFunc("GET /socket", s.serveSocket)
	s.srv = httptest.NewServer(mux)
	s.URL = s.srv.URL + "/api/"
	s.AddChannel("CGENERAL01", true)
	s.AddUser("UALICE0001", "alice")
	s.AddUser("UBOB000001", "bob")
	t.Cleanup(s.Close)
	return s
}

// Close stops the fake.
func (s *Server) Close() {
	s.sock.closeAll()
	s.srv.Close()
}

// AddChannel adds a channel; member says whether the bot is in it.
func (s *Server) AddChannel(id string, member bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.channels[id]; ok {
		c.member = member
		return
	}
	s.channels[id] = &chanState{member: member}
}

// AddUser adds a person to the workspace.
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.users[id] = name
}

// RevokeToken makes every later call with the bot token fail with token_revoked.
func (s *Server) RevokeToken() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revoked = true
}

// RateLimit makes the next times calls of method answer HTTP 429 with Retry-After
// (seconds), as Slack does when a method's tier is exceeded.
func (s *Server) RateLimit(method string, times, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits[method] = &limit{times: times, retryAfter: retryAfter}
}

// Calls is how many times method was called (rate-limited calls included).
func (s *Server) Calls(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[method]
}

// Messages returns the channel's messages and their thread replies, oldest first.
func (s *Server) Messages(channel string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.channels[channel]
	if c == nil {
		return nil
	}
	out := make([]Message, len(c.messages))
	for i, m := range c.messages {
		out[i] = *m
	}
	return out
}

// Replies returns the replies in the thread of root, oldest first.
func (s *Server) Replies(channel, root string) []Message {
	var out []Message
	for _, m := range s.Messages(channel) {
		if m.ThreadTS == root {
			out = append(out, m)
		}
	}
	return out
}

// Message returns one message.
func (s *Server) Message(channel, ts string) (Message, bool) {
	for _, m := range s.Messages(channel) {
		if m.TS == ts {
			return m, true
		}
	}
	return Message{}, false
}

// Texts returns what people see of each message of the channel (threads included),
// oldest first: the blocks' text with Slack's escapes undone, and the button labels.
func (s *Server) Texts(channel string) []string {
	var out []string
	for _, m := range s.Messages(channel) {
		out = append(out, m.Visible())
	}
	return out
}

// Visible is the message as people see it.
func (m Message) Visible() string {
	var parts []string
	for _, b := range m.Blocks {
		parts = append(parts, b.visible()...)
	}
	if len(m.Blocks) == 0 && m.Text != "" {
		parts = append(parts, unescape(m.Text))
	}
	if m.File != nil {
		parts = append(parts, fmt.Sprintf("[image %s: %s]", m.File.Title, m.File.Alt))
	}
	return strings.Join(parts, "\n")
}

// Buttons returns the message's buttons.
func (m Message) Buttons() []Element {
	var out []Element
	for _, b := range m.Blocks {
		out = append(out, b.Elements...)
	}
	return out
}

// Ephemerals returns the ephemeral messages shown to user in channel.
func (s *Server) Ephemerals(channel, user string) []Ephemeral {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Ephemeral
	for _, e := range s.ephemerals {
		if e.Channel == channel && e.User == user {
			out = append(out, e)
		}
	}
	return out
}

// nextTS is a new message timestamp, increasing.
func (s *Server) nextTS() string {
	s.seq++
	n := s.seq * 100
	return fmt.Sprintf("%d.%06d", 1700000000+n/1000000, n%1000000)
}

// apiError is a Web API error answer.
type apiError struct {
	code     string
	messages []string
}

func fail(code string, messages ...string) *apiError {
	return &apiError{code: code, messages: messages}
}

// params reads a Web API request's arguments, form-encoded or JSON, and its token (the
// token argument or an Authorization bearer).
func params(r *http.Request) (url.Values, string, error) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 8<<20))
	if err != nil {
		return nil, "", err
	}
	v := url.Values{}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		if len(strings.TrimSpace(string(body))) > 0 {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(body, &m); err != nil {
				return nil, "", err
			}
			for k, raw := range m {
				var str string
				if json.Unmarshal(raw, &str) == nil {
					v.Set(k, str)
				} else {
					v.Set(k, string(raw))
				}
			}
		}
	default:
		if v, err = url.ParseQuery(string(body)); err != nil {
			return nil, "", err
		}
	}
	token := v.Get("token")
	if h := r.Header.Get("Authorization"); strings.HasPrefix(h, "Bearer ") {
		token = strings.TrimPrefix(h, "Bearer ")
	}
	return v, token, nil
}

func (s *Server) serveMethod(w http.ResponseWriter, r *http.Request) {
	method := r.PathValue("method")
	s.mu.Lock()
	s.calls[method]++
	if l := s.limits[method]; l != nil && l.times > 0 {
		l.times--
		s.mu.Unlock()
		w.Header().Set("Retry-After", strconv.Itoa(l.retryAfter))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"ok":false,"error":"ratelimited"}`)
		return
	}
	s.mu.Unlock()
	v, token, err := params(r)
	if err != nil {
		reply(w, nil, fail("invalid_form_data"))
		return
	}
	handlers := map[string]func(url.Values) (map[string]any, *apiError){
		"auth.test":                    s.authTest,
		"chat.postMessage":             s.postMessage,
		"chat.update":                  s.update,
		"chat.postEphemeral":           s.postEphemeral,
		"files.getUploadURLExternal":   s.getUploadURL,
		"files.completeUploadExternal": s.completeUpload,
	}
	if method == "apps.connections.open" {
		if token == "" {
			reply(w, nil, fail("not_authed"))
			return
		}
		if token != AppToken {
			reply(w, nil, fail("invalid_auth"))
			return
		}
		reply(w, map[string]any{"url": strings.Replace(s.srv.URL, "http", "ws", 1) + "/socket"}, nil)
		return
	}
	fn, ok := handlers[method]
	if !ok {
		reply(w, nil, fail("unknown_method"))
		return
	}
	s.mu.Lock()
	revoked := s.revoked
	s.mu.Unlock()
	switch {
	case token == "":
		reply(w, nil, fail("not_authed"))
		return
	case token != BotToken:
		reply(w, nil, fail("invalid_auth"))
		return
	case revoked:
		reply(w, nil, fail("token_revoked"))
		return
	}
	out, e := fn(v)
	reply(w, out, e)
}

func reply(w http.ResponseWriter, out map[string]any, e *apiError) {
	if out == nil {
		out = map[string]any{}
	}
	out["ok"] = e == nil
	if e != nil {
		out["error"] = e.code
		if len(e.messages) > 0 {
			out["response_metadata"] = map[string]any{"messages": e.messages}
		}
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(out)
}

func (s *Server) authTest(url.Values) (map[string]any, *apiError) {
	return map[string]any{"url": "https://fake.slack.test/", "team": "Fake", "user": "alertengine",
		"team_id": TeamID, "user_id": BotUser, "bot_id": BotID}, nil
}

// target resolves a channel argument for writing: a channel the bot is in, or a user id
// (the bot's direct message channel with that person, "D" + the id's rest). Called with
// s.mu held.
func (s *Server) target(id string) (string, *chanState, *apiError) {
	if id == "" {
		return "", nil, fail("channel_not_found")
	}
	if strings.HasPrefix(id, "U") || strings.HasPrefix(id, "W") {
		if _, ok := s.users[id]; !ok {
			return "", nil, fail("channel_not_found")
		}
		dm := "D" + id[1:]
		c := s.channels[dm]
		if c == nil {
			c = &chanState{member: true}
			s.channels[dm] = c
		}
		return dm, c, nil
	}
	c := s.channels[id]
	if c == nil {
		return "", nil, fail("channel_not_found")
	}
	if !c.member {
		return "", nil, fail("not_in_channel")
	}
	return id, c, nil
}

// content checks a message's text and blocks as Slack does.
func content(v url.Values) (string, []Block, *apiError) {
	text := v.Get("text")
	var blocks []Block
	if raw := v.Get("blocks"); raw != "" {
		var e *apiError
		if blocks, e = parseBlocks(raw); e != nil {
			return "", nil, e
		}
	}
	if text == "" && len(blocks) == 0 {
		return "", nil, fail("no_text")
	}
	if utf8.RuneCountInString(text) > MaxMessageText {
		return "", nil, fail("msg_too_long")
	}
	return text, blocks, nil
}

// thread resolves thread_ts in channel c: the root of the thread the message it names
// is in, or "" when it names none (Slack then posts into the channel). Called with s.mu
// held.
func thread(c *chanState, ts string) string {
	if ts == "" {
		return ""
	}
	for _, m := range c.messages {
		if m.TS == ts {
			if m.ThreadTS != "" {
				return m.ThreadTS
			}
			return m.TS
		}
	}
	return ""
}

func (s *Server) postMessage(v url.Values) (map[string]any, *apiError) {
	text, blocks, e := content(v)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, c, e := s.target(v.Get("channel"))
	if e != nil {
		return nil, e
	}
	m := &Message{Channel: id, TS: s.nextTS(), ThreadTS: thread(c, v.Get("thread_ts")), User: BotUser, Text: text, Blocks: blocks}
	c.messages = append(c.messages, m)
	msg := map[string]any{"type": "message", "user": BotUser, "bot_id": BotID, "text": text, "ts": m.TS}
	if m.ThreadTS != "" {
		msg["thread_ts"] = m.ThreadTS
	}
	return map[string]any{"channel": id, "ts": m.TS, "message": msg}, nil
}

func (s *Server) update(v url.Values) (map[string]any, *apiError) {
	text, blocks, e := content(v)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, c, e := s.target(v.Get("channel"))
	if e != nil {
		return nil, e
	}
	for _, m := range c.messages {
		if m.TS != v.Get("ts") {
			continue
		}
		if m.User != BotUser {
			return nil, fail("cant_update_message")
		}
		m.Text, m.Blocks = text, blocks
		m.Edits++
		return map[string]any{"channel": id, "ts": m.TS, "text": text}, nil
	}
	return nil, fail("message_not_found")
}

func (s *Server) postEphemeral(v url.Values) (map[string]any, *apiError) {
	text, _, e := content(v)
	if e != nil {
		return nil, e
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id, _, e := s.target(v.Get("channel"))
	if e != nil {
		return nil, e
	}
	user := v.Get("user")
	if _, ok := s.users[user]; !ok {
		return nil, fail("user_not_in_channel")
	}
	s.ephemerals = append(s.ephemerals, Ephemeral{Channel: id, User: user, ThreadTS: v.Get("thread_ts"), Text: text})
	return map[string]any{"message_ts": s.nextTS()}, nil
}

func (s *Server) getUploadURL(v url.Values) (map[string]any, *apiError) {
	n, err := strconv.Atoi(v.Get("length"))
	if v.Get("filename") == "" || err != nil || n <= 0 {
		return nil, fail("invalid_arguments")
	}
	if utf8.RuneCountInString(v.Get("alt_txt")) > 1000 {
		return nil, fail("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	id := fmt.Sprintf("F%08d", s.seq)
	s.files[id] = &File{ID: id, Name: v.Get("filename"), Alt: v.Get("alt_txt"), Data: make([]byte, 0, n)}
	return map[string]any{"upload_url": s.srv.URL + "/upload/" + id, "file_id": id}, nil
}

// serveUpload takes a file's bytes (raw, or the multipart field "file").
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var data []byte
	var err error
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); strings.HasPrefix(ct, "multipart/") {
		f, _, ferr := r.FormFile("file")
		if ferr != nil {
			http.Error(w, "no file", http.StatusBadRequest)
			return
		}
		defer f.Close()
		data, err = io.ReadAll(f)
	} else {
		data, err = io.ReadAll(r.Body)
	}
	if err != nil {
		http.Error(w, "cannot read", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f := s.files[id]
	if f == nil || cap(f.Data) != len(data) {
		http.Error(w, "unknown file or wrong length", http.StatusBadRequest)
		return
	}
	f.Data = append(f.Data, data...)
	s.uploaded[id] = true
	_, _ = fmt.Fprintf(w, "OK - %d", len(data))
}

func (s *Server) completeUpload(v url.Values) (map[string]any, *apiError) {
	var files []struct {
		ID    string `json:"id"`
		Title string `json:"title"`
	}
	if err := json.Unmarshal([]byte(v.Get("files")), &files); err != nil || len(files) == 0 {
		return nil, fail("invalid_arguments")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range files {
		if s.files[f.ID] == nil || !s.uploaded[f.ID] {
			return nil, fail("file_not_found")
		}
	}
	var out []map[string]any
	ch := v.Get("channel_id")
	if ch == "" {
		ch = v.Get("channels")
	}
	for _, f := range files {
		file := s.files[f.ID]
		file.Title = f.Title
		if ch != "" {
			id, c, e := s.target(ch)
			if e != nil {
				return nil, e
			}
			c.messages = append(c.messages, &Message{Channel: id, TS: s.nextTS(), ThreadTS: thread(c, v.Get("thread_ts")), User: BotUser, File: file})
		}
		out = append(out, map[string]any{"id": f.ID, "title": f.Title})
	}
	return map[string]any{"files": out}, nil
}

// Uploaded returns the files shared so far, by id.
func (s *Server) Uploaded() []File {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []File
	for id, f := range s.files {
		if s.uploaded[id] {
			out = append(out, *f)
		}
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.ID, b.ID) })
	return out
}

var unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

func unescape(s string) string { return unescaper.Replace(s) }
