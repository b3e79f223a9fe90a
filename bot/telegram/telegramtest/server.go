package telegramtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// DefaultToken is the token a Server accepts unless WithToken says otherwise. The
// number before the colon is the bot's user id, as in real tokens.
const DefaultToken = "7000000001:AAFakeTokenForAlertEngineTests0000"

// DefaultBotUsername is the bot's username unless WithBotUsername says otherwise.
const DefaultBotUsername = "alertengine_bot"

// Option configures a Server.
type Option func(*config)

type config struct {
	token    string
	username string
	name     string
	now      func() time.Time
}

// WithToken sets the bot token the fake accepts; the digits before ':' become the bot's id.
func WithToken(token string) Option { return func(c *config) { c.token = token } }

// WithBotUsername sets the username getMe reports and messages are sent from.
func WithBotUsername(username string) Option { return func(c *config) { c.username = username } }

// WithBotName sets the bot's first_name (default "AlertEngine").
func WithBotName(name string) Option { return func(c *config) { c.name = name } }

// WithClock sets the clock that stamps message dates and calls (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// Server is a fake Telegram Bot API server. All its methods are safe for concurrent use;
// the helpers that act as a user fail the test (t.Fatalf) on a mistake in the test itself,
// so call them from the test's goroutine.
type Server struct {
	t     testing.TB
	srv   *httptest.Server
	token string
	bot   User
	now   func() time.Time
	http  *http.Client

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every change of state
	closed  chan struct{}
	done    bool

	calls []Call
	fails map[string]failure // by canonical method name

	chats map[int64]*chatState

	pending    []queuedUpdate // not yet confirmed by an offset
	nextUpdate int64
	allowed    []string // allowed_updates last given; nil means the default set
	pollSeq    uint64   // identifies the newest getUpdates request
	waiting    int      // getUpdates requests currently held open

	webhookURL    string
	webhookSecret string

	queries   map[string]*queryState
	nextQuery int64
	files     map[string]storedFile // by file_id
	nextFile  int
}

type failure struct {
	n          int
	retryAfter int
}

// New starts a fake Bot API server; it is closed when the test ends.
func New(t testing.TB, opts ...Option) *Server {
	t.Helper()
	cfg := config{token: DefaultToken, username: DefaultBotUsername, name: "AlertEngine", now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	id, _ := strconv.ParseInt(strings.SplitN(cfg.token, ":", 2)[0], 10, 64)
	s := &Server{
		t:          t,
		token:      cfg.token,
		bot:        User{ID: id, IsBot: true, FirstName: cfg.name, Username: cfg.username},
		now:        cfg.now,
		http:       &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()},
		changed:    make(chan struct{}),
		closed:     make(chan struct{}),
		fails:      map[string]failure{},
		chats:      map[int64]*chatState{},
		nextUpdate: 1,
		queries:    map[string]*queryState{},
		files:      map[string]storedFile{},
	}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serveHTTP))
	t.Cleanup(s.close)
	return s
}

func (s *Server) close() {
	s.mu.Lock()
	if !s.done {
		s.done = true
		close(s.closed)
	}
	s.mu.Unlock()
	s.srv.Close()
	s.http.CloseIdleConnections()
}

// URL is the base URL to give the client: bot.WithServerURL(s.URL()).
func (s *Server) URL() string { return s.srv.URL }

// Token is the token the fake accepts.
func (s *Server) Token() string { return s.token }

// Bot is the bot's own user, as getMe returns it and as messages are sent from.
func (s *Server) Bot() User { return s.bot }

// notifyLocked wakes everything waiting for a change. s.mu must be held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// apiError is a refusal as the Bot API words it.
type apiError struct {
	code        int
	description string
	retryAfter  int
}

func badRequest(format string, args ...any) *apiError {
	return &apiError{code: http.StatusBadRequest, description: "Bad Request: " + fmt.Sprintf(format, args...)}
}

// answer is what a method handler returns: a result, or a refusal.
type answer struct {
	result      any
	description string // optional description beside an ok result ("Webhook was set")
	err         *apiError
}

