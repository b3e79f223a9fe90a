package poll

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// trap is a server that must never be reached: it counts connections.
func newTrap(t *testing.T) (*httptest.Server, *atomic.Int32) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(goHealth(96, 85, 0, 400)))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return srv, &conns
}

// TestPollRedirects: the poller follows a redirect only to the health URL's own scheme,
// host and port, at most MaxRedirects times; a redirect elsewhere — loopback on another
// port, a private address, another public host — is refused before anything is dialled,
// the poll counts as failed, and after UnreachableAfter polls the service is judged down
// with a reason naming the redirect but never its path or query.
func TestPollRedirects(t *testing.T) {
	t.Parallel()
	trap, trapConns := newTrap(t)
	tests := []struct {
		name     string
		location func(self string) string // self: the health server's base URL
		followed bool
		reason   string
	}{
		{name: "to loopback on another port", location: func(string) string { return trap.URL + "/internal/admin?token=hunter2" },
			reason: "to another origin " + trap.URL},
		{name: "to localhost, same port", location: func(self string) string {
			return strings.Replace(self, "127.0.0.1", "localhost", 1) + "/internal/admin?token=hunter2"
		}, reason: "to another origin http://localhost:"},
		{name: "to a private address", location: func(string) string { return "http://10.0.0.5:8080/internal/admin?token=hunter2" },
			reason: "to another origin http://10.0.0.5:8080"},
		{name: "to the cloud metadata address", location: func(string) string { return "http://169.254.169.254/latest/meta-data/?token=hunter2" },
			reason: "to another origin http://169.254.169.254:80"},
		{name: "to another public host", location: func(string) string { return "https://93.184.215.14/health/alerts?token=hunter2" },
			reason: "to another origin https://93.184.215.14:443"},
		{name: "to https on the same host", location: func(self string) string {
			return strings.Replace(self, "http://", "https://", 1) + "/health/alerts?token=hunter2"
		}, reason: "to another origin https://127.0.0.1:"},
		{name: "a loop on the same host", location: func(self string) string { return self + "/moved?token=hunter2" },
			reason: fmt.Sprintf("more than %d redirects", MaxRedirects)},
		{name: "to the same host", location: func(self string) string { return self + "/health/alerts" }, followed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var (
				mu   sync.Mutex
				self string
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				loc := tc.location(self)
				mu.Unlock()
				if r.URL.Path == "/health/alerts" {
					_, _ = w.Write([]byte(goHealth(23, 2800, 0, 400)))
					return
				}
				http.Redirect(w, r, loc, http.StatusFound)
			}))
			defer srv.Close()
			mu.Lock()
			self = srv.URL
			mu.Unlock()
			h := newHarness(t)
			tenants := pullTenants(srv.URL)
			tenants[0].Services[0].HealthURL = srv.URL + "/moved"
			d := h.replica("r1", tenants, func(o *detector.Options) { o.PollTimeout = 2 * time.Second })
			for k := 0; k <= UnreachableAfter; k++ {
				now := base.Add(time.Duration(k) * DefaultPollInterval)
				h.clock.Set(now)
				if err := pl(d).Poll(context.Background(), now); err != nil {
					t.Fatal(err)
				}
			}
			detects := h.entriesOf("acme", ledger.Detect)
			if len(detects) != 1 {
				t.Fatalf("%d DETECTED after %d polls, want 1", len(detects), UnreachableAfter+1)
			}
			st, err := d.Status(context.Background(), "acme", "checkout")
			if err != nil {
				t.Fatal(err)
			}
			if tc.followed {
				if d.Stats().PollErrors != 0 || st.Last.Unreachable != "" || st.Last.P95Ms != 2800 {
					t.Fatalf("a same-host redirect was not followed: %d poll errors, last %+v", d.Stats().PollErrors, st.Last)
				}
				return
			}
			if got := d.Stats().PollErrors; got != UnreachableAfter+1 {
				t.Errorf("%d poll errors, want %d", got, UnreachableAfter+1)
			}
			if !strings.Contains(detects[0].Reason, tc.reason) || !strings.Contains(detects[0].Reason, "not followed") {
				t.Errorf("DETECTED reason %q, want it to name the refused redirect (%q)", detects[0].Reason, tc.reason)
			}
			if dump := h.redisDump(); strings.Contains(dump, "hunter2") || strings.Contains(dump, "/internal/admin") {
				t.Errorf("the redirect's path or query reached Redis:\n%s", dump)
			}
			if n := trapConns.Load(); n != 0 {
				t.Errorf("the loopback trap saw %d connections", n)
			}
		})
	}
}

