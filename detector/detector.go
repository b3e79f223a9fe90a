package detector

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

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
	intakes []Intake
	stats   counters
	// seq makes rate-limit reservations unique within this replica.
	seq atomic.Uint64
	// evalMu keeps one Evaluate at a time: two concurrent rounds of the same replica
	// would both hold the same leases.
	evalMu sync.Mutex
	// locks holds one *sync.Mutex per "tenant/service" judged through Judge.
	locks sync.Map
	// detectedCache remembers incidents' DETECTED entries ("tenant/incident"), at most
	// detectedCacheSize (detectedCount).
	detectedCache sync.Map
	detectedCount atomic.Int64
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
		opts:    opts,
		rdb:     opts.Redis,
		ledger:  opts.Ledger,
		log:     opts.Logger,
		keys:    keys{prefix: opts.KeyPrefix},
		tenants: map[string]*Tenant{},
	}
	if d.log == nil {
		d.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	d.log = d.log.With("component", "detector", "replica", opts.ReplicaID)
	for i := range d.opts.Tenants {
		t := &d.opts.Tenants[i]
		d.tenants[t.ID] = t
		for _, s := range t.Services {
			if s.Pushed() {
				d.push = append(d.push, pushStream{tenant: t.ID, service: s.Name, key: d.keys.stream(t.ID, s.Name)})
			}
		}
	}
	if err := d.buildIntakes(); err != nil {
		return nil, err
	}
	return d, nil
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

// redisCtx bounds one Redis call.
func (d *Detector) redisCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, d.opts.RedisTimeout)
}

// ledgerCtx bounds one ledger call (a stage read and a group-committed append).
func (d *Detector) ledgerCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, 5*d.opts.RedisTimeout)
}

// Run reads the metric streams and judges the push-mode windows that became complete
// every ReadInterval, reclaims abandoned stream entries every ClaimIdle/2, and runs every
// intake's Run (Options.Intakes), until ctx ends. Errors of one round are logged and the
// next round tries again; Run returns ctx's error.
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
	for _, in := range d.intakes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := in.Run(ctx); err != nil && ctx.Err() == nil {
				d.log.Error("intake stopped", "source", in.Source(), "err", err)
			}
		}()
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
	PollErrors                                 uint64 // failed readings (ObserveFailure): unreachable or malformed health endpoints
	LostLeases, StageRaces                     uint64 // gate writes refused after losing a lease; ledger races lost
}

type counters struct {
	evaluations, skipped                       atomic.Uint64
	opened, updated, recovered, resolved       atomic.Uint64
	suppressed                                 atomic.Uint64
	summaries, invalidSummaries, lateSummaries atomic.Uint64
	reclaimed, pollErrors                      atomic.Uint64
	lostLeases, stageRaces                     atomic.Uint64
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
		LostLeases: c.lostLeases.Load(), StageRaces: c.stageRaces.Load(),
	}
	return s
}

// ErrLeaseLost: the gate state was not written because another replica took the lease
// (the reading is that replica's to judge).
var ErrLeaseLost = errors.New("lease lost")
