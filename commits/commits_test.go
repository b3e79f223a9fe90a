package commits_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/fixtures"
	"github.com/alertengine/alertengine/ledger/claim"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/google/go-github/v60/github"
	"github.com/redis/go-redis/v9"
)

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

var defaultPatterns = []string{"**/migrations/**", "**/*.sql", "**/db/**", "**/*query*", "**/config/**", "**/go.mod", "**/table_1999.sql"}

type world struct {
	rc     *redis.Client
	prefix string
	clock  *clock
	store  *commits.Store
	hook   *commits.Webhook
	secret []byte

	mu       sync.Mutex
	refused  []string
	outcomes []string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	rc, prefix := ledgertest.Redis(t)
	w := &world{rc: rc, prefix: prefix, clock: &clock{t: t0}, secret: []byte("It's a Secret to Everybody")}
	var err error
	if w.store, err = commits.NewStore(commits.StoreOptions{Redis: rc, KeyPrefix: prefix, Clock: w.clock.Now}); err != nil {
		t.Fatal(err)
	}
	w.hook, err = commits.NewWebhook(commits.WebhookOptions{Secret: w.secret, Store: w.store, Redis: rc, KeyPrefix: prefix,
		Accept: func(r string) bool { return r == "acme/checkout" }, Patterns: defaultPatterns, Clock: w.clock.Now,
		OnRefused:  func(r string) { w.mu.Lock(); w.refused = append(w.refused, r); w.mu.Unlock() },
		OnDelivery: func(e, o string) { w.mu.Lock(); w.outcomes = append(w.outcomes, e+":"+o); w.mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

var deliveries int

// deliver posts body as event, signed with sig ("" = sign with the world's secret;
// "-" = no signature header), and returns the status.
func (w *world) deliver(t *testing.T, event string, body []byte, sig string, headers ...string) (int, string) {
	t.Helper()
	deliveries++
	req := httptest.NewRequest(http.MethodPost, "/github/webhook", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-GitHub-Event", event)
	req.Header.Set("X-GitHub-Delivery", fmt.Sprintf("72d3162e-cc78-11e3-81ab-%012d", deliveries))
	switch sig {
	case "":
		req.Header.Set("X-Hub-Signature-256", commits.Sign(w.secret, body))
	case "-":
	default:
		req.Header.Set("X-Hub-Signature-256", sig)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	w.hook.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func (w *world) all(t *testing.T) []commits.Change {
	t.Helper()
	cs, err := w.store.Between(context.Background(), "acme/checkout", t0.Add(-24*time.Hour), t0.Add(24*time.Hour), 10000)
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

func delivery(t *testing.T, name string) fixtures.GitHubDelivery {
	t.Helper()
	d, err := fixtures.GitHubDeliveryNamed(name)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// TestGitHubsDocumentedSignatureVerifies: the example of GitHub's "Validating webhook
// deliveries" page.
func TestGitHubsDocumentedSignatureVerifies(t *testing.T) {
	const want = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
	if got := commits.Sign([]byte("It's a Secret to Everybody"), []byte("Hello, World!")); got != want {
		t.Fatalf("Sign = %s", got)
	}
	if err := commits.VerifySignature([]byte("It's a Secret to Everybody"), want, []byte("Hello, World!")); err != nil {
		t.Fatal(err)
	}
}

func TestForgedDeliveriesAreRefusedAndNothingIsStored(t *testing.T) {
	w := newWorld(t)
	body := delivery(t, "push.several").Body
	flipped := bytes.Clone(body)
	flipped[len(flipped)/2] ^= 1
	good := commits.Sign(w.secret, body)
	for _, c := range []struct {
		name, sig string
		body      []byte
		headers   []string
	}{
		{"wrong secret", commits.Sign([]byte("not the secret"), body), body, nil},
		{"missing header", "-", body, nil},
		{"SHA-1 only", "-", body, []string{"X-Hub-Signature", "sha1=7d38cdd689735b008b3c702edd92eea23791c5f6"}},
		{"flipped body byte", good, flipped, nil},
		{"no sha256= prefix", strings.TrimPrefix(good, "sha256="), body, nil},
		{"sha1= prefix on a sha256 value", "sha1=" + strings.TrimPrefix(good, "sha256="), body, nil},
		{"truncated", good[:len(good)-2], body, nil},
		{"not hex", "sha256=" + strings.Repeat("zz", 32), body, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			code, _ := w.deliver(t, "push", c.body, c.sig, c.headers...)
			if code != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", code)
			}
		})
	}
	if cs := w.all(t); len(cs) != 0 {
		t.Fatalf("forged deliveries stored %d changes", len(cs))
	}
	if len(w.refused) != 8 || w.refused[0] != commits.RefusedSignature {
		t.Fatalf("refusals counted: %v", w.refused)
	}
	keys, _ := w.rc.Keys(context.Background(), w.prefix+"*").Result()
	if len(keys) != 0 {
		t.Fatalf("forged deliveries left keys %v", keys)
	}
}

func TestEmptySecretIsRefusedNotAccepted(t *testing.T) {
	if err := commits.VerifySignature(nil, "", []byte("x")); err != commits.ErrNoSecret {
		t.Fatalf("empty secret: %v", err)
	}
	_, err := commits.NewWebhook(commits.WebhookOptions{})
	if err != commits.ErrNoSecret {
		t.Fatalf("webhook without secret: %v", err)
	}
}

func TestDeliveriesAreStored(t *testing.T) {
	w := newWorld(t)
	code, body := w.deliver(t, "ping", delivery(t, "ping").Body, "")
	if code != http.StatusOK || !strings.Contains(body, "pong") {
		t.Fatalf("ping: %d %s", code, body)
	}
	if code, body := w.deliver(t, "push", delivery(t, "push.several").Body, ""); code != http.StatusOK {
		t.Fatalf("push: %d %s", code, body)
	}
	cs := w.all(t)
	if len(cs) != 3 {
		t.Fatalf("%d changes, want 3: %+v", len(cs), cs)
	}
	// Newest first: the push lists commits oldest first.
	if cs[0].SHA != "b7e4d2c1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5" || cs[2].SHA != "9f2c1a7e5b3d4c6f8a0e1b2c3d4e5f6a7b8c9d01" {
		t.Fatalf("order: %s %s %s", cs[0].SHA, cs[1].SHA, cs[2].SHA)
	}
	c := cs[1]
	if c.Kind != commits.KindCommit || c.Ref != "main" || c.AuthorLogin != "john" || c.AuthorName != "John Moyo" || c.AuthorEmail != "john@acme.example" ||
		c.Message != "Fix checkout query isolation level" || !c.At.Equal(t0) || c.URL != "https://github.com/acme/checkout/commit/a1b2c3d4e5f60718293a4b5c6d7e8f9012345678" ||
		len(c.Added) != 1 || len(c.Modified) != 1 || c.By != "john" || c.CommittedAt.IsZero() {
		t.Fatalf("commit stored as %+v", c)
	}
	if _, ok := c.Hits["**/migrations/**"]; !ok {
		t.Fatalf("risky hits %v", c.Hits)
	}

	w.clock.Set(t0.Add(time.Minute))
	if code, _ := w.deliver(t, "push", delivery(t, "push.forced").Body, ""); code != http.StatusOK {
		t.Fatal("forced push")
	}
	w.clock.Set(t0.Add(2 * time.Minute))
	if code, _ := w.deliver(t, "push", delivery(t, "push.tag").Body, ""); code != http.StatusOK {
		t.Fatal("tag push")
	}
	w.clock.Set(t0.Add(3 * time.Minute))
	if code, _ := w.deliver(t, "create", delivery(t, "create.tag").Body, ""); code != http.StatusOK {
		t.Fatal("create tag")
	}
	w.clock.Set(t0.Add(4 * time.Minute))
	if code, _ := w.deliver(t, "deployment_status", delivery(t, "deployment_status.success").Body, ""); code != http.StatusOK {
		t.Fatal("deployment status")
	}
	cs = w.all(t)
	if len(cs) != 6 {
		t.Fatalf("%d changes after forced push, tag, create, deploy; want 6 (the tag once)", len(cs))
	}
	dep := cs[0]
	// The deployment's status says 10:02:11, before it was received.
	if dep.Kind != commits.KindDeploy || dep.Ref != "production" || dep.By != "rudo" || dep.SHA != "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678" ||
		dep.Message != "Fix checkout query isolation level" || dep.AuthorLogin != "john" || !dep.At.Equal(time.Date(2026, 12, 4, 10, 2, 11, 0, time.UTC)) {
		t.Fatalf("deploy %+v", dep)
	}
	var tag, forced commits.Change
	for _, c := range cs {
		switch {
		case c.Kind == commits.KindTag:
			tag = c
		case c.Forced:
			forced = c
		}
	}
	if tag.Ref != "v1.4.0" || tag.SHA != "b7e4d2c1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5" {
		t.Fatalf("tag %+v (the create event must not erase the pushed tag's commit)", tag)
	}
	if forced.Ref != "release" || forced.SHA != "c0ffee1234567890abcdef1234567890abcdef12" {
		t.Fatalf("forced push %+v", forced)
	}
}

func TestDuplicateDeliveryIsProcessedOnce(t *testing.T) {
	w := newWorld(t)
	body := delivery(t, "push.several").Body
	send := func() int {
		req := httptest.NewRequest(http.MethodPost, "/github/webhook", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", "dup-0001")
		req.Header.Set("X-Hub-Signature-256", commits.Sign(w.secret, body))
		rec := httptest.NewRecorder()
		w.hook.ServeHTTP(rec, req)
		return rec.Code
	}
	if send() != http.StatusOK {
		t.Fatal("first delivery")
	}
	// A second replica sharing the Redis sees the delivery as done.
	other, _ := commits.NewWebhook(commits.WebhookOptions{Secret: w.secret, Store: w.store, Redis: w.rc, KeyPrefix: w.prefix,
		Accept: func(string) bool { return true }, Clock: w.clock.Now,
		OnDelivery: func(e, o string) { w.mu.Lock(); w.outcomes = append(w.outcomes, "other:"+o); w.mu.Unlock() }})
	req := httptest.NewRequest(http.MethodPost, "/github/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("X-GitHub-Delivery", "dup-0001")
	req.Header.Set("X-Hub-Signature-256", commits.Sign(w.secret, body))
	rec := httptest.NewRecorder()
	w.clock.Set(t0.Add(time.Minute)) // a re-store would move the commits to this time
	other.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK || send() != http.StatusOK {
		t.Fatal("redeliveries not acknowledged")
	}
	cs := w.all(t)
	if len(cs) != 3 || !cs[0].At.Equal(t0) {
		t.Fatalf("redelivery re-processed: %d changes, newest at %v", len(cs), cs[0].At)
	}
	if got := strings.Join(w.outcomes, ","); got != "push:stored,other:duplicate,push:duplicate" {
		t.Fatalf("outcomes %s", got)
	}
}

func TestBodyOverTheLimitIs413(t *testing.T) {
	w := newWorld(t)
	big := bytes.Repeat([]byte(" "), commits.MaxBody+1)
	code, _ := w.deliver(t, "push", big, "")
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("status %d", code)
	}
	// Without a declared length (chunked), the cap still holds.
	req := httptest.NewRequest(http.MethodPost, "/github/webhook", io.MultiReader(bytes.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("X-Hub-Signature-256", commits.Sign(w.secret, big))
	rec := httptest.NewRecorder()
	w.hook.ServeHTTP(rec, req)
	if rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: %d", rec.Code)
	}
}

func TestAPushListing2000FilesIsStoredWithinLimits(t *testing.T) {
	w := newWorld(t)
	body, err := fixtures.GitHubPushWithFiles(2000)
	if err != nil {
		t.Fatal(err)
	}
	if code, msg := w.deliver(t, "push", body, ""); code != http.StatusOK {
		t.Fatalf("%d %s", code, msg)
	}
	var head commits.Change
	for _, c := range w.all(t) {
		if strings.HasPrefix(c.SHA, "b7e4d2c") {
			head = c
		}
	}
	if len(head.AllFiles()) != commits.MaxFiles || !head.FilesCut || head.Files != 2001 {
		t.Fatalf("stored %d files of %d, cut %v", len(head.AllFiles()), head.Files, head.FilesCut)
	}
	// The files beyond the cut were still matched against the risky paths.
	if _, files := commits.Risk(head, []string{"**/table_1999.sql"}); len(files) != 1 || files[0] != "db/generated/part_0019/table_1999.sql" {
		t.Fatalf("a risky file beyond the cut was not recorded: %v", files)
	}
	if risky, files := commits.Risk(head, []string{"**/*.sql"}); risky != "touched database/query files" || len(files) != 1 {
		t.Fatalf("risk %q %v", risky, files)
	}
}

func TestUnmappedRepositoryAndOtherEventsAreNotStored(t *testing.T) {
	w := newWorld(t)
	other := bytes.ReplaceAll(delivery(t, "push.several").Body, []byte("acme/checkout"), []byte("acme/other"))
	if code, _ := w.deliver(t, "push", other, ""); code != http.StatusAccepted {
		t.Fatalf("unmapped repository: %d", code)
	}
	if code, _ := w.deliver(t, "issues", []byte(`{"action":"opened"}`), ""); code != http.StatusAccepted {
		t.Fatalf("unused event: %d", code)
	}
	if code, _ := w.deliver(t, "push", []byte(`{"ref": 7}`), ""); code != http.StatusBadRequest {
		t.Fatalf("malformed push: %d", code)
	}
	keys, _ := w.rc.Keys(context.Background(), w.prefix+"gh:{*").Result()
	if len(keys) != 0 {
		t.Fatalf("stored %v", keys)
	}
}

func TestStoreIsBoundedPerRepositoryAndByAge(t *testing.T) {
	rc, prefix := ledgertest.Redis(t)
	clk := &clock{t: t0}
	st, _ := commits.NewStore(commits.StoreOptions{Redis: rc, KeyPrefix: prefix, MaxPerRepo: 5, Clock: clk.Now})
	ctx := context.Background()
	for i := range 8 {
		sha := fmt.Sprintf("%040x", i+1)
		if err := st.Add(ctx, "acme/checkout", []commits.Change{{Kind: commits.KindCommit, Repo: "acme/checkout", SHA: sha, At: t0.Add(time.Duration(i) * time.Minute)}}); err != nil {
			t.Fatal(err)
		}
		_ = st.SetStats(ctx, "acme/checkout", sha, i, i)
	}
	cs, _ := st.Between(ctx, "acme/checkout", t0.Add(-time.Hour), t0.Add(time.Hour), 100)
	if len(cs) != 5 || cs[4].SHA != fmt.Sprintf("%040x", 4) || !cs[0].Stats || cs[0].Additions != 7 {
		t.Fatalf("kept %d, oldest %s", len(cs), cs[len(cs)-1].SHA)
	}
	n, _ := rc.HLen(ctx, prefix+"gh:{acme/checkout}:data").Result()
	if n != 10 { // 5 records + 5 stats
		t.Fatalf("hash holds %d fields, want 10", n)
	}
	clk.Set(t0.Add(commits.Retention + 10*time.Minute))
	_ = st.Add(ctx, "acme/checkout", []commits.Change{{Kind: commits.KindCommit, Repo: "acme/checkout", SHA: strings.Repeat("f", 40), At: clk.Now()}})
	cs, _ = st.Between(ctx, "acme/checkout", t0.Add(-time.Hour), clk.Now(), 100)
	if len(cs) != 1 {
		t.Fatalf("after the retention: %d changes", len(cs))
	}
	if ttl, _ := rc.PTTL(ctx, prefix+"gh:{acme/checkout}:at").Result(); ttl <= 0 || ttl > commits.Retention {
		t.Fatalf("ttl %v", ttl)
	}
}

// TestEveryFixtureParses: every recorded delivery parses with go-github's types.
func TestEveryFixtureParses(t *testing.T) {
	ds := fixtures.GitHubDeliveries()
	if len(ds) < 6 {
		t.Fatalf("%d fixtures", len(ds))
	}
	for _, d := range ds {
		if _, err := github.ParseWebHook(d.Event, d.Body); err != nil {
			t.Errorf("%s: %v", d.Name, err)
		}
		if _, err := commits.Parse(d.Event, d.Body, t0, defaultPatterns); err != nil {
			t.Errorf("%s: %v", d.Name, err)
		}
	}
}

// TestDeliveryBeingProcessedElsewhereIsRedelivered: a delivery another replica holds (it
// is processing it, or died doing so) is answered 503, not 200 as a duplicate, so that
// GitHub's redelivery is processed once that replica gave it up or its lease lapsed.
func TestDeliveryBeingProcessedElsewhereIsRedelivered(t *testing.T) {
	w := newWorld(t)
	body := delivery(t, "push.several").Body
	const id = "held-0001"
	other, err := claim.New(claim.Options{Redis: w.rc, Lease: time.Minute, Keep: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	held, got, err := other.Take(t.Context(), w.prefix+"gh:delivery:"+id)
	if err != nil || got != claim.Mine {
		t.Fatalf("the other replica's claim: %v, %v", got, err)
	}
	send := func() int {
		req := httptest.NewRequest(http.MethodPost, "/github/webhook", bytes.NewReader(body))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("X-GitHub-Delivery", id)
		req.Header.Set("X-Hub-Signature-256", commits.Sign(w.secret, body))
		rec := httptest.NewRecorder()
		w.hook.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := send(); code != http.StatusServiceUnavailable {
		t.Fatalf("delivery held by another replica: %d, want 503", code)
	}
	if err := held.Release(t.Context()); err != nil {
		t.Fatal(err)
	}
	if code := send(); code != http.StatusOK {
		t.Fatalf("redelivery after the other replica gave up: %d, want 200", code)
	}
	if cs := w.all(t); len(cs) != 3 {
		t.Fatalf("redelivery stored %d changes, want 3", len(cs))
	}
	if got := strings.Join(w.outcomes, ","); got != "push:busy,push:stored" {
		t.Fatalf("outcomes %s", got)
	}
}
