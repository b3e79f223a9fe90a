// Package githubtest is an httptest fake of the GitHub REST endpoints the bot uses —
// list, create and edit repository webhooks, get a commit — speaking GitHub's JSON, auth,
// pagination, error and rate-limit shapes, for the real go-github client pointed at it
// through GITHUB_API_URL.
package githubtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hook is a webhook as the fake stores it (with its real secret, which the API never
// returns).
type Hook struct {
	ID          int64
	Events      []string
	Active      bool
	URL         string
	ContentType string
	InsecureSSL string
	Secret      string
}

// Commit is what get-a-commit returns.
type Commit struct {
	SHA       string
	Additions int
	Deletions int
	Files     []string
}

// Server is the fake API.
type Server struct {
	srv   *httptest.Server
	token string

	mu        sync.Mutex
	repos     map[string]*repo // owner/name lower case
	nextID    int64
	remaining int // rate limit remaining; <0 unlimited
	reset     time.Time
	calls     map[string]int // "METHOD /route" → count
}

type repo struct {
	admin   bool
	hooks   []*Hook
	commits map[string]Commit
}

// New starts a fake that accepts token and has no repositories; it stops with t.
func New(t testing.TB, token string) *Server {
	s := &Server{token: token, repos: map[string]*repo{}, nextID: 1000, remaining: -1, calls: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /repos/{owner}/{repo}/hooks", s.auth("list hooks", s.listHooks))
	mux.HandleFunc("POST /repos/{owner}/{repo}/hooks", s.auth("create hook", s.createHook))
	mux.HandleFunc("PATCH /repos/{owner}/{repo}/hooks/{id}", s.auth("edit hook", s.editHook))
	mux.HandleFunc("GET /repos/{owner}/{repo}/commits/{sha}", s.auth("get commit", s.getCommit))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { apiError(w, http.StatusNotFound, "Not Found") })
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the API base URL, with the trailing slash go-github requires.
func (s *Server) URL() string { return s.srv.URL + "/" }

// AddRepo adds a repository; admin says whether the token may manage its webhooks (403
// otherwise).
func (s *Server) AddRepo(fullName string, admin bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repos[strings.ToLower(fullName)] = &repo{admin: admin, commits: map[string]Commit{}}
}

// AddCommit makes a commit known to get-a-commit.
func (s *Server) AddCommit(fullName string, c Commit) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.repos[strings.ToLower(fullName)]; r != nil {
		r.commits[strings.ToLower(c.SHA)] = c
	}
}

// SetRateLimit makes the next calls see remaining calls left until reset; once none are
// left, calls answer 403 with GitHub's rate-limit headers. Negative: unlimited.
func (s *Server) SetRateLimit(remaining int, reset time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.remaining, s.reset = remaining, reset
}

// Hooks returns the repository's webhooks.
func (s *Server) Hooks(fullName string) []Hook {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(fullName)]
	if r == nil {
		return nil
	}
	out := make([]Hook, len(r.hooks))
	for i, h := range r.hooks {
		out[i] = *h
		out[i].Events = slices.Clone(h.Events)
	}
	return out
}

// AddHook installs a webhook as if someone had made it by hand.
func (s *Server) AddHook(fullName string, h Hook) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.repos[strings.ToLower(fullName)]
	s.nextID++
	h.ID = s.nextID
	r.hooks = append(r.hooks, &h)
	return h.ID
}

// Calls returns how often each operation ("list hooks", "create hook", "edit hook", "get
// commit") was called.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[op]
}

func (s *Server) auth(op string, h func(w http.ResponseWriter, r *http.Request, rp *repo)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.calls[op]++
		got := r.Header.Get("Authorization")
		if got != "Bearer "+s.token && got != "token "+s.token {
			apiError(w, http.StatusUnauthorized, "Bad credentials")
			return
		}
		if s.remaining >= 0 {
			w.Header().Set("X-RateLimit-Limit", "5000")
			w.Header().Set("X-RateLimit-Reset", strconv.FormatInt(s.reset.Unix(), 10))
			w.Header().Set("X-RateLimit-Resource", "core")
			if s.remaining == 0 {
				w.Header().Set("X-RateLimit-Remaining", "0")
				w.Header().Set("X-RateLimit-Used", "5000")
				apiError(w, http.StatusForbidden, "API rate limit exceeded for user ID 1.")
				return
			}
			s.remaining--
			w.Header().Set("X-RateLimit-Remaining", strconv.Itoa(s.remaining))
		}
		rp := s.repos[strings.ToLower(r.PathValue("owner")+"/"+r.PathValue("repo"))]
		if rp == nil {
			apiError(w, http.StatusNotFound, "Not Found")
			return
		}
		if !rp.admin && op != "get commit" {
			apiError(w, http.StatusForbidden, "Resource not accessible by personal access token")
			return
		}
		h(w, r, rp)
	}
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg, "documentation_url": "https://docs.github.com/rest"})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) hookJSON(r *http.Request, h *Hook) map[string]any {
	cfg := map[string]any{"url": h.URL, "content_type": h.ContentType, "insecure_ssl": h.InsecureSSL}
	if h.Secret != "" {
		cfg["secret"] = "********" // GitHub never returns a secret
	}
	base := fmt.Sprintf("%s/repos/%s/%s/hooks/%d", s.srv.URL, r.PathValue("owner"), r.PathValue("repo"), h.ID)
	return map[string]any{"type": "Repository", "id": h.ID, "name": "web", "active": h.Active, "events": h.Events, "config": cfg,
		"updated_at": "2026-12-04T09:00:00Z", "created_at": "2026-12-04T09:00:00Z", "url": base, "test_url": base + "/test",
		"ping_url": base + "/pings", "deliveries_url": base + "/deliveries", "last_response": map[string]any{"code": nil, "status": "unused", "message": nil}}
}

