package sdk

import (
	"errors"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// latestMinute returns the newest per-minute aggregate.
func latestMinute(t *testing.T, h http.Handler) minuteJSON {
	t.Helper()
	var hist historyResponse
	if code := get(t, h, "/metrics/history?minutes=1", &hist); code != http.StatusOK {
		t.Fatalf("GET /metrics/history: %d", code)
	}
	if len(hist.Metrics) != 1 {
		t.Fatalf("history has %d minutes, want 1: %+v", len(hist.Metrics), hist)
	}
	return hist.Metrics[0]
}

func TestStatusCapture(t *testing.T) {
	tests := []struct {
		name          string
		handler       http.HandlerFunc
		wantE5, want4 uint64
	}{
		{"nothing written is 200", func(http.ResponseWriter, *http.Request) {}, 0, 0},
		{"body only is 200", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "hi") }, 0, 0},
		{"201 is no error", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusCreated) }, 0, 0},
		{"404 is a client error", func(w http.ResponseWriter, _ *http.Request) { http.NotFound(w, nil) }, 0, 1},
		{"503 is an error", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) }, 1, 0},
		{"103 then 500: the final status counts", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusEarlyHints)
			w.WriteHeader(http.StatusInternalServerError)
		}, 1, 0},
		{"the first final status wins", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusBadGateway)
			w.WriteHeader(http.StatusOK)
		}, 1, 0},
		{"io.Copy body is 200", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.Copy(w, strings.NewReader("body")) }, 0, 0},
		{"flush before writing is 200", func(w http.ResponseWriter, _ *http.Request) { w.(http.Flusher).Flush() }, 0, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestSDK(t, Options{})
			h := ts.Instrument(tc.handler)
			rec := httptestRecorder(h, http.MethodGet, "/x")
			ts.pass(t)
			m := latestMinute(t, h)
			if diff := cmp.Diff([3]uint64{1, tc.wantE5, tc.want4}, [3]uint64{m.Count, m.Errors5xx, m.Errors4xx}); diff != "" {
				t.Errorf("count, 5xx, 4xx (-want +got):\n%s", diff)
			}
			if rec.Code == 0 {
				t.Error("the client saw no status")
			}
		})
	}
}

// The wrappers that capture statuses are recycled: a request must never inherit the
// status, or the hijack, of the one that used its wrapper before.
func TestRecycledWriterStartsClean(t *testing.T) {
	ts := newTestSDK(t, Options{})
	mux := http.NewServeMux()
	mux.HandleFunc("/fail", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusInternalServerError) })
	mux.HandleFunc("/missing", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNotFound) })
	mux.HandleFunc("/panic", func(http.ResponseWriter, *http.Request) { panic("boom") })
	mux.HandleFunc("/ok", func(http.ResponseWriter, *http.Request) {})
	h := ts.Instrument(mux)
	serve := func(path string) {
		defer func() { _ = recover() }()
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
	}
	const rounds = 50
	for range rounds {
		serve("/fail")
		serve("/ok")
		serve("/missing")
		serve("/ok")
		serve("/panic")
		serve("/ok")
	}
	ts.pass(t)
	m := latestMinute(t, h)
	want := [3]uint64{6 * rounds, 2 * rounds, rounds} // count, 5xx (fail, panic), 4xx
	if diff := cmp.Diff(want, [3]uint64{m.Count, m.Errors5xx, m.Errors4xx}); diff != "" {
		t.Errorf("count, 5xx, 4xx (-want +got):\n%s", diff)
	}
}

func TestRequestPathAllocatesNothing(t *testing.T) {
	s := New(Options{Service: "checkout", Tenant: "acme"})
	defer s.Close()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /orders/{id}", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("GET /", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok")) })
	h := s.Instrument(mux)
	for _, path := range []string{"/orders/7", "/"} {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		w := &discardWriter{h: http.Header{}}
		h.ServeHTTP(w, r) // registers the route
		// The mux itself allocates while matching a pattern with a wildcard; what the
		// SDK adds must be nothing.
		bare := testing.AllocsPerRun(1000, func() { mux.ServeHTTP(w, r) })
		got := testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) })
		if got > bare {
			t.Errorf("GET %s: %.0f allocations per request through the SDK, %.0f without: the SDK allocates", path, got, bare)
		}
	}
}

