// Package claim lets exactly one handler at a time take an inbound delivery that its
// sender may deliver more than once (a Telegram update, a Twilio message, a GitHub
// delivery), across any number of replicas sharing one Redis.
//
// A claim has an owner (a random token) and a short lease. The handler marks it Done when
// the handling finished, or Releases it when it did not, so the sender's redelivery is
// handled; a handler that dies leaves the lease to lapse, after which a redelivery gets in.
// Taking is idempotent for its owner: when a slow Redis reply makes the client send the
// claim again, the second attempt finds its own token and still owns the delivery, rather
// than mistaking itself for someone else and dropping it.
package claim

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Outcome is what Take found.
type Outcome int

const (
	// Mine: the caller holds the delivery and must end with Done or Release.
	Mine Outcome = iota
	// Handled: the delivery was handled before; answer it as a duplicate.
	Handled
	// Busy: another handler holds a live lease on it; ask the sender to deliver it again
	// later (it gets in once that handler is done, or its lease lapses).
	Busy
)

func (o Outcome) String() string {
	switch o {
	case Mine:
		return "mine"
	case Handled:
		return "handled"
	case Busy:
		return "busy"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// ErrLost: the lease lapsed before Done and another handler took the delivery over; both
// may have handled it.
var ErrLost = errors.New("claim: lease lapsed and another handler took the delivery")

// Options configure Claims.
type Options struct {
	// Redis holds the claims. Required.
	Redis redis.Cmdable
	// Lease is how long a claim is held without Done or Release: longer than a handling
	// may take, short enough that a redelivery after a crash is not refused for long.
	Lease time.Duration
	// Keep is how long a handled delivery is remembered (longer than the sender redelivers).
	Keep time.Duration
	// Timeout bounds each Redis call (default 5 s).
	Timeout time.Duration
}

// Validate reports what is missing or wrong.
func (o Options) Validate() error {
	var errs []error
	if o.Redis == nil {
		errs = append(errs, errors.New("claim: Redis is required"))
	}
	if o.Lease <= 0 {
		errs = append(errs, errors.New("claim: Lease must be positive"))
	}
	if o.Keep < o.Lease {
		errs = append(errs, errors.New("claim: Keep must be at least Lease"))
	}
	if o.Timeout < 0 {
		errs = append(errs, errors.New("claim: Timeout must not be negative"))
	}
	return errors.Join(errs...)
}

// Claims takes and settles claims on deliveries.
type Claims struct {
	o Options
}

// New returns Claims for o.
func New(o Options) (*Claims, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Timeout == 0 {
		o.Timeout = 5 * time.Second
	}
	return &Claims{o: o}, nil
}

// Claim is one handler's hold on one delivery.
type Claim struct {
	c     *Claims
	key   string
	token string
}

// Values kept under a delivery's key: "held:<token>" while a handler holds it, done once
// handled. Anything else (a value of an older release) counts as handled.
const (
	heldPrefix = "held:"
	doneValue  = "done"
	// oldHeld is how an older release marked a GitHub delivery being processed.
	oldHeld = "processing"
)

// take sets the key to ARGV[1] for ARGV[2] ms unless it exists, and returns its value.
var take = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v then return v end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ARGV[1]`)

// done marks the key handled for ARGV[2] ms when it is held by ARGV[1], already done, or
// lapsed; 0 when another holder took it.
var done = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false or v == ARGV[1] or v == 'done' then
  redis.call('SET', KEYS[1], 'done', 'PX', ARGV[2])
  return 1
end
return 0`)

// release deletes the key when ARGV[1] holds it.
var release = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)

// Take tries to claim the delivery kept under key. With Mine the returned claim must be
// settled (Done or Release); otherwise it is nil.
func (c *Claims) Take(ctx context.Context, key string) (*Claim, Outcome, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return nil, 0, fmt.Errorf("claim %s: owner token: %w", key, err)
	}
	token := heldPrefix + base64.RawURLEncoding.EncodeToString(b)
	ctx, cancel := context.WithTimeout(ctx, c.o.Timeout)
	defer cancel()
	v, err := take.Run(ctx, c.o.Redis, []string{key}, token, c.o.Lease.Milliseconds()).Text()
	if err != nil {
		// The claim may still land (a paused Redis applies it when it resumes) and would
		// then hold the delivery for a lease nobody uses: undo it, if it is ours.
		cl := &Claim{c: c, key: key, token: token}
		_ = cl.Release(ctx)
		return nil, 0, fmt.Errorf("claim %s: %w", key, err)
	}
	switch {
	case v == token:
		return &Claim{c: c, key: key, token: token}, Mine, nil
	case strings.HasPrefix(v, heldPrefix) || v == oldHeld:
		return nil, Busy, nil
	}
	return nil, Handled, nil
}

// Done records the delivery as handled. It is meant to run after the handling, whatever
// the caller's context: it does not inherit ctx's cancellation.
func (cl *Claim) Done(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cl.c.o.Timeout)
	defer cancel()
	n, err := done.Run(ctx, cl.c.o.Redis, []string{cl.key}, cl.token, cl.c.o.Keep.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("claim %s: mark done: %w", cl.key, err)
	}
	if n == 0 {
		return fmt.Errorf("claim %s: %w", cl.key, ErrLost)
	}
	return nil
}

// Release gives the delivery up unhandled, so that a redelivery is handled at once. Like
// Done it does not inherit ctx's cancellation.
func (cl *Claim) Release(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cl.c.o.Timeout)
	defer cancel()
	if err := release.Run(ctx, cl.c.o.Redis, []string{cl.key}, cl.token).Err(); err != nil {
		return fmt.Errorf("claim %s: release: %w", cl.key, err)
	}
	return nil
}
