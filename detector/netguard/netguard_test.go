package netguard_test

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alertengine/alertengine/detector/netguard"
)

func TestControlRefusesNonPublicAddresses(t *testing.T) {
	callerErr := errors.New("caller's own wording")
	tests := []struct {
		addr, kind string
	}{
		{"127.0.0.1:80", "loopback"},
		{"[::1]:80", "loopback"},
		{"10.1.2.3:8000", "private"},
		{"192.168.0.10:80", "private"},
		{"169.254.169.254:80", "link-local"},
		{"100.64.1.1:80", "shared (CGNAT)"},
		{"[::ffff:10.0.0.1]:80", "private"},
		{"[64:ff9b::7f00:1]:80", "loopback"},
		{"8.8.8.8:443", ""},
		{"[2606:4700:4700::1111]:443", ""},
	}
	for _, cause := range []error{nil, callerErr} {
		control := netguard.Control(cause)
		for _, tc := range tests {
			err := control("tcp", tc.addr, nil)
			if tc.kind == "" {
				if err != nil {
					t.Errorf("%s refused: %v", tc.addr, err)
				}
				continue
			}
			var ae *netguard.AddressError
			if !errors.As(err, &ae) || ae.Kind != tc.kind || !errors.Is(err, netguard.ErrRefused) {
				t.Errorf("%s: %v, want refused as %s", tc.addr, err, tc.kind)
			}
			if cause != nil && (!errors.Is(err, callerErr) || !strings.HasPrefix(err.Error(), callerErr.Error())) {
				t.Errorf("%s: %v does not carry the caller's cause", tc.addr, err)
			}
		}
		if err := control("tcp", "no-port", nil); !errors.Is(err, netguard.ErrRefused) || (cause != nil && !errors.Is(err, cause)) {
			t.Errorf("unparsable address: %v", err)
		}
	}
}

// A guarded transport refuses a loopback server before connecting; an unguarded one
// reaches it.
func TestTransportGuard(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	guarded := &http.Client{Transport: netguard.Transport(true, nil, 5*time.Second)}
	_, err := guarded.Get(srv.URL)
	var ae *netguard.AddressError
	if !errors.As(err, &ae) || ae.Kind != "loopback" {
		t.Fatalf("guarded GET %s: %v, want a loopback refusal", srv.URL, err)
	}
	if n := conns.Load(); n != 0 {
		t.Fatalf("the server saw %d connections through the guard", n)
	}
	open := &http.Client{Transport: netguard.Transport(false, nil, 5*time.Second)}
	resp, err := open.Get(srv.URL)
	if err != nil {
		t.Fatalf("unguarded GET: %v", err)
	}
	resp.Body.Close()
}

func TestSameOrigin(t *testing.T) {
	check := netguard.SameOrigin(3)
	req := func(raw string) *http.Request {
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		return &http.Request{URL: u}
	}
	first := req("http://Health.example:80/health/alerts?token=x")
	tests := []struct {
		to   string
		hops int
		ok   bool
	}{
		{"http://health.example/other", 1, true},
		{"http://health.example:80/x", 3, true},
		{"http://health.example/x", 4, false},
		{"https://health.example/x", 1, false},
		{"http://health.example:8080/x", 1, false},
		{"http://127.0.0.1/internal/admin?token=secret", 1, false},
		{"http://10.0.0.5/", 1, false},
		{"http://other.example/", 1, false},
	}
	for _, tc := range tests {
		via := []*http.Request{first}
		for len(via) < tc.hops {
			via = append(via, first)
		}
		err := check(req(tc.to), via)
		if tc.ok != (err == nil) || (err != nil && !errors.Is(err, netguard.ErrRedirect)) {
			t.Errorf("redirect to %s after %d: %v, want ok=%v", tc.to, tc.hops, err, tc.ok)
		}
		if err != nil && strings.Contains(err.Error(), "secret") {
			t.Errorf("the refusal names the query: %v", err)
		}
	}
	if err := check(first, nil); err != nil {
		t.Errorf("the first request: %v", err)
	}
}