func TestPanicIsA500AndKeepsPanicking(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name    string
		handler http.HandlerFunc
		want    any
	}{
		{"panic before writing", func(http.ResponseWriter, *http.Request) { panic(boom) }, boom},
		{"panic after a 200 header", func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(http.StatusOK)
			panic("late")
		}, "late"},
		{"abort handler", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) }, http.ErrAbortHandler},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestSDK(t, Options{})
			h := ts.Instrument(tc.handler)
			var got any
			func() {
				defer func() { got = recover() }()
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
			}()
			if got != tc.want {
				t.Fatalf("recovered %v, want the handler's own panic %v", got, tc.want)
			}
			ts.pass(t)
			if m := latestMinute(t, h); m.Count != 1 || m.Errors5xx != 1 {
				t.Errorf("count %d, 5xx %d: want the panic recorded as one 500", m.Count, m.Errors5xx)
			}
		})
	}
}

func TestPanicThroughARealServer(t *testing.T) {
	ts := newTestSDK(t, Options{})
	h := ts.Instrument(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("db gone") }))
	srv := httptest.NewUnstartedServer(h)
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the server logs the panic it recovers
	srv.Start()
	defer srv.Close()
	if resp, err := srv.Client().Get(srv.URL + "/pay"); err == nil {
		resp.Body.Close()
		t.Fatalf("the client got %s from a panicking handler, want a broken connection", resp.Status)
	}
	ts.pass(t)
	if m := latestMinute(t, h); m.Errors5xx != 1 {
		t.Errorf("5xx = %d, want the panic counted", m.Errors5xx)
	}
}

func TestRouteLabelIsTheMuxPattern(t *testing.T) {
	mux := http.NewServeMux()
	okh := func(http.ResponseWriter, *http.Request) {}
	mux.HandleFunc("GET /items/{id}", okh)
	mux.HandleFunc("POST /items", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadRequest) })
	mux.HandleFunc("/static/", okh)
	// A middleware that clones the request hides the pattern from the SDK.
	mux.Handle("/cloned/", cloning(http.HandlerFunc(okh)))

	tests := []struct {
		name     string
		requests [][2]string // method, path
		want     []routeJSON
	}{
		{
			name:     "one pattern, many paths",
			requests: [][2]string{{"GET", "/items/1"}, {"GET", "/items/2"}, {"GET", "/items/3"}},
			want:     []routeJSON{{Path: "GET /items/{id}", Count: 3}},
		},
		{
			name:     "method patterns and subtrees",
			requests: [][2]string{{"POST", "/items"}, {"GET", "/static/a.css"}, {"GET", "/static/img/b.png"}},
			want:     []routeJSON{{Path: "/static/", Count: 2}, {Path: "POST /items", Count: 1, Errors4xx: 1}},
		},
		{
			name:     "no match and a wrong method are other",
			requests: [][2]string{{"GET", "/nope"}, {"DELETE", "/items/1"}},
			want:     []routeJSON{{Path: "other", Count: 2, Errors4xx: 2}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestSDK(t, Options{})
			h := ts.Instrument(mux)
			for _, rq := range tc.requests {
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(rq[0], rq[1], nil))
			}
			ts.pass(t)
			got := latestMinute(t, h).Routes
			for i := range got {
				got[i].AvgLatencyMs, got[i].MaxLatencyMs = 0, 0
			}
			slices.SortFunc(got, func(a, b routeJSON) int { return strings.Compare(a.Path, b.Path) })
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("routes (-want +got):\n%s", diff)
			}
		})
	}
}

func cloning(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.Clone(r.Context()))
	})
}

func TestRouteLabelsAreBounded(t *testing.T) {
	ts := newTestSDK(t, Options{})
	mux := http.NewServeMux()
	for i := range 2 * maxRoutes {
		mux.HandleFunc("/r"+strings.Repeat("x", i)+"/", func(http.ResponseWriter, *http.Request) {})
	}
	h := ts.Instrument(mux)
	for i := range 2 * maxRoutes {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/r"+strings.Repeat("x", i)+"/", nil))
	}
	ts.pass(t)
	m := latestMinute(t, h)
	if len(m.Routes) != maxRoutes || m.Count != 2*maxRoutes {
		t.Errorf("%d routes for %d requests, want %d routes (the rest as other) and every request counted", len(m.Routes), m.Count, maxRoutes)
	}
}

