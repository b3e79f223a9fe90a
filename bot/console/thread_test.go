package console

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// TestTheLimitIsCountedInCharacters: 1,500 "é" (3,000 bytes) are one message; 2,001
// characters are refused with their count, and nothing is said for them.
func TestTheLimitIsCountedInCharacters(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	v := f.visit(t)
	accents := strings.Repeat("é", 1500)
	if code, out := v.post("/say", url.Values{"as": {"tendai"}, "text": {accents}}, nil); code != http.StatusOK || out["error"] != "" {
		t.Fatalf("1,500 characters (3,000 bytes): %d %v", code, out)
	}
	long := strings.Repeat("a", MaxText+1)
	code, out := v.post("/say", url.Values{"as": {"tendai"}, "text": {long}}, nil)
	if code != http.StatusBadRequest || !strings.Contains(out["error"], "at most 2000 characters; this one has 2001") {
		t.Fatalf("2,001 characters: %d %v", code, out)
	}
	if ins := f.h.inbounds(); len(ins) != 1 || ins[0].Text != accents {
		t.Fatalf("the engine got %d messages; want only the 1,500 accents, whole", len(ins))
	}
	page := v.get("/")
	if !regexp.MustCompile(`maxText=\s*2000\b`).MatchString(page) || strings.Contains(page, `maxlength=`) {
		t.Fatal("the page does not count against the server's limit (or cuts text silently with maxlength)")
	}
}

// TestTheThreadShowsItsIncidentsStageAndWhatTheLedgerRefused: the console follows each
// thread's incident in the ledger: the header shows its stage, a refused press the
// ledger recorded appears in the thread, and once the incident is closed the card's
// headline stops saying degraded.
func TestTheThreadShowsItsIncidentsStageAndWhatTheLedgerRefused(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	l, err := ledger.New(ledger.Options{Store: f.store, Signer: f.key})
	if err != nil {
		t.Fatal(err)
	}
	det, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Service: "checkout", Event: ledger.Detect, To: ledger.Detected,
		Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "detector"}, Reason: "health 23/100", PolicyVersion: "pol-1", Confidence: 1})
	if err != nil {
		t.Fatal(err)
	}
	inc := det.Incident
	_, ref, err := f.c.OpenThread(ctx, Chat("acme"), inc+" · checkout", conversation.Message{Blocks: []conversation.Block{
		{Style: conversation.Title, Text: "🚨 checkout degraded — " + inc}, {Style: conversation.Plain, Text: "Health 23/100"}}})
	if err != nil {
		t.Fatal(err)
	}
	ev := openEvents(t, f.srv.URL)
	f.c.refreshThreads(ctx)
	if name, d := ev.next(t); name != "stage" || d["id"] != ref.ID || !strings.HasPrefix(d["stage"], "DETECTED") {
		t.Fatalf("first event %s %v, want the thread's stage DETECTED", name, d)
	}
	if _, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Incident: inc, Event: ledger.RefusedPress, Action: "rollback",
		Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "vimbai", Channel: "console"}, Reason: "not an approver", PolicyVersion: "pol-1"}); err != nil {
		t.Fatal(err)
	}
	f.c.refreshThreads(ctx)
	if name, d := ev.next(t); name != "message" || d["thread"] != ref.ID || !strings.Contains(d["html"], "Refused a press of rollback by vimbai: not an approver") {
		t.Fatalf("after the refused press: %s %v", name, d)
	}
	if _, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Incident: inc, Event: ledger.Recover, From: ledger.Detected, To: ledger.Recovered,
		Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "detector"}, Reason: "healthy again", PolicyVersion: "pol-1"}); err != nil {
		t.Fatal(err)
	}
	f.c.refreshThreads(ctx)
	if name, d := ev.next(t); name != "stage" || d["stage"] != "RECOVERED" {
		t.Fatalf("after the recovery: %s %v", name, d)
	}
	if name, d := ev.next(t); name != "edit" || d["id"] != ref.ID || !strings.Contains(d["html"], "checkout healthy again — "+inc+" · RECOVERED") || strings.Contains(d["html"], "degraded") {
		t.Fatalf("the card after the recovery: %s %v", name, d)
	}
	page := f.visit(t).get("/")
	if !strings.Contains(page, `<span class="stage st-good">RECOVERED</span>`) || strings.Contains(page, "checkout degraded") {
		t.Fatal("a fresh page does not show the thread's stage and the closed card")
	}
}

// TestTheAuditTableShowsQuestionsAndAligns: the audit page is a table (its columns line up
// past entry 9) and a question's row shows what was asked.
func TestTheAuditTableShowsQuestionsAndAligns(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	l, err := ledger.New(ledger.Options{Store: f.store, Signer: f.key})
	if err != nil {
		t.Fatal(err)
	}
	det, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Service: "checkout", Event: ledger.Detect, To: ledger.Detected,
		Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "detector"}, Reason: "health 23/100", PolicyVersion: "pol-1", Confidence: 1})
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Incident: det.Incident, Event: ledger.Question,
			Actor: ledger.Actor{Kind: ledger.ActorEngineer, ID: "tendai", Channel: "console"}, Reason: "question", PolicyVersion: "pol-1",
			Data: map[string]string{"text": "what changed <now>?"}}); err != nil {
			t.Fatal(err)
		}
	}
	page := f.visit(t).get("/audit/" + det.Incident)
	if strings.Count(page, "<tr><td class=\"n\">#") != 11 || !strings.Contains(page, `<td class="n">#11</td>`) {
		t.Fatalf("the audit page is not one table row per entry:\n%s", page)
	}
	if strings.Count(page, "<td>what changed &lt;now&gt;?</td>") != 10 {
		t.Fatalf("the questions' rows do not show what was asked:\n%s", page)
	}
}

