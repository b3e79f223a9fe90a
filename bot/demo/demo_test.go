package demo

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/executor"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

const secret = "recovery-secret-for-the-demo-tests"

func newService(t *testing.T) (*Service, *httptest.Server) {
	t.Helper()
	rs := ledgertest.NewServer(t)
	s, err := New(Options{Tenant: "demo", Service: "checkout", RedisURL: rs.URL, KeyPrefix: rs.Prefix(t), RecoverySecret: secret,
		Actions: []string{"restart_workers"}, Healthy: time.Millisecond, Slow: 2 * time.Millisecond, ErrorShare: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(srv.Close)
	return s, srv
}

// call posts a recovery call as the bot's executor does, signed with key.
func call(t *testing.T, url, key, idem string, ex executor.Execution) int {
	t.Helper()
	body, _ := json.Marshal(ex)
	req, _ := http.NewRequest(http.MethodPost, url+"/recover", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", idem)
	if key != "" {
		req.Header.Set("X-AlertEngine-Signature", executor.Sign(key, time.Now(), body))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestTheFaultMakesTheServiceFailAndOnlyASignedRecoveryClearsIt(t *testing.T) {
	s, srv := newService(t)
	get := func() int {
		resp, err := http.Get(srv.URL + "/checkout")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("healthy service answered %d", code)
	}
	s.Spike()
	if code := get(); code != http.StatusInternalServerError {
		t.Fatalf("faulty service (error share 1) answered %d", code)
	}
	ex := executor.Execution{Tenant: "demo", Incident: "INC-1", Action: "restart_workers", ApprovedBy: []string{"tendai"}}
	for name, tc := range map[string]struct {
		key  string
		ex   executor.Execution
		code int
	}{
		"unsigned":       {"", ex, http.StatusUnauthorized},
		"wrong secret":   {"another-secret-of-enough-length", ex, http.StatusUnauthorized},
		"unknown action": {secret, executor.Execution{Tenant: "demo", Incident: "INC-1", Action: "drop_database"}, http.StatusUnprocessableEntity},
		"other tenant":   {secret, executor.Execution{Tenant: "acme", Incident: "INC-1", Action: "restart_workers"}, http.StatusUnprocessableEntity},
	} {
		if code := call(t, srv.URL, tc.key, "k-"+name, tc.ex); code != tc.code || !s.Faulty() {
			t.Errorf("%s: %d (want %d), faulty %v (want true)", name, code, tc.code, s.Faulty())
		}
	}
	if code := call(t, srv.URL, secret, "k1", ex); code != http.StatusOK || s.Faulty() {
		t.Fatalf("signed call: %d, faulty %v", code, s.Faulty())
	}
	if code := get(); code != http.StatusOK {
		t.Fatalf("recovered service answered %d", code)
	}
	rec := <-s.Recoveries()
	if rec.Incident != "INC-1" || rec.Action != "restart_workers" || rec.IdempotencyKey != "k1" || strings.Join(rec.ApprovedBy, ",") != "tendai" {
		t.Fatalf("recovery %+v", rec)
	}
	// A retry of the same call (same idempotency key) is answered, not run again.
	s.Spike()
	if code := call(t, srv.URL, secret, "k1", ex); code != http.StatusOK || !s.Faulty() {
		t.Fatalf("retried call: %d, faulty %v (a retry must not act again)", code, s.Faulty())
	}
	select {
	case r := <-s.Recoveries():
		t.Fatalf("a retry was run again: %+v", r)
	default:
	}
}

func TestSDKEndpointsAreMounted(t *testing.T) {
	_, srv := newService(t)
	resp, err := http.Get(srv.URL + "/health/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		Status string `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil || resp.StatusCode != http.StatusOK || h.Status == "" {
		t.Fatalf("/health/alerts: %d %+v %v", resp.StatusCode, h, err)
	}
}

func TestOptionsAreValidated(t *testing.T) {
	for name, o := range map[string]Options{
		"no service":   {Tenant: "demo", RedisURL: "redis://x", RecoverySecret: secret, Actions: []string{"a"}},
		"short secret": {Tenant: "demo", Service: "s", RedisURL: "redis://x", RecoverySecret: "short", Actions: []string{"a"}},
		"no actions":   {Tenant: "demo", Service: "s", RedisURL: "redis://x", RecoverySecret: secret},
		"huge rate":    {Tenant: "demo", Service: "s", RedisURL: "redis://x", RecoverySecret: secret, Actions: []string{"a"}, Rate: 100000},
	} {
		if _, err := New(o); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
