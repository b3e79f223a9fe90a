// Package approval issues and redeems single-use approvals. An approval is a short random
// reference carried by a button ("ap:" + 22 characters, well within Telegram's 64-byte
// callback data); the JWT it stands for (HS256 pinned, exp required, bound to tenant,
// incident, action hash and policy version, jti = the reference) lives in Redis under that
// reference with a TTL owned by Redis. Redeeming runs, in this order: the token's integrity
// → the presser is an approver of that tenant (else refused, audited, not consumed) →
// separation of duties → an atomic consume (exactly one winner across replicas, siblings
// voided) → the AUTHORIZED ledger entry.
package approval

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"sort"
	"strconv"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
)

// Errors of redemption. Each has a user-facing text (see Explain).
var (
	ErrUnknown       = errors.New("unknown approval reference")
	ErrExpired       = errors.New("approval expired")
	ErrUsed          = errors.New("approval already used")
	ErrNotApprover   = errors.New("presser is not an approver of the tenant")
	ErrSelfApproval  = errors.New("presser authored a suspect commit")
	ErrSameApprover  = errors.New("second approval by the same person")
	ErrPolicyChanged = errors.New("policy changed since the approval was offered")
	ErrInvalidToken  = errors.New("approval token does not verify")
	ErrIncidentMoved = errors.New("incident is no longer awaiting approval")
	// ErrOutcomeUnknown: the authorization was sent to the ledger but whether it was
	// stored could not be found out; the approval is not given back.
	ErrOutcomeUnknown = errors.New("authorization outcome unknown")
)

// UsedError says who used (or whose decision voided) an approval.
type UsedError struct {
	By     string
	Voided bool // a sibling approval (another theory) was approved instead
}

func (e *UsedError) Error() string {
	if e.Voided {
		return "approval voided: " + e.By + " approved another option"
	}
	return "approval already used by " + e.By
}
func (e *UsedError) Unwrap() error { return ErrUsed }

// Options configure the service.
type Options struct {
	Redis     redis.UniversalClient
	KeyPrefix string
	// Secret signs the JWTs (ALERT_SECRET, ≥ 32 bytes).
	Secret []byte
	Ledger *ledger.Ledger
	Clock  func() time.Time
	Logger *slog.Logger
	// Random is the source of references; crypto/rand when nil.
	Random io.Reader
	// RefusalWindow is the window over which one sender's refused presses on one
	// incident are counted (default DefaultRefusalWindow): the first of a window is
	// recorded in the ledger, then the 10th, the 100th, … each with the count so far.
	RefusalWindow time.Duration
	// OnRefusal, when set, is told of every refused press of an incident and whether it
	// was recorded in the ledger (the bot's metrics).
	OnRefusal func(tenant string, recorded bool)
}

// DefaultRefusalWindow is the default RefusalWindow.
const DefaultRefusalWindow = time.Hour

// Validate checks the options.
func (o *Options) Validate() error {
	switch {
	case o.Redis == nil:
		return errors.New("approval: no Redis")
	case len(o.Secret) < 32:
		return errors.New("approval: secret shorter than 32 bytes")
	case o.Ledger == nil:
		return errors.New("approval: no ledger")
	}
	return nil
}

// Service issues and redeems approvals.
type Service struct{ o Options }

// New returns a Service.
func New(o Options) (*Service, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Random == nil {
		o.Random = rand.Reader
	}
	if o.RefusalWindow <= 0 {
		o.RefusalWindow = DefaultRefusalWindow
	}
	return &Service{o: o}, nil
}

// Offer is one action a card offers for approval.
type Offer struct {
	Tenant, Incident, Action string
	HighRisk                 bool
	PolicyVersion            string
	// Evidence is the hash of what the approver sees (the card).
	Evidence string
	// Theory labels the diagnosis the action comes from ("A", "B"; "" for a single one).
	Theory string
}

// meta is what Redis keeps beside the token, for answers after the token is gone.
type meta struct {
	Tenant   string    `json:"tenant"`
	Incident string    `json:"incident"`
	Action   string    `json:"action"`
	HighRisk bool      `json:"high_risk"`
	Policy   string    `json:"policy"`
	Evidence string    `json:"evidence"`
	Theory   string    `json:"theory,omitempty"`
	Expires  time.Time `json:"expires"`
}

