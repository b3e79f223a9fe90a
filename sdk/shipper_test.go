package sdk

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// stream reads every summary of a stream.
func stream(t *testing.T, c *redis.Client, key string) []Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	msgs, err := c.XRange(ctx, key, "-", "+").Result()
	if err != nil {
		t.Fatalf("XRANGE %s: %v", key, err)
	}
	out := make([]Summary, 0, len(msgs))
	for _, m := range msgs {
		s, err := ParseSummary(m.Values)
		if err != nil {
			t.Fatalf("entry %s: %v", m.ID, err)
		}
		out = append(out, s)
	}
	return out
}

func ingestionOf(t *testing.T, h http.Handler) ingestionResponse {
	t.Helper()
	var in ingestionResponse
	if code := get(t, h, "/metrics/ingestion", &in); code != http.StatusOK {
		t.Fatalf("GET /metrics/ingestion: %d", code)
	}
	return in
}

func TestPushModeShipsOneSummaryPerSecond(t *testing.T) {
	srv := ledgertest.NewServer(t)
	c := srv.Client(t)
	prefix := srv.Prefix(t)
	ts := newTestSDK(t, Options{RedisURL: srv.URL, KeyPrefix: prefix})
	h := ts.service()
	ts.run(t, h,
		phase{2, 10, around(10*ms, ok200)},
		phase{1, 0, nil}, // an idle second ships nothing
		phase{1, 20, around(100*ms, every(4, 500))},
	)
	ts.settle(t)

	got := stream(t, c, StreamKey(prefix, "acme", "checkout"))
	if len(got) != 3 {
		t.Fatalf("%d summaries shipped, want 3 (idle seconds are not shipped): %+v", len(got), got)
	}
	for i, want := range []struct {
		sec       int
		n, e5     uint64
		p95Approx float64
	}{{0, 10, 0, 18}, {1, 10, 0, 28}, {3, 20, 5, 118}} {
		s := got[i]
		if !s.Bucket.Equal(t0.Add(time.Duration(want.sec)*time.Second)) || s.Count != want.n || s.Errors5xx != want.e5 {
			t.Errorf("summary %d: bucket %v, n %d, e5 %d; want %v, %d, %d", i, s.Bucket, s.Count, s.Errors5xx, t0.Add(time.Duration(want.sec)*time.Second), want.n, want.e5)
		}
		if s.Tenant != "acme" || s.Service != "checkout" || s.Instance != "pod-1" {
			t.Errorf("summary %d labels %q/%q/%q", i, s.Tenant, s.Service, s.Instance)
		}
		if !within(s.Quantile(0.95), want.p95Approx, 0.02) {
			t.Errorf("summary %d p95 = %v, want ≈ %v", i, s.Quantile(0.95), want.p95Approx)
		}
	}
	in := ingestionOf(t, h)
	if in.Mode != "redis" || in.Shipped != 3 || in.Buffered != 0 || in.Dropped != 0 || in.CircuitBreaker.State != "closed" {
		t.Errorf("ingestion = %+v, want redis mode, 3 shipped, nothing buffered or dropped, breaker closed", in)
	}
}

func TestCloseShipsWhatIsLeft(t *testing.T) {
	srv := ledgertest.NewServer(t)
	c := srv.Client(t)
	prefix := srv.Prefix(t)
	ts := newTestSDK(t, Options{RedisURL: srv.URL, KeyPrefix: prefix})
	serve(ts.service(), request{5 * ms, http.StatusOK})
	ts.clock.Advance(time.Second) // the second is over, but not yet drained
	if err := ts.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := stream(t, c, StreamKey(prefix, "acme", "checkout")); len(got) != 1 || got[0].Count != 1 {
		t.Errorf("after Close the stream holds %+v, want the last second's summary", got)
	}
}

func TestBackgroundLoopShips(t *testing.T) {
	srv := ledgertest.NewServer(t)
	c := srv.Client(t)
	prefix := srv.Prefix(t)
	ts := newTestSDK(t, Options{RedisURL: srv.URL, KeyPrefix: prefix})
	ticks := make(chan time.Time)
	ts.tickDone = make(chan struct{})
	ts.start(func() <-chan time.Time { return ticks })

	serve(ts.service(), request{5 * ms, http.StatusOK})
	ts.clock.Advance(time.Second + drainGrace)
	ticks <- time.Time{}
	<-ts.tickDone
	if got := stream(t, c, StreamKey(prefix, "acme", "checkout")); len(got) != 1 {
		t.Errorf("after one tick of the loop the stream holds %d summaries, want 1", len(got))
	}
	if err := ts.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}

