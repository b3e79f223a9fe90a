package sdk

import (
	"cmp"
	"context"
	"log/slog"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/sdk/health"
)

// Version of the SDK, reported by /__alertengine/status.
const Version = "0.1.0"

// Windows kept in memory.
const (
	// windowSeconds is the sliding window /health/alerts judges.
	windowSeconds = 60
	// historyMinutes is how many per-minute aggregates are kept.
	historyMinutes = 60
	// evalEvery is the cadence, in seconds, of the evaluations that feed the trend and
	// the baseline; also the length of the two windows rate of change compares.
	evalEvery = 10
	// drainGrace: a second is drained once the clock is this far past its end, so
	// requests that chose their shard just before the boundary have counted (a request
	// stalled longer is shipped late, see collectLocked). The background loop wakes
	// drainGrace after every wall-clock second: a summary leaves about 0.1 s after its
	// second ends.
	drainGrace = 100 * time.Millisecond
	// surgeEvery is how often, in push mode, the background loop looks at the second in
	// progress: when at least surgeMinErrors of the requests recorded in it and not yet
	// shipped answered 5xx, and at least half of them did, what it holds so far is shipped at
	// once (Summary.Early) instead of after the second ends. A failure that starts
	// mid-second reaches the detector within a tenth of a second of being large, not a
	// second later; a service without such a surge ships exactly as before.
	surgeEvery     = 100 * time.Millisecond
	surgeMinErrors = 10
)

// drainableUpTo is the last second that is over, grace included, at now.
func drainableUpTo(now time.Time) int64 {
	return now.Add(-drainGrace).Unix() - 1
}

// SDK instruments one service. Create it with New, wrap the service's handler with
// Instrument, and Close it on shutdown.
type SDK struct {
	opts  Options
	log   *slog.Logger
	clock func() time.Time
	scale scale

	// With the default clock, requests read only the monotonic clock: their wall time
	// is wallAtEpoch (unix ns of epoch, re-read by every tick so a stepped wall clock
	// is followed) plus the monotonic time since epoch.
	realClock   bool
	epoch       time.Time
	wallAtEpoch atomic.Int64

	// The hot path: lock-free.
	hot       [slotCount][]hotShard
	shardMask uint32
	routes    atomic.Pointer[routeTable]
	routeMu   sync.Mutex // only to register a new route

	// mu guards the windows and the judgement; the collector, the endpoints and Close
	// take it, requests never do.
	mu       sync.Mutex
	lastSec  int64              // every shard stamped up to here is drained
	drained  [slotCount][]int64 // stamp of each shard when last drained
	deltas   []delta            // scratch of collectLocked
	seconds  [windowSeconds]second
	minutes  [historyMinutes]minute
	baseline health.Baseline
	scores   []float64 // last health.TrendWindow evaluated scores, oldest first

	ship       *shipper // nil in memory mode
	earlySec   int64    // the last second part of which was shipped early (shipSurge)
	mode       string   // "memory" or "redis"
	urlProblem string   // why push mode is off although RedisURL was set

	cancel    context.CancelFunc
	stop      chan struct{}
	done      chan struct{}
	closeOnce sync.Once
	closeErr  error
	// tickDone, when set (tests), receives after every tick of the background loop.
	tickDone chan struct{}
}

// second is a completed one-second bucket.
type second struct {
	sec                  int64
	count, e5xx, e4xx    uint64
	sumMicros, maxMicros uint64
	sketch               *ddsketch.DDSketch // reused from bucket to bucket
}

// minute is a per-minute aggregate.
type minute struct {
	min                  int64 // unix minute; 0 when unused
	count, e5xx, e4xx    uint64
	sumMicros, maxMicros uint64
	sketch               *ddsketch.DDSketch
	routes               []routeAgg // by route id
}

type routeAgg struct {
	count, e5xx, e4xx, sumMicros, maxMicros uint64
}

// New returns a running SDK. It never fails: invalid options are logged (see
// Options.Validate) and replaced — an empty Service by "unnamed", an empty Tenant by
// "default", an unusable RedisURL by memory mode, reported by /metrics/ingestion. In push
// mode a background goroutine ships summaries; Close stops it.
func New(opts Options) *SDK {
	s := newSDK(opts)
	s.start(nextDrain)
	return s
}

