package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/fixtures/testkit"
	"github.com/alertengine/alertengine/ledger"
)

// takeUpdates collects queued updates from the fake as Telegram would hand them over,
// through the Bot API's own getUpdates (the webhook is deleted first).
func takeUpdates(t testing.TB, tg *telegramtest.Server, n int) []json.RawMessage {
	t.Helper()
	call := func(method string, v url.Values) json.RawMessage {
		resp, err := http.PostForm(tg.URL()+"/bot"+tg.Token()+"/"+method, v)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r struct {
			OK     bool            `json:"ok"`
			Result json.RawMessage `json:"result"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || !r.OK {
			t.Fatalf("%s: %v %s", method, err, r.Result)
		}
		return r.Result
	}
	call("deleteWebhook", url.Values{})
	var out []json.RawMessage
	offset := int64(0)
	for len(out) < n {
		var batch []json.RawMessage
		json.Unmarshal(call("getUpdates", url.Values{"offset": {fmt.Sprint(offset)}, "limit": {"100"}, "timeout": {"0"}}), &batch)
		if len(batch) == 0 {
			t.Fatalf("only %d of %d updates queued", len(out), n)
		}
		for _, u := range batch {
			var id struct {
				ID int64 `json:"update_id"`
			}
			json.Unmarshal(u, &id)
			offset = id.ID + 1
		}
		out = append(out, batch...)
	}
	call("getUpdates", url.Values{"offset": {fmt.Sprint(offset)}, "timeout": {"0"}})
	return out
}

// TestThousandConcurrentPressesExecuteOnce: 1,000 presses of one Approve button, with
// distinct update ids, spread over two bot instances sharing Redis, make exactly one
// AUTHORIZED entry and one webhook call; every other press is answered and audited.
func TestThousandConcurrentPressesExecuteOnce(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "1,000 presses: skipped with -short")
	}
	if !testkit.Race {
		t.Parallel() // under -race, 1,000 presses take the CPU the other tests' deadlines need
	}
	h := newHarness(t)
	a, b := h.start(true), h.start(true)
	a.alert(t, "firing")
	card := h.card(t)
	inc := incidentCode(t, card)
	ref := card.Buttons()[0][0].CallbackData
	const presses = 1000
	queries := make([]string, presses)
	users := []telegramtest.User{userTendai, userRudo}
	for i := range queries {
		queries[i] = h.tg.PressButton(groupID, card.MessageID, users[i%2], ref)
	}
	updates := takeUpdates(t, h.tg, presses)
	var wg sync.WaitGroup
	errs := make(chan error, presses)
	sem := make(chan struct{}, 64)
	for i, u := range updates {
		wg.Add(1)
		go func(i int, u json.RawMessage) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			target := []*replica{a, b}[i%2]
			code, err := h.tg.PostWebhook(context.Background(), target.base+"/telegram/webhook", "hook-secret", u)
			if err == nil && code != http.StatusOK {
				err = fmt.Errorf("webhook answered %d", code)
			}
			if err != nil {
				errs <- err
			}
		}(i, u)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	select {
	case <-h.hook.calls:
	case <-time.After(30 * time.Second):
		t.Fatal("the recovery webhook was never called")
	}
	approved, alreadyUsed := 0, 0
	for _, q := range queries {
		ans := waitAnswer(t, h.tg, q)
		switch {
		case strings.HasPrefix(ans.Text, "Approved."):
			approved++
		case strings.HasPrefix(ans.Text, "Already approved by"), strings.HasPrefix(ans.Text, "Nothing was run"):
			alreadyUsed++
		default:
			t.Errorf("press answered %q", ans.Text)
		}
	}
	if approved != 1 || alreadyUsed != presses-1 {
		t.Fatalf("%d presses approved, %d answered as already used; want 1 and %d", approved, alreadyUsed, presses-1)
	}
	_, hist, err := a.sys.Ledger().Incident(context.Background(), "acme", inc)
	if err != nil {
		t.Fatal(err)
	}
	// Refused presses are audited bounded per sender: the 1st, 10th, 100th, … refusal of
	// one kind, each entry carrying the sender's count so far. Each of the two approvers
	// pressed ~500 times, so each has entries up to a count of at least 100, and the
	// ledger holds a handful of entries, not 999.
	auth, refused := 0, 0
	highest := map[string]int{}
	for _, e := range hist {
		switch e.Event {
		case ledger.Authorize:
			auth++
		case ledger.RefusedPress:
			refused++
			n, err := strconv.Atoi(e.Data["count"])
			if err != nil {
				t.Fatalf("refused press entry %d has no count: %v", e.Seq, e.Data)
			}
			highest[e.Actor.ID] = max(highest[e.Actor.ID], n)
		}
	}
	if auth != 1 || refused < 2 || refused > 12 {
		t.Fatalf("ledger: %d AUTHORIZED, %d refused presses audited; want 1 and a bounded handful (2..12)", auth, refused)
	}
	for _, who := range []string{"tendai", "rudo"} {
		if highest[who] < 100 {
			t.Errorf("ledger: %s's refused presses counted up to %d; want at least 100 of their ~500 (counts %v)", who, highest[who], highest)
		}
	}
	// Give a second call every chance to show up: wait for the outcome in the thread.
	if _, err := h.tg.WaitForMessage(ctxT(t, 40*time.Second), groupID, hasText("Recovery restart_workers executed")); err != nil {
		t.Fatal(err)
	}
	if n, keys := h.hook.count(); n != 1 {
		t.Fatalf("%d webhook calls (keys %v), want exactly 1", n, keys)
	}
}