type claims struct {
	jwt.RegisteredClaims
	ActionHash string `json:"act"`
	Policy     string `json:"pv"`
	Risk       string `json:"risk"`
}

// ActionHash binds a token to its action.
func ActionHash(action string) string {
	s := sha256.Sum256([]byte(action))
	return hex.EncodeToString(s[:])
}

var refRe = regexp.MustCompile(`^ap:([A-Za-z0-9_-]{11})([A-Za-z0-9_-]{11})$`)

// ValidRef reports whether s has the shape of a reference.
func ValidRef(s string) bool { return refRe.MatchString(s) }

// keys of one approval group. The group part of a reference is the Redis hash tag, so
// an approval and its siblings live in one cluster slot.
type keys struct{ base, tok, meta, used, part, refs string }

func (s *Service) keys(ref string) keys {
	m := refRe.FindStringSubmatch(ref)
	base := s.o.KeyPrefix + "{ap:" + m[1] + "}:"
	return keys{base, base + "tok:" + ref, base + "meta:" + ref, base + "used:" + ref, base + "part:" + ref, base + "refs"}
}

func (s *Service) random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.o.Random, b); err != nil {
		return "", fmt.Errorf("random reference: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)[:11], nil
}

// keepAfter is how long a used or expired reference is remembered, to answer late presses
// precisely ("already approved by …", "expired").
const keepAfter = 24 * time.Hour

// Issue stores one approval per offer, all siblings of one another: consuming one voids
// the rest. It returns the references in offer order.
func (s *Service) Issue(ctx context.Context, ttl time.Duration, offers ...Offer) ([]string, error) {
	if ttl <= 0 {
		return nil, errors.New("approval: TTL must be positive")
	}
	group, err := s.random(8)
	if err != nil {
		return nil, err
	}
	now := s.o.Clock()
	refs := make([]string, len(offers))
	pipe := s.o.Redis.TxPipeline()
	for i, of := range offers {
		own, err := s.random(8)
		if err != nil {
			return nil, err
		}
		ref := "ap:" + group + own
		refs[i] = ref
		risk := "low"
		if of.HighRisk {
			risk = "high"
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims{
			RegisteredClaims: jwt.RegisteredClaims{
				Audience:  jwt.ClaimStrings{of.Tenant},
				Subject:   of.Incident,
				ExpiresAt: jwt.NewNumericDate(now.Add(ttl)),
				IssuedAt:  jwt.NewNumericDate(now),
				ID:        ref,
			},
			ActionHash: ActionHash(of.Action),
			Policy:     of.PolicyVersion,
			Risk:       risk,
		})
		signed, err := tok.SignedString(s.o.Secret)
		if err != nil {
			return nil, fmt.Errorf("sign approval: %w", err)
		}
		m, _ := json.Marshal(meta{Tenant: of.Tenant, Incident: of.Incident, Action: of.Action, HighRisk: of.HighRisk,
			Policy: of.PolicyVersion, Evidence: of.Evidence, Theory: of.Theory, Expires: now.Add(ttl)})
		k := s.keys(ref)
		pipe.Set(ctx, k.tok, signed, ttl)
		pipe.Set(ctx, k.meta, m, ttl+keepAfter)
		pipe.SAdd(ctx, k.refs, ref)
		pipe.Expire(ctx, k.refs, ttl+keepAfter)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("store approvals: %w", err)
	}
	return refs, nil
}

// Presser is the person who pressed, as the conversation resolved them.
type Presser struct {
	// Tenant is the tenant of the chat the press came from.
	Tenant string
	// Name is the person's name in the tenant's config ("" if the chat identity is not
	// linked to anyone).
	Name     string
	Approver bool
	Channel  string
	UserID   string
}

func (p Presser) actor() ledger.Actor {
	id := p.Name
	if id == "" {
		id = "unlinked:" + p.Channel + ":" + p.UserID
	}
	return ledger.Actor{Kind: ledger.ActorEngineer, ID: id, Channel: p.Channel}
}

// Policy is what redemption checks against the tenant's current state.
type Policy struct {
	// Version is the tenant's current policy version; a token issued under another is refused.
	Version string
	// SuspectsOf, when set, names the people (config names) whose commits are suspected
	// for the incident the approval was issued for (whatever chat the press came from):
	// they may not approve its recovery.
	SuspectsOf func(ctx context.Context, incident string) []string
}

// Status of a redemption.
type Status int

// Statuses.
const (
	Authorized Status = iota + 1
	Partial           // first of two approvals of a high-risk action
)

// Result of a successful press.
type Result struct {
	Status   Status
	Tenant   string
	Incident string
	Action   string
	Theory   string
	By       []string // approvers so far
	// Voided are the first approvals of other options (high-risk siblings pressed once)
	// that this authorization voided.
	Voided []VoidedApproval
	Entry  ledger.Entry
}

// VoidedApproval is a partial approval of another option, voided by an authorization.
type VoidedApproval struct {
	By     string
	Action string
	Theory string
}

// voidedText is the AUTHORIZED entry's data.voided: "tendai: rollback (B); …".
func voidedText(vs []VoidedApproval) string {
	s := ""
	for i, v := range vs {
		if i > 0 {
			s += "; "
		}
		s += v.By + ": " + v.Action
		if v.Theory != "" {
			s += " (" + v.Theory + ")"
		}
	}
	return s
}

// Redeem handles a press of ref by p. A refusal is returned as an error wrapping one of
// the package's sentinels; every refusal that can be tied to an incident of p's tenant is
// recorded in the ledger as a refused press. A refusal before the consume step leaves the
// approval pending.
func (s *Service) Redeem(ctx context.Context, ref string, p Presser, pol Policy) (Result, error) {
	if !ValidRef(ref) {
		return Result{}, ErrUnknown
	}
	k := s.keys(ref)
	// One round trip reads everything a refusal needs, the used mark's age included.
	pipe := s.o.Redis.Pipeline()
	get := pipe.MGet(ctx, k.tok, k.meta, k.used)
	usedTTL := pipe.PTTL(ctx, k.used)
	if _, err := pipe.Exec(ctx); err != nil {
		return Result{}, fmt.Errorf("read approval: %w", err)
	}
	vals := get.Val()
	tokS, _ := vals[0].(string)
	metaS, _ := vals[1].(string)
	usedS, _ := vals[2].(string)
	var m meta
	if metaS == "" || json.Unmarshal([]byte(metaS), &m) != nil || m.Tenant != p.Tenant {
		// Unknown, and another tenant's reference, get the same answer and no audit in
		// that tenant's ledger.
		s.o.Logger.Warn("press of an unknown or foreign approval reference", "channel", p.Channel, "user", p.UserID)
		return Result{}, ErrUnknown
	}
	res := Result{Tenant: m.Tenant, Incident: m.Incident, Action: m.Action, Theory: m.Theory}
	refuse := func(err error, why string) (Result, error) {
		kind := refusalKind(err)
		if kind == "used" && s.o.Clock().After(m.Expires) {
			kind = "used_after_ttl"
		}
		s.audit(ctx, m, ref, p, kind, why)
		return res, err
	}
	// resumed: this presser's own earlier press consumed the approval and its
	// authorization never reached the ledger (the process handling it died in between);
	// this press, usually the platform's redelivery of that one, finishes it instead of
	// answering "already used by" the presser while nothing runs.
	resumed := false
	switch {
	case usedS != "":
		ue := usedError(usedS)
		if !ue.Voided && ue.By == p.Name && p.Approver && usedFor(usedTTL.Val()) >= resumeAfter {
			if _, found, rerr := s.recorded(ctx, m, ref); rerr == nil && !found {
				s.o.Logger.Warn("approval consumed by this presser without an authorization in the ledger; finishing it",
					"incident", m.Incident, "approval", ref)
				resumed = true
				break
			}
		}
		why := "pressed after it was used: " + ue.Error()
		if s.o.Clock().After(m.Expires) {
			why += "; its TTL has also passed"
		}
		return refuse(ue, why)
	case tokS == "":
		return refuse(ErrExpired, "pressed after it expired")
	}
	if !resumed {
		// (A resumed approval's token is gone: the consume that deleted it had checked it.)
		if err := s.verify(tokS, ref, m); err != nil {
			s.o.Logger.Error("approval token does not verify", "incident", m.Incident, "err", err)
			return refuse(fmt.Errorf("%w: %v", ErrInvalidToken, err), "token does not verify")
		}
	}
	if !p.Approver || p.Name == "" {
		return refuse(ErrNotApprover, "presser is not an approver of "+m.Tenant)
	}
	if pol.Version != "" && m.Policy != pol.Version {
		return refuse(ErrPolicyChanged, "policy changed from "+m.Policy+" to "+pol.Version)
	}
	var suspects []string
	if pol.SuspectsOf != nil {
		suspects = pol.SuspectsOf(ctx, m.Incident)
	}
	for _, a := range suspects {
		if a == p.Name {
			return refuse(ErrSelfApproval, p.Name+" authored a suspect commit")
		}
	}
	by := []string{p.Name}
	if m.HighRisk && resumed {
		// The consume happened once the second approver pressed: both are in the set.
		if names, err := s.o.Redis.SMembers(ctx, k.part).Result(); err == nil && len(names) >= 2 {
			sort.Strings(names)
			by = names
		}
	} else if m.HighRisk {
		added, err := s.o.Redis.SAdd(ctx, k.part, p.Name).Result()
		if err != nil {
			return res, fmt.Errorf("record partial approval: %w", err)
		}
		s.o.Redis.ExpireAt(ctx, k.part, m.Expires)
		names, err := s.o.Redis.SMembers(ctx, k.part).Result()
		if err != nil {
			return res, fmt.Errorf("read partial approvals: %w", err)
		}
		if added == 0 && len(names) < 2 {
			return refuse(ErrSameApprover, p.Name+" pressed twice; a second approver is needed")
		}
		if len(names) < 2 {
			e, err := s.o.Ledger.Record(ctx, ledger.Entry{Tenant: m.Tenant, Incident: m.Incident, Event: ledger.PartialApprove,
				Actor: p.actor(), Action: m.Action, Approval: ref, PolicyVersion: m.Policy, Evidence: m.Evidence,
				Reason: "first of two approvals for high-risk action " + m.Action})
			if err != nil {
				s.o.Redis.SRem(ctx, k.part, p.Name)
				if errors.Is(err, ledger.ErrFenced) {
					return refuse(err, "fenced: the ledger lost entries of this incident and no operator has accepted the loss")
				}
				return res, fmt.Errorf("record partial approval: %w", err)
			}
			res.Status, res.By, res.Entry = Partial, []string{p.Name}, e
			return res, nil
		}
		// A Redis set has no order (a hash table's depends on the server's seed): the
		// approvers are named in one order on every card and in the ledger.
		sort.Strings(names)
		by = names
	}
	if !resumed {
		won, err := consumeScript.Run(ctx, s.o.Redis, []string{k.tok, k.used, k.refs}, tokS, p.Name, ref, k.base, int(keepAfter.Seconds())).Text()
		if errors.Is(err, redis.Nil) {
			return refuse(ErrExpired, "expired while being pressed")
		}
		if err != nil {
			return res, fmt.Errorf("consume approval: %w", err)
		}
		if won != "OK" {
			ue := usedError(won)
			return refuse(ue, "lost the race: "+ue.Error())
		}
	}
	res.Voided = s.voidedSiblings(ctx, k, ref)
	auth := ledger.Entry{Tenant: m.Tenant, Incident: m.Incident, Event: ledger.Authorize,
		Actor: p.actor(), Action: m.Action, Approval: ref, PolicyVersion: m.Policy, Evidence: m.Evidence,
		Reason: "approved " + m.Action, Data: map[string]string{"approvers": joinNames(by)}}
	if len(res.Voided) > 0 {
		// The authorization says what it voided, in the same entry: an auditor never reads
		// a partial approval of another option as an approval of what ran.
		auth.Data["voided"] = voidedText(res.Voided)
		auth.Reason += "; voids the first approval (1 of 2) of " + voidedText(res.Voided)
	}
	e, err := s.o.Ledger.Record(ctx, auth)
	if errors.Is(err, ledger.ErrFenced) {
		// The ledger lost entries of this incident: this approval may have been used
		// before the loss. The ledger refuses every authorization of the incident until an
		// operator accepts the loss, so the approval is given back: every press meanwhile
		// reads the same reason, not "already approved" by someone whose press ran nothing.
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if resumed {
			// Its token is gone; it stays consumed, and the presser's next press resumes it.
		} else if rerr := s.giveBack(bg, k, tokS, p.Name, ref, m.Expires); rerr != nil {
			s.o.Logger.Error("give back a fenced approval", "incident", m.Incident, "err", rerr)
		}
		return refuse(err, "fenced: the ledger lost entries of this incident and no operator has accepted the loss")
	}
	if err != nil {
		// The append failed, was refused, or could not be confirmed. A refusal may be the
		// echo of this very write (Redis applied it, its reply was late, the client sent
		// it again and found the incident AUTHORIZED), so before any answer the ledger is
		// read for this approval's own entry: if it is there, this press authorized.
		s.o.Logger.Warn("authorization outcome unknown; reading the ledger for it", "incident", m.Incident, "approval", ref, "err", err)
		bg, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		e, found, rerr := s.recorded(bg, m, ref)
		switch {
		case found:
			s.o.Logger.Warn("authorization was stored after all", "incident", m.Incident, "approval", ref, "seq", e.Seq)
			res.Status, res.By, res.Entry = Authorized, by, e
			return res, nil
		case rerr != nil:
			// Still unknown: the approval is not given back (it may have authorized), and
			// the presser is told that it is not known yet.
			s.o.Logger.Warn("authorization outcome still unknown", "incident", m.Incident, "approval", ref, "err", rerr)
			return res, fmt.Errorf("%w: %w", ErrOutcomeUnknown, err)
		}
		var te *ledger.TransitionError
		if errors.As(err, &te) {
			return refuse(fmt.Errorf("%w: it is %s", ErrIncidentMoved, te.From), "approved but the incident is "+string(te.From))
		}
		// Not stored: the approval is given back, so the decision can be made again, and
		// nothing is left half-done.
		if resumed {
			// Its token is gone; it stays consumed, and the presser's next press resumes it.
		} else if rerr := s.giveBack(bg, k, tokS, p.Name, ref, m.Expires); rerr != nil {
			s.o.Logger.Error("give back an approval after a failed authorization", "incident", m.Incident, "err", rerr)
		}
		return res, fmt.Errorf("record authorization: %w", err)
	}
	res.Status, res.By, res.Entry = Authorized, by, e
	return res, nil
}

// resumeAfter is how long after its consume an approval with no authorization in the
// ledger is taken as abandoned by a press that died, rather than still being recorded by a
// live one (whose append is bounded well below it). A platform redelivers a press only
// after the dead handler's claim lapsed, later than this.
const resumeAfter = 15 * time.Second

// usedFor is how long ago the approval was consumed (0 when unknown), from what is left of
// its used mark's lifetime (its PTTL).
func usedFor(left time.Duration) time.Duration {
	if left <= 0 || left > keepAfter {
		return 0
	}
	return keepAfter - left
}

// voidedSiblings lists the partial approvals of ref's siblings (other options of the same
// card), which its consumption has just voided. A read failure only loses the list: the
// ledger's fold voids them from the entries either way.
func (s *Service) voidedSiblings(ctx context.Context, k keys, ref string) []VoidedApproval {
	refs, err := s.o.Redis.SMembers(ctx, k.refs).Result()
	if err != nil {
		s.o.Logger.Warn("read sibling approvals", "err", err)
		return nil
	}
	sort.Strings(refs)
	var out []VoidedApproval
	for _, r := range refs {
		if r == ref || !ValidRef(r) {
			continue
		}
		sk := s.keys(r)
		names, err := s.o.Redis.SMembers(ctx, sk.part).Result()
		if err != nil || len(names) == 0 {
			continue
		}
		var m meta
		if raw, err := s.o.Redis.Get(ctx, sk.meta).Result(); err == nil {
			_ = json.Unmarshal([]byte(raw), &m)
		}
		sort.Strings(names)
		for _, n := range names {
			out = append(out, VoidedApproval{By: n, Action: m.Action, Theory: m.Theory})
		}
	}
	return out
}

func joinNames(ns []string) string {
	s := ""
	for i, n := range ns {
		if i > 0 {
			s += ", "
		}
		s += n
	}
	return s
}

func usedError(v string) *UsedError {
	if len(v) > 5 && v[:5] == "void:" {
		return &UsedError{By: v[5:], Voided: true}
	}
	return &UsedError{By: v}
}

// consumeScript deletes the token if it is still the one read, marks it used by the
// presser, and voids its siblings (keeping their tokens aside, in case the approval must
// be given back). It returns "OK" to the one winner, else who used it.
var consumeScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return redis.call('GET', KEYS[2])
end
redis.call('DEL', KEYS[1])
redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[5])
for _, r in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if r ~= ARGV[3] then
    local t = redis.call('GET', ARGV[4] .. 'tok:' .. r)
    if t then
      redis.call('DEL', ARGV[4] .. 'tok:' .. r)
      redis.call('SET', ARGV[4] .. 'used:' .. r, 'void:' .. ARGV[2], 'EX', ARGV[5])
      redis.call('SET', ARGV[4] .. 'voided:' .. r, t, 'EX', ARGV[5])
    end
  end
