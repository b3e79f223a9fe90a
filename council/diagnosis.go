package council

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"
)

// Diagnosis is one lens's theory of an incident.
type Diagnosis struct {
	Category   Category `json:"category"`
	Cause      string   `json:"cause"`
	Confidence float64  `json:"confidence"`
	Evidence   []string `json:"evidence"`
	// SuggestedAction is one of the tenant's actions, or NoAction.
	SuggestedAction string   `json:"suggested_action"`
	Checks          []string `json:"checks"`
}

// Bounds of a diagnosis: a reply that exceeds them is refused, not trimmed.
const (
	MaxReplyBytes = 16 << 10
	maxCause      = 400
	maxItems      = 6
	maxItemLen    = 300
)

// ErrInvalid is the cause of every refused diagnosis: malformed JSON, an unknown
// category, a confidence outside 0..1, an action outside the tenant's list.
var ErrInvalid = errors.New("invalid diagnosis")

// ParseDiagnosis decodes a lens's reply strictly (one JSON object, no unknown members,
// every member present) and validates it against the snapshot's actions.
func ParseDiagnosis(raw []byte, s Snapshot) (Diagnosis, error) {
	if len(raw) > MaxReplyBytes {
		return Diagnosis{}, fmt.Errorf("%w: reply of %d bytes", ErrInvalid, len(raw))
	}
	if !utf8.Valid(raw) {
		return Diagnosis{}, fmt.Errorf("%w: reply is not UTF-8", ErrInvalid)
	}
	var w struct {
		Category        *string   `json:"category"`
		Cause           *string   `json:"cause"`
		Confidence      *float64  `json:"confidence"`
		Evidence        *[]string `json:"evidence"`
		SuggestedAction *string   `json:"suggested_action"`
		Checks          *[]string `json:"checks"`
	}
	dec := json.NewDecoder(bytes.NewReader(bytes.TrimSpace(stripFence(raw))))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Diagnosis{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if dec.More() {
		return Diagnosis{}, fmt.Errorf("%w: trailing data after the object", ErrInvalid)
	}
	if w.Category == nil || w.Cause == nil || w.Confidence == nil || w.Evidence == nil || w.SuggestedAction == nil || w.Checks == nil {
		return Diagnosis{}, fmt.Errorf("%w: a member is missing (category, cause, confidence, evidence, suggested_action, checks)", ErrInvalid)
	}
	d := Diagnosis{Category: Category(*w.Category), Cause: *w.Cause, Confidence: *w.Confidence, Evidence: *w.Evidence,
		SuggestedAction: *w.SuggestedAction, Checks: *w.Checks}
	return d, d.Validate(s)
}

// Validate checks the diagnosis against the snapshot's actions.
func (d Diagnosis) Validate(s Snapshot) error {
	switch {
	case !d.Category.Known():
		return fmt.Errorf("%w: unknown category %q", ErrInvalid, clip(string(d.Category), 40))
	case math.IsNaN(d.Confidence) || d.Confidence < 0 || d.Confidence > 1:
		return fmt.Errorf("%w: confidence %v outside 0..1", ErrInvalid, d.Confidence)
	case strings.TrimSpace(d.Cause) == "":
		return fmt.Errorf("%w: no cause", ErrInvalid)
	case utf8.RuneCountInString(d.Cause) > maxCause:
		return fmt.Errorf("%w: cause longer than %d characters", ErrInvalid, maxCause)
	case d.SuggestedAction != NoAction && !s.hasAction(d.SuggestedAction):
		return fmt.Errorf("%w: action %q is not one of the tenant's", ErrInvalid, clip(d.SuggestedAction, 40))
	case len(d.Evidence) > maxItems || len(d.Checks) > maxItems:
		return fmt.Errorf("%w: more than %d evidence or checks", ErrInvalid, maxItems)
	}
	for _, l := range [][]string{d.Evidence, d.Checks} {
		for _, x := range l {
			if utf8.RuneCountInString(x) > maxItemLen || strings.TrimSpace(x) == "" {
				return fmt.Errorf("%w: an evidence or check item is empty or longer than %d characters", ErrInvalid, maxItemLen)
			}
		}
	}
	return nil
}

// JSON is the diagnosis's canonical encoding (what the ledger keeps).
func (d Diagnosis) JSON() string {
	if d.Evidence == nil {
		d.Evidence = []string{}
	}
	if d.Checks == nil {
		d.Checks = []string{}
	}
	b, _ := json.Marshal(d)
	return string(b)
}

// stripFence removes a Markdown code fence some models wrap JSON in.
func stripFence(b []byte) []byte {
	t := bytes.TrimSpace(b)
	if !bytes.HasPrefix(t, []byte("```")) {
		return b
	}
	t = bytes.TrimPrefix(t, []byte("```"))
	t = bytes.TrimPrefix(t, []byte("json"))
	return bytes.TrimSuffix(bytes.TrimSpace(t), []byte("```"))
}
