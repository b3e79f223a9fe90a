package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"github.com/alertengine/alertengine/bot/app"
	"github.com/alertengine/alertengine/bot/demo"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/redis/go-redis/v9"
)

func TestDemoRefusesABusyPortWithOneLine(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	code, _, stderr := runCLI(t, env{"ADDR": ln.Addr().String(), "LOG_LEVEL": "error"})
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if code != exitFailed || len(lines) != 1 || !strings.Contains(lines[0], ln.Addr().String()+" is already in use") || !strings.Contains(lines[0], "ADDR") {
		t.Fatalf("exit %d, stderr %q: want exit 1 and one line naming the address and ADDR", code, stderr)
	}
}

func TestDemoPrintsTheURLAndStopsCleanlyOnInterrupt(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(ctx, nil, &out, &errb, env{"ADDR": addr, "LOG_LEVEL": "info"}.lookup) }()
	waitStatus(t, "http://"+addr+"/", http.StatusOK)
	if !strings.Contains(out.String(), "open http://"+addr+"/") || !strings.Contains(out.String(), "Simulate spike") {
		t.Fatalf("stdout does not say where to go and what to do:\n%s", out.String())
	}
	// The guide names every person the tour needs.
	for _, who := range []string{"vimbai", "tendai", "rudo"} {
		if !strings.Contains(out.String(), who) {
			t.Errorf("the printed guide does not name %s:\n%s", who, out.String())
		}
	}
	// A page is open: its event stream must not hold the shutdown.
	stream := &http.Client{Timeout: time.Minute} // a stream that outlives the demo fails the test
	resp, err := stream.Get("http://" + addr + "/events")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("event stream: %v", err)
	}
	defer resp.Body.Close()
	cancel() // what Ctrl-C does (signal.NotifyContext in main)
	select {
	case code := <-done:
		if code != exitOK {
			t.Fatalf("exit %d after interrupt; stderr:\n%s", code, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the demo did not stop within 30 s of the interrupt")
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatalf("the page's event stream did not end cleanly: %v", err)
	}
	if !strings.Contains(errb.String(), "msg=stopped") {
		t.Errorf("the demo does not say it stopped, as serve does:\n%s", errb.String())
	}
	if status("http://"+addr+"/") != 0 {
		t.Fatal("the console still answers after the demo stopped")
	}
}

// TestServeHasNoConsoleNorFaultEndpoint: the console and the fault injection exist only
// in the demo; serve's wiring does not route them.
func TestServeHasNoConsoleNorFaultEndpoint(t *testing.T) {
	t.Parallel()
	rs := ledgertest.NewServer(t)
	e := serveEnv(rs.URL, "127.0.0.1:0")
	cfgEnv, err := config.LoadEnv(e.lookup, config.Serve)
	if err != nil {
		t.Fatal(err)
	}
	file, err := config.Load("testdata/valid.yaml", e.lookup, cfgEnv, app.ChatChannels(e.lookup)...)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(mustParseRedisURL(t, rs.URL))
	defer rc.Close()
	key, _ := cfgEnv.SigningKey()
	sys, err := app.New(app.Options{Env: cfgEnv, File: file, Redis: rc, Logger: newLogger(cfgEnv, io.Discard), Signer: key, Secret: []byte(cfgEnv.AlertSecret.Reveal()), Addr: "127.0.0.1:0", KeyPrefix: rs.Prefix(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sys.Handler())
	defer srv.Close()
	for _, rq := range []struct{ method, path string }{
		{"GET", "/"}, {"GET", "/events"}, {"POST", "/say"}, {"POST", "/press"}, {"POST", "/demo/spike"}, {"POST", "/demo/recover"},
		{"GET", "/audit/INC-1"}, {"GET", "/chart.png"}, {"POST", "/recover"},
	} {
		req, _ := http.NewRequest(rq.method, srv.URL+rq.path, strings.NewReader("as=tendai"))
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound && resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("serve answers %s %s with %d; it must not route it", rq.method, rq.path, resp.StatusCode)
		}
	}
	if got := status(srv.URL + "/healthz"); got != http.StatusOK {
		t.Fatalf("/healthz %d: the server under test is not serve's", got)
	}
}

// tourVisitor is a browser without a browser: the console's cookie, token and origin.
type tourVisitor struct {
	t      *testing.T
	base   string
	client *http.Client
	token  string
}

var consoleToken = regexp.MustCompile(`var token="([0-9a-f]+)"`)

func newTourVisitor(t *testing.T, base string) *tourVisitor {
	jar, _ := cookiejar.New(nil)
	v := &tourVisitor{t: t, base: strings.TrimSuffix(base, "/"), client: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	m := consoleToken.FindStringSubmatch(v.get("/"))
	if m == nil {
		t.Fatal("the console page carries no token")
	}
	v.token = m[1]
	return v
}

func (v *tourVisitor) get(path string) string {
	v.t.Helper()
	resp, err := v.client.Get(v.base + path)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func (v *tourVisitor) post(path string, form url.Values) string {
	v.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, v.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", v.base)
	req.Header.Set("X-Console-Token", v.token)
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode != http.StatusOK {
		v.t.Fatalf("POST %s: %d %v", path, resp.StatusCode, out)
	}
	return out["toast"]
}

// waitPage polls the page until re matches it (up to 2 minutes on a loaded machine; it
// ends as soon as it matches) and returns the submatches.
func (v *tourVisitor) waitPage(path string, re *regexp.Regexp, what string) []string {
	v.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		page := v.get(path)
		if m := re.FindStringSubmatch(page); m != nil {
			return m
		}
		if time.Now().After(deadline) {
			v.t.Fatalf("waited 2 minutes for %s; the page is:\n%s", what, page)
		}
		<-tick.C
	}
}

// tourOptions make the tour quick: a 4 s detection window, a slow but not too slow fault.
var tourOptions = demo.TourOptions{Window: 4 * time.Second, Slow: 600 * time.Millisecond, HealthEvery: 250 * time.Millisecond}

// TestDemoTourOverHTTPWithREDIS_URL runs the tour through the console's own HTTP surface
// (what the page's script sends) against the Redis named by REDIS_URL: spike, card,
// question, the viewer refused, the approver's approval, the webhook clearing the fault,
// RESOLVED, and a verified audit with an export that verifies.
func TestDemoTourOverHTTPWithREDIS_URL(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		testkit.Skip(t, "real time: the demo's traffic and detection run on the wall clock")
	}
	rs := ledgertest.NewServer(t)
	prefix := rs.Prefix(t)
	seedBytes := bytes.Repeat([]byte{9}, 32)
	e := env{"REDIS_URL": rs.URL, "REDIS_KEY_PREFIX": prefix, "ADDR": "127.0.0.1:0", "LOG_LEVEL": "error",
		"LEDGER_SIGNING_KEY": base64.StdEncoding.EncodeToString(seedBytes)}
	cfgEnv, err := config.LoadEnv(e.lookup, config.Demo)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := demo.StartTour(ctx, cfgEnv, tourOptions)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); <-d.Done; d.Close() }()

	v := newTourVisitor(t, d.URL)
	v.waitPage("/", regexp.MustCompile(`id="health-status">healthy<`), "the first healthy evaluation")
	v.post("/demo/spike", url.Values{"as": {"tendai"}})
	// The card's first approval button (the council may offer any of the tenant's actions).
	card := v.waitPage("/", regexp.MustCompile(`data-msg="(m\d+)" data-press="(ap:[A-Za-z0-9_-]{22})">([^<]+)<`), "the incident card with its approval button")
	msg, ref := card[1], card[2]
	// The demo commit came through the real /github/webhook, signed: the card correlates it.
	page := v.get("/")
	if !strings.Contains(page, "Recent deploy: ") || !strings.Contains(page, "Fix checkout query isolation level") || !strings.Contains(page, "⚠️ touched database/query files") {
		t.Fatalf("the card does not show the demo commit as the risky recent deploy:\n%s", page)
	}
	thread := regexp.MustCompile(`id="t-(m\d+)"`).FindStringSubmatch(page)[1]
	inc := regexp.MustCompile(`href="audit/(INC-[0-9A-F]+)"`).FindStringSubmatch(page)[1]
	if inc != "INC-1" {
		t.Fatalf("the tour's first incident is %s, want INC-1", inc)
	}

	v.post("/say", url.Values{"as": {"tendai"}, "text": {"what changed?"}, "thread": {thread}})
	v.waitPage("/", regexp.MustCompile(`(?s)what changed\?.*Fix checkout query isolation level&#34; by john`), "the answer to “what changed?” naming the demo commit")
	if toast := v.post("/press", url.Values{"as": {"vimbai"}, "msg": {msg}, "data": {ref}}); !strings.Contains(toast, "not an approver") {
		t.Fatalf("the viewer's press: %q", toast)
	}
	toast := v.post("/press", url.Values{"as": {"tendai"}, "msg": {msg}, "data": {ref}})
	if strings.Contains(toast, "second approver is needed") { // a high-risk action: two different approvers
		toast = v.post("/press", url.Values{"as": {"rudo"}, "msg": {msg}, "data": {ref}})
	}
	if !strings.Contains(toast, "Approved") {
		t.Fatalf("the approval: %q", toast)
	}
	v.waitPage("/", regexp.MustCompile(`✅ Approved by (tendai|rudo and tendai|tendai and rudo) at`), "the card edited to Approved by tendai (and rudo for a high-risk action)")
	select {
	case rec := <-d.Service.Recoveries():
		if rec.Incident != inc || d.Service.Faulty() {
			t.Fatalf("recovery %+v for %s; fault still injected: %v", rec, inc, d.Service.Faulty())
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("the recovery webhook was not called within 2 minutes of the approval")
	}
	v.waitPage("/", regexp.MustCompile(`Resolved: the service is healthy again`), "RESOLVED")
	v.waitPage("/audit/"+inc, regexp.MustCompile(`✓ Chain verified: \d+ entries`), "a verified audit")
	audit := v.get("/audit/" + inc)
	for _, want := range []string{"→ RESOLVED", "refused_press", "engineer:vimbai via console", "VALIDATED → AUTHORIZED", "via console", "AUTHORIZED → EXECUTED"} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit lacks %q:\n%s", want, audit)
		}
	}
	pub := ed25519.NewKeyFromSeed(seedBytes).Public().(ed25519.PublicKey)
	if rep, err := ledger.VerifyExport(strings.NewReader(v.get("/audit/"+inc+"/export.jsonl")), pub); err != nil || rep.Entries == 0 {
		t.Fatalf("the downloaded export does not verify against the signing key: %v", err)
	}
	// Another spike, after a full tour of questions, presses and stage changes: the next
	// incident is INC-2, not the position of its first entry in the ledger.
	v.post("/demo/spike", url.Values{"as": {"tendai"}})
	v.waitPage("/", regexp.MustCompile(`href="audit/INC-2"`), "the second incident, INC-2")
	// Everything went to the Redis REDIS_URL names, under its key prefix.
	rc := redis.NewClient(mustParseRedisURL(t, rs.URL))
	defer rc.Close()
	keys, err := rc.Keys(context.Background(), prefix+"demo-*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("no demo keys under %q in REDIS_URL's server: %v", prefix, err)
	}
}

func mustParseRedisURL(t *testing.T, u string) *redis.Options {
	o, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
