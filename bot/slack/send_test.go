package slack

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/slack/slacktest"
	"github.com/alertengine/alertengine/conversation"
)

const ref = "ap:AAAAAAAAAAABBBBBBBBBBB"

func card() conversation.Message {
	return conversation.Message{
		Blocks: []conversation.Block{
			{Style: conversation.Title, Text: "🚨 checkout degraded — INC-7F3"},
			{Style: conversation.Plain, Text: "Health 23/100"},
			{Style: conversation.Muted, Text: "Nothing runs without your approval."},
		},
		Buttons: [][]conversation.Button{{
			{Label: "Approve restart_workers", Data: ref, Confirm: "restart_workers is a high-risk action."},
			{Label: "Reject", Data: "/reject INC-7F3"},
			{Label: "Details", Data: "/details INC-7F3"},
		}},
		Image: &conversation.Image{Alt: "checkout p95, last hour"},
	}
}

func TestCardIsAThreadRootWithButtonsAndTheChartInItsThread(t *testing.T) {
	a, fake, _ := newAdapter(t)
	m := card()
	m.Image.PNG = tinyPNG(t)
	th, cardRef, err := a.OpenThread(t.Context(), chat(general), "INC-7F3", m)
	if err != nil {
		t.Fatal(err)
	}
	if th.Root == "" || cardRef.ID != th.Root {
		t.Fatalf("thread %+v, card %+v: the card should be the thread's root", th, cardRef)
	}
	root, ok := fake.Message(general, th.Root)
	if !ok || root.ThreadTS != "" {
		t.Fatalf("root message %+v not in the channel", root)
	}
	if !strings.Contains(root.Visible(), "*🚨 checkout degraded — INC-7F3*") || !strings.Contains(root.Visible(), "_Nothing runs without your approval._") {
		t.Errorf("card text %q lost its styles", root.Visible())
	}
	if root.Text == "" || strings.Contains(root.Text, "*") {
		t.Errorf("notification text %q: want the title, without markup", root.Text)
	}
	bs := root.Buttons()
	if len(bs) != 3 {
		t.Fatalf("buttons %+v", bs)
	}
	if bs[0].Value != ref || bs[0].Confirm == nil || bs[0].Confirm.Text == nil || bs[0].Confirm.Text.Text != "restart_workers is a high-risk action." || bs[0].Style != "primary" {
		t.Errorf("approval button %+v: want the reference as value, the engine's confirm question, primary", bs[0])
	}
	if bs[1].Value != "/reject INC-7F3" || bs[1].Confirm != nil || bs[2].Value != "/details INC-7F3" {
		t.Errorf("command buttons %+v %+v", bs[1], bs[2])
	}
	replies := fake.Replies(general, th.Root)
	if len(replies) != 1 || replies[0].File == nil || !bytes.Equal(replies[0].File.Data, m.Image.PNG) || replies[0].File.Alt != "checkout p95, last hour" {
		t.Fatalf("the chart is not in the thread: %+v", replies)
	}

	r, err := a.Post(t.Context(), th, text("answer-in-thread"))
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := fake.Message(general, r.ID); got.ThreadTS != th.Root {
		t.Errorf("reply %+v not in the thread of %s", got, th.Root)
	}

	done := card()
	done.Image = nil
	done.Buttons = nil
	done.Blocks = append(done.Blocks, conversation.Block{Style: conversation.Bold, Text: "✅ RESOLVED"})
	if err := a.Edit(t.Context(), cardRef, done); err != nil {
		t.Fatal(err)
	}
	root, _ = fake.Message(general, th.Root)
	if root.Edits != 1 || len(root.Buttons()) != 0 || !strings.Contains(root.Visible(), "✅ RESOLVED") {
		t.Fatalf("after the edit the card is %q with buttons %+v (%d edits)", root.Visible(), root.Buttons(), root.Edits)
	}
}

func TestHostileTextIsShownNotParsed(t *testing.T) {
	a, fake, _ := newAdapter(t)
	hostile := "<!everyone> <@UBOB000001> <https://evil.example|click> & *done*"
	ref, err := a.Post(t.Context(), conversation.Thread{Chat: chat(general)}, conversation.Message{Blocks: []conversation.Block{
		{Style: conversation.Plain, Text: hostile},
		{Style: conversation.Bold, Text: "a *starred* word"},
		{Style: conversation.Code, Text: "rm `x`"},
		{Style: conversation.Plain, Text: "rtl \u202Eevil\u202C end"},
	}})
	if err != nil {
		t.Fatal(err)
	}
	m, _ := fake.Message(general, ref.ID)
	sent := m.Blocks[0].Text.Text
	if strings.ContainsAny(sent, "<>") || !strings.Contains(sent, "&lt;!everyone&gt;") || !strings.Contains(sent, "&amp; *done*") {
		t.Errorf("sent mrkdwn %q: & < > must be escaped", sent)
	}
	if !strings.Contains(m.Visible(), hostile) {
		t.Errorf("people see %q, want %q", m.Visible(), hostile)
	}
	for _, want := range []string{"\na *starred* word\n", "\nrm `x`\n"} {
		if !strings.Contains(sent, want) {
			t.Errorf("a line holding its style's marker should be sent plain: %q lacks %q", sent, want)
		}
	}
	if strings.Contains(sent, "\u202E") {
		t.Error("a bidi override reached Slack")
	}
}

