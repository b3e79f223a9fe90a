package ledger_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// TestHTTPSink: the auditor's service keeps the marks a Ledger writes (beside the file);
// a bot whose Redis came back empty detects the loss from the service alone; a forged
// mark, a wrong token and a service that is down are errors, never a mark.
func TestHTTPSink(t *testing.T) {
	ctx := context.Background()
	srv := ledgertest.NewSinkServer(t, "auditor-token")
	pub := sinkKey.Public().(ed25519.PublicKey)
	hs, err := ledger.NewHTTPSink(srv.URL, "auditor-token", pub, nil)
	if err != nil {
		t.Fatal(err)
	}
	file, _ := newSink(t)
	l1 := guarded(t, ledger.NewMemStore(), ledger.Sinks{file, hs}, &losses{})
	used := map[string]bool{}
	for _, svc := range []string{"checkout", "payments"} {
		used[open(t, l1, svc).Incident] = true
	}
	if err := l1.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	m, err := hs.Load(ctx, "acme")
	if err != nil || m == nil || m.Checkpoint.Size != 2 {
		t.Fatalf("service holds %+v, %v; want the 2-entry checkpoint", m, err)
	}

	seen := &losses{}
	l2 := guarded(t, ledger.NewMemStore(), hs, seen)
	if err := l2.Check(ctx, "acme"); !errors.Is(err, ledger.ErrLost) || !strings.Contains(err.Error(), "had 2") {
		t.Fatalf("Check against the service: %v", err)
	}
	if e := open(t, l2, "checkout"); used[e.Incident] {
		t.Fatalf("code %s repeats", e.Incident)
	}

	forged := markOf(forgerKey, "acme", 500)
	b, _ := json.Marshal(forged)
	srv.Set("acme", b)
	if _, err := hs.Load(ctx, "acme"); !errors.Is(err, ledger.ErrBadCheckpoint) {
		t.Fatalf("forged mark on the service: %v", err)
	}
	wrong, _ := ledger.NewHTTPSink(srv.URL, "not-the-token", pub, nil)
	if _, err := wrong.Load(ctx, "globex"); err == nil || !strings.Contains(err.Error(), "HTTP 401") {
		t.Fatalf("wrong token: %v", err)
	}
	down, _ := ledger.NewHTTPSink("http://127.0.0.1:1/checkpoints", "", pub, nil)
	if err := down.Save(ctx, markOf(sinkKey, "acme", 1)); !errors.Is(err, ledger.ErrSink) {
		t.Fatalf("service down: %v", err)
	}
	if _, err := ledger.NewHTTPSink("http://user:pw@auditor.example/", "", pub, nil); err == nil {
		t.Fatal("a URL with credentials was accepted")
	}
}
