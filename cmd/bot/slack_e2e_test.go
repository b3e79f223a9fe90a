package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/slack/slacktest"
	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/ledger"
)

// The Slack workspace of the system tests: slacktest's channel and people, plus a viewer.
const (
	slackChannel = "CGENERAL01"
	slackTendai  = "UALICE0001" // tendai's member id
	slackRudo    = "UBOB000001" // rudo's
	slackVimbai  = "UVIMBAI001" // vimbai's, a viewer
)

// newSlackHarness is a tenant with a Telegram group and a Slack channel as incident
// chats, the same three people on both, and Slack over HTTP (SLACK_SIGNING_SECRET).
func newSlackHarness(t *testing.T) (*harness, *slacktest.Server) {
	return newSlackHarnessOver(t, false, "low", "")
}

// newSlackHarnessOver is newSlackHarness, with Slack over Socket Mode (SLACK_APP_TOKEN
// and no signing secret) when socket is set, restart_workers of the given risk, and
// extra appended to the tenant's mapping.
func newSlackHarnessOver(t *testing.T, socket bool, risk, extra string) (*harness, *slacktest.Server) {
	t.Helper()
	sl := slacktest.New(t)
	sl.AddUser(slackVimbai, "vimbai")
	vars := env{"SLACK_BOT_TOKEN": slacktest.BotToken, "SLACK_SIGNING_SECRET": slacktest.SigningSecret, "SLACK_API_URL": sl.URL,
		"PUBLIC_URL": "https://bot.example.com"}
	if socket {
		delete(vars, "SLACK_SIGNING_SECRET")
		vars["SLACK_APP_TOKEN"] = slacktest.AppToken
	}
	h := newSecondChatHarness(t, secondChat{name: "slack", chat: "[" + slackChannel + "]", tendai: slackTendai, rudo: slackRudo, vimbai: slackVimbai,
		risk: risk, vars: vars, extra: extra})
	return h, sl
}

// slackSends delivers d to the replica's Slack route, signed as Slack signs, and wants 200.
func slackSends(t *testing.T, sl *slacktest.Server, r *replica, d slacktest.Delivery) {
	t.Helper()
	code, body, err := sl.Send(r.base, d, slacktest.Sign{})
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s: HTTP %d %q %v", d.Path, code, body, err)
	}
}

// waitSlack waits for a message of the Slack channel that ok accepts.
func waitSlack(t *testing.T, sl *slacktest.Server, what string, ok func(slacktest.Message) bool) slacktest.Message {
	t.Helper()
	var found slacktest.Message
	eventually(t, "a Slack message "+what, func() bool {
		for _, m := range sl.Messages(slackChannel) {
			if ok(m) {
				found = m
				return true
			}
		}
		return false
	}, func() string { return fmt.Sprintf("the channel shows %q", sl.Texts(slackChannel)) })
	return found
}

// waitEphemeral waits for the n-th ephemeral answer shown to user in the Slack channel.
func waitEphemeral(t *testing.T, sl *slacktest.Server, user string, n int) slacktest.Ephemeral {
	t.Helper()
	eventually(t, fmt.Sprintf("answer %d to %s", n, user), func() bool { return len(sl.Ephemerals(slackChannel, user)) >= n },
		func() string { return fmt.Sprintf("answers %+v", sl.Ephemerals(slackChannel, user)) })
	return sl.Ephemerals(slackChannel, user)[n-1]
}

// slackCard waits for the incident card in the Slack channel (a root message with
// buttons) and for the engine to have recorded it, so a reply in its thread is routed.
func slackCard(t *testing.T, h *harness, sl *slacktest.Server) (slacktest.Message, string) {
	t.Helper()
	card := waitSlack(t, sl, "with the incident card", func(m slacktest.Message) bool {
		return m.ThreadTS == "" && len(m.Buttons()) > 0 && strings.Contains(m.Visible(), "INC-")
	})
	inc := incidentRe.FindString(card.Visible())
	waitPresented(t, h.replicas[len(h.replicas)-1], inc)
	return card, inc
}

