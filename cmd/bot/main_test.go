package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// env is a fake environment for run.
type env map[string]string

func (e env) lookup(k string) (string, bool) { v, ok := e[k]; return v, ok }

var seed = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{3}, 32))

func serveEnv(redisURL, addr string) env {
	return env{
		"REDIS_URL":            redisURL,
		"ALERT_SECRET":         strings.Repeat("k", 32),
		"LEDGER_SIGNING_KEY":   seed,
		"ADDR":                 addr,
		"ACME_RECOVERY_SECRET": "rs",
		"LOG_LEVEL":            "error",
	}
}

func runCLI(t *testing.T, e env, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb, e.lookup)
	return code, out.String(), errb.String()
}

func TestServeRefusesUnreachableRedisWithOneLine(t *testing.T) {
	t.Parallel()
	code, _, stderr := runCLI(t, serveEnv("redis://:hunter2@127.0.0.1:1/0", "127.0.0.1:0"), "serve", "--config", "testdata/valid.yaml")
	if code != exitUsage {
		t.Fatalf("exit %d, want 2; stderr %q", code, stderr)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "REDIS_URL") {
		t.Fatalf("want one line naming REDIS_URL, got %q", stderr)
	}
	if strings.Contains(stderr, "hunter2") {
		t.Fatalf("the Redis password leaked: %q", stderr)
	}
}

func TestServeRejectsInvalidConfigNamingKeyPaths(t *testing.T) {
	t.Parallel()
	code, _, stderr := runCLI(t, serveEnv("redis://127.0.0.1:1", "127.0.0.1:0"), "serve", "--config", "testdata/invalid.yaml")
	if code != exitUsage {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{
		"tenants[0].policy.approval_tymeout: unknown key",
		"tenants[0].people[0]",  // approver with no chat identity
		"tenants[1].id",         // duplicate tenant
		"policy.default_action", // action referenced but not defined
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not name %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "s3cret-value") {
		t.Fatal("a secret from the config leaked into the error")
	}
	for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
		if !strings.HasPrefix(line, "testdata/invalid.yaml") {
			t.Errorf("line does not name the file: %q", line)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"nope"}, {"verify"}, {"verify", "--tenant", "a", "--file", "b"}, {"export", "--tenant", "acme", "--incident", "INC-1", "--format", "docx"}, {"replay", "--tenant", "Bad!"}} {
		if code, _, _ := runCLI(t, env{}, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
	}
}

// freeAddr returns a loopback address nothing listens on, for a bot started through its
// environment (ADDR), which binds it later. The port is below the kernel's ephemeral range,
// so the many client connections of parallel tests (Redis, the fakes) cannot take it in
// between, as one did with a port the kernel picked. An in-process bot is given a listener
// instead (Options.Listener), which leaves no gap at all.
func freeAddr(t testing.TB) string {
	t.Helper()
	for range 100 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+rand.IntN(12000))
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		ln.Close()
		return addr
	}
	t.Fatal("no free loopback port in 20000-31999")
	return ""
}

func status(url string) int {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// waitStatus polls url until it answers want, for up to 10 s.
func waitStatus(t testing.TB, url string, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	got := 0
	for time.Now().Before(deadline) {
		if got = status(url); got == want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s answered %d, want %d", url, got, want)
}

func TestServeReadinessFollowsRedis(t *testing.T) {
	t.Parallel()
	m := miniredis.RunT(t)
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	var errb bytes.Buffer
	e := serveEnv("redis://"+m.Addr(), addr)
	e["LEDGER_CHECKPOINT_FILE"] = filepath.Join(t.TempDir(), "checkpoints.json")
	go func() {
		done <- run(ctx, []string{"serve", "--config", "testdata/valid.yaml"}, &bytes.Buffer{}, &errb, e.lookup)
	}()
	base := "http://" + addr
	waitStatus(t, base+"/readyz", http.StatusOK)
	if got := status(base + "/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz %d", got)
	}
	m.Close()
	waitStatus(t, base+"/readyz", http.StatusServiceUnavailable)
	if got := status(base + "/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz must stay 200 while Redis is down, got %d", got)
	}
	if err := m.Restart(); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, base+"/readyz", http.StatusOK)
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(body.String(), `alertengine_http_requests_total{code="503",route="GET /readyz"}`) {
		t.Fatalf("/metrics does not count the 503 readiness answers:\n%.2000s", body.String())
	}
	cancel()
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("serve exited %d after SIGTERM-like cancel: %s", code, errb.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("serve did not shut down")
	}
}

