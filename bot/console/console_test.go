package console

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
)

// recorder is the conversation side of the console: it records what the console hands
// it and answers presses the way the engine does (a toast).
type recorder struct {
	mu  sync.Mutex
	ins []conversation.Inbound
}

func (r *recorder) Handle(_ context.Context, in conversation.Inbound) (conversation.Reply, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ins = append(r.ins, in)
	if in.Pressed() && in.User.ID == "vimbai" {
		return conversation.Reply{Toast: "You are not an approver for acme."}, nil
	}
	return conversation.Reply{Toast: "Done."}, nil
}

func (r *recorder) inbounds() []conversation.Inbound {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]conversation.Inbound(nil), r.ins...)
}

type fixture struct {
	c     *Console
	h     *recorder
	srv   *httptest.Server
	store *ledger.MemStore
	key   ed25519.PrivateKey
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{h: &recorder{}, store: ledger.NewMemStore(), key: ed25519.NewKeyFromSeed(make([]byte, 32))}
	c, err := New(Options{Tenant: "acme", People: []Person{{"tendai", RoleApprover}, {"vimbai", RoleViewer}},
		Ledger: f.store, Signer: f.key, Service: "checkout", Intro: "Try it <b>now</b>"})
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	mux := http.NewServeMux()
	for _, r := range c.Routes(f.h) {
		mux.Handle(r.Pattern, r.Handler)
	}
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

// visitor is a browser: a cookie jar, the page's token, and its origin on every POST.
type visitor struct {
	t      *testing.T
	base   string
	client *http.Client
	token  string
}

var tokenRe = regexp.MustCompile(`var token="([0-9a-f]+)"`)

func (f *fixture) visit(t *testing.T) *visitor {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	v := &visitor{t: t, base: f.srv.URL, client: &http.Client{Jar: jar, Timeout: 10 * time.Second}}
	m := tokenRe.FindStringSubmatch(v.get("/"))
	if m == nil {
		t.Fatal("the page carries no token")
	}
	v.token = m[1]
	return v
}

func (v *visitor) get(path string) string {
	v.t.Helper()
	resp, err := v.client.Get(v.base + path)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// post sends a form as the page's script does; headers may override Origin and the token.
func (v *visitor) post(path string, form url.Values, headers map[string]string) (int, map[string]string) {
	v.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, v.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", v.base)
	req.Header.Set(tokenHeader, v.token)
	for k, val := range headers {
		if val == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, val)
		}
	}
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	out := map[string]string{}
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func card(text string, buttons ...conversation.Button) conversation.Message {
	return conversation.Message{Blocks: []conversation.Block{{Style: conversation.Title, Text: "🚨 checkout degraded — INC-1"}, {Style: conversation.Plain, Text: text}},
		Buttons: [][]conversation.Button{buttons}}
}

func TestPageEscapesWhatTheBotAndPeopleSay(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	th, _, err := f.c.OpenThread(ctx, Chat("acme"), "INC-1 · checkout", card(`<script>alert(1)</script> & "quotes"`,
		conversation.Button{Label: `<img src=x onerror=alert(2)>`, Data: `/details INC-1"><b>`}))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.c.Post(ctx, th, conversation.Message{Blocks: []conversation.Block{{Style: conversation.Bold, Text: "✅ Resolved"}}}); err != nil {
		t.Fatal(err)
	}
	page := f.visit(t).get("/")
	for _, bad := range []string{"<script>alert(1)", "<img src=x", `"><b>`, "<b>now</b>"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains unescaped %q", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;quotes&#34;", "&lt;img src=x onerror=alert(2)&gt;", "✅ Resolved", "INC-1 · checkout", `href="audit/INC-1"`, "Try it &lt;b&gt;now&lt;/b&gt;"} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Only the page's own nonce'd script may run.
	resp, err := http.Get(f.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'nonce-") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
}

func TestPostsAreRefusedWithoutTheSessionTokenOrFromAnotherOrigin(t *testing.T) {
	f := newFixture(t)
	v := f.visit(t)
	other := f.visit(t) // another session: its token is not v's
	form := url.Values{"as": {"tendai"}, "text": {"/status"}}
	for _, tc := range []struct {
		name    string
		headers map[string]string
	}{
		{"another origin", map[string]string{"Origin": "http://evil.example"}},
		{"no Origin and no Sec-Fetch-Site", map[string]string{"Origin": ""}},
		{"cross-site fetch metadata", map[string]string{"Origin": "", "Sec-Fetch-Site": "cross-site"}},
		{"no token", map[string]string{tokenHeader: ""}},
		{"another session's token", map[string]string{tokenHeader: other.token}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := v.post("/say", form, tc.headers)
			if code != http.StatusForbidden || !strings.HasPrefix(body["error"], "Refused") {
				t.Fatalf("got %d %v, want 403 Refused", code, body)
			}
		})
	}
	if n := len(f.h.inbounds()); n != 0 {
		t.Fatalf("%d refused posts reached the engine", n)
	}
	if code, body := v.post("/say", form, map[string]string{"Origin": "", "Sec-Fetch-Site": "same-origin"}); code != http.StatusOK || body["toast"] != "Done." {
		t.Fatalf("same-origin fetch without Origin: %d %v", code, body)
	}
	if n := len(f.h.inbounds()); n != 1 {
		t.Fatalf("%d inbounds, want 1", n)
	}
}

func TestIdentityPickerDecidesWhoPressesAndOnlyShownButtonsCount(t *testing.T) {
	f := newFixture(t)
	ref := "ap:" + strings.Repeat("A", 22)
	_, m, err := f.c.OpenThread(context.Background(), Chat("acme"), "INC-1 · checkout", card("health 23", conversation.Button{Label: "Approve restart_workers", Data: ref}))
	if err != nil {
		t.Fatal(err)
	}
	v := f.visit(t)
	if code, body := v.post("/press", url.Values{"as": {"mallory"}, "msg": {m.ID}, "data": {ref}}, nil); code != http.StatusBadRequest {
		t.Fatalf("unknown person: %d %v", code, body)
	}
	if _, body := v.post("/press", url.Values{"as": {"tendai"}, "msg": {m.ID}, "data": {"ap:" + strings.Repeat("B", 22)}}, nil); body["toast"] != "This button is no longer there." {
		t.Fatalf("a reference not on the message: %v", body)
	}
	if n := len(f.h.inbounds()); n != 0 {
		t.Fatalf("%d presses reached the engine, want 0", n)
	}
	if _, body := v.post("/press", url.Values{"as": {"vimbai"}, "msg": {m.ID}, "data": {ref}}, nil); body["toast"] != "vimbai: You are not an approver for acme." {
		t.Fatalf("viewer's press: %v", body)
	}
	ins := f.h.inbounds()
	want := conversation.Inbound{Chat: Chat("acme"), User: conversation.User{Channel: conversation.Console, ID: "vimbai", Name: "vimbai"}, Data: ref, ReplyTo: m.ID, Direct: true}
	if len(ins) != 1 || ins[0] != want {
		t.Fatalf("inbounds %+v, want %+v", ins, want)
	}
}

func TestTypedTextGoesIntoTheThreadAndRepliesFollowIt(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	th, m, err := f.c.OpenThread(ctx, Chat("acme"), "INC-1 · checkout", card("health 23"))
	if err != nil {
		t.Fatal(err)
	}
	v := f.visit(t)
	if _, body := v.post("/say", url.Values{"as": {"tendai"}, "text": {"  what changed?  "}, "thread": {th.Root}}, nil); body["toast"] != "Done." {
		t.Fatalf("say: %v", body)
	}
	ins := f.h.inbounds()
	if len(ins) != 1 || ins[0].Text != "what changed?" || ins[0].ReplyTo != m.ID || ins[0].MessageID == "" || ins[0].User.ID != "tendai" {
		t.Fatalf("inbound %+v", ins)
	}
	// The engine answers replying to the question: the answer lands in the same thread.
	if _, err := f.c.Post(ctx, conversation.Thread{Chat: Chat("acme"), Root: ins[0].MessageID}, conversation.Message{Blocks: []conversation.Block{{Text: "No commits were recorded."}}}); err != nil {
		t.Fatal(err)
	}
	threads, lobby := pageOf(f.c.snapshot(), f.c.stageOf)
	if len(lobby) != 0 || len(threads) != 1 || len(threads[0].Messages) != 3 || threads[0].Messages[1].From != "tendai" || threads[0].Messages[2].Blocks[0].Text != "No commits were recorded." {
		t.Fatalf("threads %+v lobby %+v", threads, lobby)
	}
	for _, tc := range []struct {
		text string
		code int
	}{{"", http.StatusBadRequest}, {strings.Repeat("x", MaxText+1), http.StatusBadRequest}, {"\xff\xfe", http.StatusBadRequest}} {
		if code, _ := v.post("/say", url.Values{"as": {"tendai"}, "text": {tc.text}}, nil); code != tc.code {
			t.Errorf("text of %d bytes: %d, want %d", len(tc.text), code, tc.code)
		}
	}
	if _, err := f.c.Post(ctx, conversation.Thread{Chat: conversation.Chat{Channel: conversation.Telegram, ID: "1"}}, card("x")); !errors.Is(err, ErrUnknownChat) {
		t.Fatalf("post to another chat: %v", err)
	}
	if err := f.c.Edit(ctx, conversation.MessageRef{Chat: Chat("acme"), ID: "m999"}, card("x")); !errors.Is(err, ErrUnknownMessage) {
		t.Fatalf("edit of an unknown message: %v", err)
	}
}

// sse reads a server-sent event stream.
type sse struct {
	r    *bufio.Reader
	body io.Closer
}

func openEvents(t *testing.T, base string) *sse {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/events", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	s := &sse{r: bufio.NewReader(resp.Body), body: resp.Body}
	// The stream's opening comment: the subscription is in place.
	if line, err := s.r.ReadString('\n'); err != nil || !strings.HasPrefix(line, ":") {
		t.Fatalf("opening line %q %v", line, err)
	}
	return s
}

func (s *sse) next(t *testing.T) (name string, data map[string]string) {
	t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &data); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
		case line == "" && name != "":
			return name, data
		}
	}
}

