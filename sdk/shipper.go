package sdk

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Circuit breaker of the shipper.
const (
	breakerThreshold = 3                // consecutive failures that open it
	breakerCooldown  = 30 * time.Second // open → half-open, on the injected clock
	shipBatch        = 100              // summaries per pipeline
)

const (
	breakerClosed   = "closed"
	breakerOpen     = "open"
	breakerHalfOpen = "half_open"
)

// shipper pushes encoded summaries to the stream, in order, from a bounded buffer. Only
// the SDK's background loop (and Close, after the loop ended) calls flush, so there is
// one flush at a time; enqueue and stats may run concurrently with it.
type shipper struct {
	client  *redis.Client
	key     string
	addr    string // host:port, for status; never credentials
	secret  string // the password, scrubbed from any error text
	maxLen  int64
	timeout time.Duration
	clock   func() time.Time
	log     *slog.Logger

	mu            sync.Mutex
	buf           []pending // ring of capacity len(buf)
	head, n       int
	nextSeq       uint64
	enqueued      uint64
	shipped       uint64
	dropped       uint64
	state         string
	failures      int
	openedAt      time.Time
	lastErr       string
	lastErrAt     time.Time
	lastShippedAt time.Time
}

type pending struct {
	seq    uint64
	fields map[string]any
}

func newShipper(ropts *redis.Options, opts Options, key string) *shipper {
	ropts.DialTimeout = opts.RedisTimeout
	ropts.ReadTimeout = opts.RedisTimeout
	ropts.WriteTimeout = opts.RedisTimeout
	ropts.MaxRetries = -1   // the breaker decides when to try again
	ropts.DialerRetries = 1 // one dial per attempt: a dead Redis fails fast
	ropts.PoolSize = 2
	return &shipper{
		client:  redis.NewClient(ropts),
		key:     key,
		addr:    ropts.Addr,
		secret:  ropts.Password,
		maxLen:  opts.StreamMaxLen,
		timeout: opts.RedisTimeout,
		clock:   opts.Clock,
		log:     opts.Logger,
		buf:     make([]pending, opts.BufferSize),
		state:   breakerClosed,
	}
}

// enqueue buffers one summary, dropping the oldest when the buffer is full. It never
// blocks on Redis.
func (sh *shipper) enqueue(fields map[string]any) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	sh.enqueued++
	if sh.n == len(sh.buf) {
		sh.buf[sh.head] = pending{}
		sh.head = (sh.head + 1) % len(sh.buf)
		sh.n--
		sh.dropped++
		if sh.dropped == 1 || sh.dropped%100 == 0 {
			sh.log.Warn("alertengine sdk: summary buffer full, dropping the oldest", "dropped", sh.dropped)
		}
	}
	sh.nextSeq++
	sh.buf[(sh.head+sh.n)%len(sh.buf)] = pending{seq: sh.nextSeq, fields: fields}
	sh.n++
}

// flush ships the buffer in batches until it is empty, a batch fails, or the breaker is
// open.
func (sh *shipper) flush(ctx context.Context) {
	for {
		batch, ok := sh.nextBatch()
		if !ok {
			return
		}
		ok = sh.send(ctx, batch)
		if !ok {
			return
		}
	}
}

// nextBatch returns the oldest summaries to send, or false when there is nothing to send
// or the breaker is open.
func (sh *shipper) nextBatch() ([]pending, bool) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if sh.n == 0 {
		return nil, false
	}
	if sh.state == breakerOpen {
		if sh.clock().Sub(sh.openedAt) < breakerCooldown {
			return nil, false
		}
		sh.state = breakerHalfOpen
		sh.log.Info("alertengine sdk: circuit breaker half-open, probing Redis")
	}
	size := min(sh.n, shipBatch)
	if sh.state == breakerHalfOpen {
		size = 1 // the probe
	}
	batch := make([]pending, size)
	for i := range batch {
		batch[i] = sh.buf[(sh.head+i)%len(sh.buf)]
	}
	return batch, true
}

// send pipelines one batch and records the outcome; it reports whether the whole batch
// was shipped.
func (sh *shipper) send(ctx context.Context, batch []pending) bool {
	ctx, cancel := context.WithTimeout(ctx, sh.timeout)
	defer cancel()
	cmds, err := sh.client.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, b := range batch {
			p.XAdd(ctx, &redis.XAddArgs{Stream: sh.key, MaxLen: sh.maxLen, Approx: true, Values: b.fields})
		}
		return nil
	})
	// The leading run of commands that succeeded is shipped; the rest stays buffered
	// and is sent again (delivery is at least once).
	ok := 0
	for ok < len(cmds) && ok < len(batch) && cmds[ok].Err() == nil {
		ok++
	}
	if err == nil && ok < len(batch) {
		err = errors.New("pipeline answered fewer commands than sent")
	}

	sh.mu.Lock()
	defer sh.mu.Unlock()
	now := sh.clock()
	if ok > 0 {
		last := batch[ok-1].seq
		for sh.n > 0 && sh.buf[sh.head].seq <= last {
			sh.buf[sh.head] = pending{}
			sh.head = (sh.head + 1) % len(sh.buf)
			sh.n--
		}
		sh.shipped += uint64(ok)
		sh.lastShippedAt = now
	}
	if err == nil {
		if sh.state != breakerClosed {
			sh.log.Info("alertengine sdk: Redis reachable again, circuit breaker closed", "buffered", sh.n)
		}
		sh.state = breakerClosed
		sh.failures = 0
		return true
	}
	sh.failures++
	sh.lastErr = sh.scrub(fmt.Errorf("ship to %s: %w", sh.key, err).Error())
	sh.lastErrAt = now
	if sh.state == breakerHalfOpen || (sh.state == breakerClosed && sh.failures >= breakerThreshold) {
		sh.state = breakerOpen
		sh.openedAt = now
		sh.log.Warn("alertengine sdk: circuit breaker open, buffering summaries in memory",
			"failures", sh.failures, "buffered", sh.n, "err", sh.lastErr)
	} else {
		sh.log.Debug("alertengine sdk: ship failed", "failures", sh.failures, "err", sh.lastErr)
	}
	return false
}

// scrub removes the Redis password from text meant for logs and endpoints.
func (sh *shipper) scrub(s string) string {
	if sh.secret != "" {
		s = strings.ReplaceAll(s, sh.secret, "***")
	}
	return s
}

func (sh *shipper) stats() ingestionResponse {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	r := ingestionResponse{
		Mode:           "redis",
		Stream:         sh.key,
		Enqueued:       sh.enqueued,
		Shipped:        sh.shipped,
		Dropped:        sh.dropped,
		Buffered:       sh.n,
		BufferCapacity: len(sh.buf),
		LastShippedAt:  unixOrNil(sh.lastShippedAt),
		LastError:      sh.lastErr,
		LastErrorAt:    unixOrNil(sh.lastErrAt),
		CircuitBreaker: breakerJSON{
			State:         sh.state,
			FailureCount:  sh.failures,
			BufferSize:    sh.n,
			DroppedEvents: sh.dropped,
		},
	}
	if sh.state != breakerClosed {
		r.CircuitBreaker.OpenedAt = unixOrNil(sh.openedAt)
		r.CircuitBreaker.NextProbeAt = unixOrNil(sh.openedAt.Add(breakerCooldown))
	}
	return r
}

func (sh *shipper) close() error {
	if err := sh.client.Close(); err != nil {
		return fmt.Errorf("close redis client: %w", errors.New(sh.scrub(err.Error())))
	}
	return nil
}

func unixOrNil(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	u := t.Unix()
	return &u
}
