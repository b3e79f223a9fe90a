package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
)

// ActorKind says what kind of party caused an entry.
type ActorKind string

// Actor kinds.
const (
	ActorPolicy       ActorKind = "policy"
	ActorAI           ActorKind = "ai"
	ActorEngineer     ActorKind = "engineer"
	ActorOrchestrator ActorKind = "orchestrator"
	ActorSystem       ActorKind = "system"
)

func (k ActorKind) valid() bool {
	switch k {
	case ActorPolicy, ActorAI, ActorEngineer, ActorOrchestrator, ActorSystem:
		return true
	}
	return false
}

// Actor is who caused an entry: a policy, a lens, a person (by name, through a channel),
// the orchestrator or the system.
type Actor struct {
	Kind    ActorKind `json:"kind"`
	ID      string    `json:"id"`
	Channel string    `json:"channel,omitempty"`
}

// GenesisHash is the prev_hash of a tenant's first entry.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Entry is one link of a tenant's chain.
//
// Its canonical encoding is its JSON object without "hash", fields in the order below,
// no insignificant whitespace, map keys sorted, times in RFC 3339 UTC; Hash is the
// lowercase hex SHA-256 of those bytes. The stored and exported form is the canonical
// encoding with "hash" appended as the last member.
type Entry struct {
	Tenant        string            `json:"tenant"`
	Incident      string            `json:"incident"`
	Seq           uint64            `json:"seq"`
	At            time.Time         `json:"at"`
	From          Stage             `json:"from"`
	To            Stage             `json:"to"`
	Event         Event             `json:"event"`
	Actor         Actor             `json:"actor"`
	Service       string            `json:"service,omitempty"`
	Action        string            `json:"action,omitempty"`
	Approval      string            `json:"approval,omitempty"`
	Reason        string            `json:"reason"`
	Confidence    float64           `json:"confidence"`
	PolicyVersion string            `json:"policy_version"`
	Evidence      string            `json:"evidence,omitempty"`
	Data          map[string]string `json:"data,omitempty"`
	PrevHash      string            `json:"prev_hash"`
	Hash          string            `json:"-"`
}

// body is Entry without its hash; the json tags above define the canonical order.
type body Entry

// ErrBadEntry is the cause of every decoding or validation failure of an entry.
var ErrBadEntry = errors.New("bad entry")

var (
	tenantRe   = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	incidentRe = regexp.MustCompile(`^INC-[0-9A-F]{1,16}$`)
	hashRe     = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// ValidTenant reports whether id is a well-formed tenant id.
func ValidTenant(id string) bool { return tenantRe.MatchString(id) }

// IncidentID is the short code of incident number n of a tenant, in hexadecimal: the
// ledger numbers a tenant's incidents 1, 2, 3 … in the order they open (INC-1 … INC-9,
// INC-A …), and past every code a lost chain may have used after a loss (see
// Checkpoint.Codes). Codes written by older versions (the chain's code base plus the seq of
// the entry that opened the incident) have the same form and stay valid: a code is stored
// in its entries, never recomputed.
func IncidentID(n uint64) string { return fmt.Sprintf("INC-%X", n) }

// Canonical returns the canonical encoding of e (without its hash).
func (e *Entry) Canonical() ([]byte, error) {
	b := body(*e)
	b.At = b.At.UTC()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(&b); err != nil {
		return nil, fmt.Errorf("%w: encode: %v", ErrBadEntry, err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// ComputeHash returns the hash e should carry.
func (e *Entry) ComputeHash() (string, error) {
	c, err := e.Canonical()
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// MarshalJSON encodes the stored form: the canonical encoding plus "hash" last.
func (e Entry) MarshalJSON() ([]byte, error) {
	c, err := e.Canonical()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(c)+80)
	out = append(out, c[:len(c)-1]...)
	out = append(out, `,"hash":"`...)
	out = append(out, e.Hash...)
	out = append(out, `"}`...)
	return out, nil
}

// UnmarshalJSON decodes the stored form strictly: unknown members are errors.
func (e *Entry) UnmarshalJSON(data []byte) error {
	var w struct {
		body
		Hash *string `json:"hash"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: trailing data", ErrBadEntry)
	}
	if w.Hash == nil {
		return fmt.Errorf("%w: no hash", ErrBadEntry)
	}
	*e = Entry(w.body)
	e.Hash = *w.Hash
	return nil
}

// DecodeEntry decodes and checks one stored entry: well-formed fields and a hash that
// matches its content. It does not check the chain.
func DecodeEntry(data []byte) (Entry, error) {
	var e Entry
	if err := json.Unmarshal(data, &e); err != nil {
		if errors.Is(err, ErrBadEntry) {
			return Entry{}, err
		}
		return Entry{}, fmt.Errorf("%w: %v", ErrBadEntry, err)
	}
	if err := e.Validate(); err != nil {
		return Entry{}, err
	}
	h, err := e.ComputeHash()
	if err != nil {
		return Entry{}, err
	}
	if h != e.Hash {
		return Entry{}, fmt.Errorf("%w: hash does not match content", ErrBadEntry)
	}
	return e, nil
}

// Validate checks the fields of a complete entry (chain fields included).
func (e *Entry) Validate() error {
	if err := e.validateContent(); err != nil {
		return err
	}
	switch {
	case e.Seq == 0:
		return fmt.Errorf("%w: seq must be ≥ 1", ErrBadEntry)
	case !hashRe.MatchString(e.PrevHash):
		return fmt.Errorf("%w: prev_hash is not 64 hex digits", ErrBadEntry)
	case !hashRe.MatchString(e.Hash):
		return fmt.Errorf("%w: hash is not 64 hex digits", ErrBadEntry)
	case e.Event == Loss && (e.Incident != "" || e.Actor.Kind != ActorSystem || e.From != None || e.To != None):
		return fmt.Errorf("%w: a loss marker belongs to no incident, moves no stage and is the system's", ErrBadEntry)
	case e.Event != Loss && !incidentRe.MatchString(e.Incident):
		return fmt.Errorf("%w: incident %q is not an incident code", ErrBadEntry, e.Incident)
	}
	return nil
}

// validateContent checks what the caller of an append provides.
func (e *Entry) validateContent() error {
	switch {
	case !ValidTenant(e.Tenant):
		return fmt.Errorf("%w: tenant %q is not [a-z0-9-]{1,32}", ErrBadEntry, e.Tenant)
	case !e.Event.Known():
		return fmt.Errorf("%w: unknown event %q", ErrBadEntry, e.Event)
	case !e.Actor.Kind.valid():
		return fmt.Errorf("%w: unknown actor kind %q", ErrBadEntry, e.Actor.Kind)
	case e.Actor.ID == "":
		return fmt.Errorf("%w: actor has no id", ErrBadEntry)
	case math.IsNaN(e.Confidence) || e.Confidence < 0 || e.Confidence > 1:
		return fmt.Errorf("%w: confidence %v outside 0..1", ErrBadEntry, e.Confidence)
	case e.At.IsZero():
		return fmt.Errorf("%w: no time", ErrBadEntry)
	case strings.ContainsAny(e.Service, "\x00\n"):
		return fmt.Errorf("%w: bad service name", ErrBadEntry)
	}
	if !stageKnown(e.From) || !stageKnown(e.To) {
		return fmt.Errorf("%w: unknown stage %q→%q", ErrBadEntry, e.From, e.To)
	}
	return nil
}

func stageKnown(s Stage) bool {
	for _, k := range Stages {
		if k == s {
			return true
		}
	}
	return false
}
