package outhook

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/detector/netguard"
	"github.com/alertengine/alertengine/ledger"
)

// ErrPrivateAddress is the cause of a dial the guard refused: the webhook URL resolved to
// an address the tenant did not allow (loopback, private, link-local, CGNAT, unspecified,
// multicast or reserved). It also matches netguard.ErrRefused.
var ErrPrivateAddress = errors.New("outbound webhook URL resolves to a private/loopback/link-local address (allow_private_network is false)")

// Target is one URL a tenant's events are sent to.
type Target struct {
	// Name labels the target in metrics and logs; default: the URL's host. Unique within
	// a tenant.
	Name string
	// URL is an absolute http(s) URL. Only its host is ever logged.
	URL string
	// Secret is the Standard Webhooks signing secret: "whsec_" followed by the base64 of
	// 24 to 64 random bytes.
	Secret string
	// Events are the payload types to send (EventTypes); empty: all of them.
	Events []string
	// AllowPrivateNetwork lets the URL resolve to a loopback, private, link-local or CGNAT
	// address; otherwise such a dial is refused (a final failure).
	AllowPrivateNetwork bool
	// Timeout bounds one attempt (connect, send, response headers and body); default 15s.
	Timeout time.Duration
}

// Tenant is a tenant and its targets.
type Tenant struct {
	ID      string
	Targets []Target
}