// slackIncident starts a bot whose tenant uses Telegram and Slack over HTTP
// (restart_workers of the given risk), fires the alert and returns the Slack card and
// its incident.
func slackIncident(t *testing.T, risk, extra string) (*harness, *slacktest.Server, *replica, slacktest.Message, string) {
	t.Helper()
	h, sl := newSlackHarnessOver(t, false, risk, extra)
	r := h.start(false)
	r.alert(t, "firing")
	card, inc := slackCard(t, h, sl)
	return h, sl, r, card, inc
}

func buttonLabels(m slacktest.Message) []string {
	var out []string
	for _, b := range m.Buttons() {
		if b.Text != nil {
			out = append(out, b.Text.Text)
		}
	}
	return out
}

// TestEndToEndSlack: on the real wiring, a spike puts the card into the Slack channel; a
// question in its thread is answered in the thread, /status is answered, and a mention
// in the thread asking for the replay is answered there; forged and stale requests are refused
// and change nothing; a viewer's press is refused; an approver's press runs the recovery
// once; the card is updated in place (chat.update) without its buttons, the other
// channel (Telegram) is told who decided where and its buttons are gone too; the thread
// says the recovery ran and, once healthy, that the incident is resolved, and the card's
// headline says RESOLVED; the tenant's
// signed outbound webhook receives each step.
func TestEndToEndSlack(t *testing.T) {
	t.Parallel()
	recv := newOutboundReceiver(t)
	outbound := fmt.Sprintf(`    outbound_webhooks:
      - {name: router, url: %q, secret: %q, allow_private_network: true}
`, recv.srv.URL+"/events", "whsec_"+base64.StdEncoding.EncodeToString([]byte(hookKey)))
	h, sl, r, card, inc := slackIncident(t, "low", outbound)
	if got := buttonLabels(card); len(got) == 0 || got[0] != "Approve restart_workers" {
		t.Fatalf("Slack card buttons %q", got)
	}
	if !strings.Contains(card.Visible(), "checkout") {
		t.Fatalf("the Slack card does not say what it is about: %q", card.Visible())
	}
	tgCard := h.card(t)

	// A question in the card's thread is answered in the thread.
	_, ds := sl.Say(slackChannel, slackVimbai, "what changed?", card.TS)
	for _, d := range ds {
		slackSends(t, sl, r, d)
	}
	waitSlack(t, sl, "answering the question in the thread", func(m slacktest.Message) bool {
		return m.ThreadTS == card.TS && m.User == slacktest.BotUser && strings.Contains(m.Visible(), "No commits were recorded")
	})

	// Commands: a slash command in the channel, a mention in the thread.
	slackSends(t, sl, r, sl.Command(slackChannel, slackTendai, "/status", ""))
	waitSlack(t, sl, "answering /status", func(m slacktest.Message) bool {
		return m.User == slacktest.BotUser && strings.Contains(m.Visible(), "open incident "+inc)
	})
	_, ds = sl.Say(slackChannel, slackTendai, "<@"+slacktest.BotUser+"> replay "+inc, card.TS)
	for _, d := range ds {
		slackSends(t, sl, r, d)
	}
	waitSlack(t, sl, "with the replay in the thread", func(m slacktest.Message) bool {
		return m.ThreadTS == card.TS && strings.Contains(m.Visible(), "Timeline of "+inc) && strings.Contains(m.Visible(), "question")
	})

	// An approver's press that Slack did not sign, or signed more than five minutes ago,
	// is refused before it reaches the bot.
	press, err := sl.Press(slackChannel, card.TS, slackTendai, "Approve restart_workers")
	if err != nil {
		t.Fatal(err)
	}
	for name, sign := range map[string]slacktest.Sign{
		"forged": {Secret: "not-the-signing-secret-0000000000"},
		"stale":  {At: time.Now().Add(-6 * time.Minute)},
	} {
		if code, _, err := sl.Send(r.base, press, sign); err != nil || code != http.StatusUnauthorized {
			t.Fatalf("a %s press: HTTP %d %v, want 401", name, code, err)
		}
	}
	if st := h.stage(t, inc); st != ledger.Validated {
		t.Fatalf("after refused presses: %s", st)
	}

	// A viewer's press is refused, to them alone, and leaves the approval pending.
	viewer, err := sl.Press(slackChannel, card.TS, slackVimbai, "Approve restart_workers")
	if err != nil {
		t.Fatal(err)
	}
	slackSends(t, sl, r, viewer)
	if e := waitEphemeral(t, sl, slackVimbai, 1); e.Text != "You are not an approver for acme." {
		t.Fatalf("the viewer was told %q", e.Text)
	}
	if st := h.stage(t, inc); st != ledger.Validated {
		t.Fatalf("after a viewer's press: %s", st)
	}

	// The approver's press, signed: the recovery runs, once.
	slackSends(t, sl, r, press)
	if e := waitEphemeral(t, sl, slackTendai, 1); !strings.HasPrefix(e.Text, "Approved.") {
		t.Fatalf("the approver was told %q", e.Text)
	}
	executedOnce(t, h, inc)
	waitSlack(t, sl, "saying the recovery ran", func(m slacktest.Message) bool {
		return m.ThreadTS == card.TS && strings.Contains(m.Visible(), "Recovery restart_workers executed")
	})
	updated, _ := sl.Message(slackChannel, card.TS)
	if updated.Edits == 0 || len(updated.Buttons()) != 0 || !strings.Contains(updated.Visible(), "Approved by tendai") {
		t.Fatalf("the Slack card was not updated in place: %d edits, %q", updated.Edits, updated.Visible())
	}
	// Telegram is told who decided, where; its card's buttons are gone.
	if _, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, hasText("Approved by tendai in Slack")); err != nil {
		t.Fatalf("Telegram not told of the Slack decision: %v", err)
	}
	if m, _ := h.tg.Message(groupID, tgCard.MessageID); len(m.Buttons()) != 0 {
		t.Fatalf("the Telegram card still has buttons: %+v", m.Buttons())
	}

	// The same press again (another click): refused, nothing more runs.
	again, err := sl.Press(slackChannel, card.TS, slackRudo, "Approve restart_workers")
	if err == nil {
		t.Fatalf("the updated card still shows the button: %+v", again)
	}
	slackSends(t, sl, r, sl.PressValue(slackChannel, card.TS, slackRudo, card.Buttons()[0].Value))
	if e := waitEphemeral(t, sl, slackRudo, 1); !strings.Contains(e.Text, "Already approved by tendai") {
		t.Fatalf("a second press was answered %q", e.Text)
	}

	r.alert(t, "resolved")
	waitSlack(t, sl, "saying it is resolved", func(m slacktest.Message) bool {
		return m.ThreadTS == card.TS && strings.Contains(m.Visible(), "Resolved")
	})
	resolvedAfterOneRun(t, h, inc)
	// The card itself says so (chat.update again): its headline carries the stage, and
	// who approved stays.
	settled := waitSlack(t, sl, "updating the card to RESOLVED", func(m slacktest.Message) bool {
		return m.TS == card.TS && strings.Contains(m.Visible(), "checkout healthy again — "+inc+" · RESOLVED")
	})
	if v := settled.Visible(); settled.Edits < 2 || len(settled.Buttons()) != 0 || !strings.Contains(v, "Approved by tendai") || strings.Contains(v, "🚨") {
		t.Fatalf("the resolved Slack card: %d edits, %q", settled.Edits, v)
	}

	// The tenant's outbound webhook got the story, each event signed, in the ledger's
	// order; the Slack approval among them, with who approved.
	want := []string{"incident.opened", "incident.proposed", "incident.stage_changed", "incident.approved", "incident.executed", "incident.resolved"}
	var got []string
	eventually(t, "the outbound webhook's events", func() bool {
		var bad int
		got, bad = recv.got()
		if bad > 0 {
			t.Fatalf("%d deliveries whose signature did not verify", bad)
		}
		return strings.Join(got, " ") == strings.Join(want, " ")
	}, func() string { return fmt.Sprintf("got %q, want %q", got, want) })

	// Readiness and metrics cover Slack.
	readyAndCounted(t, r, "slack",
		`alertengine_slack_requests_refused_total{reason="signature"} 1`,
		`alertengine_slack_requests_refused_total{reason="stale"} 1`,
		`alertengine_slack_events_total{kind="press",outcome="handled"} 3`,
		`alertengine_slack_events_total{kind="message",outcome="handled"} 2`,
		`alertengine_slack_events_total{kind="command",outcome="handled"} 1`)
}