end
return 'OK'
`)

// giveBackScript undoes a consume by ARGV[2]: the token comes back for ARGV[5] ms (or
// stays gone when that is not positive: it expired meanwhile), and so do the siblings it
// voided.
var giveBackScript = redis.NewScript(`
if redis.call('GET', KEYS[2]) ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[2])
local ttl = tonumber(ARGV[5])
if ttl > 0 then redis.call('SET', KEYS[1], ARGV[1], 'PX', ttl) end
for _, r in ipairs(redis.call('SMEMBERS', KEYS[3])) do
  if r ~= ARGV[3] and redis.call('GET', ARGV[4] .. 'used:' .. r) == 'void:' .. ARGV[2] then
    local t = redis.call('GET', ARGV[4] .. 'voided:' .. r)
    if t and ttl > 0 then redis.call('SET', ARGV[4] .. 'tok:' .. r, t, 'PX', ttl) end
    redis.call('DEL', ARGV[4] .. 'used:' .. r, ARGV[4] .. 'voided:' .. r)
  end
end
return 1
`)

func (s *Service) giveBack(ctx context.Context, k keys, tok, name, ref string, expires time.Time) error {
	ttl := expires.Sub(s.o.Clock()).Milliseconds()
	return giveBackScript.Run(ctx, s.o.Redis, []string{k.tok, k.used, k.refs}, tok, name, ref, k.base, ttl).Err()
}

// recorded finds the AUTHORIZED entry of ref (an append whose reply was lost may have
// been stored); err when the ledger could not be read, so nobody knows yet.
func (s *Service) recorded(ctx context.Context, m meta, ref string) (ledger.Entry, bool, error) {
	_, hist, err := s.o.Ledger.Incident(ctx, m.Tenant, m.Incident)
	if err != nil {
		return ledger.Entry{}, false, fmt.Errorf("read incident %s: %w", m.Incident, err)
	}
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].Event == ledger.Authorize && hist[i].Approval == ref {
			return hist[i], true, nil
		}
	}
	return ledger.Entry{}, false, nil
}

// verify checks the token against what the reference was issued for.
func (s *Service) verify(tok, ref string, m meta) error {
	var c claims
	_, err := jwt.ParseWithClaims(tok, &c, func(t *jwt.Token) (any, error) { return s.o.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithAudience(m.Tenant),
		jwt.WithSubject(m.Incident),
		jwt.WithTimeFunc(s.o.Clock),
	)
	switch {
	case err != nil:
		return err
	case c.ID != ref:
		return errors.New("jti does not match the reference")
	case c.ActionHash != ActionHash(m.Action):
		return errors.New("action hash does not match")
	case c.Policy != m.Policy:
		return errors.New("policy version does not match")
	}
	return nil
}

// audit records a refused press on the incident, bounded per sender and kind of refusal:
// within one window the sender's 1st, 10th, 100th, … refusal of one kind on the incident
// is recorded, each entry with the
// count so far and the time of the first (data.count, data.since), so the audit shows who
// tried, how often and when without a stranger being able to grow the ledger by
// pressing. When the count cannot be kept, the refusal is recorded.
func (s *Service) audit(ctx context.Context, m meta, ref string, p Presser, kind, why string) {
	actor := p.actor()
	now := s.o.Clock()
	n, since := int64(1), now
	key := s.o.KeyPrefix + "refusals:{" + m.Tenant + "}:" + m.Incident + ":" + kind + ":" + actor.ID
	pipe := s.o.Redis.TxPipeline()
	cnt := pipe.HIncrBy(ctx, key, "n", 1)
	pipe.HSetNX(ctx, key, "since", now.UTC().Format(time.RFC3339))
	first := pipe.HGet(ctx, key, "since")
	pipe.ExpireNX(ctx, key, s.o.RefusalWindow)
	if _, err := pipe.Exec(ctx); err != nil {
		s.o.Logger.Warn("count refused presses", "incident", m.Incident, "err", err)
	} else {
		n = cnt.Val()
		if t, err := time.Parse(time.RFC3339, first.Val()); err == nil {
			since = t
		}
	}
	record := milestone(n)
	if s.o.OnRefusal != nil {
		s.o.OnRefusal(m.Tenant, record)
	}
	if !record {
		return
	}
	data := map[string]string{"ref": ref, "kind": kind, "count": strconv.FormatInt(n, 10), "since": since.UTC().Format(time.RFC3339)}
	if n > 1 {
		why += fmt.Sprintf(" (refused press %d by this sender on %s since %s; within %s only the 1st, 10th, 100th, … are recorded)",
			n, m.Incident, since.UTC().Format("15:04:05 UTC"), s.o.RefusalWindow)
	}
	_, err := s.o.Ledger.Record(ctx, ledger.Entry{Tenant: m.Tenant, Incident: m.Incident, Event: ledger.RefusedPress,
		Actor: actor, Action: m.Action, PolicyVersion: m.Policy, Reason: why, Data: data})
	if err != nil {
		s.o.Logger.Error("audit refused press", "incident", m.Incident, "err", err)
	}
}

// refusalKind names the kind of a refusal (data.kind of its entry, part of its count's key).
func refusalKind(err error) string {
	for _, k := range []struct {
		err  error
		name string
	}{{ErrNotApprover, "not_approver"}, {ErrSelfApproval, "self_approval"}, {ErrSameApprover, "same_approver"}, {ErrPolicyChanged, "policy_changed"},
		{ErrInvalidToken, "invalid_token"}, {ErrIncidentMoved, "incident_moved"}, {ErrExpired, "expired"}} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	var ue *UsedError
	if errors.As(err, &ue) && ue.Voided {
		return "voided"
	}
	if errors.Is(err, ErrUsed) {
		return "used"
	}
	return "other"
}

// milestone reports whether n is 1 or a power of ten.
func milestone(n int64) bool {
	for n >= 10 && n%10 == 0 {
		n /= 10
	}
	return n == 1
}

// Explain is the text shown to the person whose press was refused. It never shows
// internals; unknown and foreign references read the same.
func Explain(err error, tenant string) string {
	var ue *UsedError
	switch {
	case errors.As(err, &ue) && ue.Voided:
		return "This option was voided: " + ue.By + " approved another one."
	case errors.As(err, &ue):
		return "Already approved by " + ue.By + "."
	case errors.Is(err, ErrExpired):
		return "This approval has expired. Ask for a fresh one in the incident thread."
	case errors.Is(err, ErrNotApprover):
		return "You are not an approver for " + tenant + "."
	case errors.Is(err, ErrSelfApproval):
		return "You authored a suspect commit for this incident; another approver must decide."
	case errors.Is(err, ErrSameApprover):
		return "You already approved. This high-risk action needs a second, different approver."
	case errors.Is(err, ErrPolicyChanged):
		return "The policy changed since this was offered. Ask for a fresh approval."
	case errors.Is(err, ErrIncidentMoved):
		return "Nothing was run: the incident is no longer waiting for approval."
	case errors.Is(err, ledger.ErrFenced):
		return "Nothing was run: the audit ledger lost recent entries of this incident, so its approvals are on hold until an operator reviews the loss."
	}
	return "This approval is not valid."
}