// writeExport builds a chain of n entries in an in-memory store and exports it signed.
func writeExport(t *testing.T, n int) string {
	ctx := context.Background()
	s := ledger.NewMemStore()
	l, err := ledger.New(ledger.Options{Store: s})
	if err != nil {
		t.Fatal(err)
	}
	first, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout", Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}, Reason: "p95 up"})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		if _, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Incident: first.Incident, Event: ledger.Question, Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai"}, Reason: fmt.Sprintf("question %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	key, _ := serveEnvKey()
	path := filepath.Join(t.TempDir(), "export.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ledger.ExportJSONL(ctx, s, "acme", key, time.Now(), f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	return path
}

// TestVerifyFile: `bot verify --file` on a 10,000-entry export: ok and exit 0 when intact;
// exit 1 and the first bad entry named for every kind of damage; exit 1 when the
// checkpoint is signed by another key than LEDGER_SIGNING_KEY's.
func TestVerifyFile(t *testing.T) {
	t.Parallel()
	const n, k = 10000, 4321
	path := writeExport(t, n)
	e := env{"LEDGER_SIGNING_KEY": seed}
	if code, out, errs := runCLI(t, e, "verify", "--file", path); code != exitOK || out != "ok: 10000 entries\n" || !strings.Contains(errs, "key pinned") {
		t.Fatalf("intact: exit %d, %q %q", code, out, errs)
	}
	good, _ := os.ReadFile(path)
	for _, tc := range ledgertest.Tamperings(n, k) {
		t.Run(tc.Name, func(t *testing.T) {
			ls, err := tc.Apply(strings.Split(strings.TrimSuffix(string(good), "\n"), "\n"))
			if err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(t.TempDir(), "export.jsonl")
			os.WriteFile(bad, []byte(strings.Join(ls, "\n")+"\n"), 0o600)
			code, out, _ := runCLI(t, e, "verify", "--file", bad)
			if want := fmt.Sprintf("entry %d: ", tc.Want); code != exitFailed || !strings.HasPrefix(out, want) {
				t.Fatalf("exit %d, %q; want exit 1 and %q…", code, out, want)
			}
		})
	}
	other := env{"LEDGER_SIGNING_KEY": base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{4}, 32))}
	if code, out, _ := runCLI(t, other, "verify", "--file", path); code != exitFailed || !strings.HasPrefix(out, "LEDGER_SIGNING_KEY's public key does not match the key that signed the export's checkpoint") {
		t.Fatalf("export signed by another key than LEDGER_SIGNING_KEY's: exit %d %q", code, out)
	}
}

func TestRedisCredentialsApplyToClusterAndSentinel(t *testing.T) {
	t.Parallel()
	e := serveEnv("rediss://bot:s3cret@ignored:6379/2", "127.0.0.1:0")
	e["REDIS_SENTINEL_ADDRS"] = "127.0.0.1:26379"
	e["REDIS_MASTER_NAME"] = "main"
	cfg, err := config.LoadEnv(e.lookup, config.Serve)
	if err != nil {
		t.Fatal(err)
	}
	c, desc, err := app.RedisClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fc, ok := c.(*redis.Client)
	if !ok {
		t.Fatalf("sentinel client is %T", c)
	}
	o := fc.Options()
	if o.Username != "bot" || o.Password != "s3cret" || o.DB != 2 || o.TLSConfig == nil {
		t.Fatalf("credentials not applied: user %q db %d tls %v", o.Username, o.DB, o.TLSConfig != nil)
	}
	if strings.Contains(desc, "s3cret") {
		t.Fatalf("description leaks the password: %q", desc)
	}
}