func TestResponseWriterKeepsItsAbilities(t *testing.T) {
	ts := newTestSDK(t, Options{})
	results := make(chan error, 1)
	mux := http.NewServeMux()
	mux.HandleFunc("/deadline", func(w http.ResponseWriter, _ *http.Request) {
		results <- http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Minute))
	})
	mux.HandleFunc("/push", func(w http.ResponseWriter, _ *http.Request) {
		p, ok := w.(http.Pusher)
		if !ok {
			results <- errors.New("not a Pusher")
			return
		}
		results <- p.Push("/x.css", nil)
	})
	mux.HandleFunc("/flush", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "part")
		w.(http.Flusher).Flush()
		results <- nil
	})
	mux.HandleFunc("/hijack", func(w http.ResponseWriter, _ *http.Request) {
		conn, brw, err := w.(http.Hijacker).Hijack()
		if err != nil {
			results <- err
			return
		}
		_, _ = brw.WriteString("HTTP/1.1 200 OK\r\nContent-Length: 7\r\nConnection: close\r\n\r\nhijack!")
		_ = brw.Flush()
		_ = conn.Close()
		results <- nil
	})
	srv := httptest.NewServer(ts.Instrument(mux))
	defer srv.Close()

	tests := []struct {
		path    string
		wantErr error
		body    string
	}{
		{"/deadline", nil, ""},
		{"/push", http.ErrNotSupported, ""}, // HTTP/1.1 cannot push: the real answer, not a missing method
		{"/flush", nil, "part"},
		{"/hijack", nil, "hijack!"},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			resp, err := srv.Client().Get(srv.URL + tc.path)
			if err != nil {
				t.Fatalf("GET: %v", err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err := <-results; !errors.Is(err, tc.wantErr) {
				t.Errorf("handler saw %v, want %v", err, tc.wantErr)
			}
			if string(body) != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
		})
	}
	ts.pass(t)
	if m := latestMinute(t, ts.Instrument(nil)); m.Count != 3 {
		t.Errorf("recorded %d requests, want 3: the hijacked connection is not a request", m.Count)
	}
}

// exactQuantiles of unsorted samples at qs, nearest rank (DDSketch's convention).
func exactQuantiles(samples []float64, qs ...float64) []float64 {
	s := slices.Clone(samples)
	slices.Sort(s)
	out := make([]float64, len(qs))
	for i, q := range qs {
		out[i] = exactQuantile(s, q)
	}
	return out
}

func TestWindowQuantilesOnAMillionSamples(t *testing.T) {
	const n = 1_000_000
	tests := []struct {
		name string
		draw func(r *rand.Rand) float64 // ms
	}{
		{"log-normal, median 50 ms", func(r *rand.Rand) float64 { return math.Exp(math.Log(50) + 0.5*r.NormFloat64()) }},
		{"log-normal, heavy tail", func(r *rand.Rand) float64 { return math.Exp(math.Log(20) + 1.5*r.NormFloat64()) }},
		{"bimodal: cache hits and misses", func(r *rand.Rand) float64 {
			if r.IntN(10) < 8 {
				return math.Exp(math.Log(2) + 0.3*r.NormFloat64())
			}
			return math.Exp(math.Log(400) + 0.4*r.NormFloat64())
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ts := newTestSDK(t, Options{})
			r := rand.New(rand.NewPCG(7, 11))
			samples := make([]float64, n)
			for i := range samples {
				samples[i] = tc.draw(r)
			}
			// Spread over the 60 seconds of the window, each drained once it is over.
			start := t0.Unix()
			ts.mu.Lock()
			for sec := range int64(windowSeconds) {
				for i := int(sec); i < n; i += windowSeconds {
					ts.record(uint32(i), start+sec, time.Duration(samples[i]*float64(time.Millisecond)), routeOther, http.StatusOK)
				}
				ts.collectLocked(start + sec)
			}
			w := ts.windowLocked(start+windowSeconds-1, windowSeconds)
			ts.mu.Unlock()
			if w.Count() != n {
				t.Fatalf("window holds %d samples, want %d", w.Count(), n)
			}
			qs := []float64{0.5, 0.95, 0.99}
			exact := exactQuantiles(samples, qs...)
			for i, q := range qs {
				got := w.Quantile(q)
				t.Logf("p%v = %.3f ms, exact %.3f ms (%+.2f%%)", 100*q, got, exact[i], 100*(got-exact[i])/exact[i])
				if !within(got, exact[i], relativeAccuracy) {
					t.Errorf("p%v = %.3f ms, exact %.3f ms: off by %.2f%%, want within 1%%", 100*q, got, exact[i], 100*math.Abs(got-exact[i])/exact[i])
				}
			}
		})
	}
}

