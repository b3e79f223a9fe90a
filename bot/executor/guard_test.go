package executor_test

import (
	"context"
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/ledger"
)

// The guard decides on the address alone: it is handed no socket (nil RawConn), so a
// refusal is made before anything is sent.
func TestGuardRefusesBeforeConnecting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		kind string // "" allowed
	}{
		{"127.0.0.1:443", "loopback"},
		{"127.8.9.10:443", "loopback"},
		{"[::1]:443", "loopback"},
		{"10.0.0.5:8080", "private"},
		{"172.16.3.4:443", "private"},
		{"172.31.255.255:443", "private"},
		{"192.168.1.1:443", "private"},
		{"[fc00::1]:443", "private"},
		{"[fd12:3456::1]:443", "private"},
		{"169.254.169.254:80", "link-local"},
		{"[fe80::1]:443", "link-local"},
		{"[fe80::1%eth0]:443", "link-local"},
		{"100.64.0.1:443", "shared (CGNAT)"},
		{"100.127.255.254:443", "shared (CGNAT)"},
		{"0.0.0.0:443", "unspecified"},
		{"0.1.2.3:443", "unspecified"},
		{"[::]:443", "unspecified"},
		{"224.0.0.1:443", "multicast"},
		{"[ff02::1]:443", "multicast"},
		{"255.255.255.255:443", "reserved"},
		{"[::ffff:10.0.0.5]:443", "private"},
		{"[::ffff:127.0.0.1]:443", "loopback"},
		{"[64:ff9b::a9fe:a9fe]:80", "link-local"}, // NAT64 of 169.254.169.254
		{"[64:ff9b:1::a00:5]:80", "private"},      // local-use NAT64 of 10.0.0.5
		{"[::a00:5]:80", "private"},               // IPv4-compatible 10.0.0.5
		{"[2002:a00:5::1]:80", "private"},         // 6to4 of 10.0.0.5
		{"[2002:7f00:1::1]:80", "loopback"},       // 6to4 of 127.0.0.1
		{"[fec0::1]:80", "site-local"},
		{"198.18.0.1:80", "reserved"},
		{"192.0.0.8:80", "reserved"},
		{"[2002:5db8:d70e::1]:443", ""}, // 6to4 of a public address
		{"93.184.215.14:443", ""},
		{"8.8.8.8:53", ""},
		{"100.128.0.1:443", ""},
		{"172.32.0.1:443", ""},
		{"[2606:4700:4700::1111]:443", ""},
		{"[64:ff9b::808:808]:443", ""}, // NAT64 of 8.8.8.8
	}
	control := executor.Guard()
	for _, tc := range tests {
		t.Run(tc.addr, func(t *testing.T) {
			err := control("tcp", tc.addr, nil)
			if tc.kind == "" {
				if err != nil {
					t.Fatalf("refused a public address: %v", err)
				}
				return
			}
			var ae *executor.AddressError
			if !errors.As(err, &ae) || !errors.Is(err, executor.ErrPrivateAddress) || ae.Kind != tc.kind {
				t.Fatalf("Guard = %v, want %s refused", err, tc.kind)
			}
		})
	}
	if err := control("tcp", "not-an-address", nil); !errors.Is(err, executor.ErrPrivateAddress) {
		t.Errorf("unparsable address: %v", err)
	}
}

func TestRecoveryURLGuard(t *testing.T) {
	t.Parallel()
	const refused = "recovery URL resolves to a private/loopback/link-local address (allow_private_network is false)"
	tests := []struct {
		name    string
		url     func(local string) string // local: the loopback webhook's base URL
		allow   bool
		address string // the refused address ("" not refused)
		kind    string
	}{
		{name: "loopback server", url: func(l string) string { return l + "/recover" }, address: "127.0.0.1", kind: "loopback"},
		{name: "a name resolving to loopback", url: func(l string) string {
			u, _ := url.Parse(l)
			return "http://localhost:" + u.Port() + "/recover"
		}, kind: "loopback"},
		{name: "cloud metadata address", url: func(string) string { return "http://169.254.169.254/latest/meta-data/" }, address: "169.254.169.254", kind: "link-local"},
		{name: "private address", url: func(string) string { return "https://10.0.0.5:8443/recover" }, address: "10.0.0.5", kind: "private"},
		{name: "loopback server with allow_private_network", url: func(l string) string { return l + "/recover" }, allow: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := newEnv(t)
			h := newWebhook(t)
			v.setTarget(tenant, executor.Target{URL: tc.url(h.srv.URL), Secret: secret, AllowPrivateNetwork: tc.allow})
			// An hour per attempt: were the remote addresses dialled, the test would time out
			// instead of seeing the guard's refusal.
			b := v.newBot(func(o *executor.Options) { o.AttemptTimeout = time.Hour })
			x := enqueueApproved(t, v, b, "checkout")
			b.start(t)
			o := b.outcome(t)

			in, hist := v.incident(x.Incident)
			if tc.allow {
				if o.Kind != executor.Executed || len(h.Calls()) != 1 || in.Stage != ledger.Executed {
					t.Fatalf("outcome %+v, %d calls, stage %s; want executed once", o, len(h.Calls()), in.Stage)
				}
				return
			}
			if o.Kind != executor.Failed || o.Attempts != 1 || o.Reason != refused {
				t.Errorf("outcome %+v, want failed after one attempt: %q", o, refused)
			}
			if n := h.Conns(); n != 0 {
				t.Errorf("the loopback webhook saw %d connections, want none", n)
			}
			if len(b.sleeps.get()) != 0 {
				t.Errorf("a refusal was retried")
			}
			if in.Stage != ledger.WebhookFailed {
				t.Errorf("stage %s, want WEBHOOK_FAILED", in.Stage)
			}
			wf := entries(hist, ledger.WebhookFail)
			if len(wf) != 1 || wf[0].Reason != refused {
				t.Errorf("webhook_fail entries %+v, want reason %q", wf, refused)
			}
			sec := entries(hist, ledger.Security)
			if len(sec) != 1 || sec[0].Data["kind"] != tc.kind || (tc.address != "" && sec[0].Data["address"] != tc.address) {
				t.Fatalf("security entries %+v, want one naming %s %s", sec, tc.kind, tc.address)
			}
			if a, err := netip.ParseAddr(sec[0].Data["address"]); err != nil || !a.IsValid() {
				t.Errorf("security entry address %q", sec[0].Data["address"])
			}
			dls, err := b.DeadLetters(context.Background(), tenant)
			if err != nil || len(dls) != 1 || !strings.Contains(dls[0].Error, "is "+tc.kind) {
				t.Errorf("dead letters %+v, %v", dls, err)
			}
		})
	}
}
