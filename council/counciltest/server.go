// Package counciltest is a fake OpenAI-compatible chat completions server
// (POST /v1/chat/completions) for tests, scripted per model: replies, delays, 429 with
// Retry-After, 5xx, malformed JSON, and servers that refuse response_format json_schema.
package counciltest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Step is one scripted answer to a request for a model.
type Step struct {
	// Reply is the assistant message's content (status 200).
	Reply string
	// Delay holds the answer back (the request's cancellation ends it early).
	Delay time.Duration
	// Status, when not 0 or 200, answers with that status and an OpenAI error body.
	Status int
	// RetryAfter is sent as the Retry-After header.
	RetryAfter string
	// Body replaces the error body (a raw string, e.g. not JSON).
	Body string
}

// Request is a request the server received.
type Request struct {
	Model string
	// Format is response_format.type ("" when absent).
	Format string
	// Schema is response_format.json_schema.schema (nil when absent).
	Schema   json.RawMessage
	Messages []Message
	// Authorization is the header as received.
	Authorization string
}

// Message is one chat message of a request.
type Message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

// Server is the fake.
type Server struct {
	srv      *httptest.Server
	mu       sync.Mutex
	scripts  map[string][]Step
	refuse   map[string]bool
	requests []Request
}

// New starts a fake closed at the end of the test. A model without a script answers 404
// model not found, as OpenAI does.
func New(t testing.TB) *Server {
	s := &Server{scripts: map[string][]Step{}, refuse: map[string]bool{}}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// URL is the API base to give a client (LLM_BASE_URL): the server's URL plus /v1.
func (s *Server) URL() string { return s.srv.URL + "/v1" }

// Script queues steps for model; each request takes the next, and the last repeats.
func (s *Server) Script(model string, steps ...Step) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.scripts[model] = append(s.scripts[model], steps...)
}

// RefuseJSONSchema makes requests for model with response_format json_schema fail with
// 400, as servers without structured outputs do.
func (s *Server) RefuseJSONSchema(model string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refuse[model] = true
}

// Requests returns the requests received for model ("" for all), in order.
func (s *Server) Requests(model string) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.requests {
		if model == "" || r.Model == model {
			out = append(out, r)
		}
	}
	return out
}

// Diagnosis returns a reply body of the diagnosis JSON shape.
func Diagnosis(category, cause string, confidence float64, action string, evidence ...string) string {
	if evidence == nil {
		evidence = []string{}
	}
	b, _ := json.Marshal(map[string]any{"category": category, "cause": cause, "confidence": confidence, "evidence": evidence,
		"suggested_action": action, "checks": []string{"check " + category}})
	return string(b)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/chat/completions" {
		writeError(w, http.StatusNotFound, "invalid_request_error", "unknown path "+r.URL.Path)
		return
	}
	var body struct {
		Model          string    `json:"model"`
		Messages       []Message `json:"messages"`
		ResponseFormat *struct {
			Type       string `json:"type"`
			JSONSchema *struct {
				Schema json.RawMessage `json:"schema"`
			} `json:"json_schema"`
		} `json:"response_format"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 4<<20)).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "could not parse the JSON body of your request")
		return
	}
	req := Request{Model: body.Model, Messages: body.Messages, Authorization: r.Header.Get("Authorization")}
	if body.ResponseFormat != nil {
		req.Format = body.ResponseFormat.Type
		if body.ResponseFormat.JSONSchema != nil {
			req.Schema = body.ResponseFormat.JSONSchema.Schema
		}
	}
	s.mu.Lock()
	s.requests = append(s.requests, req)
	refuse := s.refuse[body.Model]
	steps, ok := s.scripts[body.Model]
	var st Step
	if ok && len(steps) > 0 {
		st = steps[0]
		if len(steps) > 1 {
			s.scripts[body.Model] = steps[1:]
		}
	}
	s.mu.Unlock()
	if refuse && req.Format == "json_schema" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "response_format json_schema is not supported by this server")
		return
	}
	if !ok {
		writeError(w, http.StatusNotFound, "invalid_request_error", fmt.Sprintf("model %q not found", body.Model))
		return
	}
	if st.Delay > 0 {
		t := time.NewTimer(st.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if st.RetryAfter != "" {
		w.Header().Set("Retry-After", st.RetryAfter)
	}
	if st.Status != 0 && st.Status != http.StatusOK {
		if st.Body != "" {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(st.Status)
			io.WriteString(w, st.Body)
			return
		}
		writeError(w, st.Status, "server_error", http.StatusText(st.Status))
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"id": "chatcmpl-fake", "object": "chat.completion", "created": time.Now().Unix(), "model": body.Model,
		"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": st.Reply}, "finish_reason": "stop"}},
		"usage":   map[string]int{"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
	})
}

func writeError(w http.ResponseWriter, code int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": typ, "param": nil, "code": nil}})
}