// TestTelegramDecisionVoidsSlack: a decision taken in Telegram is announced on the Slack
// card, which loses its buttons, and a Slack press of the old button is
// refused; the recovery runs once.
func TestTelegramDecisionVoidsSlack(t *testing.T) {
	t.Parallel()
	h, sl, r, card, inc := slackIncident(t, "low", "")
	press, err := sl.Press(slackChannel, card.TS, slackRudo, "Approve restart_workers")
	if err != nil {
		t.Fatal(err)
	}
	tgCard := h.card(t)
	q := h.tg.PressButton(groupID, tgCard.MessageID, userTendai, tgCard.Buttons()[0][0].CallbackData)
	if a := waitAnswer(t, h.tg, q); !strings.HasPrefix(a.Text, "Approved.") {
		t.Fatalf("Telegram press answered %q", a.Text)
	}
	executedOnce(t, h, inc)
	// The Slack card says who decided, where, and has no buttons left.
	waitSlack(t, sl, "announcing the Telegram decision on the card", func(m slacktest.Message) bool {
		return m.TS == card.TS && m.Edits > 0 && len(m.Buttons()) == 0 && strings.Contains(m.Visible(), "Approved by tendai in Telegram")
	})
	slackSends(t, sl, r, press)
	if e := waitEphemeral(t, sl, slackRudo, 1); !strings.Contains(e.Text, "Already approved by tendai") {
		t.Fatalf("the voided Slack button was answered %q", e.Text)
	}
	if n, _ := h.hook.count(); n != 1 {
		t.Fatalf("the recovery webhook was called %d times", n)
	}
}