// TestPollDialGuard: without allow_private_network a health URL on loopback is refused at
// dial time (the server sees no connection) and judged down after UnreachableAfter polls;
// with it, the same URL is polled.
func TestPollDialGuard(t *testing.T) {
	t.Parallel()
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("allow_private_network=%v", allow), func(t *testing.T) {
			trap, conns := newTrap(t)
			h := newHarness(t)
			tenants := pullTenants(trap.URL)
			tenants[0].Services[0].AllowPrivateNetwork = allow
			d := h.replica("r1", tenants, nil)
			for k := 0; k <= UnreachableAfter; k++ {
				now := base.Add(time.Duration(k) * DefaultPollInterval)
				h.clock.Set(now)
				if err := pl(d).Poll(context.Background(), now); err != nil {
					t.Fatal(err)
				}
			}
			if allow {
				if n := conns.Load(); n == 0 || d.Stats().PollErrors != 0 {
					t.Fatalf("allowed: %d connections, %d poll errors", n, d.Stats().PollErrors)
				}
				return
			}
			if n := conns.Load(); n != 0 {
				t.Fatalf("the guard let %d connections through", n)
			}
			detects := h.entriesOf("acme", ledger.Detect)
			want := "health endpoint address 127.0.0.1 is loopback; refused (allow_private_network is false)"
			if len(detects) != 1 || !strings.Contains(detects[0].Reason, want) {
				t.Fatalf("DETECTED %v, want one saying %q", detects, want)
			}
		})
	}
}