func TestEventsStreamThreadsMessagesAndEditsEscaped(t *testing.T) {
	f := newFixture(t)
	s := openEvents(t, f.srv.URL)
	ctx := context.Background()
	th, ref, err := f.c.OpenThread(ctx, Chat("acme"), "INC-1 · checkout", card("<i>slow</i>", conversation.Button{Label: "Approve", Data: "ap:" + strings.Repeat("C", 22)}))
	if err != nil {
		t.Fatal(err)
	}
	name, d := s.next(t)
	if name != "thread" || d["id"] != ref.ID || !strings.Contains(d["html"], "&lt;i&gt;slow&lt;/i&gt;") || !strings.Contains(d["html"], `class="approve"`) {
		t.Fatalf("thread event %s %v", name, d)
	}
	if _, err := f.c.Post(ctx, th, conversation.Message{Blocks: []conversation.Block{{Text: "✅ Recovery restart_workers executed."}}}); err != nil {
		t.Fatal(err)
	}
	if name, d = s.next(t); name != "message" || d["thread"] != ref.ID || !strings.Contains(d["html"], "executed") {
		t.Fatalf("message event %s %v", name, d)
	}
	if err := f.c.Edit(ctx, ref, conversation.Message{Blocks: []conversation.Block{{Text: "✅ Approved by tendai"}}}); err != nil {
		t.Fatal(err)
	}
	if name, d = s.next(t); name != "edit" || d["id"] != ref.ID || strings.Contains(d["html"], "approve") || !strings.Contains(d["html"], "Approved by tendai") {
		t.Fatalf("edit event %s %v: the buttons must be gone", name, d)
	}
}

