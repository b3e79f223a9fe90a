package ledgertest

import (
	"crypto/subtle"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/alertengine/alertengine/ledger"
)

// SinkServer is an auditor's checkpoint service speaking ledger.HTTPSink's protocol:
// PUT /TENANT keeps a mark unless it holds a later one (409), GET /TENANT returns it (404
// when none), both behind a bearer token. It does not check signatures: the bot does, on
// every load.
type SinkServer struct {
	URL   string
	token string
	mu    sync.Mutex
	marks map[string][]byte
	notes map[string][]byte
	puts  int
}

// NewSinkServer starts the service for the test's lifetime.
func NewSinkServer(t testing.TB, token string) *SinkServer {
	s := &SinkServer{token: token, marks: map[string][]byte{}, notes: map[string][]byte{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(srv.Close)
	s.URL = srv.URL + "/checkpoints"
	return s
}

func (s *SinkServer) serve(w http.ResponseWriter, r *http.Request) {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if s.token != "" && (!ok || subtle.ConstantTimeCompare([]byte(got), []byte(s.token)) != 1) {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	tenant, ok := strings.CutPrefix(r.URL.Path, "/checkpoints/")
	if t, isNote := strings.CutSuffix(tenant, "/note"); ok && isNote && ledger.ValidTenant(t) {
		s.serveNote(w, r, t)
		return
	}
	if !ok || !ledger.ValidTenant(tenant) {
		http.NotFound(w, r)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		b, ok := s.marks[tenant]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(b)
	case http.MethodPut:
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		var m ledger.Mark
		if err != nil || json.Unmarshal(b, &m) != nil || m.Checkpoint.Tenant != tenant {
			http.Error(w, "not a mark of this tenant", http.StatusBadRequest)
			return
		}
		if old, ok := s.marks[tenant]; ok {
			var o ledger.Mark
			_ = json.Unmarshal(old, &o)
			if o.Checkpoint.Base > m.Checkpoint.Base || o.Checkpoint.Base == m.Checkpoint.Base && o.Checkpoint.Size > m.Checkpoint.Size {
				http.Error(w, "a later mark is kept", http.StatusConflict)
				return
			}
		}
		s.marks[tenant] = b
		s.puts++
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

// Set replaces a tenant's stored mark with raw bytes (to forge or damage it in tests).
func (s *SinkServer) Set(tenant string, raw []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.marks[tenant] = raw
}

// Puts is how many marks were kept.
func (s *SinkServer) Puts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.puts
}

// serveNote keeps a tenant's published checkpoint note: PUT replaces it, GET returns it.
func (s *SinkServer) serveNote(w http.ResponseWriter, r *http.Request, tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodGet:
		b, ok := s.notes[tenant]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Write(b)
	case http.MethodPut:
		b, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			http.Error(w, "unreadable", http.StatusBadRequest)
			return
		}
		s.notes[tenant] = b
		w.WriteHeader(http.StatusNoContent)
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}