func TestLongMessagesAreClippedAtSlackLimitsWithoutBreakingRunes(t *testing.T) {
	a, fake, _ := newAdapter(t)
	long := strings.Repeat("漢&", 2000) // 4,000 runes, 10,000 characters escaped
	var blocks []conversation.Block
	blocks = append(blocks, conversation.Block{Style: conversation.Title, Text: "head-marker"}, conversation.Block{Style: conversation.Bold, Text: long})
	for i := range 200 {
		blocks = append(blocks, conversation.Block{Text: strings.Repeat("x", 2990) + "-" + string(rune('a'+i%26))})
	}
	label := strings.Repeat("Ü", 200)
	th, last, err := a.OpenThread(t.Context(), chat(general), "", conversation.Message{Blocks: blocks,
		Buttons: [][]conversation.Button{{{Label: label, Data: "/details INC-1"}}}})
	if err != nil {
		t.Fatal(err)
	}
	msgs := fake.Messages(general)
	if len(msgs) < 5 {
		t.Fatalf("%d messages: 200 sections of ~3,000 characters need at least 5 messages of 50 blocks", len(msgs))
	}
	for i, m := range msgs {
		if len(m.Blocks) > slacktest.MaxBlocks {
			t.Fatalf("message %d has %d blocks", i, len(m.Blocks))
		}
		if i > 0 && m.ThreadTS != th.Root {
			t.Errorf("part %d is not in the thread of the first", i)
		}
		for _, b := range m.Blocks {
			if b.Text != nil && (!utf8.ValidString(b.Text.Text) || utf8.RuneCountInString(b.Text.Text) > 3000) {
				t.Fatalf("section of %d characters (valid UTF-8: %v)", utf8.RuneCountInString(b.Text.Text), utf8.ValidString(b.Text.Text))
			}
		}
	}
	first := msgs[0].Blocks[0].Text.Text
	if !strings.HasPrefix(first, "*head-marker*") {
		t.Errorf("first section starts %q", first[:40])
	}
	clipped := msgs[0].Blocks[1].Text.Text
	if !strings.HasSuffix(clipped, "…*") || strings.Contains(clipped[len(clipped)-12:], "&am…") {
		t.Errorf("the clipped line ends %q: want a whole entity, then …", clipped[len(clipped)-12:])
	}
	lastMsg, _ := fake.Message(general, last.ID)
	bs := lastMsg.Buttons()
	if len(bs) != 1 || utf8.RuneCountInString(bs[0].Text.Text) != 75 || !strings.HasSuffix(bs[0].Text.Text, "…") {
		t.Fatalf("the buttons should be on the last part, the label cut to 75 characters: %+v", bs)
	}

	// An edit is one message: what does not fit is dropped, and it says so.
	if err := a.Edit(t.Context(), last, conversation.Message{Blocks: blocks}); err != nil {
		t.Fatal(err)
	}
	edited, _ := fake.Message(general, last.ID)
	if n := len(edited.Blocks); n != slacktest.MaxBlocks || !strings.Contains(edited.Visible(), "shortened") {
		t.Errorf("edited message has %d blocks and says %q at the end", n, edited.Visible()[len(edited.Visible())-60:])
	}
}

func TestButtonSlackWouldRefuseSendsNothing(t *testing.T) {
	a, fake, _ := newAdapter(t)
	for _, b := range []conversation.Button{
		{Label: "too long", Data: strings.Repeat("x", MaxButtonData+1)},
		{Label: "empty", Data: ""},
		{Label: " ", Data: "/details INC-1"},
	} {
		m := text("never-sent")
		m.Buttons = [][]conversation.Button{{b}}
		_, err := a.Post(t.Context(), conversation.Thread{Chat: chat(general)}, m)
		if !errors.Is(err, ErrButtonData) && !errors.Is(err, ErrButtonLabel) {
			t.Errorf("button %q: err %v", b.Label, err)
		}
	}
	m := text("fits")
	m.Buttons = [][]conversation.Button{{{Label: "max", Data: strings.Repeat("y", MaxButtonData)}}}
	if _, err := a.Post(t.Context(), conversation.Thread{Chat: chat(general)}, m); err != nil {
		t.Fatalf("a 2,000-byte value is allowed: %v", err)
	}
	if n := len(fake.Messages(general)); n != 1 {
		t.Fatalf("%d messages sent, want only the one that fits", n)
	}
}