// surgeTicks is the channel of the surge looks (see surgeEvery): a ticker in push mode
// with the real clock, nil otherwise (tests drive shipSurge themselves).
func (s *SDK) surgeTicks() (<-chan time.Time, func()) {
	if s.ship == nil || !s.realClock {
		return nil, func() {}
	}
	t := time.NewTicker(surgeEvery)
	return t.C, t.Stop
}

// newSDK builds an SDK without its background loop.
func newSDK(opts Options) *SDK {
	if err := opts.Validate(); err != nil {
		if opts.Logger != nil {
			opts.Logger.Error("alertengine sdk: invalid options, using fallbacks", "err", err)
		}
	}
	realClock := opts.Clock == nil
	opts = opts.withDefaults()
	s := &SDK{
		realClock: realClock,
		epoch:     time.Now(),
		opts:      opts,
		log:       opts.Logger,
		clock:     opts.Clock,
		scale:     newScale(),
		mode:      "memory",
		stop:      make(chan struct{}),
		done:      make(chan struct{}),
	}
	shards := 1
	for shards < 2*runtime.GOMAXPROCS(0) && shards < maxShards {
		shards *= 2
	}
	s.shardMask = uint32(shards - 1)
	bins := s.scale.maxIndex - s.scale.minIndex + 1
	for i := range s.hot {
		s.drained[i] = make([]int64, shards)
		s.hot[i] = make([]hotShard, shards)
		for j := range s.hot[i] {
			s.hot[i][j].bins = make([]atomic.Uint32, bins)
		}
	}
	s.routes.Store(newRouteTable())
	s.wallAtEpoch.Store(s.epoch.UnixNano())
	for i := range s.seconds {
		s.seconds[i].sketch = s.scale.newSketch()
	}
	for i := range s.minutes {
		s.minutes[i].sketch = s.scale.newSketch()
	}
	s.lastSec = s.clock().Unix() - 1

	if opts.RedisURL != "" {
		ropts, err := redis.ParseURL(opts.RedisURL)
		if err != nil {
			s.log.Error("alertengine sdk: RedisURL is not a valid redis:// or rediss:// URL; memory mode")
			s.urlProblem = "RedisURL is not a valid redis:// or rediss:// URL"
		} else {
			s.ship = newShipper(ropts, opts, StreamKey(opts.KeyPrefix, opts.Tenant, opts.Service))
			s.mode = "redis"
		}
	}
	return s
}

// nextDrain fires drainGrace after the next wall-clock second (real time, whatever the
// injected clock: the loop only schedules, the clock decides what is over).
func nextDrain() <-chan time.Time {
	now := time.Now()
	return time.After(now.Truncate(time.Second).Add(time.Second + drainGrace).Sub(now))
}

// start runs the background loop, waking whenever next's channel fires.
func (s *SDK) start(next func() <-chan time.Time) {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	go s.run(ctx, next)
}

func (s *SDK) run(ctx context.Context, next func() <-chan time.Time) {
	defer close(s.done)
	surge, stop := s.surgeTicks()
	defer stop()
	drain := next()
	for {
		select {
		case <-s.stop:
			return
		case <-surge:
			s.shipSurge(ctx)
		case <-drain:
			s.tick(ctx)
			if s.tickDone != nil {
				s.tickDone <- struct{}{}
			}
			drain = next()
		}
	}
}

// shipSurge ships what the second in progress holds so far when its errors surge (see
// surgeEvery). The shards it drains are not marked drained: what they record afterwards
// goes out with the second, after it ends, as another summary of the same bucket.
func (s *SDK) shipSurge(ctx context.Context) {
	if s.ship == nil {
		return
	}
	now := s.clock()
	sec := now.Unix()
	s.mu.Lock()
	if sec <= s.lastSec {
		s.mu.Unlock()
		return
	}
	nRoutes := len(s.routes.Load().names)
	slot := s.hot[sec&(slotCount-1)]
	var n, e5 uint64
	for i := range slot {
		if slot[i].sec.Load() != sec {
			continue
		}
		for r := 0; r < nRoutes; r++ {
			n += slot[i].routes[r].count.Load()
			e5 += slot[i].routes[r].e5xx.Load()
		}
	}
	if e5 < surgeMinErrors || 2*e5 < n {
		s.mu.Unlock()
		return
	}
	s.deltas = s.deltas[:0]
	for i := range slot {
		if slot[i].sec.Load() == sec {
			s.drainShardLocked(&slot[i], sec, nRoutes)
		}
	}
	for i := range s.deltas {
		d := &s.deltas[i]
		if d.count == 0 {
			continue
		}
		early := max(min(now.Sub(time.Unix(sec, 0)).Truncate(time.Millisecond), 999*time.Millisecond), time.Millisecond)
		s.ship.enqueue(Summary{
			Tenant: s.opts.Tenant, Service: s.opts.Service, Instance: s.opts.Instance,
			Bucket: time.Unix(d.sec, 0).UTC(), Count: d.count,
			Errors5xx: min(d.e5xx, d.count), Errors4xx: min(d.e4xx, d.count-min(d.e5xx, d.count)),
			Early: early, sketch: d.sketch,
		}.Fields())
		s.earlySec = sec
	}
	s.mu.Unlock()
	s.ship.flush(ctx)
}

