package main

// Like killpress_test.go, this drives the built binary only (environment, files, Redis).

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// runBot runs the bot's main in a process of its own with env and returns its exit code,
// stdout and stderr.
func runBot(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	cmd := botProcess(args...)
	cmd.Env = append(append(cmd.Env, "PATH="+os.Getenv("PATH")), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, out.String(), errb.String()
	case errors.As(err, &ee):
		return ee.ExitCode(), out.String(), errb.String()
	}
	t.Fatalf("bot %s: %v", strings.Join(args, " "), err)
	return 0, "", ""
}

// TestVerifyAcrossALossMarker: Redis loses a tenant's chain; the next append is the loss
// marker. `bot verify --tenant` reports the loss until `bot ledger accept-loss`, then
// passes and names the marker; `bot export` of the chain across the loss verifies offline
// with `bot verify --file` and the public key alone; the same export with the marker
// altered fails naming it.
func TestVerifyAcrossALossMarker(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "runs the bot's commands in processes of their own: skipped with -short")
	}
	t.Parallel()
	ctx := context.Background()
	srv := ledgertest.NewServer(t)
	rc, prefix := srv.Client(t), srv.Prefix(t)
	key := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{kpSigningSeed}, 32))
	pub := key.Public().(ed25519.PublicKey)
	dir := t.TempDir()
	cpFile := filepath.Join(dir, "checkpoints.json")
	sink, err := ledger.NewFileSink(cpFile, pub)
	if err != nil {
		t.Fatal(err)
	}
	store := ledger.NewRedisStore(rc, prefix)
	record := func(l *ledger.Ledger, e ledger.Entry) ledger.Entry {
		t.Helper()
		out, err := l.Record(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	l1, err := ledger.New(ledger.Options{Store: store, Signer: key, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	first := record(l1, ledger.Entry{Tenant: kpTenant, Event: ledger.Detect, Actor: policy, Service: "checkout", Reason: "p95 up"})
	record(l1, ledger.Entry{Tenant: kpTenant, Incident: first.Incident, Event: ledger.Recover, Actor: policy, Reason: "healthy"})
	if err := l1.Check(ctx, kpTenant); err != nil {
		t.Fatal(err)
	}
	// Redis loses everything of the tenant.
	keys, err := rc.Keys(ctx, prefix+"*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("keys under the prefix: %v, %v", keys, err)
	}
	if err := rc.Del(ctx, keys...).Err(); err != nil {
		t.Fatal(err)
	}
	l2, err := ledger.New(ledger.Options{Store: store, Signer: key, Sink: sink})
	if err != nil {
		t.Fatal(err)
	}
	next := record(l2, ledger.Entry{Tenant: kpTenant, Event: ledger.Detect, Actor: policy, Service: "checkout", Reason: "p95 up again"})
	es, err := store.Range(ctx, kpTenant, 1, 0)
	if err != nil || len(es) != 2 || es[0].Event != ledger.Loss {
		t.Fatalf("chain after the loss: %+v, %v; want the marker and the new incident", es, err)
	}
	marker := es[0]

	env := []string{
		"REDIS_URL=" + srv.URL,
		"REDIS_KEY_PREFIX=" + prefix,
		"LEDGER_SIGNING_KEY=" + base64.StdEncoding.EncodeToString(key.Seed()),
		"LEDGER_CHECKPOINT_FILE=" + cpFile,
	}
	code, out, errs := runBot(t, env, "verify", "--tenant", kpTenant)
	if code != 1 || !strings.Contains(out, "chain restarted after a loss") {
		t.Fatalf("verify before the loss is accepted: exit %d, %q %q; want 1 naming the loss", code, out, errs)
	}
	if code, out, errs = runBot(t, env, "ledger", "accept-loss", "--tenant", kpTenant, "--by", "tendai", "--reason", "receiver log reviewed"); code != 0 {
		t.Fatalf("accept-loss: exit %d, %q %q", code, out, errs)
	}
	wantLine := "Loss marker at entry " + itoa(marker.Seq) + ": entries 1–" + itoa(marker.Seq-1) + " lost"
	code, out, errs = runBot(t, env, "verify", "--tenant", kpTenant)
	if code != 0 || !strings.Contains(out, "ok: 2 entries") || !strings.Contains(out, wantLine) {
		t.Fatalf("verify after acceptance: exit %d, %q %q; want ok and %q", code, out, errs, wantLine)
	}

	export := filepath.Join(dir, "acme.jsonl")
	if code, out, errs = runBot(t, env, "export", "--tenant", kpTenant, "--incident", next.Incident, "--format", "jsonl", "--out", export); code != 0 {
		t.Fatalf("export across the loss: exit %d, %q %q", code, out, errs)
	}
	offline := []string{} // no Redis, no signing key: the file and the public key only
	pubFlag := base64.StdEncoding.EncodeToString(pub)
	code, out, errs = runBot(t, offline, "verify", "--file", export, "--public-key", pubFlag)
	if code != 0 || !strings.Contains(out, "ok: 2 entries") || !strings.Contains(out, wantLine) {
		t.Fatalf("offline verify of the export: exit %d, %q %q", code, out, errs)
	}
	raw, err := os.ReadFile(export)
	if err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(raw, []byte(`"lost_from":"1"`), []byte(`"lost_from":"2"`), 1)
	if bytes.Equal(forged, raw) {
		t.Fatal("the export has no lost_from to alter")
	}
	bad := filepath.Join(dir, "forged.jsonl")
	if err := os.WriteFile(bad, forged, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, _ = runBot(t, offline, "verify", "--file", bad, "--public-key", pubFlag)
	if code != 1 || !strings.HasPrefix(out, "entry "+itoa(marker.Seq)+": ") {
		t.Fatalf("verify of the altered marker: exit %d, %q; want 1 naming entry %d", code, out, marker.Seq)
	}
}

func itoa(n uint64) string { return strconv.FormatUint(n, 10) }
