package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
)

// Target is a tenant's recovery webhook (its `recovery` block in the config).
type Target struct {
	URL    string
	Secret string
	// AllowPrivateNetwork lets the call reach loopback, private and link-local addresses.
	AllowPrivateNetwork bool
	// Timeout bounds one call to this target, the receiver's work included; 0:
	// Options.AttemptTimeout. A call that times out is retried with the same key.
	Timeout time.Duration
}

// ErrInvalidOptions is the cause of every Options.Validate failure.
var ErrInvalidOptions = errors.New("executor: invalid options")

// DefaultLease is Options.Lease when unset.
const DefaultLease = 6 * time.Second

// Options configure an Executor. Zero durations and counts take the documented defaults.
type Options struct {
	// Redis holds the outbox, the dead letters and the in-flight leases.
	Redis redis.UniversalClient
	// KeyPrefix starts every key the executor uses.
	KeyPrefix string
	// Ledger is where stages are read and outcomes recorded.
	Ledger *ledger.Ledger
	// Targets returns a tenant's recovery webhook; false: the tenant has none.
	Targets func(tenant string) (Target, bool)
	Logger  *slog.Logger

	// Group is the outbox consumer group shared by every bot (default "executor").
	Group string
	// Consumer names this process in the group (default: host name and a random suffix).
	Consumer string
	// Workers bounds executions in flight in this process (default 4).
	Workers int
	// Lease is how long an execution may go without its owner's heartbeat before another
	// consumer reclaims it (default 6 s). Owners heartbeat every Lease/3, so a live owner
	// keeps even a very slow call (its heartbeat runs beside the call); an owner that
	// cannot renew for 0.9 × Lease stops its own call first.
	Lease time.Duration
	// ReclaimEvery is how often idle entries are looked for (default Lease/3); also at
	// start. A dead owner's execution is re-driven at most Lease + ReclaimEvery after its
	// last heartbeat: 8 s with the defaults.
	ReclaimEvery time.Duration
	// Poll bounds one blocking read of the outbox (default 2 s).
	Poll time.Duration
	// RedisTimeout bounds one Redis call (default 5 s).
	RedisTimeout time.Duration

	// AttemptTimeout bounds one webhook call, connection included (default 10 s).
	AttemptTimeout time.Duration
	// Attempts is the number of calls before giving up on a retryable failure (default 3).
	Attempts int
	// Backoff is the wait before each retry (default 2 s, 4 s; the last repeats).
	Backoff []time.Duration
	// Jitter adds up to this fraction of the backoff, at random (default 0.2; negative: none).
	Jitter float64
	// MaxRetryAfter caps a Retry-After the webhook asks for (default 60 s).
	MaxRetryAfter time.Duration

	// Clock reads the time (signatures, Retry-After dates, dead letters); default time.Now.
	Clock func() time.Time
	// LeaseClock reads the time leases and heartbeats are judged by (default time.Now):
	// an owner writes its heartbeats' times with it, and a reclaim pass takes over an
	// entry whose last heartbeat is Lease old by it. Every replica's clock must agree to
	// well within Lease (NTP does). Tests inject one to drive the lease.
	LeaseClock func() time.Time
	// Sleep waits between attempts; default a timer that ends early with ctx.
	Sleep func(ctx context.Context, d time.Duration) error
	// Rand returns a number in [0, 1) for the jitter; default math/rand/v2.
	Rand func() float64

	// OnOutcome, when set, is called after an outcome is recorded in the ledger (and the
	// outbox entry acknowledged): to post "Recovery executed" or "Recovery failed,
	// dead-lettered" in the incident's thread. Skipped outcomes (a copy that was not due)
	// are reported too; a chat has nothing to say about them. It runs on the worker; keep
	// it short. A bot that dies between the ledger entry and this call does not make it:
	// the ledger is the record, this is a notification.
	OnOutcome func(ctx context.Context, o Outcome)
	// Executed, when set, keeps the idempotency keys of the executions whose webhook
	// answered 2xx outside Redis (ledger.ExecutedFile, beside the checkpoint file). A key
	// found there is never called again, even when Redis, rolled back to before the
	// execution, says the incident is still AUTHORIZED: the executor records a security
	// entry and reports a Refused outcome instead.
	Executed ExecutedKeys
	// OnClaim, when set, is called once an execution is claimed and found due in the
	// ledger, right before the first call. For tests that stop a bot mid-execution.
	OnClaim func(ctx context.Context, x Execution)
}

