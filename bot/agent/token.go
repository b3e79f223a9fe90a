package agent

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Token is one API token of a tenant, as the tenants file declares it. Only the SHA-256
// of the secret is kept.
type Token struct {
	// Agent is the agent identity the token speaks for (ledger actor "agent:<Agent>").
	Agent  string
	Tenant string
	// SHA256 is the lowercase hex SHA-256 of the token's secret.
	SHA256 string
	// Actions are the tenant's configured recovery actions the agent may request (the
	// executor runs them once approved, or the agent does).
	Actions []string
	// External are actions the agent executes itself after approval.
	External []string
	// Rate is how many requests per minute the token may make (0: DefaultRate).
	Rate int
	// Revoked tokens authenticate nobody.
	Revoked bool
}

// DefaultRate is a token's requests per minute when its rate is not set.
const DefaultRate = 30

var agentRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,47}$`)

// ValidAgent reports whether s is a well-formed agent identity.
func ValidAgent(s string) bool { return agentRe.MatchString(s) }

// HashSecret is the form a token's secret is stored in.
func HashSecret(secret string) string {
	s := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(s[:])
}

// Actor is the ledger actor id of the token's agent.
func (t Token) Actor() string { return "agent:" + t.Agent }

// Allows reports whether the token may request action, and whether the agent executes
// it itself.
func (t Token) Allows(action string) (allowed, external bool) {
	if slices.Contains(t.External, action) {
		return true, true
	}
	return slices.Contains(t.Actions, action), false
}

// Tokens is the set of API tokens of every tenant.
type Tokens struct{ byHash map[string]Token }

var sha256Re = regexp.MustCompile(`^[0-9a-f]{64}$`)

// NewTokens checks ts: well-formed agents and hashes, no hash twice, no agent twice in a
// tenant.
func NewTokens(ts []Token) (*Tokens, error) {
	out := &Tokens{byHash: map[string]Token{}}
	agents := map[string]bool{}
	for i, t := range ts {
		switch {
		case !ValidAgent(t.Agent):
			return nil, fmt.Errorf("agent token %d: name %q is not [a-z0-9._-]{1,48}", i+1, t.Agent)
		case !sha256Re.MatchString(t.SHA256):
			return nil, fmt.Errorf("agent %s: token hash is not 64 lowercase hex digits", t.Agent)
		case t.Rate < 0:
			return nil, fmt.Errorf("agent %s: negative rate", t.Agent)
		}
		if _, dup := out.byHash[t.SHA256]; dup {
			return nil, fmt.Errorf("agent %s: the same token is given twice", t.Agent)
		}
		if agents[t.Tenant+"/"+t.Agent] {
			return nil, fmt.Errorf("agent %s: declared twice in tenant %s", t.Agent, t.Tenant)
		}
		agents[t.Tenant+"/"+t.Agent] = true
		if t.Rate == 0 {
			t.Rate = DefaultRate
		}
		out.byHash[t.SHA256] = t
	}
	return out, nil
}

// ErrUnauthenticated is every authentication failure; the caller says no more than that.
var ErrUnauthenticated = errors.New("unauthenticated")

// Authenticate finds the token of an Authorization header ("Bearer SECRET").
func (ts *Tokens) Authenticate(header string) (Token, error) {
	secret, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || secret == "" || len(secret) > 512 {
		return Token{}, ErrUnauthenticated
	}
	t, ok := ts.byHash[HashSecret(secret)]
	if !ok || t.Revoked {
		return Token{}, ErrUnauthenticated
	}
	return t, nil
}

// ParseRate reads a rate ("30/min", "2/s", "600/h", or a bare number per minute) as
// requests per minute.
func ParseRate(s string) (int, error) {
	n, unit, ok := strings.Cut(strings.TrimSpace(s), "/")
	v, err := strconv.Atoi(strings.TrimSpace(n))
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("rate %q: want N/min, N/s or N/h with N ≥ 1", s)
	}
	if !ok {
		return v, nil
	}
	switch strings.TrimSpace(unit) {
	case "min", "m":
		return v, nil
	case "s", "sec":
		return v * 60, nil
	case "h", "hour":
		if v < 60 {
			return 1, nil
		}
		return v / 60, nil
	}
	return 0, fmt.Errorf("rate %q: unit must be s, min or h", s)
}

// limiter counts a token's requests in fixed one-minute windows in Redis, so the limit
// holds across replicas.
type limiter struct {
	rc     redis.UniversalClient
	prefix string
	clock  func() time.Time
}

// allow reports whether t may make one more request now.
func (l limiter) allow(ctx context.Context, t Token) (bool, error) {
	win := l.clock().Unix() / 60
	key := l.prefix + "agent:{" + t.Tenant + "}:rate:" + t.SHA256[:16] + ":" + strconv.FormatInt(win, 10)
	pipe := l.rc.TxPipeline()
	n := pipe.Incr(ctx, key)
	pipe.Expire(ctx, key, 2*time.Minute)
	if _, err := pipe.Exec(ctx); err != nil {
		return false, err
	}
	return n.Val() <= int64(t.Rate), nil
}
