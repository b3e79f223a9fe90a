package main

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestVerifyFollowWitnessed: serve's witnessed publication and the auditor's monitor.
// A checkpoint cosigned by an HTTP witness is published beside the checkpoint file;
// `bot verify --follow` pinning the witness passes it, and when a note signed by the
// ledger key alone replaces it (a stolen key, no witness), the next check exits 1,
// naming the missing cosignature, logged at ERROR.
func TestVerifyFollowWitnessed(t *testing.T) {
	srv, prefix, store, l := redisLedger(t)
	ctx := context.Background()
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	if _, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout", Actor: policy, Reason: "p95 2.8 s", PolicyVersion: "pol-1"}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cpFile := filepath.Join(dir, "checkpoints.json")
	e := env{"REDIS_URL": srv.URL, "REDIS_KEY_PREFIX": prefix, "LEDGER_SIGNING_KEY": seed, "LEDGER_ORIGIN": "ae.example", "LEDGER_CHECKPOINT_FILE": cpFile}
	_, vkey, _ := runCLI(t, e, "keys")
	vkey = strings.TrimSpace(vkey)
	_, wkey, _ := runCLI(t, env{}, "witness", "--name", "w1.example", "--key", filepath.Join(dir, "w.key"), "--init")
	wkey = strings.TrimSpace(wkey)
	lv, _ := ledger.ParseVerifier(vkey)
	raw, _ := os.ReadFile(filepath.Join(dir, "w.key"))
	wk, _ := config.DecodeSeed(string(raw))
	w, err := ledger.NewWitness("w1.example", wk, []note.Verifier{lv}, filepath.Join(dir, "w.state"), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	ws := httptest.NewServer(w.Handler())
	defer ws.Close()
	key, _ := config.DecodeSeed(seed)
	p, err := ledger.NewPublisher(ledger.WitnessConfig{URLs: []string{ws.URL}, Keys: []string{wkey}, Quorum: 1, Origin: "ae.example", CheckpointFile: cpFile}, store, key, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Publish(ctx, "acme"); err != nil {
		t.Fatal(err)
	}

	tick := make(chan time.Time)
	orig := followTicker
	defer func() { followTicker = orig }()
	followTicker = func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} }
	type result struct {
		code     int
		out, err string
	}
	done := make(chan result)
	go func() {
		code, out, errs := runCLI(t, e, "verify", "--tenant", "acme", "--follow", "--interval", "1s", "--key", vkey, "--witness", wkey)
		done <- result{code, out, errs}
	}()
	select {
	case tick <- time.Now(): // the first check passed; the monitor waits for this tick
	case r := <-done:
		t.Fatalf("follow stopped at once: %+v", r)
	}
	ls, _, _ := ledger.NoteSigner("ae.example", key)
	forged, _ := ledger.SignCheckpointNote(ls, "ae.example", "acme", mustHead(t, store))
	ledger.NoteDirFor(cpFile).PublishNote(ctx, "acme", forged)
	var r result
	select {
	case tick <- time.Now():
		r = <-done
	case r = <-done:
	}
	if r.code != exitFailed || !strings.Contains(r.out, "ok: acme consistent at 1 entries") || !strings.Contains(r.out, "no signature by w1.example") ||
		!strings.Contains(r.err, "level=ERROR") {
		t.Fatalf("follow: %+v", r)
	}
}

func mustHead(t *testing.T, s *ledger.RedisStore) tlog.Tree {
	t.Helper()
	tr, err := ledger.TreeHead(context.Background(), s, "acme")
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

// redisLedger is a ledger in the test Redis under a prefix of the test's own.
func redisLedger(t *testing.T) (*ledgertest.Server, string, *ledger.RedisStore, *ledger.Ledger) {
	t.Helper()
	srv := ledgertest.NewServer(t)
	prefix := srv.Prefix(t)
	store := ledger.NewRedisStore(srv.Client(t), prefix)
	l, err := ledger.New(ledger.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	return srv, prefix, store, l
}