// heapInUse is the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// sdkHeap serves total requests spread evenly over seconds of the fake clock through a
// fresh SDK and returns the live heap it holds afterwards.
func sdkHeap(t *testing.T, total, seconds int) uint64 {
	before := heapInUse()
	ts := newTestSDK(t, Options{})
	mux := http.NewServeMux()
	i := 0
	work := func(w http.ResponseWriter, _ *http.Request) {
		ts.clock.Advance(time.Duration(1+i%300) * time.Millisecond)
		i++
		if i%50 == 0 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}
	mux.HandleFunc("GET /a/{id}", work)
	mux.HandleFunc("GET /b", work)
	h := ts.Instrument(mux)
	reqs := []*http.Request{httptest.NewRequest("GET", "/a/1", nil), httptest.NewRequest("GET", "/b", nil), httptest.NewRequest("GET", "/c", nil)}
	w := &discardWriter{h: http.Header{}}
	rps := total / seconds
	for range seconds {
		base := ts.clock.Now()
		for k := range rps {
			ts.clock.Set(base.Add(time.Duration(k) * time.Second / 2 / time.Duration(rps)))
			h.ServeHTTP(w, reqs[k%len(reqs)])
		}
		ts.clock.Set(base.Add(time.Second))
		ts.tick(t.Context())
	}
	ts.settle(t)
	var hist historyResponse
	get(t, h, "/metrics/history", &hist)
	var n uint64
	for _, m := range hist.Metrics {
		n += m.Count
	}
	if len(hist.Metrics) != historyMinutes || n > uint64(total) || n < uint64(total)*50/62 {
		t.Fatalf("history: %d minutes, %d requests; want the last %d minutes of %d", len(hist.Metrics), n, historyMinutes, total)
	}
	used := heapInUse() - before
	runtime.KeepAlive(ts)
	return used
}

func TestMemoryIsConstantInTraffic(t *testing.T) {
	// Both runs last longer than the hour of history, so every ring is full.
	const seconds = 3720
	small := sdkHeap(t, 100_000, seconds)
	large := sdkHeap(t, 1_000_000, seconds)
	t.Logf("SDK heap after 10^5 requests: %d B; after 10^6 requests: %d B", small, large)
	if large > small+64<<10 {
		t.Errorf("10× the traffic costs %d B more heap, want the same", large-small)
	}
}

// Compile-time checks: the wrapper offers what handlers look for.
var (
	_ http.Flusher  = (*responseWriter)(nil)
	_ http.Hijacker = (*responseWriter)(nil)
	_ http.Pusher   = (*responseWriter)(nil)
	_ io.ReaderFrom = (*responseWriter)(nil)
)

func TestRealClockBucketsByWallSecond(t *testing.T) {
	s := New(Options{Service: "checkout", Tenant: "acme"})
	defer s.Close()
	before := time.Now().Unix()
	s.Instrument(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {})).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
	after := time.Now().Unix()

	// Without an injected clock a request reads only the monotonic clock; its wall second
	// is derived. Exactly one shard must hold it, stamped with the current second.
	var found int
	for slot := range s.hot {
		for i := range s.hot[slot] {
			sh := &s.hot[slot][i]
			var n uint32
			for j := range sh.bins {
				n += sh.bins[j].Load()
			}
			if n == 0 {
				continue
			}
			found++
			if st := sh.sec.Load(); st < before || st > after || n != 1 {
				t.Errorf("shard stamped %d holds %d requests, want 1 request in [%d, %d]", st, n, before, after)
			}
		}
	}
	if found != 1 {
		t.Errorf("%d shards hold the request, want 1", found)
	}
}

// discardWriter is a ResponseWriter that keeps nothing.
type discardWriter struct{ h http.Header }

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}
