package conversation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// store keeps what the conversation must remember across restarts and replicas: where
// each incident's thread is in each chat, which messages belong to which incident,
// enrolled identities, silences and deadlines. Everything about the incident itself is in
// the ledger.
type store struct {
	rc     redis.UniversalClient
	prefix string
}

// routeTTL bounds how long a message or topic is remembered as part of an incident.
const routeTTL = 90 * 24 * time.Hour

// Placement is an incident's presence in one chat.
type Placement struct {
	Thread Thread     `json:"thread"`
	Card   MessageRef `json:"card"`
	// Refs are the approval references the card's buttons carry.
	Refs []string `json:"refs,omitempty"`
}

func (s *store) incKey(tenant, incident string) string {
	return s.prefix + "conv:{" + tenant + "}:inc:" + incident
}

func chatField(c Chat) string { return string(c.Channel) + "/" + c.ID }

func (s *store) savePlacement(ctx context.Context, tenant, incident string, p Placement) error {
	b, _ := json.Marshal(p)
	if err := s.rc.HSet(ctx, s.incKey(tenant, incident), chatField(p.Thread.Chat), b).Err(); err != nil {
		return fmt.Errorf("save thread: %w", err)
	}
	s.rc.Expire(ctx, s.incKey(tenant, incident), routeTTL)
	return nil
}

