package pagerduty

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/alertengine/alertengine/ledger"
)

// Actions of an event.
const (
	Trigger     = "trigger"
	Acknowledge = "acknowledge"
	Resolve     = "resolve"
)

// Limits of an event, as PagerDuty documents them.
const (
	// MaxDedupKey is the longest dedup_key, in characters.
	MaxDedupKey = 255
	// MaxSummary is the longest payload.summary, in characters.
	MaxSummary = 1024
	// MaxBody is the largest request body: PagerDuty's 512 KB.
	MaxBody = 512 << 10
	// maxContexts is how many links and how many images are kept.
	maxContexts = 10
)

// Severities of payload.severity.
var severities = map[string]bool{"critical": true, "error": true, "warning": true, "info": true}

// ErrInvalid wraps every reason an event is refused; InvalidError lists them.
var ErrInvalid = errors.New("invalid event")

// InvalidError is an event refused for one or more reasons, answered with 400 and the
// reasons in "errors".
type InvalidError struct{ Problems []string }

func (e *InvalidError) Error() string {
	return ErrInvalid.Error() + ": " + strings.Join(e.Problems, "; ")
}

// Unwrap makes errors.Is(err, ErrInvalid) true.
func (e *InvalidError) Unwrap() error { return ErrInvalid }

// Event is an Events API v2 alert event.
type Event struct {
	RoutingKey  string   `json:"routing_key"`
	EventAction string   `json:"event_action"`
	DedupKey    string   `json:"dedup_key"`
	Payload     *Payload `json:"payload"`
	Links       []Link   `json:"links"`
	Images      []Image  `json:"images"`
	Client      string   `json:"client"`
	ClientURL   string   `json:"client_url"`
}

// Payload is a trigger's description of the problem.
type Payload struct {
	Summary       string          `json:"summary"`
	Source        string          `json:"source"`
	Severity      string          `json:"severity"`
	Timestamp     string          `json:"timestamp"`
	Component     string          `json:"component"`
	Group         string          `json:"group"`
	Class         string          `json:"class"`
	CustomDetails json.RawMessage `json:"custom_details"`
}

// Link is a link to attach (href required).
type Link struct {
	Href string `json:"href"`
	Text string `json:"text"`
}

// Image is an image to attach (src required).
type Image struct {
	Src  string `json:"src"`
	Href string `json:"href"`
	Alt  string `json:"alt"`
}

// Parse decodes and checks an event: one JSON object (members PagerDuty adds later are
// ignored), event_action trigger, acknowledge or resolve, a dedup_key of at most
// MaxDedupKey characters (required to acknowledge or resolve), and for a trigger a payload
// with summary (at most MaxSummary characters), source and severity (critical, error,
// warning or info); links need an href and images a src. The routing key is not checked
// here. Every problem is listed in an *InvalidError; what it quotes of the sender is
// clipped.
func Parse(body []byte) (Event, error) {
	var ev Event
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&ev); err != nil {
		return Event{}, &InvalidError{Problems: []string{"the body is not a JSON event object: " + ledger.Clip(err.Error(), 200)}}
	}
	if _, err := dec.Token(); err != io.EOF {
		return Event{}, &InvalidError{Problems: []string{"trailing data after the JSON object"}}
	}
	var problems []string
	bad := func(format string, args ...any) {
		problems = append(problems, ledger.Clip(fmt.Sprintf(format, args...), 300))
	}
	text := func(name, s string, required bool, maxRunes int) {
		switch {
		case required && strings.TrimSpace(s) == "":
			bad("'%s' is missing or blank", name)
		case !utf8.ValidString(s):
			bad("'%s' is not valid UTF-8", name)
		case maxRunes > 0 && utf8.RuneCountInString(s) > maxRunes:
			bad("'%s' is longer than %d characters", name, maxRunes)
		}
	}
	switch ev.EventAction {
	case Trigger, Acknowledge, Resolve:
	case "":
		bad("'event_action' is missing")
	default:
		bad("'event_action' %q is not trigger, acknowledge or resolve", ledger.Clip(ev.EventAction, 40))
	}
	text("dedup_key", ev.DedupKey, ev.EventAction == Acknowledge || ev.EventAction == Resolve, MaxDedupKey)
	if ev.EventAction == Trigger {
		if ev.Payload == nil {
			bad("'payload' is missing")
		} else {
			p := ev.Payload
			text("payload.summary", p.Summary, true, MaxSummary)
			text("payload.source", p.Source, true, 0)
			if !severities[p.Severity] {
				bad("'payload.severity' %q is not critical, error, warning or info", ledger.Clip(p.Severity, 40))
			}
			for name, s := range map[string]string{"payload.component": p.Component, "payload.group": p.Group, "payload.class": p.Class,
				"payload.timestamp": p.Timestamp} {
				text(name, s, false, 0)
			}
			if len(p.CustomDetails) > 0 && !json.Valid(p.CustomDetails) {
				bad("'payload.custom_details' is not JSON")
			}
		}
	}
	for i, l := range ev.Links {
		text(fmt.Sprintf("links[%d].href", i), l.Href, true, 0)
	}
	for i, im := range ev.Images {
		text(fmt.Sprintf("images[%d].src", i), im.Src, true, 0)
	}
	if len(problems) > 0 {
		return Event{}, &InvalidError{Problems: problems}
	}
	return ev, nil
}