// tick drains the seconds that are over and ships what is buffered.
func (s *SDK) tick(ctx context.Context) {
	if s.realClock {
		s.wallAtEpoch.Store(time.Now().UnixNano() - int64(time.Since(s.epoch)))
	}
	s.mu.Lock()
	s.collectLocked(drainableUpTo(s.clock()))
	s.mu.Unlock()
	if s.ship != nil {
		s.ship.flush(ctx)
	}
}

// Close stops the background loop, drains the seconds that are over and makes one last
// attempt (bounded by RedisTimeout) to ship what is buffered. Requests may still be
// served afterwards; they are no longer judged or shipped.
func (s *SDK) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		if s.cancel != nil {
			s.cancel()
			<-s.done
		}
		s.mu.Lock()
		s.collectLocked(s.clock().Unix() - 1)
		s.mu.Unlock()
		if s.ship != nil {
			s.ship.flush(context.Background())
			s.closeErr = s.ship.close()
		}
	})
	return s.closeErr
}

// collectLocked drains every shard whose second is at most upTo, then runs the
// evaluations due up to upTo.
//
// Each shard is stamped with the second it holds, so a shard is attributed to its own
// second even when the collector falls behind (a paused process, a jump of the clock).
// Data written after its shard was drained (a request preempted for seconds between
// choosing its shard and counting) is drained with the shard's next second.
func (s *SDK) collectLocked(upTo int64) {
	if upTo <= s.lastSec {
		return
	}
	nRoutes := len(s.routes.Load().names)
	s.deltas = s.deltas[:0]
	for slot := range s.hot {
		for i := range s.hot[slot] {
			sh := &s.hot[slot][i]
			st := sh.sec.Load()
			if st == 0 || st > upTo || st == s.drained[slot][i] {
				continue
			}
			s.drained[slot][i] = st
			s.drainShardLocked(sh, st, nRoutes)
		}
	}
	slices.SortFunc(s.deltas, func(a, b delta) int { return cmp.Compare(a.sec, b.sec) })
	for i := range s.deltas {
		d := &s.deltas[i]
		// A second part of which was shipped early is always closed by a summary, even an
		// empty one: the detector waits for it before judging the second.
		if s.ship != nil && (d.count > 0 || d.sec == s.earlySec) {
			sum := Summary{
				Tenant:    s.opts.Tenant,
				Service:   s.opts.Service,
				Instance:  s.opts.Instance,
				Bucket:    time.Unix(d.sec, 0).UTC(),
				Count:     d.count,
				Errors5xx: min(d.e5xx, d.count),
				Errors4xx: min(d.e4xx, d.count-min(d.e5xx, d.count)),
				sketch:    d.sketch,
			}
			s.ship.enqueue(sum.Fields())
		}
	}
	for sec := max(s.lastSec+1, upTo-windowSeconds+1); sec <= upTo; sec++ {
		if (sec+1)%evalEvery == 0 {
			s.evaluateLocked(sec)
		}
	}
	s.lastSec = upTo
}

// delta is what one collection pass drained for one second: the summary to ship. Late
// data of a second already shipped makes a second summary with the same bucket, which
// the detector adds up like summaries of two instances.
type delta struct {
	sec               int64
	count, e5xx, e4xx uint64
	sketch            *ddsketch.DDSketch
}

// deltaLocked returns the delta of sec in the current pass, reusing sketches.
func (s *SDK) deltaLocked(sec int64) *delta {
	for i := range s.deltas {
		if s.deltas[i].sec == sec {
			return &s.deltas[i]
		}
	}
	if len(s.deltas) < cap(s.deltas) {
		s.deltas = s.deltas[:len(s.deltas)+1]
	} else {
		s.deltas = append(s.deltas, delta{})
	}
	d := &s.deltas[len(s.deltas)-1]
	if d.sketch == nil {
		d.sketch = s.scale.newSketch()
	}
	d.sketch.Clear()
	d.sec, d.count, d.e5xx, d.e4xx = sec, 0, 0, 0
	return d
}