// TestTheFaviconIsServed: a page load asks for /favicon.ico; it is there.
func TestTheFaviconIsServed(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	resp, err := http.Get(f.srv.URL + "/favicon.ico")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "image/") {
		t.Fatalf("/favicon.ico: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
}

// TestTheThreadShowsAVoidedPartialApproval: on a dissent card, tendai gives the first of
// two approvals to "Trust B: failover_db" (high risk), then rudo approves "Trust A:
// restart_workers" — through the real approval service, which records the AUTHORIZED
// entry with data.voided. The console reads that from the ledger and shows tendai's
// approval as voided in the thread, naming who approved what instead.
func TestTheThreadShowsAVoidedPartialApproval(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	ctx := context.Background()
	l, err := ledger.New(ledger.Options{Store: f.store, Signer: f.key})
	if err != nil {
		t.Fatal(err)
	}
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	det, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Service: "checkout", Event: ledger.Detect, To: ledger.Detected,
		Actor: policy, Reason: "health 23/100", PolicyVersion: "pol-1", Confidence: 1})
	if err != nil {
		t.Fatal(err)
	}
	inc := det.Incident
	for _, ev := range []ledger.Event{ledger.Propose, ledger.Validate} {
		if _, err := l.Record(ctx, ledger.Entry{Tenant: "acme", Incident: inc, Event: ev, Actor: policy, Action: "restart_workers", PolicyVersion: "pol-1"}); err != nil {
			t.Fatal(err)
		}
	}
	_, ref, err := f.c.OpenThread(ctx, Chat("acme"), inc+" · checkout", conversation.Message{Blocks: []conversation.Block{
		{Style: conversation.Title, Text: "🚨 checkout degraded — " + inc}, {Style: conversation.Plain, Text: "Approving one theory voids the other."}}})
	if err != nil {
		t.Fatal(err)
	}
	ev := openEvents(t, f.srv.URL)
	f.c.refreshThreads(ctx)
	if name, d := ev.next(t); name != "stage" || !strings.HasPrefix(d["stage"], "VALIDATED") {
		t.Fatalf("first event %s %v, want the thread's stage VALIDATED", name, d)
	}

	rc, prefix := ledgertest.Redis(t)
	svc, err := approval.New(approval.Options{Redis: rc, KeyPrefix: prefix, Secret: []byte(strings.Repeat("s", 32)), Ledger: l})
	if err != nil {
		t.Fatal(err)
	}
	refs, err := svc.Issue(ctx, 5*time.Minute,
		approval.Offer{Tenant: "acme", Incident: inc, Action: "restart_workers", PolicyVersion: "pol-1", Evidence: "card", Theory: "A"},
		approval.Offer{Tenant: "acme", Incident: inc, Action: "failover_db", HighRisk: true, PolicyVersion: "pol-1", Evidence: "card", Theory: "B"})
	if err != nil {
		t.Fatal(err)
	}
	pol := approval.Policy{Version: "pol-1"}
	if res, err := svc.Redeem(ctx, refs[1], approval.Presser{Tenant: "acme", Name: "tendai", Approver: true, Channel: "console", UserID: "tendai"}, pol); err != nil || res.Status != approval.Partial {
		t.Fatalf("tendai's Trust B: %+v %v", res, err)
	}
	if res, err := svc.Redeem(ctx, refs[0], approval.Presser{Tenant: "acme", Name: "rudo", Approver: true, Channel: "console", UserID: "rudo"}, pol); err != nil || res.Status != approval.Authorized || res.Entry.Data["voided"] != "tendai: failover_db (B)" {
		t.Fatalf("rudo's Trust A: %+v %v", res, err)
	}
	f.c.refreshThreads(ctx)
	name, d := ev.next(t)
	if name != "message" || d["thread"] != ref.ID {
		t.Fatalf("after the authorization: %s %v, want a message in the thread", name, d)
	}
	for _, want := range []string{"⊘ Voided: tendai approved failover_db (1 of 2) at ", "voided: rudo approved restart_workers instead", "(authorize, voided: tendai: failover_db (B))"} {
		if !strings.Contains(d["html"], want) {
			t.Fatalf("the thread's note lacks %q:\n%s", want, d["html"])
		}
	}
	if name, d := ev.next(t); name != "stage" || !strings.HasPrefix(d["stage"], "AUTHORIZED") {
		t.Fatalf("then %s %v, want the stage AUTHORIZED", name, d)
	}
	// Read again, nothing new: the note is not repeated.
	f.c.refreshThreads(ctx)
	if page := f.visit(t).get("/"); strings.Count(page, "⊘ Voided: tendai approved failover_db") != 1 {
		t.Fatal("a fresh page does not show the voided approval exactly once")
	}
}
