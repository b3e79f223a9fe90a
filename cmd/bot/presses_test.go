package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/telegram"
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

// burstClient delivers a burst as Telegram does, over connections it keeps open to the
// webhook (up to max_connections of them) rather than a new one per update.
var burstClient = &http.Client{Timeout: time.Minute, Transport: &http.Transport{MaxIdleConns: 1000, MaxIdleConnsPerHost: 1000}}

// pressBurst makes n presses of the card's first button, alternating tendai and rudo,
// and delivers them all at once — one goroutine per press, released together — spread
// round-robin over the replicas' webhooks. It returns the callback query ids, in press
// order, and each press's answer latency: from its webhook POST starting to the bot's
// answerCallbackQuery reaching the fake Bot API.
func pressBurst(t testing.TB, h *harness, replicas []*replica, card telegramtest.Message, n int) ([]string, []time.Duration) {
	t.Helper()
	ref := card.Buttons()[0][0].CallbackData
	queries := make([]string, n)
	users := []telegramtest.User{userTendai, userRudo}
	for i := range queries {
		queries[i] = h.tg.PressButton(groupID, card.MessageID, users[i%2], ref)
	}
	updates := takeUpdates(t, h.tg, n)
	sent := make([]time.Time, n)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i, u := range updates {
		wg.Add(1)
		go func(i int, u json.RawMessage) {
			defer wg.Done()
			<-gate
			sent[i] = time.Now()
			req, _ := http.NewRequest(http.MethodPost, replicas[i%len(replicas)].base+"/telegram/webhook", bytes.NewReader(u))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set(telegram.SecretHeader, "hook-secret")
			resp, err := burstClient.Do(req)
			if err != nil {
				errs <- err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				errs <- fmt.Errorf("webhook answered %d", resp.StatusCode)
			}
		}(i, u)
	}
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	answered := map[string]time.Time{}
	for _, c := range h.tg.Calls("answerCallbackQuery") {
		if c.ErrorCode == 0 {
			answered[c.Params["callback_query_id"]] = c.Time
		}
	}
	lat := make([]time.Duration, n)
	for i, q := range queries {
		at, ok := answered[q]
		if !ok {
			t.Fatalf("press %d (query %s) was never answered", i, q)
		}
		lat[i] = at.Sub(sent[i])
	}
	return queries, lat
}

// TestThousandConcurrentPressesExecuteOnce: 1,000 presses of one Approve button, with
// distinct update ids, delivered all at once over three bot instances sharing Redis, make
// exactly one AUTHORIZED entry and one webhook call; every other press is answered and
// audited. (Its latency is BenchmarkThousandPresses.)
func TestThousandConcurrentPressesExecuteOnce(t *testing.T) {
	if testing.Short() {
		testkit.Skip(t, "1,000 presses: skipped with -short")
	}
	if !testkit.Race {
		t.Parallel() // under -race, 1,000 presses take the CPU the other tests' deadlines need
	}
	h := newHarness(t)
	a, b, c := h.start(true), h.start(true), h.start(true)
	a.alert(t, "firing")
	card := h.card(t)
	inc := incidentCode(t, card)
	const presses = 1000
	queries, _ := pressBurst(t, h, []*replica{a, b, c}, card, presses)
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

// BenchmarkThousandPresses measures the answer latency of a burst: per iteration a new
// incident's Approve button is pressed 1,000 times (tendai and rudo alternating), all
// delivered at once over three replicas sharing Redis (the full `bot serve` wiring in
// webhook mode, the fake Bot API). Latency is from a press's webhook POST to the bot's
// answerCallbackQuery reaching the fake; p50/p95/max are over every press of every
// iteration. Each iteration also checks that exactly one press approved.
//
//	REDIS_URL=redis://127.0.0.1:6379 go test -run '^$' -bench ThousandPresses -benchtime=3x -count=5 ./cmd/bot/
func BenchmarkThousandPresses(b *testing.B) {
	const presses = 1000
	h := newHarness(b)
	rs := []*replica{h.start(true), h.start(true), h.start(true)}
	seen := map[int]bool{}
	var all []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		rs[0].alertN(b, "firing", i)
		card := h.newCard(b, seen)
		inc := incidentCode(b, card)
		waitPresented(b, rs[len(rs)-1], inc)
		b.StartTimer()
		queries, lat := pressBurst(b, h, rs, card, presses)
		b.StopTimer()
		all = append(all, lat...)
		approved := 0
		for _, q := range queries {
			if a, _ := h.tg.CallbackAnswer(q); strings.HasPrefix(a.Text, "Approved.") {
				approved++
			}
		}
		if approved != 1 {
			b.Fatalf("%d presses approved, want 1", approved)
		}
		select {
		case <-h.hook.calls:
		case <-time.After(30 * time.Second):
			b.Fatal("the recovery webhook was never called")
		}
		waitStage(b, h, inc, ledger.Executed)
		rs[0].alertN(b, "resolved", i)
		waitStage(b, h, inc, ledger.Resolved)
		b.StartTimer()
	}
	b.StopTimer()
	reportLatency(b, all, 0.50, 0.95, 1)
}

// reportLatency reports quantiles qs of lat (nearest rank) in milliseconds, as "p50-ms"
// (q 0.5) and "max-ms" (q 1).
func reportLatency(b *testing.B, lat []time.Duration, qs ...float64) {
	slices.Sort(lat)
	for _, q := range qs {
		unit := "max-ms"
		if q < 1 {
			unit = fmt.Sprintf("p%d-ms", int(math.Round(q*100)))
		}
		i := max(int(math.Ceil(q*float64(len(lat))))-1, 0)
		b.ReportMetric(float64(lat[i].Microseconds())/1000, unit)
	}
}