// ExecutedKeys remembers which executions ran, somewhere a loss of Redis does not reach.
type ExecutedKeys interface {
	// Executed reports whether the execution with idempotency key ran, and when.
	Executed(ctx context.Context, tenant, key string) (time.Time, bool, error)
	// MarkExecuted records, durably, that it ran at at.
	MarkExecuted(ctx context.Context, tenant, key string, at time.Time) error
}

// Validate checks the options.
func (o *Options) Validate() error {
	var probs []string
	if o.Redis == nil {
		probs = append(probs, "no Redis client")
	}
	if o.Ledger == nil {
		probs = append(probs, "no ledger")
	}
	if o.Targets == nil {
		probs = append(probs, "no Targets function")
	}
	if o.Workers < 0 || o.Attempts < 0 {
		probs = append(probs, "negative Workers or Attempts")
	}
	for name, d := range map[string]time.Duration{"Lease": o.Lease, "ReclaimEvery": o.ReclaimEvery, "Poll": o.Poll,
		"RedisTimeout": o.RedisTimeout, "AttemptTimeout": o.AttemptTimeout, "MaxRetryAfter": o.MaxRetryAfter} {
		if d < 0 {
			probs = append(probs, "negative "+name)
		}
	}
	if o.Lease > 0 && o.Lease < 30*time.Millisecond {
		probs = append(probs, "Lease under 30 ms")
	}
	for _, d := range o.Backoff {
		if d < 0 {
			probs = append(probs, "negative Backoff")
			break
		}
	}
	if o.Jitter > 1 {
		probs = append(probs, "Jitter above 1")
	}
	if strings.ContainsAny(o.Group+o.Consumer, " \t\r\n") {
		probs = append(probs, "Group or Consumer contains white space")
	}
	if len(probs) > 0 {
		return fmt.Errorf("%w: %s", ErrInvalidOptions, strings.Join(probs, "; "))
	}
	return nil
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Group == "" {
		o.Group = "executor"
	}
	if o.Consumer == "" {
		host, _ := os.Hostname()
		if host == "" {
			host = "bot"
		}
		b := make([]byte, 4)
		_, _ = rand.Read(b)
		o.Consumer = strings.ReplaceAll(host, " ", "_") + "-" + hex.EncodeToString(b)
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Lease == 0 {
		o.Lease = DefaultLease
	}
	if o.ReclaimEvery == 0 {
		o.ReclaimEvery = o.Lease / 3
	}
	if o.Poll == 0 {
		o.Poll = 2 * time.Second
	}
	if o.RedisTimeout == 0 {
		o.RedisTimeout = 5 * time.Second
	}
	if o.AttemptTimeout == 0 {
		o.AttemptTimeout = 10 * time.Second
	}
	if o.Attempts == 0 {
		o.Attempts = 3
	}
	if len(o.Backoff) == 0 {
		o.Backoff = []time.Duration{2 * time.Second, 4 * time.Second}
	}
	if o.Jitter == 0 {
		o.Jitter = 0.2
	} else if o.Jitter < 0 {
		o.Jitter = 0
	}
	if o.MaxRetryAfter == 0 {
		o.MaxRetryAfter = 60 * time.Second
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.LeaseClock == nil {
		o.LeaseClock = time.Now
	}
	if o.Sleep == nil {
		o.Sleep = sleep
	}
	if o.Rand == nil {
		o.Rand = mrand.Float64
	}
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
