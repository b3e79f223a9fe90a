package conversation_test

import (
	"context"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
)

// record appends a pipeline entry (execution, resolution, recovery) to the incident and
// tells the engine, as the pipeline does.
func (w *world) record(e ledger.Entry) {
	w.t.Helper()
	e.Tenant, e.Incident = "acme", w.incident
	if e.Actor.ID == "" {
		e.Actor = ledger.Actor{Kind: ledger.ActorSystem, ID: "pipeline"}
	}
	en, err := w.led.Record(context.Background(), e)
	if err != nil {
		w.t.Fatalf("record %s: %v", e.Event, err)
	}
	if err := w.eng.Notify(context.Background(), en); err != nil {
		w.t.Fatalf("notify %s: %v", e.Event, err)
	}
}

func headlineOf(s sent) string {
	if len(s.Msg.Blocks) == 0 {
		return ""
	}
	return s.Msg.Blocks[0].Text
}

// TestResolutionRetitlesEveryCard: once the approved recovery ran and the service is
// healthy, the card in each chat that edits in place says RESOLVED in its headline and
// keeps who approved, with no buttons; WhatsApp, which cannot edit, gets no repeat of the
// approval line, only the resolution.
func TestResolutionRetitlesEveryCard(t *testing.T) {
	w, wa := newTwoChannelWorld(t)
	w.open()
	tg := conversation.Chat{Channel: conversation.Telegram, ID: group}
	card := w.card()
	if r := w.handle(conversation.Inbound{Chat: tg, User: tendai, Data: card.Msg.Buttons[0][0].Data, ReplyTo: card.ID}); !strings.HasPrefix(r.Toast, "Approved.") {
		t.Fatalf("press: %q", r.Toast)
	}
	approved := "✅ Approved by tendai in Telegram at 09:00 UTC: restart_workers"
	if got := w.card(); !strings.HasPrefix(headlineOf(got), "🚨 checkout") {
		t.Fatalf("an approved incident is not closed yet, its headline changed: %q", headlineOf(got))
	}
	waCard := wa.all(waChat)[0]
	if waCard.Edits != 1 {
		t.Fatalf("WhatsApp card after the approval: %+v", waCard)
	}

	w.record(ledger.Entry{Event: ledger.Execute, Action: "restart_workers"})
	w.now = w.now.Add(4 * 60e9)
	w.record(ledger.Entry{Event: ledger.Resolve, Reason: "healthy again"})

	got := w.card()
	if got.ID != card.ID {
		t.Fatalf("a new card was posted (%s) instead of editing %s", got.ID, card.ID)
	}
	if want := "✅ checkout healthy again — " + w.incident + " · RESOLVED"; headlineOf(got) != want {
		t.Errorf("headline %q, want %q", headlineOf(got), want)
	}
	text := got.Msg.Text()
	if !strings.Contains(text, approved) || strings.Contains(text, "🚨") {
		t.Errorf("resolved card:\n%s", text)
	}
	if len(got.Msg.Buttons) != 0 {
		t.Errorf("the resolved card has buttons: %+v", got.Msg.Buttons)
	}
	if _, ok := w.tg.find(group, "Resolved: the service is healthy again"); !ok {
		t.Error("the thread was not told it resolved")
	}
	if waCard = wa.all(waChat)[0]; waCard.Edits != 1 {
		t.Errorf("WhatsApp, which cannot edit, was sent the card's update again: %d edits", waCard.Edits)
	}
	if _, ok := wa.find(waChat, "Resolved: the service is healthy again"); !ok {
		t.Error("WhatsApp was not told it resolved")
	}
}