// TestSlackSocketModeEndToEnd: with SLACK_APP_TOKEN and no signing secret, the bot takes
// Slack's events over Socket Mode — no HTTP route for Slack is mounted — and an
// approver's press, acknowledged on the socket, runs the recovery once.
func TestSlackSocketModeEndToEnd(t *testing.T) {
	t.Parallel()
	h, sl := newSlackHarnessOver(t, true, "low", "")
	r := h.start(false)
	if err := sl.WaitSocket(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	r.alert(t, "firing")
	card, inc := slackCard(t, h, sl)
	press, err := sl.Press(slackChannel, card.TS, slackTendai, "Approve restart_workers")
	if err != nil {
		t.Fatal(err)
	}
	if code, _, err := sl.Send(r.base, press, slacktest.Sign{}); err != nil || code == http.StatusOK {
		t.Fatalf("an HTTP press without a signing secret: HTTP %d %v", code, err)
	}
	id, err := sl.Envelope(press, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := sl.WaitAck(id, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if e := waitEphemeral(t, sl, slackTendai, 1); !strings.HasPrefix(e.Text, "Approved.") {
		t.Fatalf("the approver was told %q", e.Text)
	}
	executedOnce(t, h, inc)
	// Slack redelivers the envelope (retry_attempt 1): acknowledged, nothing more runs.
	if id, err = sl.Envelope(press, 1); err != nil {
		t.Fatal(err)
	}
	if err := sl.WaitAck(id, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	// (Acknowledged first, handled after: wait for the handling.)
	var metrics string
	eventually(t, "the redelivery counted as a duplicate", func() bool {
		_, metrics = get(t, r.base+"/metrics")
		return strings.Contains(metrics, `alertengine_slack_events_total{kind="press",outcome="duplicate"} 1`)
	}, func() string { return "metrics: " + metrics })
	if n, _ := h.hook.count(); n != 1 {
		t.Fatalf("the recovery webhook was called %d times", n)
	}
}

// TestSlackRevokedTokenDoesNotBlock: with the Slack token revoked, /readyz says Slack is
// degraded and the bot still detects, presents in Telegram and runs the approved
// recovery.
func TestSlackRevokedTokenDoesNotBlock(t *testing.T) {
	t.Parallel()
	h, sl := newSlackHarness(t)
	r := h.start(false)
	sl.RevokeToken()
	if code, body := get(t, r.base+"/readyz"); code != http.StatusOK || !strings.Contains(body, `"degraded":{"slack":"unavailable"}`) {
		t.Fatalf("/readyz with the Slack token revoked: %d %s", code, body)
	}
	r.alert(t, "firing")
	// (h.card would wait for the card to be recorded in every chat: Slack's never is.)
	card, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, func(m telegramtest.Message) bool {
		return strings.Contains(m.Text+m.Caption, "🚨") && len(m.Buttons()) > 0
	})
	if err != nil {
		t.Fatalf("no Telegram card with the Slack token revoked: %v", err)
	}
	inc := incidentCode(t, card)
	q := h.tg.PressButton(groupID, card.MessageID, userTendai, card.Buttons()[0][0].CallbackData)
	if a := waitAnswer(t, h.tg, q); !strings.HasPrefix(a.Text, "Approved.") {
		t.Fatalf("Telegram press answered %q", a.Text)
	}
	executedOnce(t, h, inc)
	if ms := sl.Messages(slackChannel); len(ms) != 0 {
		t.Fatalf("Slack shows %q with the token revoked", sl.Texts(slackChannel))
	}
}

// TestSlackHighRiskTwoApprovers: a high-risk action's button opens Slack's confirm dialog
// before the press is sent, and needs two different approvers: the first press is
// recorded as 1 of 2 (the same person pressing again adds nothing), the second, by
// another approver, runs the recovery once.
func TestSlackHighRiskTwoApprovers(t *testing.T) {
	t.Parallel()
	h, sl, r, card, inc := slackIncident(t, "high", "")
	btn := card.Buttons()[0]
	if btn.Confirm == nil || btn.Confirm.Text == nil || !strings.Contains(btn.Confirm.Text.Text, "restart_workers is a high-risk action") {
		t.Fatalf("the high-risk button asks no confirmation: %+v", btn)
	}
	first, err := sl.Press(slackChannel, card.TS, slackTendai, btn.Text.Text)
	if err != nil {
		t.Fatal(err)
	}
	slackSends(t, sl, r, first)
	if e := waitEphemeral(t, sl, slackTendai, 1); !strings.Contains(e.Text, "A second approver is needed") {
		t.Fatalf("the first approver was told %q", e.Text)
	}
	again, _ := sl.Press(slackChannel, card.TS, slackTendai, btn.Text.Text)
	slackSends(t, sl, r, again)
	waitEphemeral(t, sl, slackTendai, 2)
	if st := h.stage(t, inc); st != ledger.Validated {
		t.Fatalf("after one approver: %s", st)
	}
	second, err := sl.Press(slackChannel, card.TS, slackRudo, btn.Text.Text)
	if err != nil {
		t.Fatal(err)
	}
	slackSends(t, sl, r, second)
	executedOnce(t, h, inc)
	waitSlack(t, sl, "naming both approvers on the card", func(m slacktest.Message) bool {
		return m.TS == card.TS && len(m.Buttons()) == 0 && strings.Contains(m.Visible(), "Approved by rudo and tendai in Slack")
	})
	if n, _ := h.hook.count(); n != 1 {
		t.Fatalf("the recovery webhook was called %d times", n)
	}
}