func (s *Server) listHooks(w http.ResponseWriter, r *http.Request, rp *repo) {
	per, _ := strconv.Atoi(r.URL.Query().Get("per_page"))
	if per <= 0 || per > 100 {
		per = 30
	}
	page, _ := strconv.Atoi(r.URL.Query().Get("page"))
	if page < 1 {
		page = 1
	}
	from := min((page-1)*per, len(rp.hooks))
	to := min(from+per, len(rp.hooks))
	if to < len(rp.hooks) {
		next := *r.URL
		q := next.Query()
		q.Set("page", strconv.Itoa(page+1))
		q.Set("per_page", strconv.Itoa(per))
		next.RawQuery = q.Encode()
		w.Header().Set("Link", fmt.Sprintf(`<%s%s>; rel="next"`, s.srv.URL, next.RequestURI()))
	}
	out := []map[string]any{}
	for _, h := range rp.hooks[from:to] {
		out = append(out, s.hookJSON(r, h))
	}
	writeJSON(w, http.StatusOK, out)
}

type hookBody struct {
	Name   string   `json:"name"`
	Events []string `json:"events"`
	Active *bool    `json:"active"`
	Config *struct {
		URL         string `json:"url"`
		ContentType string `json:"content_type"`
		InsecureSSL string `json:"insecure_ssl"`
		Secret      string `json:"secret"`
	} `json:"config"`
}

func (s *Server) createHook(w http.ResponseWriter, r *http.Request, rp *repo) {
	var b hookBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil || b.Config == nil || b.Config.URL == "" {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": []map[string]string{{"resource": "Hook", "code": "custom", "message": "url is required"}}})
		return
	}
	for _, h := range rp.hooks {
		if h.URL == b.Config.URL {
			writeJSON(w, http.StatusUnprocessableEntity, map[string]any{"message": "Validation Failed", "errors": []map[string]string{{"resource": "Hook", "code": "custom", "message": "Hook already exists on this repository"}}})
			return
		}
	}
	events := b.Events
	if len(events) == 0 {
		events = []string{"push"}
	}
	s.nextID++
	h := &Hook{ID: s.nextID, Events: events, Active: b.Active == nil || *b.Active, URL: b.Config.URL,
		ContentType: orDefault(b.Config.ContentType, "form"), InsecureSSL: orDefault(b.Config.InsecureSSL, "0"), Secret: b.Config.Secret}
	rp.hooks = append(rp.hooks, h)
	writeJSON(w, http.StatusCreated, s.hookJSON(r, h))
}

func (s *Server) editHook(w http.ResponseWriter, r *http.Request, rp *repo) {
	id, _ := strconv.ParseInt(r.PathValue("id"), 10, 64)
	var h *Hook
	for _, x := range rp.hooks {
		if x.ID == id {
			h = x
		}
	}
	if h == nil {
		apiError(w, http.StatusNotFound, "Not Found")
		return
	}
	var b hookBody
	if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
		apiError(w, http.StatusBadRequest, "Problems parsing JSON")
		return
	}
	if b.Events != nil {
		h.Events = b.Events
	}
	if b.Active != nil {
		h.Active = *b.Active
	}
	if c := b.Config; c != nil {
		h.URL, h.ContentType, h.InsecureSSL = orDefault(c.URL, h.URL), orDefault(c.ContentType, h.ContentType), orDefault(c.InsecureSSL, h.InsecureSSL)
		if c.Secret != "" {
			h.Secret = c.Secret
		}
	}
	writeJSON(w, http.StatusOK, s.hookJSON(r, h))
}

func (s *Server) getCommit(w http.ResponseWriter, r *http.Request, rp *repo) {
	c, ok := rp.commits[strings.ToLower(r.PathValue("sha"))]
	if !ok {
		writeJSON(w, http.StatusUnprocessableEntity, map[string]string{"message": "No commit found for SHA: " + r.PathValue("sha"), "documentation_url": "https://docs.github.com/rest/commits/commits#get-a-commit"})
		return
	}
	files := []map[string]any{}
	for _, f := range c.Files {
		files = append(files, map[string]any{"filename": f, "status": "modified", "additions": 1, "deletions": 0, "changes": 1})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"sha": c.SHA, "node_id": "C_kwDO" + c.SHA[:8], "url": s.srv.URL + "/repos/" + r.PathValue("owner") + "/" + r.PathValue("repo") + "/commits/" + c.SHA,
		"commit": map[string]any{"message": "", "author": map[string]any{"name": "", "email": "", "date": "2026-12-04T09:00:00Z"}},
		"stats":  map[string]int{"additions": c.Additions, "deletions": c.Deletions, "total": c.Additions + c.Deletions},
		"files":  files,
	})
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}