// redisServer is a redis-server process this test owns.
type redisServer struct {
	port     int
	password string
	cmd      *exec.Cmd
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startRedisServer starts redis-server on port and waits until it accepts connections.
func startRedisServer(t *testing.T, port int, password string) *redisServer {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testkit.Skip(t, "redis-server is not installed: this test needs to start and kill its own Redis")
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--requirepass", password)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("redis-server stdout: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	rs := &redisServer{port: port, password: password, cmd: cmd}
	t.Cleanup(rs.kill)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				close(ready)
				break
			}
		}
		for sc.Scan() { // keep the pipe drained
		}
	}()
	select {
	case <-ready:
	case <-time.After(10 * time.Second):
		t.Fatalf("redis-server on port %d did not become ready", port)
	}
	return rs
}

func (rs *redisServer) kill() {
	if rs.cmd.ProcessState == nil {
		_ = rs.cmd.Process.Kill()
		_ = rs.cmd.Wait()
	}
}

func (rs *redisServer) url() string {
	return fmt.Sprintf("redis://:%s@127.0.0.1:%d/0", rs.password, rs.port)
}

func (rs *redisServer) client(t *testing.T) *redis.Client {
	opt, _ := redis.ParseURL(rs.url())
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func TestRedisKilledWhileTrafficFlows(t *testing.T) {
	const password = "s3cr3t-pw-do-not-leak"
	port := freePort(t)
	rs := startRedisServer(t, port, password)
	ts := newTestSDK(t, Options{RedisURL: rs.url(), BufferSize: 5})
	h := ts.service()
	key := StreamKey("", "acme", "checkout")

	// Healthy: three seconds shipped.
	ts.run(t, h, phase{3, 20, around(10*ms, ok200)})
	ts.settle(t)
	if got := stream(t, rs.client(t), key); len(got) != 3 {
		t.Fatalf("before the outage %d summaries shipped, want 3", len(got))
	}

	// Outage: Redis dies, traffic goes on for 8 seconds.
	rs.kill()
	ts.run(t, h, phase{8, 20, around(10*ms, ok200)})
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, "/pay", nil)
	r.Header.Set("X-Test-Latency", "5ms")
	r.Header.Set("X-Test-Status", "200")
	h.ServeHTTP(rec, r)
	if rec.Code != http.StatusOK {
		t.Errorf("a request during the outage got %d, want 200", rec.Code)
	}
	ts.pass(t)
	var hr healthResponse
	get(t, h, "/health/alerts", &hr)
	if hr.Metrics.SampleSize != 11*20+1 || hr.Status != "ok" {
		t.Errorf("/health/alerts during the outage: status %q, sample_size %d; want ok from memory with 221 requests", hr.Status, hr.Metrics.SampleSize)
	}
	// Outage summaries: seconds 3..10 (20 requests each) and 11 (the one above).
	in := ingestionOf(t, h)
	if in.Mode != "redis" || in.CircuitBreaker.State != "open" || in.Buffered != 5 || in.Dropped != 4 || in.Shipped != 3 {
		t.Errorf("ingestion during the outage = %+v; want breaker open, 5 buffered, 4 dropped, 3 shipped", in)
	}
	if in.LastError == "" || in.CircuitBreaker.NextProbeAt == nil {
		t.Errorf("ingestion during the outage lacks the last error or the next probe: %+v", in)
	}
	for _, path := range []string{"/metrics/ingestion", "/__alertengine/status", "/health/alerts"} {
		if body := httptestRecorder(h, http.MethodGet, path).Body.String(); strings.Contains(body, password) {
			t.Errorf("%s shows the Redis password: %s", path, body)
		}
	}

	// Redis comes back on the same port. The breaker waits for its probe time…
	rs = startRedisServer(t, port, password)
	ts.tick(t.Context())
	if got := stream(t, rs.client(t), key); len(got) != 0 {
		t.Errorf("%d summaries shipped before the breaker's probe time, want 0", len(got))
	}
	// … then probes, closes and ships the buffer, without restarting the SDK.
	ts.clock.Advance(breakerCooldown + time.Second)
	ts.tick(t.Context())
	got := stream(t, rs.client(t), key)
	if len(got) != 5 {
		t.Fatalf("after recovery %d summaries shipped, want the 5 buffered", len(got))
	}
	for i, s := range got {
		// The 4 oldest outage seconds were dropped: 7..11 remain, in order.
		want, n := t0.Add(time.Duration(7+i)*time.Second), uint64(20)
		if i == 4 {
			n = 1
		}
		if !s.Bucket.Equal(want) || s.Count != n {
			t.Errorf("summary %d: bucket %v n %d, want %v n %d", i, s.Bucket, s.Count, want, n)
		}
	}
	in = ingestionOf(t, h)
	if in.CircuitBreaker.State != "closed" || in.Buffered != 0 || in.Shipped != 8 || in.Dropped != 4 || in.CircuitBreaker.FailureCount != 0 {
		t.Errorf("ingestion after recovery = %+v; want closed, 8 shipped, 4 dropped, nothing buffered", in)
	}

	// And new traffic flows straight through.
	ts.run(t, h, phase{1, 20, around(10*ms, ok200)})
	ts.settle(t)
	if got := stream(t, rs.client(t), key); len(got) != 6 {
		t.Errorf("after recovery new traffic: %d summaries, want 6", len(got))
	}
}