func TestAuditVerifiesTheChainAndExports(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	l, err := ledger.New(ledger.Options{Store: f.store, Signer: f.key})
	if err != nil {
		t.Fatal(err)
	}
	en, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Service: "checkout", Event: ledger.Detect, To: ledger.Detected,
		Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "detector"}, Reason: "health 23/100 <b>", PolicyVersion: "pol-1", Confidence: 1})
	if err != nil {
		t.Fatal(err)
	}
	v := f.visit(t)
	page := v.get("/audit/" + en.Incident)
	if !strings.Contains(page, "✓ Chain verified: 1 entries of tenant acme") || !strings.Contains(page, "health 23/100 &lt;b&gt;") {
		t.Fatalf("audit page:\n%s", page)
	}
	export := v.get("/audit/" + en.Incident + "/export.jsonl")
	if rep, err := ledger.VerifyExport(strings.NewReader(export), f.key.Public().(ed25519.PublicKey)); err != nil || rep.Entries != 1 {
		t.Fatalf("export does not verify: %v %+v", err, rep)
	}
	if md := v.get("/audit/" + en.Incident + "/report.md"); !strings.Contains(md, "# Incident "+en.Incident) {
		t.Fatalf("report:\n%s", md)
	}
	for path, code := range map[string]int{"/audit/INC-99": http.StatusNotFound, "/audit/..%2fetc": http.StatusBadRequest, "/audit/INC-1;DROP": http.StatusBadRequest} {
		resp, err := http.Get(f.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, code)
		}
	}
}