func TestRateLimitIsWaitedOutPerMethod(t *testing.T) {
	a, fake, sl := newAdapter(t)
	fake.RateLimit("chat.postMessage", 2, 7)
	if _, err := a.Post(t.Context(), conversation.Thread{Chat: chat(general)}, text("after-the-limit")); err != nil {
		t.Fatal(err)
	}
	if got := fake.Texts(general); len(got) != 1 || got[0] != "after-the-limit" {
		t.Fatalf("delivered %q, want the message once", got)
	}
	if took := sl.all(); len(took) != 2 || took[0] != 7*time.Second {
		t.Fatalf("waited %v, want Retry-After (7s) twice", took)
	}
	if n := testutil.ToFloat64(a.m.apiErrors.WithLabelValues("chat.postMessage", "ratelimited")); n != 2 {
		t.Errorf("rate-limited calls counted %v, want 2", n)
	}

	fake.RateLimit("chat.postMessage", maxRetries+1, 1)
	_, err := a.Post(t.Context(), conversation.Thread{Chat: chat(general)}, text("never"))
	if err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Fatalf("err %v, want a rate limit failure after %d retries", err, maxRetries)
	}
	if n := len(fake.Texts(general)); n != 1 {
		t.Fatalf("%d messages", n)
	}
}

func TestCheckRefusesARevokedTokenAndReportsChannelsItCannotUse(t *testing.T) {
	var logs bytes.Buffer
	a, fake, _ := newAdapter(t, func(o *Options) { o.Logger = slog.New(slog.NewTextHandler(&logs, nil)) })
	if err := a.Check(t.Context()); err != nil {
		t.Fatalf("Check: %v", err)
	}
	fake.AddChannel("CPRIVATE01", false)
	for range 3 {
		if _, err := a.Post(t.Context(), conversation.Thread{Chat: chat("CPRIVATE01")}, text("x")); err == nil {
			t.Fatal("posting where the app is not a member succeeded")
		}
	}
	if _, err := a.Post(t.Context(), conversation.Thread{Chat: chat("CMISSING01")}, text("x")); err == nil {
		t.Fatal("posting to a missing channel succeeded")
	}
	if n := strings.Count(logs.String(), "cannot post to a channel"); n != 2 {
		t.Errorf("logged %d times, want once per channel:\n%s", n, logs.String())
	}
	err := a.Check(t.Context())
	if err == nil || errors.Is(err, channel.ErrRefused) || !strings.Contains(err.Error(), "CPRIVATE01: not_in_channel") || !strings.Contains(err.Error(), "CMISSING01: channel_not_found") {
		t.Fatalf("Check: %v", err)
	}
	fake.AddChannel("CPRIVATE01", true)
	fake.AddChannel("CMISSING01", true)
	for _, c := range []string{"CPRIVATE01", "CMISSING01"} {
		if _, err := a.Post(t.Context(), conversation.Thread{Chat: chat(c)}, text("invited")); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Check(t.Context()); err != nil {
		t.Fatalf("Check after the invitation: %v", err)
	}

	fake.RevokeToken()
	if err := a.Check(t.Context()); !errors.Is(err, channel.ErrRefused) {
		t.Fatalf("Check with a revoked token: %v, want ErrRefused", err)
	}
	if strings.Contains(logs.String(), slacktest.BotToken) {
		t.Fatal("the token reached the logs")
	}

	b, _, _ := newAdapter(t, func(o *Options) { o.Token = "xoxb-wrong-token" })
	if err := b.Check(t.Context()); !errors.Is(err, channel.ErrRefused) {
		t.Fatalf("Check with a wrong token: %v, want ErrRefused", err)
	}
}

func TestAReplyWhoseRootIsGoneStillArrives(t *testing.T) {
	a, fake, _ := newAdapter(t)
	r, err := a.Post(t.Context(), conversation.Thread{Chat: chat(general), Root: "1600000000.000100"}, text("orphan"))
	if err != nil {
		t.Fatal(err)
	}
	if m, _ := fake.Message(general, r.ID); m.Visible() != "orphan" || m.ThreadTS != "" {
		t.Fatalf("message %+v", m)
	}
}

func TestAnImageAloneOrNothingIsRefused(t *testing.T) {
	a, fake, _ := newAdapter(t)
	for _, m := range []conversation.Message{
		{Image: &conversation.Image{PNG: tinyPNG(t)}},
		{Blocks: []conversation.Block{{Text: " \n\t"}}},
	} {
		if _, err := a.Post(t.Context(), conversation.Thread{Chat: chat(general)}, m); !errors.Is(err, ErrEmptyMessage) {
			t.Errorf("%+v: err %v", m, err)
		}
	}
	if n := len(fake.Messages(general)) + len(fake.Uploaded()); n != 0 {
		t.Fatalf("%d things reached Slack", n)
	}
}