func fail(e *apiError) answer { return answer{err: e} }

func ok(result any) answer { return answer{result: result} }

type method struct {
	name string
	// handle runs with s.mu held.
	handle func(s *Server, p params) answer
	// poll, when set instead of handle, runs without the lock (getUpdates).
	poll func(s *Server, r *http.Request, p params) (answer, bool)
}

// methodByName looks a method up the way Telegram does: case-insensitively.
func methodByName(name string) (method, bool) {
	switch strings.ToLower(name) {
	case "getme":
		return method{name: "getMe", handle: (*Server).getMe}, true
	case "getupdates":
		return method{name: "getUpdates", poll: (*Server).getUpdates}, true
	case "setwebhook":
		return method{name: "setWebhook", handle: (*Server).setWebhook}, true
	case "deletewebhook":
		return method{name: "deleteWebhook", handle: (*Server).deleteWebhook}, true
	case "getwebhookinfo":
		return method{name: "getWebhookInfo", handle: (*Server).getWebhookInfo}, true
	case "sendmessage":
		return method{name: "sendMessage", handle: (*Server).sendMessage}, true
	case "sendphoto":
		return method{name: "sendPhoto", handle: (*Server).sendPhoto}, true
	case "editmessagetext":
		return method{name: "editMessageText", handle: (*Server).editMessageText}, true
	case "editmessagecaption":
		return method{name: "editMessageCaption", handle: (*Server).editMessageCaption}, true
	case "editmessagereplymarkup":
		return method{name: "editMessageReplyMarkup", handle: (*Server).editMessageReplyMarkup}, true
	case "deletemessage":
		return method{name: "deleteMessage", handle: (*Server).deleteMessage}, true
	case "answercallbackquery":
		return method{name: "answerCallbackQuery", handle: (*Server).answerCallbackQuery}, true
	case "createforumtopic":
		return method{name: "createForumTopic", handle: (*Server).createForumTopic}, true
	case "getchat":
		return method{name: "getChat", handle: (*Server).getChat}, true
	}
	return method{}, false
}

// canonicalMethod returns the Bot API spelling of a method name, or name itself when the
// fake does not implement it.
func canonicalMethod(name string) string {
	if m, ok := methodByName(name); ok {
		return m.name
	}
	return name
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := s.now()
	rest, found := strings.CutPrefix(r.URL.Path, "/bot")
	token, name, slash := strings.Cut(rest, "/")
	if !found || !slash || token == "" {
		writeAnswer(w, fail(&apiError{code: http.StatusNotFound, description: "Not Found"}))
		return
	}
	if token != s.token {
		s.finish(w, Call{Method: canonicalMethod(name), Time: start}, fail(&apiError{code: http.StatusUnauthorized, description: "Unauthorized"}))
		return
	}
	p, err := readParams(r)
	call := Call{Method: canonicalMethod(name), Params: p.copyValues(), Files: p.copyFiles(), Time: start}
	if err != nil {
		s.finish(w, call, fail(badRequest("%v", err)))
		return
	}
	m, known := methodByName(name)
	if !known {
		s.finish(w, call, fail(&apiError{code: http.StatusNotFound, description: "Not Found"}))
		return
	}
	if s.injectedFailure(w, call) {
		return
	}
	if m.poll != nil {
		a, answered := m.poll(s, r, p)
		if !answered {
			return // the client went away; nobody reads an answer
		}
		s.finish(w, call, a)
		return
	}
	s.mu.Lock()
	a := m.handle(s, p)
	s.recordLocked(&call, a)
	s.mu.Unlock()
	writeAnswer(w, a)
}

// injectedFailure answers 429 when FailNext asked for it.
func (s *Server) injectedFailure(w http.ResponseWriter, call Call) bool {
	s.mu.Lock()
	f := s.fails[call.Method]
	if f.n <= 0 {
		s.mu.Unlock()
		return false
	}
	f.n--
	s.fails[call.Method] = f
	a := fail(&apiError{
		code:        http.StatusTooManyRequests,
		description: fmt.Sprintf("Too Many Requests: retry after %d", f.retryAfter),
		retryAfter:  f.retryAfter,
	})
	s.recordLocked(&call, a)
	s.mu.Unlock()
	writeAnswer(w, a)
	return true
}