// Options configure a Sender.
type Options struct {
	// Store is the ledger the events are read from.
	Store ledger.Store
	// Redis keeps the cursors and the leases; Prefix is put before every key.
	Redis  redis.UniversalClient
	Prefix string
	// Tenants with at least one target.
	Tenants []Tenant
	// Logger; default slog.Default(). Registerer receives the metrics; nil: none.
	Logger     *slog.Logger
	Registerer prometheus.Registerer
	// Poll is how often a caught-up target looks for new entries; default 1s.
	Poll time.Duration
	// Lease is how long a replica's hold on a tenant lasts without renewal (renewed every
	// third of it); default 30s. After a crash another replica takes over within it.
	Lease time.Duration
	// MaxAttempts bounds the attempts of one event; default 16 (with the default backoff,
	// about an hour of retrying, during which later events to that URL wait, in order).
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the wait between attempts (doubling from MinBackoff,
	// with ±25% jitter; a Retry-After up to MaxBackoff is honoured); defaults 1s and 10m.
	MinBackoff, MaxBackoff time.Duration
	// MaxBacklog is how many seqs a target may fall behind the chain's tail; older
	// undelivered entries are skipped (counted as failed, reason backlog_dropped); default
	// 10000.
	MaxBacklog uint64
	// Backfill is how many of the chain's latest seqs a target without a cursor (new, or
	// its URL changed) receives; default 0: only what is appended after Mark (or Run)
	// read the chain.
	Backfill uint64
	// DialTimeout bounds connect and TLS handshake; default 5s.
	DialTimeout time.Duration
	// Instance names this replica's leases; default random.
	Instance string
}

// Sender follows tenants' chains and delivers their events.
type Sender struct {
	opts    Options
	tenants []*tenant
	guarded *http.Client
	open    *http.Client
	m       *metrics

	renewScript, releaseScript, advanceScript *redis.Script
}

type tenant struct {
	id       string
	leaseKey string
	targets  []*target
	// start is the chain's tail when Mark read it (marked): a target without a cursor
	// starts there, not at the tail when this replica first holds the lease.
	start  uint64
	marked bool
}

type target struct {
	Target
	key    []byte // the decoded secret
	host   string
	cursor string // Redis key
	events map[string]bool
	log    *slog.Logger
}

// New checks opts and returns a Sender. Every problem it reports names the tenant and the
// target, never the secret or the URL's path or query.
func New(opts Options) (*Sender, error) {
	if opts.Store == nil || opts.Redis == nil {
		return nil, errors.New("outhook: Store and Redis are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	setDefault(&opts.Poll, time.Second)
	setDefault(&opts.Lease, 30*time.Second)
	setDefault(&opts.MinBackoff, time.Second)
	setDefault(&opts.MaxBackoff, 10*time.Minute)
	setDefault(&opts.DialTimeout, 5*time.Second)
	if opts.MaxAttempts <= 0 {
		opts.MaxAttempts = 16
	}
	if opts.MaxBacklog == 0 {
		opts.MaxBacklog = 10000
	}
	if opts.MaxBackoff < opts.MinBackoff {
		return nil, errors.New("outhook: MaxBackoff is below MinBackoff")
	}
	if opts.Instance == "" {
		b := make([]byte, 8)
		_, _ = rand.Read(b)
		opts.Instance = hex.EncodeToString(b)
	}
	s := &Sender{opts: opts}
	seen := map[string]bool{}
	for _, tc := range opts.Tenants {
		if !ledger.ValidTenant(tc.ID) {
			return nil, fmt.Errorf("outhook: tenant %q is not [a-z0-9-]{1,32}", ledger.Clip(tc.ID, 40))
		}
		if seen[tc.ID] {
			return nil, fmt.Errorf("outhook: tenant %s listed twice", tc.ID)
		}
		seen[tc.ID] = true
		t := &tenant{id: tc.ID, leaseKey: opts.Prefix + "{outhook:" + tc.ID + "}:lease"}
		names := map[string]bool{}
		urls := map[string]bool{}
		for i, tg := range tc.Targets {
			x, err := newTarget(opts, tc.ID, tg)
			if err != nil {
				return nil, fmt.Errorf("outhook: tenant %s, webhook %d: %w", tc.ID, i+1, err)
			}
			if names[x.Name] {
				return nil, fmt.Errorf("outhook: tenant %s, webhook %d: name %q used twice (give each webhook its own name)", tc.ID, i+1, x.Name)
			}
			if urls[x.cursor] {
				return nil, fmt.Errorf("outhook: tenant %s, webhook %d (%s): the same URL twice", tc.ID, i+1, x.Name)
			}
			names[x.Name], urls[x.cursor] = true, true
			t.targets = append(t.targets, x)
		}
		if len(t.targets) > 0 {
			s.tenants = append(s.tenants, t)
		}
	}
	s.guarded = newClient(true, opts.DialTimeout)
	s.open = newClient(false, opts.DialTimeout)
	m, err := newMetrics(opts.Registerer)
	if err != nil {
		return nil, err
	}
	s.m = m
	// The lease holds the owner's token; only the owner renews or releases it.
	s.renewScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0`)
	s.releaseScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0`)
	// A cursor moves forward only, and only while the caller holds the tenant's lease:
	// a replica that lost its lease cannot move it back or past what the new owner sent.
	s.advanceScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return -1 end
local cur = tonumber(redis.call('GET', KEYS[2]) or '0')
local want = tonumber(ARGV[2])
if ARGV[3] == 'reset' then
  redis.call('SET', KEYS[2], ARGV[2])
  return want
end
if ARGV[3] == 'init' then
  if redis.call('EXISTS', KEYS[2]) == 1 then return cur end
  redis.call('SET', KEYS[2], ARGV[2])
  return want
end
if want > cur then redis.call('SET', KEYS[2], ARGV[2]) return want end
return cur`)
	return s, nil
}

func setDefault(d *time.Duration, v time.Duration) {
	if *d <= 0 {
		*d = v
	}
}

func newTarget(opts Options, tenantID string, tg Target) (*target, error) {
	u, err := url.Parse(tg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("url is not an absolute http(s) URL")
	}
	key, err := DecodeSecret(tg.Secret)
	if err != nil {
		return nil, err
	}
	x := &target{Target: tg, key: key, host: u.Host, events: map[string]bool{}}
	if x.Name == "" {
		x.Name = u.Host
	}
	x.Name = ledger.Clip(x.Name, 64)
	setDefault(&x.Timeout, 15*time.Second)
	if x.Timeout > 5*time.Minute {
		return nil, fmt.Errorf("timeout %s is above 5m (one attempt, the receiver's work included)", x.Timeout)
	}
	for _, ev := range tg.Events {
		if !knownType(ev) {
			return nil, fmt.Errorf("unknown event type %q (known: %s)", ledger.Clip(ev, 40), strings.Join(EventTypes, ", "))
		}
		x.events[ev] = true
	}
	sum := sha256.Sum256([]byte(tg.URL))
	x.cursor = opts.Prefix + "{outhook:" + tenantID + "}:cursor:" + hex.EncodeToString(sum[:8]) // one slot with the lease
	x.log = opts.Logger.With("component", "outhook", "tenant", tenantID, "webhook", x.Name, "host", x.host)
	return x, nil
}

// DecodeSecret returns the key of a Standard Webhooks secret: "whsec_" then the standard
// base64 of 24 to 64 bytes. The error never contains the secret.
func DecodeSecret(secret string) ([]byte, error) {
	rest, ok := strings.CutPrefix(secret, "whsec_")
	if !ok {
		return nil, errors.New(`secret does not start with "whsec_"`)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return nil, errors.New(`secret after "whsec_" is not standard base64`)
	}
	if len(key) < 24 || len(key) > 64 {
		return nil, fmt.Errorf("secret decodes to %d bytes; the Standard Webhooks scheme wants 24 to 64", len(key))
	}
	return key, nil
}

// newClient returns the HTTP client of the webhook calls: no proxy from the environment,
// redirects never followed (a 3xx is a final failure), and, when guarded, the dial-time
// address guard the recovery webhook uses.
func newClient(guarded bool, dialTimeout time.Duration) *http.Client {
	return &http.Client{
		Transport: netguard.Transport(guarded, ErrPrivateAddress, dialTimeout),
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// Run sends the tenants' events until ctx ends, then returns nil after releasing its
// leases. Redis or store errors are logged and retried; they never end Run.
func (s *Sender) Run(ctx context.Context) error {
	s.Mark(ctx)
	s.opts.Logger.Info("outbound webhooks running", "component", "outhook", "tenants", len(s.tenants), "instance", s.opts.Instance)
	var wg sync.WaitGroup
	for _, t := range s.tenants {
		wg.Go(func() { s.runTenant(ctx, t) })
	}
	<-ctx.Done() // with no tenant too: Run ends only with ctx
	wg.Wait()
	return nil
}

// Mark reads each tenant's chain tail, once: a target without a cursor (new, or its URL
// changed) receives what is appended after that moment (and Backfill seqs before it),
// however late this replica takes the tenant's lease. Call it before the bot takes in
// anything that could open an incident; Run marks the tenants not marked yet. A tenant
// whose tail cannot be read is marked later, by its first pass under the lease.
func (s *Sender) Mark(ctx context.Context) {
	for _, t := range s.tenants {
		if t.marked {
			continue
		}
		tail, err := s.opts.Store.Tail(ctx, t.id)
		if err != nil {
			s.opts.Logger.Warn("read chain tail to start from", "component", "outhook", "tenant", t.id, "err", err)
			continue
		}
		t.start, t.marked = tail.Seq, true
	}
}

// runTenant takes the tenant's lease when it is free and, while it holds it, runs one
// loop per target; it gives the lease back when ctx ends.
func (s *Sender) runTenant(ctx context.Context, t *tenant) {
	log := s.opts.Logger.With("component", "outhook", "tenant", t.id)
	for ctx.Err() == nil {
		ok, err := s.opts.Redis.SetNX(ctx, t.leaseKey, s.opts.Instance, s.opts.Lease).Result()
		if err != nil && ctx.Err() == nil {
			log.Warn("take lease", "err", err)
		}
		if !ok {
			sleep(ctx, s.opts.Lease/3)
			continue
		}
		log.Info("lease taken; sending this tenant's events")
		s.hold(ctx, t, log)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = s.releaseScript.Run(rctx, s.opts.Redis, []string{t.leaseKey}, s.opts.Instance).Err()
		cancel()
	}
}

// hold runs the targets and renews the lease until ctx ends or the lease is lost (taken
// by another replica, or not renewed within two thirds of its length).
func (s *Sender) hold(ctx context.Context, t *tenant, log *slog.Logger) {
	lctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel() // stop the targets first: the lease may be lost while they run
		wg.Wait()
	}()
	for _, x := range t.targets {
		wg.Go(func() {
			s.runTarget(lctx, t, x)
			cancel() // a target stops only when the lease is lost or ctx ended
		})
	}
	renewed := time.Now()
	tick := time.NewTicker(s.opts.Lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-lctx.Done():
			if ctx.Err() == nil { // a target found the lease taken before this renewal did
				log.Warn("lease lost to another replica; stopping this tenant's deliveries")
			}
			return
		case <-tick.C:
		}
		n, err := s.renewScript.Run(lctx, s.opts.Redis, []string{t.leaseKey}, s.opts.Instance, s.opts.Lease.Milliseconds()).Int()
		switch {
		case err == nil && n == 1:
			renewed = time.Now()
		case err == nil:
			log.Warn("lease lost to another replica; stopping this tenant's deliveries")
			return
		case time.Since(renewed) > s.opts.Lease*2/3:
			log.Warn("lease not renewed in time; stopping this tenant's deliveries", "err", err)
			return
		default:
			log.Warn("renew lease", "err", err)
		}
	}
}

// errLeaseLost ends a target's loop: another replica holds the tenant now.
var errLeaseLost = errors.New("lease lost")

// Cursor moves.
const (
	moveForward = "move"  // to seq if that is past the stored cursor
	initCursor  = "init"  // to seq if there is no cursor yet
	resetCursor = "reset" // to seq, even backwards
)

// advance moves the target's cursor (see the modes) and returns the cursor now stored.
func (s *Sender) advance(ctx context.Context, t *tenant, x *target, seq uint64, mode string) (uint64, error) {
	n, err := s.advanceScript.Run(ctx, s.opts.Redis, []string{t.leaseKey, x.cursor}, s.opts.Instance, seq, mode).Int64()
	if err != nil {
		return 0, fmt.Errorf("move cursor: %w", err)
	}
	if n < 0 {
		return 0, errLeaseLost
	}
	return uint64(n), nil
}

// runTarget delivers the entries past the target's cursor, in order, until ctx ends or
// the lease is lost.
func (s *Sender) runTarget(ctx context.Context, t *tenant, x *target) {
	lag := s.m.lag.WithLabelValues(t.id, x.Name)
	defer s.m.lag.DeleteLabelValues(t.id, x.Name) // another replica reports it now
	var cursor uint64
	started := false
	for ctx.Err() == nil {
		tail, err := s.opts.Store.Tail(ctx, t.id)
		if err != nil {
			if ctx.Err() == nil {
				x.log.Warn("read chain tail", "err", err)
			}
			sleep(ctx, s.opts.Poll)
			continue
		}
		if !started {
			from := tail.Seq
			if t.marked {
				from = min(from, t.start) // a chain restarted since keeps its new tail
			}
			cursor, err = s.advance(ctx, t, x, from-min(from, s.opts.Backfill), initCursor)
			if err != nil {
				if errors.Is(err, errLeaseLost) {
					return
				}
				x.log.Warn("read cursor", "err", err)
				sleep(ctx, s.opts.Poll)
				continue
			}
			started = true
		}
		if tail.Seq < cursor {
			// The chain is behind what was handled: the store lost the ledger and it
			// restarted (the cursor survived it). Follow the new chain from its start; its
			// entries have new hashes, hence new ids.
			if _, err := s.advance(ctx, t, x, 0, resetCursor); err != nil {
				if errors.Is(err, errLeaseLost) {
					return
				}
				x.log.Warn("reset cursor", "err", err)
				sleep(ctx, s.opts.Poll)
				continue
			}
			x.log.Warn("the ledger's chain is behind this webhook's cursor (the ledger was lost and restarted); following the new chain from its start",
				"cursor", cursor, "tail", tail.Seq)
			cursor = 0
		}
		if tail.Seq > cursor+s.opts.MaxBacklog {
			to := tail.Seq - s.opts.MaxBacklog
			if _, err := s.advance(ctx, t, x, to, moveForward); err != nil {
				if errors.Is(err, errLeaseLost) {
					return
				}
				x.log.Warn("skip backlog", "err", err)
				sleep(ctx, s.opts.Poll)
				continue
			}
			x.log.Warn("target too far behind: oldest undelivered entries skipped", "skipped_from_seq", cursor+1, "skipped_to_seq", to, "max_backlog", s.opts.MaxBacklog)
			s.m.failed.WithLabelValues(t.id, x.Name, "backlog_dropped").Add(float64(to - cursor))
			cursor = to
		}
		lag.Set(float64(tail.Seq - min(tail.Seq, cursor)))
		if tail.Seq <= cursor {
			sleep(ctx, s.opts.Poll)
			continue
		}
		entries, err := s.opts.Store.Range(ctx, t.id, cursor+1, 100)
		if err != nil {
			if ctx.Err() == nil {
				x.log.Warn("read chain", "err", err)
			}
			sleep(ctx, s.opts.Poll)
			continue
		}
		if len(entries) == 0 {
			sleep(ctx, s.opts.Poll)
			continue
		}
		last := cursor
		for _, e := range entries {
			if e.Seq <= last {
				continue
			}
			if typ, ok := EventType(e); ok && x.wants(typ) {
				if !s.deliver(ctx, t, x, e, typ) {
					return // ctx ended: the cursor stays before e, which is sent again
				}
				if cursor, err = s.advance(ctx, t, x, e.Seq, moveForward); err != nil {
					if !errors.Is(err, errLeaseLost) {
						x.log.Warn("move cursor after delivery; the entry will be sent again", "seq", e.Seq, "err", err)
					}
					return
				}
			}
			last = e.Seq
		}
		if last > cursor {
			if cursor, err = s.advance(ctx, t, x, last, moveForward); err != nil {
				if errors.Is(err, errLeaseLost) {
					return
				}
				x.log.Warn("move cursor", "err", err)
			}
		}
		lag.Set(float64(tail.Seq - min(tail.Seq, cursor)))
	}
}

func (x *target) wants(typ string) bool { return len(x.events) == 0 || x.events[typ] }

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
