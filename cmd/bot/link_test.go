package main

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

func get(t *testing.T, u string) (int, string) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestLinkApproval: the approval link (for chats without buttons) previews without side
// effects however often it is opened, and confirming it approves as the approver it was
// issued to, once, through the same rules as a button.
func TestLinkApproval(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	b := h.start(false)
	b.alert(t, "firing")
	card := h.card(t)
	inc := incidentCode(t, card)
	// The card reaches the chat a moment before the bot has recorded where it is.
	var links map[string]map[string]string
	var err error
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if links, err = b.sys.Engine().IssueLinks(context.Background(), "acme", inc); err == nil {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	tendaiLink, rudoLink := links["tendai"]["restart_workers"], links["rudo"]["restart_workers"]
	if tendaiLink == "" || rudoLink == "" || links["vimbai"] != nil {
		t.Fatalf("links %v: want one per approver, none for the viewer", links)
	}
	for i := 0; i < 3; i++ {
		code, page := get(t, b.base+"/action/recover?ref="+url.QueryEscape(tendaiLink))
		if code != http.StatusOK || !strings.Contains(page, "Approve restart_workers?") || !strings.Contains(page, "Approver: tendai") || !strings.Contains(page, inc) {
			t.Fatalf("preview: %d\n%s", code, page)
		}
	}
	if st := h.stage(t, inc); st != ledger.Validated {
		t.Fatalf("previews changed the incident: %s", st)
	}
	if n, _ := h.hook.count(); n != 0 {
		t.Fatal("a preview ran the recovery")
	}
	if code, _ := get(t, b.base+"/action/recover?ref=lk:AAAAAAAAAAAAAAAAAAAAAA"); code != http.StatusNotFound {
		t.Fatalf("unknown link: %d", code)
	}
	confirm := func(ref string) (int, string) {
		resp, err := http.PostForm(b.base+"/action/recover/confirm", url.Values{"ref": {ref}})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	if code, page := confirm(tendaiLink); code != http.StatusOK || !strings.Contains(page, "Approved. restart_workers will run now.") {
		t.Fatalf("confirm: %d\n%s", code, page)
	}
	select {
	case <-h.hook.calls:
	case <-time.After(40 * time.Second):
		t.Fatal("the confirmed link did not run the recovery")
	}
	if _, page := confirm(rudoLink); !strings.Contains(page, "Already approved by tendai.") {
		t.Fatalf("second link after the approval:\n%s", page)
	}
	if _, page := get(t, b.base+"/action/recover?ref="+url.QueryEscape(tendaiLink)); !strings.Contains(page, "Already approved by tendai.") {
		t.Fatalf("preview after use:\n%s", page)
	}
	edited, _ := h.tg.Message(groupID, card.MessageID)
	if len(edited.Buttons()) != 0 || !strings.Contains(edited.Text+edited.Caption, "Approved by tendai") {
		t.Fatalf("the card was not closed after a link approval: %+v", edited)
	}
	_, hist, _ := ledgerOf(t, h).Incident(context.Background(), "acme", inc)
	auth := 0
	for _, e := range hist {
		if e.Event == ledger.Authorize {
			auth++
			if e.Actor.ID != "tendai" {
				t.Fatalf("authorized as %q", e.Actor.ID)
			}
		}
	}
	if auth != 1 {
		t.Fatalf("%d authorizations", auth)
	}
}
