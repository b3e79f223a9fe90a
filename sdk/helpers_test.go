package sdk

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fakeClock is the injected clock of the tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{t: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// testSDK is an SDK on a fake clock without its background loop: the test decides when
// a tick happens.
type testSDK struct {
	*SDK
	clock *fakeClock
}

func newTestSDK(t testing.TB, opts Options) *testSDK {
	t.Helper()
	fc := newFakeClock(t0)
	opts.Clock = fc.Now
	if opts.Service == "" {
		opts.Service = "checkout"
	}
	if opts.Tenant == "" {
		opts.Tenant = "acme"
	}
	if opts.Instance == "" {
		opts.Instance = "pod-1"
	}
	s := newSDK(opts)
	t.Cleanup(func() { _ = s.Close() })
	return &testSDK{SDK: s, clock: fc}
}

// request describes one request of a traffic phase.
type request struct {
	latency time.Duration
	status  int
}

// phase is a stretch of steady traffic: rps requests a second for seconds seconds;
// request i of the phase is shaped by at(i).
type phase struct {
	seconds, rps int
	at           func(i int) request
}

// run plays phases through h: within each second the requests start evenly spaced over
// the first half (so that latencies under 500 ms end in the same second) and take their
// latency on the fake clock. A tick (drain, evaluate, ship) follows every
// second, as the background loop would do.
func (ts *testSDK) run(t testing.TB, h http.Handler, phases ...phase) {
	t.Helper()
	for _, p := range phases {
		i := 0
		for range p.seconds {
			base := ts.clock.Now()
			for k := range p.rps {
				ts.clock.Set(base.Add(time.Duration(k) * time.Second / 2 / time.Duration(p.rps)))
				req := p.at(i)
				i++
				serve(h, req)
			}
			ts.clock.Set(base.Add(time.Second))
			ts.tick(t.Context())
		}
	}
}

// settle, after run, lets the last second of traffic be drained: the judged window
// then ends with it.
func (ts *testSDK) settle(t testing.TB) {
	t.Helper()
	ts.clock.Advance(drainGrace)
	ts.tick(t.Context())
}

// behave is the test service: it takes the latency asked for in X-Test-Latency on the
// fake clock and answers the status asked for in X-Test-Status.
type behave struct{ clock *fakeClock }

func (b behave) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	d, _ := time.ParseDuration(r.Header.Get("X-Test-Latency"))
	code, _ := strconv.Atoi(r.Header.Get("X-Test-Status"))
	b.clock.Advance(d)
	w.WriteHeader(code)
}

// serve sends one request shaped by req through h.
func serve(h http.Handler, req request) {
	r := httptest.NewRequest(http.MethodGet, "/work", nil)
	r.Header.Set("X-Test-Latency", req.latency.String())
	r.Header.Set("X-Test-Status", strconv.Itoa(req.status))
	h.ServeHTTP(&discardWriter{h: http.Header{}}, r)
}

// service returns the instrumented test service.
func (ts *testSDK) service() http.Handler {
	return ts.Instrument(behave{clock: ts.clock})
}

// get calls one of the SDK's endpoints and decodes its JSON into v.
func get(t testing.TB, h http.Handler, path string, v any) int {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", path, ct)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v\n%s", path, err, rec.Body)
	}
	return rec.Code
}

func httptestRecorder(h http.Handler, method, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

// pass lets the current second of the clock end and be drained.
func (ts *testSDK) pass(t testing.TB) {
	t.Helper()
	ts.clock.Advance(time.Second + drainGrace)
	ts.tick(t.Context())
}
