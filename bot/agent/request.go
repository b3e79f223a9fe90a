package agent

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Bounds of a request.
const (
	MaxBody     = 64 << 10
	MaxSummary  = 500
	MaxDetails  = 4000
	MaxParams   = 16 << 10
	MaxIdemKey  = 128
	MinExpires  = time.Minute
	MaxExpires  = 24 * time.Hour
	DefaultWait = 0
	MaxWait     = 60 * time.Second
)

// Request is the body of POST /v1/approvals.
type Request struct {
	Action  string          `json:"action"`
	Params  json.RawMessage `json:"params,omitempty"`
	Summary string          `json:"summary"`
	Details string          `json:"details,omitempty"`
	// Risk is "low" (default) or "high" (two approvers); a configured action's own risk
	// is never lowered by the agent.
	Risk     string `json:"risk,omitempty"`
	Incident string `json:"incident,omitempty"`
	// ExpiresIn is how long the decision may be consumed after it is made ("10m").
	ExpiresIn      string `json:"expires_in,omitempty"`
	IdempotencyKey string `json:"idempotency_key"`
	// Execute asks the executor to run a configured recovery action once approved,
	// instead of the agent running it.
	Execute bool `json:"execute,omitempty"`
}

// HTTPError is a refusal with its status and a message safe to show the caller.
type HTTPError struct {
	Status int
	Msg    string
}

func (e *HTTPError) Error() string { return e.Msg }

func bad(format string, a ...any) error {
	return &HTTPError{http.StatusBadRequest, fmt.Sprintf(format, a...)}
}

var (
	actionRe = regexp.MustCompile(`^[a-z0-9][a-z0-9_.:-]{0,63}$`)
	idemRe   = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)
)

// ReadJSON reads a JSON body into v with the hostile-input checks: at most limit bytes
// (413), valid UTF-8, nesting at most MaxDepth, no unknown members, one value (400).
func ReadJSON(r *http.Request, limit int64, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		return &HTTPError{http.StatusUnsupportedMediaType, "Content-Type must be application/json"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return bad("unreadable body")
	}
	if int64(len(body)) > limit {
		return &HTTPError{http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", limit)}
	}
	if !utf8.Valid(body) {
		return bad("body is not valid UTF-8")
	}
	if d := depth(body); d > MaxDepth+1 {
		return bad("JSON nested deeper than %d", MaxDepth)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return bad("malformed JSON at byte %d", se.Offset)
		case errors.As(err, &te):
			return bad("field %q: wrong type (want %s)", clip(te.Field, 40), te.Type)
		case strings.HasPrefix(err.Error(), "json: unknown field "):
			return bad("unknown field %s", clip(strings.TrimPrefix(err.Error(), "json: unknown field "), 60))
		}
		return bad("malformed JSON")
	}
	if dec.More() {
		return bad("trailing data after the JSON value")
	}
	return nil
}

// depth is the deepest nesting of brackets outside strings.
func depth(b []byte) int {
	d, best, in, esc := 0, 0, false, false
	for _, c := range b {
		switch {
		case esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		case in:
		case c == '{' || c == '[':
			d++
			best = max(best, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return best
}

// Check validates a decoded request's fields and returns its expiry window.
func (q *Request) Check() (time.Duration, error) {
	switch {
	case !actionRe.MatchString(q.Action):
		return 0, bad("action: want [a-z0-9][a-z0-9_.:-]{0,63}")
	case !idemRe.MatchString(q.IdempotencyKey):
		return 0, bad("idempotency_key: want 1–%d of [A-Za-z0-9._:-]", MaxIdemKey)
	case strings.TrimSpace(q.Summary) == "":
		return 0, bad("summary: required")
	case utf8.RuneCountInString(q.Summary) > MaxSummary:
		return 0, bad("summary: longer than %d characters", MaxSummary)
	case utf8.RuneCountInString(q.Details) > MaxDetails:
		return 0, bad("details: longer than %d characters", MaxDetails)
	case len(q.Params) > MaxParams:
		return 0, bad("params: larger than %d bytes", MaxParams)
	case q.Risk != "" && q.Risk != "low" && q.Risk != "high":
		return 0, bad("risk: want low or high")
	case q.Incident != "" && !regexp.MustCompile(`^INC-[0-9A-F]{1,16}$`).MatchString(q.Incident):
		return 0, bad("incident: want an incident code (INC-…)")
	}
	if len(q.Params) > 0 {
		if _, err := Canonical(q.Params); err != nil {
			return 0, bad("params: %s", strings.TrimPrefix(err.Error(), ErrNotCanonical.Error()+": "))
		}
	}
	exp := 10 * time.Minute
	if q.ExpiresIn != "" {
		d, err := time.ParseDuration(q.ExpiresIn)
		if err != nil || d < MinExpires || d > MaxExpires {
			return 0, bad("expires_in: want a duration from %s to %s", MinExpires, MaxExpires)
		}
		exp = d
	}
	return exp, nil
}
