package detector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/detector/netguard"
	"github.com/alertengine/alertengine/ledger"
)

// Detector turns metrics into ledger decisions. Create it with New; its methods are safe
// for concurrent use (evaluations and polls of one Detector are serialised; replicas
// coordinate through Redis).
type Detector struct {
	opts    Options
	rdb     redis.UniversalClient
	ledger  *ledger.Ledger
	log     *slog.Logger
	keys    keys
	tenants map[string]*Tenant
	push    []pushStream
	pull    []pullTarget
	stats   counters
	// seq makes rate-limit reservations unique within this replica.
	seq atomic.Uint64
	// evalMu and pollMu keep one Evaluate and one Poll at a time: two concurrent rounds of
	// the same replica would both hold the same leases.
	evalMu, pollMu sync.Mutex
	// nextPoll is when each pull-mode service is due a poll (Run's pollDue; pollMu).
	nextPoll map[pullTarget]time.Time
	// guarded polls health URLs through the dial guard; unguarded those of services with
	// AllowPrivateNetwork. Neither takes a proxy from the environment.
	guarded, unguarded *http.Client
}

type pullTarget struct {
	tenant *Tenant
	svc    Service
}

// New checks opts and returns a Detector. It does no I/O.
func New(opts Options) (*Detector, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	if opts.ReplicaID == "" {
		opts.ReplicaID = defaultReplicaID()
	}
	d := &Detector{
		opts:      opts,
		rdb:       opts.Redis,
		ledger:    opts.Ledger,
		log:       opts.Logger,
		keys:      keys{prefix: opts.KeyPrefix},
		tenants:   map[string]*Tenant{},
		guarded:   pollClient(true, opts.PollTimeout),
		unguarded: pollClient(false, opts.PollTimeout),
	}
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d.log = d.log.With("component", "detector", "replica", opts.ReplicaID)
	for i := range d.opts.Tenants {
		t := &d.opts.Tenants[i]
		d.tenants[t.ID] = t
		for _, s := range t.Services {
			if s.HealthURL != "" {
				d.pull = append(d.pull, pullTarget{tenant: t, svc: s})
			} else {
				d.push = append(d.push, pushStream{tenant: t.ID, service: s.Name, key: d.keys.stream(t.ID, s.Name)})
			}
		}
	}
	return d, nil
}

// pollClient is the health poller's HTTP client: no proxy from the environment (it would
// see every poll and be dialled instead of the target, outside the guard), redirects
// followed only within the health URL's origin, at most MaxRedirects, and, when guarded,
// non-public addresses refused at dial time. PollTimeout bounds each poll (a context).
func pollClient(guarded bool, dialTimeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     netguard.Transport(guarded, ErrPrivateAddress, dialTimeout),
		CheckRedirect: netguard.SameOrigin(MaxRedirects),
	}
}

func defaultReplicaID() string {
	host, _ := os.Hostname()
	if host == "" {
		host = "detector"
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// ReplicaID is this replica's name in consumer groups and leases.
func (d *Detector) ReplicaID() string { return d.opts.ReplicaID }

// redisCtx bounds one Redis call.
func (d *Detector) redisCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.opts.RedisTimeout)
}

// ledgerCtx bounds one ledger call (a stage read and a group-committed append).
func (d *Detector) ledgerCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 5*d.opts.RedisTimeout)
}

// AlertExpiryInterval is how often Run forgets Alertmanager alerts not re-sent in time.
const AlertExpiryInterval = time.Minute

// Run reads the metric streams and judges the push-mode windows that became complete
// every ReadInterval, polls each pull-mode service every its PollInterval (a second after
// a poll under the threshold, to confirm it), reclaims abandoned stream entries every
// ClaimIdle/2 and expires Alertmanager alerts every AlertExpiryInterval, until ctx ends.
// Errors of one
// round are logged and the next round tries again; Run returns ctx's error.
func (d *Detector) Run(ctx context.Context) error {
	if err := d.EnsureGroups(ctx); err != nil {
		d.log.Warn("create consumer groups", "err", err)
	}
	var wg sync.WaitGroup
	loop := func(name string, next func(now time.Time) time.Duration, round func(ctx context.Context, now time.Time) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			timer := time.NewTimer(next(d.opts.Clock()))
			defer timer.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-timer.C:
				}
				if err := round(ctx, d.opts.Clock()); err != nil && ctx.Err() == nil {
					d.log.Warn(name+" round failed", "err", err)
				}
				timer.Reset(next(d.opts.Clock()))
			}
		}()
	}
	every := func(p time.Duration) func(time.Time) time.Duration {
		return func(time.Time) time.Duration { return p }
	}
	if len(d.push) > 0 {
		loop("push", every(d.opts.ReadInterval), func(ctx context.Context, _ time.Time) error {
			_, ierr := d.Ingest(ctx)
			// Judge with the time after the read, so what was just stored counts.
			return errors.Join(ierr, d.Evaluate(ctx, d.opts.Clock()))
		})
		loop("reclaim", every(d.opts.ClaimIdle/2), func(ctx context.Context, _ time.Time) error {
			_, err := d.Reclaim(ctx)
			return err
		})
	}
	if len(d.pull) > 0 {
		loop("poll", every(d.pollTick()), d.pollDue)
	}
	for _, t := range d.opts.Tenants {
		if t.AlertmanagerToken != "" {
			loop("alertmanager expiry", every(AlertExpiryInterval), d.ExpireAlerts)
			break
		}
	}
	wg.Wait()
	d.leaveGroups()
	return ctx.Err()
}

