package sdk

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// The hot path. A request touches no lock: it picks one of a few shards of the
// in-flight second's slot at random and bumps atomic counters there:
//
//	hot[sec % slotCount][shard].bins[latency bin]   +1        (the sketch, as counts)
//	hot[sec % slotCount][shard].routes[route]        count, sum, max, 5xx/4xx
//
// Once a second is over (plus drainGrace for requests still being recorded), the
// collector swaps those counters back to zero and turns them into a DDSketch: the
// bins use the sketch's own index mapping, so the result is exactly the sketch the
// latencies would have built. A request allocates nothing: its ResponseWriter wrapper
// comes from a pool and goes back once the request is recorded.

const (
	// slotCount is the number of one-second slots in flight; a power of two. Two are
	// being written (this second and the last), the rest wait to be drained.
	slotCount = 8
	// maxRoutes bounds the number of distinct route labels; later patterns are counted
	// under routeOther.
	maxRoutes = 128
	// routeOther is the label of requests without a ServeMux pattern.
	routeOther      = 0
	routeOtherLabel = "other"
	// maxShards bounds the shards per slot.
	maxShards = 16
)

// routeCell holds the counters of one route in one shard of one second.
type routeCell struct {
	count, sumMicros, maxMicros, e5xx, e4xx atomic.Uint64
}

// hotShard is one shard of a second in flight.
type hotShard struct {
	sec    atomic.Int64    // the second it holds (its last writer's); 0 before any
	bins   []atomic.Uint32 // index = sketch index − scale.minIndex
	routes [maxRoutes]routeCell
}

// routeTable maps ServeMux patterns to small ids. It is replaced, never modified.
type routeTable struct {
	ids   map[string]uint16
	names []string
}

func newRouteTable() *routeTable {
	return &routeTable{ids: map[string]uint16{"": routeOther}, names: []string{routeOtherLabel}}
}

// routeID returns the id of a pattern, registering it on first sight.
func (s *SDK) routeID(pattern string) uint16 {
	if pattern == "" {
		return routeOther
	}
	if id, ok := s.routes.Load().ids[pattern]; ok {
		return id
	}
	s.routeMu.Lock()
	defer s.routeMu.Unlock()
	t := s.routes.Load()
	if id, ok := t.ids[pattern]; ok {
		return id
	}
	if len(t.names) >= maxRoutes {
		return routeOther
	}
	next := &routeTable{ids: make(map[string]uint16, len(t.ids)+1), names: append(t.names[:len(t.names):len(t.names)], pattern)}
	for k, v := range t.ids {
		next.ids[k] = v
	}
	id := uint16(len(t.names))
	next.ids[pattern] = id
	s.routes.Store(next)
	return id
}

// record adds one request that finished in second sec after d, in the shard that hint
// picks.
func (s *SDK) record(hint uint32, sec int64, d time.Duration, route uint16, status int) {
	ms := float64(d) / float64(time.Millisecond)
	bin := s.scale.index(ms) - s.scale.minIndex
	micros := uint64(max(d, 0) / time.Microsecond)

	sh := &s.hot[sec&(slotCount-1)][hint&s.shardMask]
	if sh.sec.Load() != sec {
		sh.sec.Store(sec)
	}
	// Order matters (see drainShardLocked): the bin first, then the route's count, then
	// its error counters, so a drain never sees an error without its request.
	sh.bins[bin].Add(1)
	c := &sh.routes[route]
	c.count.Add(1)
	c.sumMicros.Add(micros)
	for {
		m := c.maxMicros.Load()
		if micros <= m || c.maxMicros.CompareAndSwap(m, micros) {
			break
		}
	}
	switch {
	case status >= 500:
		c.e5xx.Add(1)
	case status >= 400:
		c.e4xx.Add(1)
	}
}

// Paths of the endpoints Instrument mounts.
const (
	pathHealth    = "/health/alerts"
	pathHistory   = "/metrics/history"
	pathIngestion = "/metrics/ingestion"
	pathStatus    = "/__alertengine/status"
)

