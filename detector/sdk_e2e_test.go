package detector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/sdk"
)

// TestRealSDKEndToEnd: a service instrumented with the real SDK (middleware, 1 s
// sketches, its own shipper) pushes to Redis; a detector under Run opens an incident when
// the service turns slow. Real time: the service really takes 800 ms per request.
func TestRealSDKEndToEnd(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		testkit.Skip(t, "real time")
	}
	h := newHarness(t)
	opened := make(chan Event, 1)
	d := h.replica("r1", defaultTenants(), func(o *Options) {
		o.Clock = time.Now
		o.OnEvent = func(_ context.Context, e Event) {
			if e.Kind == Opened {
				select {
				case opened <- e:
				default:
				}
			}
		}
	})
	ae := sdk.New(sdk.Options{Service: "checkout", Tenant: "acme", RedisURL: h.srv.URL, KeyPrefix: h.prefix, Instance: "pod-1"})
	t.Cleanup(func() { _ = ae.Close() })
	var slow atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("GET /pay", func(w http.ResponseWriter, r *http.Request) {
		wait := 5 * time.Millisecond
		if slow.Load() {
			wait = 800 * time.Millisecond
		}
		tm := time.NewTimer(wait) // the service's own work, not synchronisation
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusOK)
	})
	srv := httptest.NewServer(ae.Instrument(mux))
	t.Cleanup(srv.Close)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	var wg sync.WaitGroup
	client := func(pace time.Duration) {
		defer wg.Done()
		tk := time.NewTicker(pace)
		defer tk.Stop()
		for {
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/pay", nil)
			if resp, err := srv.Client().Do(req); err == nil {
				_ = resp.Body.Close()
			}
			select {
			case <-ctx.Done():
				return
			case <-tk.C:
			}
		}
	}
	for i := 0; i < 8; i++ { // about 80 requests/s
		wg.Add(1)
		go client(100 * time.Millisecond)
	}
	// Let a healthy history build up, then slow the service down.
	warm := time.NewTimer(4 * time.Second)
	select {
	case <-warm.C:
	case e := <-opened:
		t.Fatalf("opened while healthy: %+v", e)
	}
	slow.Store(true)
	turned := time.Now()
	for i := 0; i < 32; i++ { // more clients, so slow requests fill the window
		wg.Add(1)
		go client(time.Millisecond)
	}
	var e Event
	select {
	case e = <-opened:
	case <-time.After(20 * time.Second):
		t.Fatal("no incident 20 s after the service turned slow")
	}
	t.Logf("opened %v after the service turned slow: %s", time.Since(turned).Round(time.Millisecond), e.Reason)
	cancel()
	wg.Wait()
	if err := <-done; err != context.Canceled {
		t.Fatalf("Run returned %v", err)
	}
	if e.Source != SourcePush || e.P95Ms < 700 || e.ErrorRate != 0 || e.BaselineP95Ms <= 0 || e.BaselineP95Ms > 100 {
		t.Fatalf("event %+v: want a push detection of p95 ≈ 800 ms against a learned baseline of a few ms", e)
	}
	if n := len(h.entriesOf("acme", ledger.Detect)); n != 1 {
		t.Fatalf("%d DETECTED", n)
	}
}