// leaveGroups removes this replica from the streams' consumer groups where it holds
// nothing pending, so restarts do not pile up consumer names in Redis.
func (d *Detector) leaveGroups() {
	for _, ps := range d.push {
		ctx, cancel := d.redisCtx(context.Background())
		if err := leaveScript.Run(ctx, d.rdb, []string{ps.key}, group, d.opts.ReplicaID).Err(); err != nil {
			d.log.Warn("leave consumer group", "stream", ps.key, "err", err)
		}
		cancel()
	}
}

// leaveScript deletes consumer ARGV[2] of group ARGV[1] if it holds no pending entry.
var leaveScript = redis.NewScript(`
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if not ok or #p > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
`)

// Stats are counters since New, for the bot's own metrics.
type Stats struct {
	Evaluations, Skipped                       uint64 // judged windows; windows under MinSamples
	Opened, Updated, Recovered, Resolved       uint64
	Suppressed                                 uint64 // detections over the incidents-per-hour limit
	Summaries, InvalidSummaries, LateSummaries uint64
	Reclaimed                                  uint64 // stream entries taken over from another consumer
	PollErrors                                 uint64 // unreachable or malformed health endpoints
	AlertmanagerAlerts, AlertmanagerDuplicates uint64
	AlertmanagerUnknown, AlertmanagerRefused   uint64 // unknown services; refused requests (401/413/400)
	// AlertmanagerRefusedBy counts the refused requests by reason (RefusedReasons).
	AlertmanagerRefusedBy map[string]uint64
	// AlertmanagerOverMax counts notifications with more alerts than the tenant's max
	// alerts (the rest were treated as truncated); AlertmanagerExpired firing alerts
	// forgotten because no notification re-sent them within the expiry.
	AlertmanagerOverMax, AlertmanagerExpired uint64
	LostLeases, StageRaces                   uint64 // gate writes refused after losing a lease; ledger races lost
}

type counters struct {
	evaluations, skipped                       atomic.Uint64
	opened, updated, recovered, resolved       atomic.Uint64
	suppressed                                 atomic.Uint64
	summaries, invalidSummaries, lateSummaries atomic.Uint64
	reclaimed, pollErrors                      atomic.Uint64
	amAlerts, amDuplicates, amUnknown          atomic.Uint64
	amRefused, lostLeases, stageRaces          atomic.Uint64
	amRefusedBy                                [4]atomic.Uint64 // by RefusedReasons
	amOverMax, amExpired                       atomic.Uint64
}

// Stats returns the counters.
func (d *Detector) Stats() Stats {
	c := &d.stats
	s := Stats{
		Evaluations: c.evaluations.Load(), Skipped: c.skipped.Load(),
		Opened: c.opened.Load(), Updated: c.updated.Load(), Recovered: c.recovered.Load(), Resolved: c.resolved.Load(),
		Suppressed: c.suppressed.Load(),
		Summaries:  c.summaries.Load(), InvalidSummaries: c.invalidSummaries.Load(), LateSummaries: c.lateSummaries.Load(),
		Reclaimed: c.reclaimed.Load(), PollErrors: c.pollErrors.Load(),
		AlertmanagerAlerts: c.amAlerts.Load(), AlertmanagerDuplicates: c.amDuplicates.Load(),
		AlertmanagerUnknown: c.amUnknown.Load(), AlertmanagerRefused: c.amRefused.Load(),
		LostLeases: c.lostLeases.Load(), StageRaces: c.stageRaces.Load(),
		AlertmanagerRefusedBy: map[string]uint64{},
		AlertmanagerOverMax:   c.amOverMax.Load(), AlertmanagerExpired: c.amExpired.Load(),
	}
	for i, r := range RefusedReasons {
		s.AlertmanagerRefusedBy[r] = c.amRefusedBy[i].Load()
	}
	return s
}

// errLeaseLost: the gate state was not written because another replica took the lease.
var errLeaseLost = errors.New("lease lost")