// fault is the demo's controls as the console sees them.
type fault struct {
	mu sync.Mutex
	on bool
}

func (f *fault) Spike()       { f.mu.Lock(); f.on = true; f.mu.Unlock() }
func (f *fault) Recover()     { f.mu.Lock(); f.on = false; f.mu.Unlock() }
func (f *fault) Faulty() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.on }

func TestControlsExistOnlyWhenGiven(t *testing.T) {
	f := newFixture(t)
	for _, r := range f.c.Routes(f.h) {
		if r.Pattern == "POST /demo/spike" {
			t.Fatal("a console without controls routes POST /demo/spike")
		}
	}
	if strings.Contains(f.visit(t).get("/"), "Simulate spike") {
		t.Fatal("a console without controls shows Simulate spike")
	}
	ft := &fault{}
	c, err := New(Options{Tenant: "acme", People: []Person{{"tendai", RoleApprover}}, Ledger: f.store, Signer: f.key, Controls: ft})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	for _, r := range c.Routes(&recorder{}) {
		mux.Handle(r.Pattern, r.Handler)
	}
	srv := httptest.NewServer(mux)
	defer srv.Close()
	v := (&fixture{srv: srv}).visit(t)
	if !strings.Contains(v.get("/"), `id="spike"`) {
		t.Fatal("no Simulate spike button")
	}
	if code, _ := v.post("/demo/spike", url.Values{"as": {"tendai"}}, map[string]string{"Origin": "http://evil.example"}); code != http.StatusForbidden || ft.Faulty() {
		t.Fatalf("cross-origin spike: %d, faulty %v", code, ft.Faulty())
	}
	if code, _ := v.post("/demo/spike", url.Values{"as": {"tendai"}}, nil); code != http.StatusOK || !ft.Faulty() {
		t.Fatalf("spike: %d, faulty %v", code, ft.Faulty())
	}
	if !strings.Contains(v.get("/"), "fault injected") {
		t.Fatal("the health panel does not say the fault is injected")
	}
	if code, _ := v.post("/demo/recover", url.Values{"as": {"tendai"}}, nil); code != http.StatusOK || ft.Faulty() {
		t.Fatalf("recover: %d, faulty %v", code, ft.Faulty())
	}
}

func TestOptionsAreValidated(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	for name, o := range map[string]Options{
		"no tenant":       {People: []Person{{"a", RoleApprover}}, Ledger: ledger.NewMemStore(), Signer: key},
		"no people":       {Tenant: "acme", Ledger: ledger.NewMemStore(), Signer: key},
		"duplicate name":  {Tenant: "acme", People: []Person{{"a", RoleApprover}, {"a", RoleViewer}}, Ledger: ledger.NewMemStore(), Signer: key},
		"unknown role":    {Tenant: "acme", People: []Person{{"a", "admin"}}, Ledger: ledger.NewMemStore(), Signer: key},
		"no ledger store": {Tenant: "acme", People: []Person{{"a", RoleApprover}}, Signer: key},
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestOldMessagesAreDroppedBeyondTheBound(t *testing.T) {
	key := ed25519.NewKeyFromSeed(make([]byte, 32))
	c, err := New(Options{Tenant: "acme", People: []Person{{"a", RoleApprover}}, Ledger: ledger.NewMemStore(), Signer: key, MaxMessages: 3})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if _, err := c.Post(context.Background(), conversation.Thread{Chat: Chat("acme")}, card("x")); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.snapshot(); len(got) != 3 || got[0].ID != "m3" {
		t.Fatalf("kept %d messages starting at %v", len(got), got)
	}
}

func TestEventStreamsAreBounded(t *testing.T) {
	f := newFixture(t)
	for range MaxStreams {
		openEvents(t, f.srv.URL)
	}
	resp, err := http.Get(f.srv.URL + "/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("stream %d: %d, want 503", MaxStreams+1, resp.StatusCode)
	}
}
