package approval

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"

	"github.com/redis/go-redis/v9"
)

// A link approval is for chats without buttons: a URL carrying a second random reference
// ("lk:" + 22 characters) issued to one approver for one approval. Opening it previews
// the decision with no side effect; confirming it redeems the approval as that approver,
// through the same rules as a button.

var linkRe = regexp.MustCompile(`^lk:[A-Za-z0-9_-]{22}$`)

// ValidLink reports whether s has the shape of a link reference.
func ValidLink(s string) bool { return linkRe.MatchString(s) }

type link struct {
	Ref     string `json:"ref"`
	Person  string `json:"person"`
	Channel string `json:"channel"`
	UserID  string `json:"user_id"`
}

func (s *Service) linkKey(l string) string { return s.o.KeyPrefix + "aplink:" + l }

// IssueLink creates a link reference for ref, for person (reached on channel as userID).
// It lives as long as the approval.
func (s *Service) IssueLink(ctx context.Context, ref, person, channel, userID string) (string, error) {
	if !ValidRef(ref) {
		return "", ErrUnknown
	}
	k := s.keys(ref)
	ttl, err := s.o.Redis.PTTL(ctx, k.tok).Result()
	if err != nil {
		return "", fmt.Errorf("read approval: %w", err)
	}
	if ttl <= 0 {
		return "", ErrExpired
	}
	a, err := s.random(8)
	if err != nil {
		return "", err
	}
	b, err := s.random(8)
	if err != nil {
		return "", err
	}
	id := "lk:" + a + b
	v, _ := json.Marshal(link{Ref: ref, Person: person, Channel: channel, UserID: userID})
	if err := s.o.Redis.Set(ctx, s.linkKey(id), v, ttl).Err(); err != nil {
		return "", fmt.Errorf("store link: %w", err)
	}
	return id, nil
}

// Preview is what a link shows before anything happens.
type Preview struct {
	Tenant, Incident, Action string
	HighRisk                 bool
	Person                   string
	Channel, UserID          string
	Ref                      string
	Expires                  time.Time
	// State is "pending", "used" (UsedBy says by whom) or "expired".
	State  string
	UsedBy string
}

// PreviewLink reads a link without side effects.
func (s *Service) PreviewLink(ctx context.Context, id string) (Preview, error) {
	if !ValidLink(id) {
		return Preview{}, ErrUnknown
	}
	v, err := s.o.Redis.Get(ctx, s.linkKey(id)).Result()
	if errors.Is(err, redis.Nil) {
		return Preview{}, ErrUnknown
	}
	if err != nil {
		return Preview{}, fmt.Errorf("read link: %w", err)
	}
	var l link
	if err := json.Unmarshal([]byte(v), &l); err != nil || !ValidRef(l.Ref) {
		return Preview{}, ErrUnknown
	}
	k := s.keys(l.Ref)
	vals, err := s.o.Redis.MGet(ctx, k.tok, k.meta, k.used).Result()
	if err != nil {
		return Preview{}, fmt.Errorf("read approval: %w", err)
	}
	metaS, _ := vals[1].(string)
	var m meta
	if metaS == "" || json.Unmarshal([]byte(metaS), &m) != nil {
		return Preview{}, ErrUnknown
	}
	p := Preview{Tenant: m.Tenant, Incident: m.Incident, Action: m.Action, HighRisk: m.HighRisk, Person: l.Person,
		Channel: l.Channel, UserID: l.UserID, Ref: l.Ref, Expires: m.Expires, State: "pending"}
	if used, _ := vals[2].(string); used != "" {
		p.State, p.UsedBy = "used", usedError(used).By
	} else if tok, _ := vals[0].(string); tok == "" {
		p.State = "expired"
	}
	return p, nil
}