func TestSecretsStayOut(t *testing.T) {
	const password = "hunter2-very-secret"
	tests := []struct {
		name, url, wantMode string
	}{
		{"unparseable URL", "redis://:" + password + "@127.0.0.1:notaport/0", "memory"},
		{"wrong scheme", "http://:" + password + "@127.0.0.1:6379", "memory"},
		{"unreachable server", "redis://:" + password + "@127.0.0.1:1/0", "redis"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := Options{Service: "checkout", Tenant: "acme", RedisURL: tc.url}
			if err := opts.Validate(); tc.wantMode == "memory" && (err == nil || strings.Contains(err.Error(), password)) {
				t.Errorf("Validate = %v, want an error without the password", err)
			}
			ts := newTestSDK(t, Options{RedisURL: tc.url, RedisTimeout: time.Second})
			h := ts.service()
			serve(h, request{5 * ms, http.StatusOK})
			ts.pass(t)
			var st statusResponse
			get(t, h, "/__alertengine/status", &st)
			if st.Mode != tc.wantMode || st.Version != Version || st.Service != "checkout" || st.Tenant != "acme" || st.Instance != "pod-1" {
				t.Errorf("status = %+v, want mode %s and the service's identity", st, tc.wantMode)
			}
			in := ingestionOf(t, h)
			if in.LastError == "" {
				t.Errorf("ingestion = %+v, want the problem reported", in)
			}
			for _, path := range []string{"/metrics/ingestion", "/__alertengine/status"} {
				if body := httptestRecorder(h, http.MethodGet, path).Body.String(); strings.Contains(body, password) {
					t.Errorf("%s shows the password: %s", path, body)
				}
			}
		})
	}
}

