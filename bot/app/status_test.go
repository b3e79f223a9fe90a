package app_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"github.com/alertengine/alertengine/bot/metrics"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/ledger"
	"github.com/prometheus/client_golang/prometheus"
)

const statusToken = "status-token-0123456789"

// TestStatusEndpoint: only the bearer token opens /__alertengine/status; it reports
// version, uptime, checks, and per tenant the chain, its code base and a detected loss,
// and no secret.
func TestStatusEndpoint(t *testing.T) {
	ctx := context.Background()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	sink, err := ledger.NewFileSink(filepath.Join(t.TempDir(), "checkpoints.json"), key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	clock := func() time.Time { return started.Add(90 * time.Second) }
	losses, err := metrics.NewLedgerLosses(prometheus.NewRegistry(), []string{"acme"}, clock)
	if err != nil {
		t.Fatal(err)
	}
	record := func(st ledger.Store) *ledger.Ledger {
		l, err := ledger.New(ledger.Options{Store: st, Signer: key, Sink: sink, OnLoss: losses.Record})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	open := ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout", Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}, Reason: "p95 up"}
	if _, err := record(ledger.NewMemStore()).Record(ctx, open); err != nil {
		t.Fatal(err)
	}
	wiped := ledger.NewMemStore() // Redis came back empty
	l := record(wiped)
	if err := l.Check(ctx, "acme"); err == nil {
		t.Fatal("no loss detected")
	}
	h, err := app.StatusHandler(app.StatusOptions{Token: statusToken, Version: "v1.2.3", Started: started, Clock: clock, Tenants: []string{"acme"},
		Env: map[string]string{"ALERT_SECRET": "[redacted]"}, Store: wiped, Ledger: l, Losses: losses, Sink: "file /var/lib/alertengine/checkpoints.json",
		Checks: []app.Check{{Name: "redis", Check: func(context.Context) error { return nil }}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, auth := range []string{"", "Bearer wrong-token-0123456789", statusToken, "Basic " + statusToken} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/__alertengine/status", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized || rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: %d, want 401 with a challenge", auth, rec.Code)
		}
	}
	rec := httptest.NewRecorder()
	req := httptest.NewRequest(http.MethodGet, "/__alertengine/status", nil)
	req.Header.Set("Authorization", "Bearer "+statusToken)
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("with the token: %d %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), statusToken) {
		t.Fatal("the status shows its own token")
	}
	var st struct {
		Version      string            `json:"version"`
		UptimeS      int64             `json:"uptime_s"`
		Checks       map[string]string `json:"checks"`
		LossDetected bool              `json:"ledger_loss_detected"`
		Tenants      []struct {
			ID           string  `json:"id"`
			ChainEntries *uint64 `json:"chain_entries"`
			CodeBase     uint64  `json:"code_base"`
			Loss         struct {
				Detected int    `json:"detected"`
				Last     string `json:"last"`
			} `json:"ledger_loss"`
		} `json:"tenants"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Version != "v1.2.3" || st.UptimeS != 90 || st.Checks["redis"] != "ok" || !st.LossDetected || len(st.Tenants) != 1 {
		t.Fatalf("status %+v", st)
	}
	ts := st.Tenants[0]
	if ts.ID != "acme" || ts.ChainEntries == nil || *ts.ChainEntries != 0 || ts.CodeBase == 0 || ts.Loss.Detected != 1 || !strings.Contains(ts.Loss.Last, "had 1") {
		t.Fatalf("tenant status %+v", ts)
	}
}

// TestStatusKeepsAnUnacceptedLossAfterARestart: a serve started after the loss was found
// (by another process) still shows it, with every lost chain, until it is accepted.
func TestStatusKeepsAnUnacceptedLossAfterARestart(t *testing.T) {
	ctx := context.Background()
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	sink, err := ledger.NewFileSink(filepath.Join(t.TempDir(), "checkpoints.json"), key.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	guarded := func(st ledger.Store) *ledger.Ledger {
		l, err := ledger.New(ledger.Options{Store: st, Signer: key, Sink: sink})
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	open := ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout", Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}, Reason: "p95 up"}
	store := ledger.NewMemStore()
	if _, err := guarded(store).Record(ctx, open); err != nil {
		t.Fatal(err)
	}
	// Two wipes, each found by a process that then went away.
	for range 2 {
		wiped := ledger.NewMemStore()
		l := guarded(wiped)
		if err := l.Check(ctx, "acme"); err == nil {
			t.Fatal("no loss detected")
		}
		if _, err := l.Record(ctx, open); err != nil {
			t.Fatal(err)
		}
		store = wiped
	}
	status := func(l *ledger.Ledger) map[string]any {
		t.Helper()
		losses, err := metrics.NewLedgerLosses(prometheus.NewRegistry(), []string{"acme"}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h, err := app.StatusHandler(app.StatusOptions{Token: statusToken, Tenants: []string{"acme"}, Store: store, Ledger: l, Losses: losses})
		if err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/__alertengine/status", nil)
		req.Header.Set("Authorization", "Bearer "+statusToken)
		h.ServeHTTP(rec, req)
		var got map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		return got
	}
	restarted := guarded(store)
	if err := restarted.Check(ctx, "acme"); err != nil {
		t.Fatalf("a new process on the restarted chain: %v", err)
	}
	got := status(restarted)
	lost, _ := got["tenants"].([]any)[0].(map[string]any)["unaccepted_losses"].([]any)
	if got["ledger_loss_detected"] != true || len(lost) != 2 {
		t.Fatalf("status after a restart: detected %v, %d unaccepted lost chains; want true and both", got["ledger_loss_detected"], len(lost))
	}
	if _, _, err := restarted.AcceptLoss(ctx, "acme", "tendai", "reviewed both wipes"); err != nil {
		t.Fatal(err)
	}
	if got := status(restarted); got["ledger_loss_detected"] != false {
		t.Errorf("status after acceptance: detected %v, want false", got["ledger_loss_detected"])
	}
}
