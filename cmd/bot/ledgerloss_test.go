package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/ledger"
	"github.com/redis/go-redis/v9"
)

// ownRedis is a redis-server process this test owns, without persistence (no RDB, no
// AOF): a restart loses everything, as `redis-cli shutdown nosave` did in the issue.
type ownRedis struct {
	t    *testing.T
	port int
	cmd  *exec.Cmd
}

func startOwnRedis(t *testing.T, port int) *ownRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testkit.Skip(t, "redis-server is not installed: this test restarts its own Redis")
	}
	if port == 0 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	r := &ownRedis{t: t, port: port, cmd: cmd}
	t.Cleanup(r.kill)
	ready := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Ready to accept connections") {
				close(ready)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	select {
	case <-ready:
	case <-time.After(30 * time.Second):
		t.Fatalf("redis-server on port %d did not become ready", port)
	}
	return r
}

func (r *ownRedis) url() string { return "redis://127.0.0.1:" + strconv.Itoa(r.port) }

func (r *ownRedis) kill() {
	if r.cmd.ProcessState == nil {
		_ = r.cmd.Process.Kill()
		_ = r.cmd.Wait()
	}
}

// syncBuffer is serve's stderr, read while serve writes it.
type syncBuffer = testkit.Log

// waitLog waits up to d for a JSON log record matching ok.
func waitLog(t *testing.T, log *syncBuffer, d time.Duration, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(log.String(), "\n") {
			var rec map[string]any
			if json.Unmarshal([]byte(line), &rec) == nil && ok(rec) {
				return rec
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("no such log record within %v; log:\n%s", d, log.String())
	return nil
}

// TestRedisRestartWithoutPersistenceIsALedgerLoss is issue 13's acceptance: a real
// redis-server without persistence restarts under a running `serve`. serve logs the loss
// at ERROR, /metrics counts it, `bot verify --tenant` exits 1 naming the checkpoint's size
// and the chain's, and the next incident's code is not one used before.
func TestRedisRestartWithoutPersistenceIsALedgerLoss(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		testkit.Skip(t, "restarts a redis-server: skipped with -short")
	}
	rs := startOwnRedis(t, 0)
	h := newHarness(t)
	vars := env{}
	for k, v := range h.vars {
		vars[k] = v
	}
	addr := freeAddr(t)
	vars["REDIS_URL"] = rs.url()
	vars["REDIS_KEY_PREFIX"] = h.prefix
	vars["ADDR"] = addr
	vars["LOG_LEVEL"] = "warn"
	vars["LOG_FORMAT"] = "json"
	vars["STATUS_TOKEN"] = "status-token-for-tests"

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int, 1)
	logs := &syncBuffer{}
	go func() { done <- run(ctx, []string{"serve", "--config", h.cfgPath}, &bytes.Buffer{}, logs, vars.lookup) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(40 * time.Second):
			t.Error("serve did not stop")
		}
	})
	base := "http://" + addr
	waitStatus(t, base+"/readyz", http.StatusOK)

	// Two incidents: the first recovers (a terminal stage: a signed checkpoint), the
	// second is still open when Redis loses everything.
	used, cards := map[string]bool{}, map[int]bool{}
	alertAt(t, base, "firing", "09:00")
	used[waitCard(t, h, cards)] = true
	alertAt(t, base, "resolved", "09:00")
	if _, err := h.tg.WaitForMessage(ctxT(t, 60*time.Second), groupID, hasText("Recovered: healthy again")); err != nil {
		t.Fatalf("the first incident did not recover: %v; sent %+v", err, h.tg.Sent(groupID))
	}
	alertAt(t, base, "firing", "09:30")
	used[waitCard(t, h, cards)] = true

	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(rs.port)})
	defer rc.Close()
	before, err := ledger.NewRedisStore(rc, h.prefix).Tail(context.Background(), "acme")
	if err != nil || before.Seq == 0 {
		t.Fatalf("chain before the restart: %+v %v", before, err)
	}
	cp, err := ledger.NewRedisStore(rc, h.prefix).Checkpoint(context.Background(), "acme")
	if err != nil || cp == nil {
		t.Fatalf("no signed checkpoint before the restart: %v", err)
	}

	rs.kill()
	rs = startOwnRedis(t, rs.port)

	rec := waitLog(t, logs, 60*time.Second, func(r map[string]any) bool {
		return r["level"] == "ERROR" && strings.Contains(r["msg"].(string), "ledger lost entries")
	})
	// The loss is judged against the longest chain serve saw: at least what the last
	// signed checkpoint in Redis covered, and at least what the test read before.
	lost, _ := rec["checkpoint_entries"].(float64)
	if rec["tenant"] != "acme" || rec["chain_entries"] != float64(0) || uint64(lost) < max(cp.Size, before.Seq) {
		t.Fatalf("ERROR record %v: want tenant acme, 0 entries against at least %d", rec, max(cp.Size, before.Seq))
	}
	if _, m := get(t, base+"/metrics"); !strings.Contains(m, `alertengine_ledger_loss_detected_total{tenant="acme"} 1`) {
		t.Fatalf("/metrics does not count the loss (it is counted before it is logged):\n%s", grepLines(m, "ledger_loss"))
	}
	req, _ := http.NewRequest(http.MethodGet, base+"/__alertengine/status", nil)
	req.Header.Set("Authorization", "Bearer status-token-for-tests")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var st struct {
		LossDetected bool `json:"ledger_loss_detected"`
	}
	json.NewDecoder(resp.Body).Decode(&st)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !st.LossDetected {
		t.Fatalf("status %d, loss detected %v", resp.StatusCode, st.LossDetected)
	}

	code, out, errs := runCLI(t, env{"REDIS_URL": rs.url(), "REDIS_KEY_PREFIX": h.prefix, "LEDGER_SIGNING_KEY": vars["LEDGER_SIGNING_KEY"],
		"LEDGER_CHECKPOINT_FILE": vars["LEDGER_CHECKPOINT_FILE"]}, "verify", "--tenant", "acme")
	if code != exitFailed || !strings.Contains(out, "had "+strconv.Itoa(int(lost))+" entries") || !strings.Contains(out, "the present chain has 0") {
		t.Fatalf("verify: exit %d, %q %q; want exit 1 naming %d and 0 entries", code, out, errs, int(lost))
	}

	// An operator accepts the loss: signed into the checkpoint file and noted on the
	// incident that was open; verify is satisfied after that, the lost chain still listed.
	tools := env{"REDIS_URL": rs.url(), "REDIS_KEY_PREFIX": h.prefix, "LEDGER_SIGNING_KEY": vars["LEDGER_SIGNING_KEY"],
		"LEDGER_CHECKPOINT_FILE": vars["LEDGER_CHECKPOINT_FILE"]}
	if code, _, errs := runCLI(t, tools, "ledger", "accept-loss", "--tenant", "acme", "--by", "tendai"); code != exitUsage || !strings.Contains(errs, "--reason") {
		t.Errorf("accept-loss without a reason: exit %d, %q; want 2 naming --reason", code, errs)
	}
	code, out2, errs := runCLI(t, tools, "ledger", "accept-loss", "--tenant", "acme", "--by", "tendai", "--reason", "receiver log checked: nothing ran twice")
	if code != exitOK || !strings.Contains(out2, "accepted: acme's lost ledger chains, by tendai") {
		t.Fatalf("accept-loss: exit %d, %q %q", code, out2, errs)
	}
	if b, err := os.ReadFile(vars["LEDGER_CHECKPOINT_FILE"]); err != nil || !strings.Contains(string(b), "receiver log checked") || !strings.Contains(string(b), `"lost"`) {
		t.Errorf("checkpoint file after acceptance: %v; want the lost chain kept and the acceptance recorded:\n%s", err, b)
	}
	if code, vout, _ := runCLI(t, tools, "verify", "--tenant", "acme"); code != exitOK {
		t.Errorf("verify after the acceptance: exit %d, %q", code, vout)
	}
	if code, aout, _ := runCLI(t, tools, "ledger", "accept-loss", "--tenant", "acme", "--by", "tendai", "--reason", "again"); code != exitFailed || !strings.Contains(aout, "no unaccepted ledger loss") {
		t.Errorf("a second accept-loss: exit %d, %q", code, aout)
	}

	alertAt(t, base, "firing", "10:00")
	next := waitCard(t, h, cards)
	if used[next] {
		t.Fatalf("the incident after the loss is %s, a code used before (%v)", next, used)
	}
	// The Redis client's own complaints during the outage came through slog as JSON
	// (no plain-text "redis: pool.go" lines), rate-limited.
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec map[string]any
		if json.Unmarshal([]byte(line), &rec) != nil {
			t.Errorf("serve wrote a line that is not a JSON log record: %q", line)
		}
		if rec["msg"] == "redis client" {
			n++
		}
	}
	if n > 20 {
		t.Errorf("%d redis client records: not rate-limited", n)
	}
	t.Logf("codes before the loss %v, after it %s; verify said %q; %d redis client records", used, next, strings.TrimSpace(out), n)
}