func (s *Server) finish(w http.ResponseWriter, call Call, a answer) {
	s.mu.Lock()
	s.recordLocked(&call, a)
	s.mu.Unlock()
	writeAnswer(w, a)
}

func (s *Server) recordLocked(call *Call, a answer) {
	if a.err != nil {
		call.ErrorCode = a.err.code
		call.Description = a.err.description
	} else {
		call.Result, _ = marshal(a.result)
	}
	s.calls = append(s.calls, *call)
	s.notifyLocked()
}

// marshal encodes like Telegram: no HTML escaping of <, > and &.
func marshal(v any) (json.RawMessage, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

type envelope struct {
	OK          bool            `json:"ok"`
	Result      json.RawMessage `json:"result,omitempty"`
	ErrorCode   int             `json:"error_code,omitempty"`
	Description string          `json:"description,omitempty"`
	Parameters  *responseParams `json:"parameters,omitempty"`
}

type responseParams struct {
	RetryAfter int `json:"retry_after,omitempty"`
}

func writeAnswer(w http.ResponseWriter, a answer) {
	env := envelope{OK: a.err == nil, Description: a.description}
	status := http.StatusOK
	if a.err != nil {
		status = a.err.code
		env.ErrorCode = a.err.code
		env.Description = a.err.description
		if a.err.retryAfter > 0 {
			env.Parameters = &responseParams{RetryAfter: a.err.retryAfter}
		}
	} else {
		res, err := marshal(a.result)
		if err != nil {
			status, env = http.StatusInternalServerError, envelope{ErrorCode: 500, Description: "Internal Server Error: " + err.Error()}
		}
		env.Result = res
	}
	body, _ := marshal(env)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// FailNext makes the next n calls of method (any case) answer 429 Too Many Requests with
// parameters.retry_after = retryAfter, as Telegram's flood control does. Those calls are
// recorded in Calls with ErrorCode 429 and change nothing: no message is delivered.
// n <= 0 cancels what is left.
func (s *Server) FailNext(method string, n int, retryAfter int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails[canonicalMethod(method)] = failure{n: n, retryAfter: retryAfter}
}

// Calls returns the calls of method (any case) in the order they were answered, or every
// call when method is "".
func (s *Server) Calls(method string) []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := canonicalMethod(method)
	var out []Call
	for _, c := range s.calls {
		if method == "" || strings.EqualFold(c.Method, want) {
			out = append(out, c)
		}
	}
	return out
}

// WaitFor returns the first call, already made or still to come, for which pred is true;
// it fails only when ctx ends first. pred runs with the server locked: keep it simple and
// do not call the Server from it.
func (s *Server) WaitFor(ctx context.Context, pred func(Call) bool) (Call, error) {
	seen := 0
	for {
		s.mu.Lock()
		for ; seen < len(s.calls); seen++ {
			if pred(s.calls[seen]) {
				c := s.calls[seen]
				s.mu.Unlock()
				return c, nil
			}
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return Call{}, fmt.Errorf("wait for a call: %w", context.Cause(ctx))
		}
	}
}

// WaitForMessage returns the first of the bot's messages in chatID, as it now stands, for
// which pred is true, waiting for sends and edits until ctx ends. pred runs with the server
// locked: do not call the Server from it.
func (s *Server) WaitForMessage(ctx context.Context, chatID int64, pred func(Message) bool) (Message, error) {
	for {
		s.mu.Lock()
		for _, m := range s.sentLocked(chatID) {
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
			return Message{}, fmt.Errorf("wait for a message in chat %d: %w", chatID, context.Cause(ctx))
		}
	}
}

// waitUntil blocks until cond (run with s.mu held) is true or ctx ends.
func (s *Server) waitUntil(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}