func (s *store) placements(ctx context.Context, tenant, incident string) ([]Placement, error) {
	m, err := s.rc.HGetAll(ctx, s.incKey(tenant, incident)).Result()
	if err != nil {
		return nil, fmt.Errorf("read threads: %w", err)
	}
	out := make([]Placement, 0, len(m))
	for _, v := range m {
		var p Placement
		if json.Unmarshal([]byte(v), &p) == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// setClosing remembers the line an incident's cards were last closed with ("✅ Approved
// by …"), so that editing them again as the incident settles keeps it.
func (s *store) setClosing(ctx context.Context, tenant, incident, line string) error {
	if err := s.rc.Set(ctx, s.incKey(tenant, incident)+":closed", line, routeTTL).Err(); err != nil {
		return fmt.Errorf("save closing line: %w", err)
	}
	return nil
}

// closing is the line setClosing remembered, "" if none.
func (s *store) closing(ctx context.Context, tenant, incident string) (string, error) {
	line, err := s.rc.Get(ctx, s.incKey(tenant, incident)+":closed").Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read closing line: %w", err)
	}
	return line, nil
}

// route remembers that a message (or a forum topic) belongs to an incident.
func (s *store) routeMessage(ctx context.Context, ref MessageRef, tenant, incident string) {
	s.rc.Set(ctx, s.prefix+"conv:route:"+chatField(ref.Chat)+":m:"+ref.ID, tenant+"/"+incident, routeTTL)
}

func (s *store) routeTopic(ctx context.Context, c Chat, topic, tenant, incident string) {
	s.rc.Set(ctx, s.prefix+"conv:route:"+chatField(c)+":t:"+topic, tenant+"/"+incident, routeTTL)
}

// lookupRoute finds the incident an inbound message belongs to: its forum topic, else
// the message it replies to.
func (s *store) lookupRoute(ctx context.Context, in Inbound) (tenant, incident string, ok bool) {
	var keys []string
	if in.Topic != "" {
		keys = append(keys, s.prefix+"conv:route:"+chatField(in.Chat)+":t:"+in.Topic)
	}
	if in.ReplyTo != "" {
		keys = append(keys, s.prefix+"conv:route:"+chatField(in.Chat)+":m:"+in.ReplyTo)
	}
	for _, k := range keys {
		v, err := s.rc.Get(ctx, k).Result()
		if err == nil {
			if t, i, found := strings.Cut(v, "/"); found {
				return t, i, true
			}
		}
	}
	return "", "", false
}

// lastIncident is the most recent incident a chat identity was told about or spoke in.
func (s *store) setLast(ctx context.Context, u User, tenant, incident string) {
	s.rc.Set(ctx, s.prefix+"conv:last:"+string(u.Channel)+":"+u.ID, tenant+"/"+incident, routeTTL)
}

func (s *store) last(ctx context.Context, u User) (tenant, incident string, ok bool) {
	v, err := s.rc.Get(ctx, s.prefix+"conv:last:"+string(u.Channel)+":"+u.ID).Result()
	if err != nil {
		return "", "", false
	}
	tenant, incident, ok = strings.Cut(v, "/")
	return
}

// Enrollment is a pending link of a chat identity to a person of the config.
type Enrollment struct {
	Tenant string `json:"tenant"`
	Name   string `json:"name"`
	Role   string `json:"role"`
}

// ErrBadCode: the enrollment code is unknown, used or expired.
var ErrBadCode = errors.New("enrollment code unknown, used or expired")

func (s *store) putEnrollment(ctx context.Context, code string, e Enrollment, ttl time.Duration) error {
	b, _ := json.Marshal(e)
	ok, err := s.rc.SetNX(ctx, s.prefix+"conv:enroll:"+code, b, ttl).Result()
	if err != nil {
		return fmt.Errorf("store enrollment code: %w", err)
	}
	if !ok {
		return errors.New("enrollment code collision")
	}
	return nil
}

// takeEnrollment consumes a code (once, across replicas).
func (s *store) takeEnrollment(ctx context.Context, code string) (Enrollment, error) {
	v, err := s.rc.GetDel(ctx, s.prefix+"conv:enroll:"+code).Result()
	if errors.Is(err, redis.Nil) {
		return Enrollment{}, ErrBadCode
	}
	if err != nil {
		return Enrollment{}, fmt.Errorf("read enrollment code: %w", err)
	}
	var e Enrollment
	if err := json.Unmarshal([]byte(v), &e); err != nil {
		return Enrollment{}, ErrBadCode
	}
	return e, nil
}

func (s *store) idKey(tenant string, u User) string {
	return s.prefix + "conv:{" + tenant + "}:id:" + string(u.Channel) + ":" + u.ID
}

func (s *store) link(ctx context.Context, u User, e Enrollment) error {
	b, _ := json.Marshal(e)
	if err := s.rc.Set(ctx, s.idKey(e.Tenant, u), b, 0).Err(); err != nil {
		return fmt.Errorf("link identity: %w", err)
	}
	if err := s.rc.SAdd(ctx, s.linksKey(e.Tenant, e.Name), string(u.Channel)+":"+u.ID).Err(); err != nil {
		return fmt.Errorf("link identity: %w", err)
	}
	return s.rc.SAdd(ctx, s.prefix+"conv:tenants-of:"+string(u.Channel)+":"+u.ID, e.Tenant).Err()
}

func (s *store) linksKey(tenant, name string) string {
	return s.prefix + "conv:{" + tenant + "}:links:" + name
}

// Revoke unlinks every chat account enrolled as name in tenant; it returns how many.
func Revoke(ctx context.Context, rc redis.UniversalClient, prefix, tenant, name string) (int, error) {
	s := &store{rc: rc, prefix: prefix}
	members, err := rc.SMembers(ctx, s.linksKey(tenant, name)).Result()
	if err != nil {
		return 0, fmt.Errorf("read links of %s: %w", name, err)
	}
	for _, m := range members {
		ch, id, ok := strings.Cut(m, ":")
		if !ok {
			continue
		}
		u := User{Channel: Channel(ch), ID: id}
		if err := rc.Del(ctx, s.idKey(tenant, u)).Err(); err != nil {
			return 0, fmt.Errorf("unlink %s: %w", m, err)
		}
		rc.SRem(ctx, prefix+"conv:tenants-of:"+ch+":"+id, tenant)
	}
	if err := rc.Del(ctx, s.linksKey(tenant, name)).Err(); err != nil {
		return 0, err
	}
	return len(members), nil
}

func (s *store) linked(ctx context.Context, tenant string, u User) (Enrollment, bool) {
	v, err := s.rc.Get(ctx, s.idKey(tenant, u)).Result()
	if err != nil {
		return Enrollment{}, false
	}
	var e Enrollment
	return e, json.Unmarshal([]byte(v), &e) == nil
}

func (s *store) linkedTenants(ctx context.Context, u User) []string {
	v, _ := s.rc.SMembers(ctx, s.prefix+"conv:tenants-of:"+string(u.Channel)+":"+u.ID).Result()
	return v
}

func (s *store) silence(ctx context.Context, tenant, service string, d time.Duration, by string) error {
	return s.rc.Set(ctx, s.prefix+"conv:{"+tenant+"}:silence:"+service, by, d).Err()
}

func (s *store) silenced(ctx context.Context, tenant, service string) (time.Duration, bool) {
	d, err := s.rc.PTTL(ctx, s.prefix+"conv:{"+tenant+"}:silence:"+service).Result()
	if err != nil || d <= 0 {
		return 0, false
	}
	return d, true
}

// Deadline kinds.
const (
	deadlineExpire   = "expire"
	deadlineEscalate = "escalate"
)

func (s *store) deadlineKey() string { return s.prefix + "conv:deadlines" }

func (s *store) addDeadline(ctx context.Context, tenant, incident, kind string, at time.Time) error {
	return s.rc.ZAdd(ctx, s.deadlineKey(), redis.Z{Score: float64(at.UnixMilli()), Member: tenant + "/" + incident + "/" + kind}).Err()
}

// claimDue removes and returns the deadlines due at now; a deadline is handled by the one
// replica whose ZREM removed it.
func (s *store) claimDue(ctx context.Context, now time.Time) ([][3]string, error) {
	due, err := s.rc.ZRangeByScore(ctx, s.deadlineKey(), &redis.ZRangeBy{Min: "-inf", Max: fmt.Sprint(now.UnixMilli()), Count: 100}).Result()
	if err != nil {
		return nil, fmt.Errorf("read deadlines: %w", err)
	}
	var out [][3]string
	for _, m := range due {
		n, err := s.rc.ZRem(ctx, s.deadlineKey(), m).Result()
		if err != nil || n == 0 {
			continue
		}
		parts := strings.SplitN(m, "/", 3)
		if len(parts) == 3 {
			out = append(out, [3]string{parts[0], parts[1], parts[2]})
		}
	}
	return out, nil
}