// drainShardLocked moves one shard's counters into second sec: its bucket of the
// window (if still in it), its minute (if still kept) and the pass's delta.
func (s *SDK) drainShardLocked(sh *hotShard, sec int64, nRoutes int) {
	d := s.deltaLocked(sec)
	var b *second
	if bb := &s.seconds[mod(sec, windowSeconds)]; sec > s.lastSec-windowSeconds && bb.sec <= sec {
		b = bb
		if b.sec != sec {
			b.sec = sec
			b.count, b.e5xx, b.e4xx, b.sumMicros, b.maxMicros = 0, 0, 0, 0, 0
			b.sketch.Clear()
		}
	}
	var m *minute
	if mm := &s.minutes[mod(sec/60, historyMinutes)]; mm.min <= sec/60 {
		m = mm
		if m.min != sec/60 {
			m.min = sec / 60
			m.count, m.e5xx, m.e4xx, m.sumMicros, m.maxMicros = 0, 0, 0, 0, 0
			m.sketch.Clear()
			clear(m.routes)
		}
		if len(m.routes) < nRoutes {
			m.routes = append(m.routes, make([]routeAgg, nRoutes-len(m.routes))...)
		}
	}
	// Routes before bins, the reverse of record's order (see there).
	for r := 0; r < nRoutes; r++ {
		c := &sh.routes[r]
		if c.count.Load() == 0 && c.e5xx.Load() == 0 && c.e4xx.Load() == 0 {
			continue
		}
		e5, e4 := c.e5xx.Swap(0), c.e4xx.Swap(0)
		n, sum, mx := c.count.Swap(0), c.sumMicros.Swap(0), c.maxMicros.Swap(0)
		d.e5xx += e5
		d.e4xx += e4
		if b != nil {
			b.e5xx += e5
			b.e4xx += e4
			b.sumMicros += sum
			b.maxMicros = max(b.maxMicros, mx)
		}
		if m != nil {
			m.e5xx += e5
			m.e4xx += e4
			m.sumMicros += sum
			m.maxMicros = max(m.maxMicros, mx)
			ra := &m.routes[r]
			ra.count += n
			ra.e5xx += e5
			ra.e4xx += e4
			ra.sumMicros += sum
			ra.maxMicros = max(ra.maxMicros, mx)
		}
	}
	dstore := d.sketch.GetPositiveValueStore()
	for j := range sh.bins {
		if sh.bins[j].Load() == 0 {
			continue
		}
		n := sh.bins[j].Swap(0)
		idx := j + s.scale.minIndex
		d.count += uint64(n)
		dstore.AddWithCount(idx, float64(n))
		if b != nil {
			b.count += uint64(n)
			b.sketch.GetPositiveValueStore().AddWithCount(idx, float64(n))
		}
		if m != nil {
			m.count += uint64(n)
			m.sketch.GetPositiveValueStore().AddWithCount(idx, float64(n))
		}
	}
}

// window merges the completed seconds in (last−n, last].
func (s *SDK) windowLocked(last int64, n int) *Aggregate {
	var a Aggregate
	for i := range s.seconds {
		b := &s.seconds[i]
		if b.sec <= last-int64(n) || b.sec > last || b.count == 0 {
			continue
		}
		a.count += b.count
		a.e5xx += b.e5xx
		a.e4xx += b.e4xx
		a.mergeSketch(b.sketch)
	}
	return &a
}

// evaluateLocked judges the window ending at sec and lets it teach the trend and, if
// healthy, the baseline.
func (s *SDK) evaluateLocked(sec int64) {
	j := s.judgeLocked(sec)
	if !j.judged {
		return
	}
	s.scores = append(s.scores, j.score.Score)
	if len(s.scores) > health.TrendWindow {
		s.scores = append(s.scores[:0], s.scores[len(s.scores)-health.TrendWindow:]...)
	}
	if j.status == statusOK && j.score.Status == health.StatusHealthy {
		s.baseline = s.baseline.Learn(j.p95, j.errorRate)
	}
}

// mod is the non-negative remainder, for ring indexes.
func mod(a, n int64) int64 {
	r := a % n
	if r < 0 {
		r += n
	}
	return r
}