// alertAt posts an Alertmanager notification for checkout's alert that started at hhmm.
func alertAt(t *testing.T, base, status, hhmm string) {
	t.Helper()
	payload := `{"version":"4","groupKey":"{}:{alertname=\"CheckoutSlow\"}","status":"` + status + `","receiver":"alertengine",
"groupLabels":{"alertname":"CheckoutSlow"},"commonLabels":{"alertname":"CheckoutSlow","service":"checkout"},"commonAnnotations":{},
"externalURL":"http://alertmanager","alerts":[{"status":"` + status + `","labels":{"alertname":"CheckoutSlow","service":"checkout","severity":"page"},
"annotations":{"summary":"checkout p95 above 2 s"},"startsAt":"2026-11-27T` + hhmm + `:00Z","endsAt":"0001-01-01T00:00:00Z",
"generatorURL":"http://prometheus/graph","fingerprint":"c0ffee"}]}`
	req, _ := http.NewRequest(http.MethodPost, base+"/alertmanager/webhook", strings.NewReader(payload))
	req.Header.Set("Authorization", "Bearer "+amToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("alertmanager webhook: %d", resp.StatusCode)
	}
}

// waitCard waits for an incident card other than the ones in seen (by message id) and
// returns its code.
func waitCard(t *testing.T, h *harness, seen map[int]bool) string {
	t.Helper()
	m, err := h.tg.WaitForMessage(ctxT(t, 60*time.Second), groupID, func(m telegramtest.Message) bool {
		return strings.Contains(m.Text+m.Caption, "🚨") && len(m.Buttons()) > 0 && !seen[m.MessageID]
	})
	if err != nil {
		t.Fatalf("no new incident card: %v; group: %+v", err, h.tg.Sent(groupID))
	}
	seen[m.MessageID] = true
	return incidentCode(t, m)
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