// Instrument wraps h: every request is timed and its status recorded, except requests
// to the SDK's own endpoints, which Instrument serves itself (GET or HEAD):
//
//	/health/alerts          the judged 60 s window
//	/metrics/history        per-minute aggregates of the last hour (?minutes=1..60)
//	/metrics/ingestion      push-mode counters and the circuit breaker
//	/__alertengine/status   service, tenant, instance, mode, version
//
// The route label of a request is its ServeMux pattern (Request.Pattern), read after h
// returns: h is typically the mux, which sets the pattern on the request it was given.
// A request without a pattern (no ServeMux, no match, or a middleware between that
// cloned the request) is labelled "other".
//
// A handler that panics is recorded as a 500 and the panic continues unchanged. A
// hijacked connection is not a request and is not recorded.
func (s *SDK) Instrument(h http.Handler) http.Handler {
	return &instrumented{s: s, next: h}
}

type instrumented struct {
	s    *SDK
	next http.Handler
	// writers recycles the status-capturing wrappers, so a request allocates none. A
	// wrapper goes back only after its handler returned normally and did not hijack
	// the connection: a handler that panicked or took the connection may still hold it.
	writers sync.Pool
}

// writer returns a wrapper around w with no status captured yet.
func (in *instrumented) writer(w http.ResponseWriter) *responseWriter {
	rw, _ := in.writers.Get().(*responseWriter)
	if rw == nil {
		rw = new(responseWriter)
	}
	rw.ResponseWriter = w
	return rw
}

// release clears rw (so the pool keeps no reference to a finished request's writer)
// and returns it to the pool.
func (in *instrumented) release(rw *responseWriter) {
	*rw = responseWriter{}
	in.writers.Put(rw)
}

func (in *instrumented) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case pathHealth, pathHistory, pathIngestion, pathStatus:
		in.s.serveEndpoint(w, r)
		return
	}
	s := in.s
	var start time.Time
	var startMono time.Duration
	if s.realClock {
		startMono = time.Since(s.epoch)
	} else {
		start = s.clock()
	}
	rw := in.writer(w)
	returned := false
	defer func() {
		if rw.hijacked {
			return
		}
		if returned {
			defer in.release(rw)
		}
		status := rw.status
		switch {
		case !returned:
			status = http.StatusInternalServerError // panic or runtime.Goexit
		case status == 0:
			status = http.StatusOK
		}
		var sec int64
		var d time.Duration
		if s.realClock {
			// One monotonic read instead of a full time.Now (wall + monotonic): the
			// wall second is the epoch's, kept current by the collector, plus the
			// monotonic time since.
			endMono := time.Since(s.epoch)
			d = endMono - startMono
			sec = floorDiv(s.wallAtEpoch.Load()+int64(endMono), int64(time.Second))
		} else {
			end := s.clock()
			d = end.Sub(start)
			sec = end.Unix()
		}
		s.record(shardHint(rw), sec, d, s.routeID(r.Pattern), status)
	}()
	in.next.ServeHTTP(rw, r)
	returned = true
}

// shardHint picks a request's shard from the address of its pooled ResponseWriter
// wrapper. sync.Pool keeps a cache per processor, so requests running at the same time
// hold different wrappers, and with twice as many shards as processors they rarely share
// a shard; one goroutine's requests keep to one, which its cache already holds. It costs
// a shift, where a random number cost about 5 ns of a request's 80.
func shardHint(rw *responseWriter) uint32 {
	// Wrappers are 32 bytes apart; mix in higher bits so pools carved from different
	// spans spread too.
	p := uintptr(unsafe.Pointer(rw))
	return uint32(p>>5 ^ p>>12)
}

// floorDiv is a / b rounded towards minus infinity (b > 0).
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// responseWriter captures the status of a response. It keeps Flush, Hijack, Push and
// ReadFrom working, and Unwrap lets http.ResponseController reach the rest.
type responseWriter struct {
	http.ResponseWriter
	status   int
	hijacked bool
}

func (w *responseWriter) WriteHeader(code int) {
	// 1xx other than 101 are informational: the final status is still to come.
	if w.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ReadFrom keeps the server's sendfile path for io.Copy.
func (w *responseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		return rf.ReadFrom(r)
	}
	return io.Copy(writerOnly{w.ResponseWriter}, r)
}

// writerOnly hides ReadFrom so io.Copy does not loop back into it.
type writerOnly struct{ io.Writer }

func (w *responseWriter) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *responseWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.hijacked = true
	}
	return conn, brw, err
}

func (w *responseWriter) Push(target string, opts *http.PushOptions) error {
	if p, ok := w.ResponseWriter.(http.Pusher); ok {
		return p.Push(target, opts)
	}
	return http.ErrNotSupported
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
