package links

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/conversation/approval"
)

// approvals keeps links as the approval service does: a link is used once; an unknown
// or malformed reference is ErrUnknown.
type approvals struct {
	mu       sync.Mutex
	links    map[string]*approval.Preview
	confirms int
	broken   error
}

func newApprovals() *approvals {
	exp := time.Date(2026, 11, 27, 9, 5, 0, 0, time.UTC)
	return &approvals{links: map[string]*approval.Preview{
		"good":    {Tenant: "acme", Incident: "INC-7F3", Action: "restart_workers", Person: "tendai", Expires: exp, State: "pending"},
		"risky":   {Tenant: "acme", Incident: "INC-7F4", Action: "rollback", HighRisk: true, Person: "rudo", Expires: exp, State: "pending"},
		"old":     {Tenant: "acme", Incident: "INC-7F5", Action: "restart_workers", Person: "tendai", Expires: exp, State: "expired"},
		"hostile": {Tenant: "acme", Incident: "INC-7F6", Action: `<script>alert(1)</script>`, Person: "tendai", Expires: exp, State: "pending"},
	}}
}

func (a *approvals) PreviewLink(_ context.Context, id string) (approval.Preview, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.broken != nil {
		return approval.Preview{}, a.broken
	}
	p, ok := a.links[id]
	if !ok {
		return approval.Preview{}, approval.ErrUnknown
	}
	return *p, nil
}

func (a *approvals) ConfirmLink(_ context.Context, id string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.broken != nil {
		return "", a.broken
	}
	p, ok := a.links[id]
	switch {
	case !ok:
		return "This link is not valid.", nil
	case p.State == "expired":
		return "This approval has expired.", nil
	case p.State == "used":
		return "Already approved by " + p.UsedBy + ".", nil
	}
	a.confirms++
	p.State, p.UsedBy = "used", p.Person
	return "Approved: " + p.Action + " runs now.", nil
}

func server(t *testing.T, a *approvals) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	log := slog.New(slog.DiscardHandler)
	mux.Handle("GET /action/recover", Preview(a, log))
	mux.Handle("POST /action/recover/confirm", http.MaxBytesHandler(Confirm(a, log), 1<<10))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, srv *httptest.Server, ref string) (int, string, http.Header) {
	t.Helper()
	resp, err := http.Get(srv.URL + "/action/recover?ref=" + url.QueryEscape(ref))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func post(t *testing.T, srv *httptest.Server, body string) (int, string) {
	t.Helper()
	resp, err := http.Post(srv.URL+"/action/recover/confirm", "application/x-www-form-urlencoded", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// Opening the link shows what will run, as whom, and a confirm button; opening it again
// (a chat app's link preview) changes nothing.
func TestPreviewShowsAndChangesNothing(t *testing.T) {
	a := newApprovals()
	srv := server(t, a)
	for range 3 {
		code, body, h := get(t, srv, "good")
		if code != http.StatusOK {
			t.Fatalf("GET: %d", code)
		}
		for _, want := range []string{"Approve restart_workers?", "Incident INC-7F3 (acme)", "Approver: tendai", "Valid until Fri, 27 Nov 2026 09:05:00 UTC",
			`action="/action/recover/confirm"`, `name="ref" value="good"`} {
			if !strings.Contains(body, want) {
				t.Errorf("preview lacks %q:\n%s", want, body)
			}
		}
		if h.Get("Cache-Control") != "no-store" || h.Get("X-Frame-Options") != "DENY" || !strings.Contains(h.Get("Content-Security-Policy"), "default-src 'none'") {
			t.Errorf("headers %v: the page must not be cached or framed", h)
		}
	}
	if a.confirms != 0 {
		t.Fatalf("previews confirmed %d times", a.confirms)
	}
	if _, body, _ := get(t, srv, "risky"); !strings.Contains(body, "two different approvers") {
		t.Errorf("a high-risk preview does not say two approvers are needed:\n%s", body)
	}
}

func TestConfirmApprovesOnce(t *testing.T) {
	a := newApprovals()
	srv := server(t, a)
	code, body := post(t, srv, "ref=good")
	if code != http.StatusOK || !strings.Contains(body, "Approved: restart_workers runs now.") {
		t.Fatalf("first confirm: %d\n%s", code, body)
	}
	code, body = post(t, srv, "ref=good")
	if code != http.StatusOK || !strings.Contains(body, "Already approved by tendai.") || a.confirms != 1 {
		t.Fatalf("second confirm: %d, %d approvals\n%s", code, a.confirms, body)
	}
	if _, body, _ := get(t, srv, "good"); !strings.Contains(body, "Already decided") || strings.Contains(body, "<form") {
		t.Errorf("a used link still offers to approve:\n%s", body)
	}
}

func TestBadOrExpiredRefIsRefused(t *testing.T) {
	a := newApprovals()
	srv := server(t, a)
	for _, ref := range []string{"", "nope", strings.Repeat("x", 500), "../../etc/passwd"} {
		code, body, _ := get(t, srv, ref)
		if code != http.StatusNotFound || !strings.Contains(body, "This link is not valid.") || strings.Contains(body, "<form") {
			t.Errorf("ref %q: %d\n%s", ref, code, body)
		}
	}
	code, body, _ := get(t, srv, "old")
	if code != http.StatusOK || !strings.Contains(body, "This approval has expired") || strings.Contains(body, "<form") {
		t.Errorf("expired link: %d\n%s", code, body)
	}
	if _, body := post(t, srv, "ref=old"); !strings.Contains(body, "expired") || a.confirms != 0 {
		t.Errorf("an expired link confirmed:\n%s", body)
	}
	if code, _ := post(t, srv, "ref="+strings.Repeat("x", 4<<10)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("an oversized form: %d, want 413", code)
	}
	if code, _ := post(t, srv, "ref=%zz"); code != http.StatusBadRequest {
		t.Errorf("a malformed form: %d, want 400", code)
	}
}

// What the approval data says is shown as text, never as markup.
func TestPageEscapesWhatItShows(t *testing.T) {
	srv := server(t, newApprovals())
	_, body, _ := get(t, srv, "hostile")
	if strings.Contains(body, "<script>") || !strings.Contains(body, "&lt;script&gt;") {
		t.Errorf("the action name reached the page as markup:\n%s", body)
	}
}

// A failure behind the page says nothing was run and shows nothing of the cause.
func TestFailureShowsNoInternals(t *testing.T) {
	a := newApprovals()
	a.broken = fmt.Errorf("redis 10.0.0.7:6379: %w", errors.New("connection refused"))
	srv := server(t, a)
	code, body, _ := get(t, srv, "good")
	code2, body2 := post(t, srv, "ref=good")
	for _, c := range []struct {
		code int
		body string
	}{{code, body}, {code2, body2}} {
		if c.code != http.StatusInternalServerError || !strings.Contains(c.body, "Nothing was run") || strings.Contains(c.body, "10.0.0.7") {
			t.Errorf("%d\n%s", c.code, c.body)
		}
	}
}