// recovered records the detector's RECOVERED entry (its reason is what it measured) and
// tells the engine as the pipeline does: with note, why it closed without being healthy
// again, or "" when it is healthy.
func (w *world) recovered(note string) {
	w.t.Helper()
	en, err := w.led.Record(context.Background(), ledger.Entry{Tenant: "acme", Incident: w.incident, Event: ledger.Recover,
		Actor: ledger.Actor{Kind: ledger.ActorSystem, ID: "detector"}, Reason: "healthy again: health 100/100 ≥ 70 for 3 evaluations"})
	if err != nil {
		w.t.Fatal(err)
	}
	en.Reason = note
	if err := w.eng.Notify(context.Background(), en); err != nil {
		w.t.Fatal(err)
	}
}

// TestClosedCardsSayTheirStage: an incident that recovered on its own, was closed by the
// detector, or was rejected has its card retitled with the stage, the closing line kept.
func TestClosedCardsSayTheirStage(t *testing.T) {
	tg := conversation.Chat{Channel: conversation.Telegram, ID: group}
	for _, c := range []struct {
		name      string
		close     func(w *world)
		head      string // after the service and before " — "
		stage     ledger.Stage
		line      string
		notHealth bool
	}{
		{"recovered", func(w *world) { w.recovered("") }, "healthy again", ledger.Recovered,
			"Healthy again at 09:00 UTC before any action was approved; nothing was run.", false},
		{"closed by the detector", func(w *world) { w.recovered("its alerts expired") },
			"critical", ledger.Recovered, "Closed at 09:00 UTC; nothing was run.", true},
		{"rejected", func(w *world) {
			card := w.card()
			w.handle(conversation.Inbound{Chat: tg, User: tendai, Data: "/reject " + w.incident, ReplyTo: card.ID})
		}, "critical", ledger.Rejected, "❌ Rejected by tendai at 09:00 UTC; nothing was run.", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, false)
			w.open()
			c.close(w)
			if w.stage() != c.stage {
				t.Fatalf("stage %s, want %s", w.stage(), c.stage)
			}
			got := w.card()
			want := "✅ checkout " + c.head + " — " + w.incident + " · " + string(c.stage)
			if c.notHealth {
				want = "⏹ checkout " + c.head + " — " + w.incident + " · " + string(c.stage)
			}
			if headlineOf(got) != want {
				t.Errorf("headline %q, want %q", headlineOf(got), want)
			}
			if b := got.Msg.Blocks; b[len(b)-1].Text != c.line || len(got.Msg.Buttons) != 0 {
				t.Errorf("closed card:\n%s\n%+v", got.Msg.Text(), got.Msg.Buttons)
			}
		})
	}
}

// TestRecoveryAfterAFailedRunKeepsTheApproval: an approved recovery whose webhook failed,
// then healthy again: the card keeps who approved and says RECOVERED; nothing claims
// that no action was approved or run.
func TestRecoveryAfterAFailedRunKeepsTheApproval(t *testing.T) {
	w := newWorld(t, false)
	w.open()
	card := w.card()
	tg := conversation.Chat{Channel: conversation.Telegram, ID: group}
	if r := w.handle(conversation.Inbound{Chat: tg, User: tendai, Data: card.Msg.Buttons[0][0].Data, ReplyTo: card.ID}); !strings.HasPrefix(r.Toast, "Approved.") {
		t.Fatalf("press: %q", r.Toast)
	}
	w.record(ledger.Entry{Event: ledger.WebhookFail, Action: "restart_workers", Reason: "HTTP 502 after 5 attempts"})
	w.recovered("")
	got := w.card()
	if want := "✅ checkout healthy again — " + w.incident + " · RECOVERED"; headlineOf(got) != want {
		t.Errorf("headline %q, want %q", headlineOf(got), want)
	}
	if b := got.Msg.Blocks; b[len(b)-1].Text != "✅ Approved by tendai at 09:00 UTC: restart_workers" {
		t.Errorf("card:\n%s", got.Msg.Text())
	}
	if _, ok := w.tg.find(group, "Recovered: the service is healthy again."); !ok {
		t.Error("the thread was not told it recovered")
	}
	if m, ok := w.tg.find(group, "before any action was approved"); ok {
		t.Errorf("the thread says no action was approved: %s", m.Msg.Text())
	}
}