// TestHostileHealthReplies: oversized or absurd health answers are refused as unusable
// polls — never recorded as a measurement — and nothing longer than the bound reaches
// Redis or the log, even once the service is judged down with the answer's reason.
func TestHostileHealthReplies(t *testing.T) {
	t.Parallel()
	huge := strings.Repeat("A", 200_000)
	tests := []struct {
		name, body string
		reason     string // in the DETECTED reason
	}{
		{"200 KB status", `{"status":"` + huge + `","metrics":{"overall_p95_ms":80,"error_rate":0,"sample_size":400}}`, `status "AAAA`},
		{"200 KB timestamp", `{"metrics":{"overall_p95_ms":80,"error_rate":0,"sample_size":400},"timestamp":"` + huge + `"}`, `timestamp "AAAA`},
		{"200 KB numeric timestamp", `{"metrics":{"overall_p95_ms":80,"error_rate":0,"sample_size":400},"timestamp":[` + strings.Repeat("1,", 100_000) + `1]}`, "neither unix seconds"},
		{"p95 of 1e308", `{"metrics":{"overall_p95_ms":1e308,"error_rate":0,"sample_size":400}}`, "overall_p95_ms 1e+308 outside 0..3600000 (one hour)"},
		{"p95 just over an hour", `{"metrics":{"overall_p95_ms":3600001,"error_rate":0,"sample_size":400}}`, "overall_p95_ms 3.6e+06 outside"},
		{"negative p95", `{"metrics":{"overall_p95_ms":-5,"error_rate":0,"sample_size":400}}`, "overall_p95_ms -5 outside"},
		{"sample size over 1e12", `{"metrics":{"overall_p95_ms":80,"error_rate":0,"sample_size":2e12}}`, "sample_size 2e+12 is not a whole number"},
		{"negative sample size", `{"metrics":{"overall_p95_ms":80,"error_rate":0,"sample_size":-1}}`, "sample_size -1 is not"},
		{"anomaly score 1e300", `{"metrics":{"overall_p95_ms":80,"error_rate":0,"sample_size":400,"anomaly_score":1e300}}`, "anomaly_score 1e+300 outside"},
		{"body over 1 MiB", `{"status":"ok","metrics":{"overall_p95_ms":80,"error_rate":0,"sample_size":400},"pad":"` + strings.Repeat("x", maxHealthBytes) + `"}`, "body over"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			hs := newHealthServer(t)
			h := newHarness(t)
			var logs bytes.Buffer
			var logMu sync.Mutex
			log := slog.New(slog.NewJSONHandler(&lockedWriter{w: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
			d := h.replica("r1", pullTenants(hs.URL), func(o *detector.Options) { o.Logger = log })
			hs.answer(200, tc.body)
			for k := 0; k <= UnreachableAfter; k++ {
				now := base.Add(time.Duration(k) * DefaultPollInterval)
				h.clock.Set(now)
				if err := pl(d).Poll(context.Background(), now); err != nil {
					t.Fatal(err)
				}
			}
			if got := d.Stats().PollErrors; got != UnreachableAfter+1 {
				t.Fatalf("%d poll errors, want %d: the answer was accepted", got, UnreachableAfter+1)
			}
			detects := h.entriesOf("acme", ledger.Detect)
			if len(detects) != 1 || !strings.Contains(detects[0].Reason, tc.reason) {
				t.Fatalf("DETECTED %v, want one naming %q", detects, tc.reason)
			}
			if p, u := detects[0].Data["p95_ms"], detects[0].Data["unreachable"]; p != "0.0" || !strings.Contains(u, tc.reason) {
				t.Errorf("the refused answer was recorded as data: p95_ms %s, unreachable %q", p, u)
			}
			for _, e := range h.entries("acme") {
				if n := utf8.RuneCountInString(e.Reason); n > ledger.MaxTextRunes {
					t.Errorf("a %s reason of %d runes", e.Event, n)
				}
				for k, v := range e.Data {
					if n := utf8.RuneCountInString(v); n > ledger.MaxTextRunes {
						t.Errorf("%s data %s of %d runes", e.Event, k, n)
					}
				}
			}
			dump := h.redisDump()
			if strings.Contains(dump, strings.Repeat("A", ledger.MaxTextRunes)) || strings.Contains(dump, strings.Repeat("1,", ledger.MaxTextRunes/2)) {
				t.Fatalf("more than %d characters of the reply reached Redis", ledger.MaxTextRunes)
			}
			for _, line := range strings.Split(dump, "\n") {
				if len(line) > 8<<10 {
					t.Fatalf("a Redis value of %d bytes: %.200s…", len(line), line)
				}
			}
			logMu.Lock()
			defer logMu.Unlock()
			lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
			warns := 0
			for _, l := range lines {
				if len(l) > 2<<10 {
					t.Fatalf("a log line of %d bytes: %.200s…", len(l), l)
				}
				if strings.Contains(l, `"msg":"health poll failed"`) {
					warns++
				}
			}
			if warns != 1 {
				t.Errorf("%d 'health poll failed' lines for %d identical failures, want 1", warns, UnreachableAfter+1)
			}
		})
	}
}

type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestRunPollsInRealTime: Run's poll loop judges pull-mode services on its own, and Run
// returns when its context ends.
func TestRunPollsInRealTime(t *testing.T) {
	t.Parallel()
	hs := newHealthServer(t)
	hs.answer(200, goHealth(20, 2900, 0.2, 500))
	h := newHarness(t)
	opened := make(chan Event, 1)
	d := h.replica("r1", pullTenants(hs.URL), func(o *detector.Options) {
		o.Clock = time.Now
		o.PollInterval, o.PollTimeout = time.Second, 500*time.Millisecond
		o.OnEvent = func(_ context.Context, e Event) {
			if e.Kind == Opened {
				select {
				case opened <- e:
				default:
				}
			}
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	select {
	case e := <-opened:
		if e.Source != SourcePull || e.Service != "checkout" {
			t.Fatalf("event %+v", e)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("no incident from two bad polls within 15 s")
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
}