// TestSurgeShipsEarly: when at least surgeMinErrors of the requests of the second in
// progress answer 5xx, and at least half of them, what the second holds so far is shipped
// at once, marked Early; the rest of the second follows after it ends, as another summary
// of the same bucket (an empty one if nothing more came), and the two add up to the
// second. A second with fewer errors, or mostly successes, waits for its end as before.
func TestSurgeShipsEarly(t *testing.T) {
	srv := ledgertest.NewServer(t)
	c := srv.Client(t)
	prefix := srv.Prefix(t)
	ts := newTestSDK(t, Options{RedisURL: srv.URL, KeyPrefix: prefix})
	h := ts.service()
	ctx := t.Context()
	serveN := func(n, status int) {
		for range n {
			serve(h, request{latency: ms, status: status})
		}
	}
	key := StreamKey(prefix, "acme", "checkout")

	// Second 0: 9 failures of 9 (too few), then 30 successes and 12 failures (under half).
	serveN(9, 500)
	ts.clock.Set(t0.Add(300 * ms))
	ts.shipSurge(ctx)
	serveN(30, 200)
	serveN(12, 500)
	ts.clock.Set(t0.Add(600 * ms))
	ts.shipSurge(ctx)
	if got := stream(t, c, key); len(got) != 0 {
		t.Fatalf("%d summaries shipped during a second without a surge: %+v", len(got), got)
	}
	// Second 1: 5 successes, then 15 failures: shipped at 1.4 s.
	ts.clock.Set(t0.Add(time.Second + drainGrace))
	ts.tick(ctx)
	serveN(5, 200)
	serveN(15, 500)
	ts.clock.Set(t0.Add(1400 * ms))
	ts.shipSurge(ctx)
	got := stream(t, c, key)
	if len(got) != 2 {
		t.Fatalf("%d summaries after the surge look, want second 0 and the early part of second 1: %+v", len(got), got)
	}
	if s := got[0]; s.Early != 0 || s.Count != 51 || s.Errors5xx != 21 {
		t.Errorf("second 0: early %v, n %d, 5xx %d; want a whole second of 51 requests, 21 failing", s.Early, s.Count, s.Errors5xx)
	}
	early := got[1]
	if !early.Bucket.Equal(t0.Add(time.Second)) || early.Early != 400*ms || early.Count != 20 || early.Errors5xx != 15 {
		t.Fatalf("early part: bucket %v, early %v, n %d, 5xx %d; want second 1, 400ms, 20, 15", early.Bucket, early.Early, early.Count, early.Errors5xx)
	}
	// The rest of second 1 after it ends; second 2 surges and then nothing more comes.
	serveN(6, 200)
	ts.clock.Set(t0.Add(2*time.Second + drainGrace))
	ts.tick(ctx)
	serveN(10, 500)
	ts.clock.Set(t0.Add(2500 * ms))
	ts.shipSurge(ctx)
	ts.clock.Set(t0.Add(3*time.Second + drainGrace))
	ts.tick(ctx)
	got = stream(t, c, key)
	if len(got) != 5 {
		t.Fatalf("%d summaries, want 5: %+v", len(got), got)
	}
	if rest := got[2]; !rest.Bucket.Equal(t0.Add(time.Second)) || rest.Early != 0 || rest.Count != 6 || rest.Errors5xx != 0 {
		t.Errorf("rest of second 1: bucket %v, early %v, n %d, 5xx %d; want second 1, whole, 6, 0", rest.Bucket, rest.Early, rest.Count, rest.Errors5xx)
	}
	if s := got[3]; !s.Bucket.Equal(t0.Add(2*time.Second)) || s.Early != 500*ms || s.Count != 10 {
		t.Errorf("early part of second 2: bucket %v, early %v, n %d; want second 2, 500ms, 10", s.Bucket, s.Early, s.Count)
	}
	if s := got[4]; !s.Bucket.Equal(t0.Add(2*time.Second)) || s.Early != 0 || s.Count != 0 {
		t.Errorf("end of second 2: bucket %v, early %v, n %d; want an empty summary closing second 2", s.Bucket, s.Early, s.Count)
	}
}

// TestSurgeUnderLoadCountsEveryRequestOnce: with the real background loop (surge looks
// every 100 ms, drains every second) and 8 goroutines sending failing and succeeding
// requests for 1.5 s, the summaries shipped — early parts included — add up to exactly
// the requests served, and some went out early.
func TestSurgeUnderLoadCountsEveryRequestOnce(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "real time")
	}
	srv := ledgertest.NewServer(t)
	c := srv.Client(t)
	prefix := srv.Prefix(t)
	s := New(Options{Service: "checkout", Tenant: "acme", Instance: "pod-1", RedisURL: srv.URL, KeyPrefix: prefix})
	h := s.Instrument(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("fail") != "" {
			w.WriteHeader(http.StatusInternalServerError)
		}
	}))
	var served, failed atomic.Uint64
	stop := time.Now().Add(1500 * time.Millisecond)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(stop); i++ {
				path := "/pay"
				if (i+g)%4 != 0 {
					path += "?fail=1"
					failed.Add(1)
				}
				h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, path, nil))
				served.Add(1)
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	// Let the loop drain and ship the last second as it does every second.
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(time.Second + 3*drainGrace).Sub(now))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	var n, e5 uint64
	early := 0
	for _, sum := range stream(t, c, StreamKey(prefix, "acme", "checkout")) {
		n += sum.Count
		e5 += sum.Errors5xx
		if sum.Early > 0 {
			early++
		}
	}
	if n != served.Load() || e5 != failed.Load() {
		t.Fatalf("shipped %d requests, %d failing; served %d, %d failing", n, e5, served.Load(), failed.Load())
	}
	if early == 0 {
		t.Fatal("no early part shipped during a 75% 5xx surge")
	}
}
