package telegram

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	tgbot "github.com/go-telegram/bot"
	"github.com/google/go-cmp/cmp"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/conversation"
)

func approvedCard() conversation.Message {
	m := incidentCard()
	m.Blocks = append(m.Blocks, conversation.Block{Style: conversation.Bold, Text: "Approved by Ana Moyo at 09:41"})
	m.Buttons = nil
	return m
}

func followUp() conversation.Message {
	return conversation.Message{Blocks: []conversation.Block{{Text: "p95 is back to 180 ms."}}}
}

func TestOpenThreadPostEdit(t *testing.T) {
	tests := []struct {
		name  string
		chat  int64
		forum bool
	}{
		{"forum supergroup: a topic per incident", forumChat, true},
		{"plain group: a root message and its replies", groupChat, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			if tt.forum {
				e.addForum(tt.chat)
			}
			a, _ := e.adapter()
			c := deadline(t)

			th, ref, err := a.OpenThread(c, chat(tt.chat), "INC-7F3 · checkout", incidentCard())
			if err != nil {
				t.Fatalf("OpenThread: %v", err)
			}
			card, ok := e.fake.Message(tt.chat, atoi(t, ref.ID))
			if !ok {
				t.Fatalf("no message %s in chat %d", ref.ID, tt.chat)
			}
			if got := card.Buttons(); len(got) != 1 || len(got[0]) != 3 || got[0][0].CallbackData != "ap:Q2hlY2tvdXRJbmNpZGVudA" {
				t.Errorf("card buttons = %+v, want Approve, Reject, Details", got)
			}
			if !strings.HasPrefix(card.Text, "🚨 checkout degraded — INC-7F3\n") {
				t.Errorf("card text starts %.40q", card.Text)
			}
			topics := e.fake.Topics(tt.chat)
			if tt.forum {
				if len(topics) != 1 || topics[0].Name != "INC-7F3 · checkout" {
					t.Fatalf("topics = %+v, want one named after the incident", topics)
				}
				if th.Topic != itoa(topics[0].MessageThreadID) || th.Root != "" {
					t.Errorf("thread = %+v, want topic %d and no root", th, topics[0].MessageThreadID)
				}
				if card.MessageThreadID != topics[0].MessageThreadID {
					t.Errorf("card is in topic %d, want %d", card.MessageThreadID, topics[0].MessageThreadID)
				}
			} else {
				if len(topics) != 0 {
					t.Errorf("topics created in a plain group: %+v", topics)
				}
				if th.Topic != "" || th.Root != ref.ID {
					t.Errorf("thread = %+v, want root %s", th, ref.ID)
				}
			}
			if want := chat(tt.chat); th.Chat != want || ref.Chat != want {
				t.Errorf("thread chat %+v, ref chat %+v, want %+v", th.Chat, ref.Chat, want)
			}

			// A follow-up lands in the thread.
			fref, err := a.Post(c, th, followUp())
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			msg, _ := e.fake.Message(tt.chat, atoi(t, fref.ID))
			if msg.Text != "p95 is back to 180 ms." {
				t.Errorf("follow-up text %q", msg.Text)
			}
			if tt.forum && msg.MessageThreadID != card.MessageThreadID {
				t.Errorf("follow-up in topic %d, want %d", msg.MessageThreadID, card.MessageThreadID)
			}
			if !tt.forum && (msg.ReplyToMessage == nil || msg.ReplyToMessage.MessageID != card.MessageID) {
				t.Errorf("follow-up replies to %+v, want the root message %d", msg.ReplyToMessage, card.MessageID)
			}

			// Approving edits the card and removes its buttons.
			if err := a.Edit(c, ref, approvedCard()); err != nil {
				t.Fatalf("Edit: %v", err)
			}
			edited, _ := e.fake.Message(tt.chat, card.MessageID)
			if edited.Buttons() != nil {
				t.Errorf("buttons still under the edited card: %+v", edited.Buttons())
			}
			if !strings.HasSuffix(edited.Text, "\nApproved by Ana Moyo at 09:41") {
				t.Errorf("edited text ends %q", edited.Text[max(0, len(edited.Text)-40):])
			}
			// The same edit again (a second replica, a retry) changes nothing and is fine.
			if err := a.Edit(c, ref, approvedCard()); err != nil {
				t.Errorf("repeated Edit: %v", err)
			}
			calls := e.fake.Calls("editMessageText")
			if last := calls[len(calls)-1]; !strings.Contains(last.Description, "message is not modified") {
				t.Errorf("the repeated edit was answered %q; the test meant to get \"message is not modified\"", last.Description)
			}
		})
	}
}

func TestOpenThreadRemembersForums(t *testing.T) {
	e := newEnv(t)
	e.addForum(forumChat)
	a, _ := e.adapter()
	c := deadline(t)
	for _, inc := range []string{"INC-1", "INC-2"} {
		if _, _, err := a.OpenThread(c, chat(forumChat), inc, incidentCard()); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(e.fake.Calls("getChat")); n != 1 {
		t.Errorf("getChat called %d times for two incidents in one chat, want 1", n)
	}
	var names []string
	for _, tp := range e.fake.Topics(forumChat) {
		names = append(names, tp.Name)
	}
	if diff := cmp.Diff([]string{"INC-1", "INC-2"}, names); diff != "" {
		t.Errorf("topics (-want +got):\n%s", diff)
	}
}

func TestOpenThreadAfterTopicsWereSwitchedOff(t *testing.T) {
	// The adapter remembers the chat as a forum, then an admin turns topics off:
	// createForumTopic is refused, and the incident is announced anyway, as a root message.
	e := newEnv(t)
	e.addForum(forumChat)
	a, _ := e.adapter()
	c := deadline(t)
	if _, _, err := a.OpenThread(c, chat(forumChat), "INC-1", incidentCard()); err != nil {
		t.Fatal(err)
	}
	e.fake.AddChat(telegramtest.Chat{ID: forumChat, Type: telegramtest.ChatSupergroup})
	th, ref, err := a.OpenThread(c, chat(forumChat), "INC-2", incidentCard())
	if err != nil {
		t.Fatalf("OpenThread: %v", err)
	}
	if th.Topic != "" || th.Root != ref.ID {
		t.Errorf("thread = %+v, want a root message %s", th, ref.ID)
	}
	if m, _ := e.fake.Message(forumChat, atoi(t, ref.ID)); m.MessageThreadID != 0 || m.Buttons() == nil {
		t.Errorf("card = %+v, want a plain message with its buttons", m)
	}
	calls := e.fake.Calls("createForumTopic")
	if len(calls) != 2 || calls[1].OK() {
		t.Errorf("createForumTopic calls %d, the second should have been refused", len(calls))
	}
}

func TestTopicName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"INC-7F3 · checkout", "INC-7F3 · checkout"},
		{"  a\nb\x00c  ", "a bc"},
		{"", "Incident"},
		{strings.Repeat("🚨", 100), strings.Repeat("🚨", 63) + "…"},
	}
	for _, tt := range tests {
		if got := topicName(tt.in); got != tt.want {
			t.Errorf("topicName(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if n := units(topicName(tt.in)); n > maxTopic {
			t.Errorf("topicName(%q) is %d units", tt.in, n)
		}
	}
}

func TestPostRefusesBeforeSending(t *testing.T) {
	e := newEnv(t)
	e.addForum(forumChat)
	a, _ := e.adapter()
	c := deadline(t)
	bad := incidentCard()
	bad.Buttons[0][0].Data = "ap:" + strings.Repeat("x", 62) // 65 bytes
	if _, err := a.Post(c, conversation.Thread{Chat: chat(groupChat)}, bad); !errors.Is(err, ErrButtonData) {
		t.Errorf("Post = %v, want ErrButtonData", err)
	}
	if _, _, err := a.OpenThread(c, chat(forumChat), "INC-7F3", bad); !errors.Is(err, ErrButtonData) {
		t.Errorf("OpenThread = %v, want ErrButtonData", err)
	}
	if calls := e.fake.Calls(""); len(calls) != 0 {
		t.Errorf("calls made for a message that cannot be sent: %v", methods(calls))
	}

	for _, th := range []conversation.Thread{
		{Chat: conversation.Chat{Channel: conversation.WhatsApp, ID: "-100"}},
		{Chat: conversation.Chat{Channel: conversation.Telegram, ID: "+263771234567"}},
		{Chat: chat(groupChat), Topic: "general"},
		{Chat: chat(groupChat), Root: "-4"},
	} {
		if _, err := a.Post(c, th, followUp()); err == nil {
			t.Errorf("Post to %+v: no error", th)
		}
	}
}

func methods(calls []telegramtest.Call) []string {
	var out []string
	for _, c := range calls {
		out = append(out, c.Method)
	}
	return out
}

func TestPostWithChart(t *testing.T) {
	tests := []struct {
		name string
		msg  conversation.Message
		// want: the methods called, in order; the keyboard is on the last message.
		want []string
	}{
		{"caption fits: one photo with caption and buttons", incidentCard(), []string{"sendPhoto"}},
		{"text too long for a caption: photo, then the text", longTimeline(), []string{"sendPhoto", "sendMessage", "sendMessage", "sendMessage"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			a, _ := e.adapter()
			png := tinyPNG(t)
			msg := tt.msg
			msg.Image = &conversation.Image{PNG: png, Alt: "p95 and 5xx, last 30 minutes"}
			ref, err := a.Post(deadline(t), conversation.Thread{Chat: chat(groupChat)}, msg)
			if err != nil {
				t.Fatalf("Post: %v", err)
			}
			if diff := cmp.Diff(tt.want, methods(e.fake.Calls(""))); diff != "" {
				t.Errorf("calls (-want +got):\n%s", diff)
			}
			sent := e.fake.Sent(groupChat)
			if !bytes.Equal(sent[0].PhotoData, png) {
				t.Error("the photo is not the chart")
			}
			last := sent[len(sent)-1]
			if itoa(last.MessageID) != ref.ID {
				t.Errorf("ref %s, want the last message %d", ref.ID, last.MessageID)
			}
			for _, m := range sent[:len(sent)-1] {
				if m.Buttons() != nil {
					t.Errorf("message %d carries buttons; only the last one should", m.MessageID)
				}
			}
			if last.Buttons() == nil {
				t.Error("the last message has no buttons")
			}
			for _, m := range sent[1:] {
				if m.ReplyToMessage == nil || m.ReplyToMessage.MessageID != sent[0].MessageID {
					t.Errorf("message %d does not hang from the first one", m.MessageID)
				}
			}
			if len(sent) == 1 && !strings.HasPrefix(sent[0].Caption, "🚨 checkout degraded") {
				t.Errorf("caption %.40q", sent[0].Caption)
			}
			if len(sent) > 1 && sent[0].Caption != "p95 and 5xx, last 30 minutes" {
				t.Errorf("caption %q, want the image's alt text", sent[0].Caption)
			}
		})
	}
}

func TestEditPhotoCard(t *testing.T) {
	e := newEnv(t)
	a, _ := e.adapter()
	c := deadline(t)
	card := incidentCard()
	card.Image = &conversation.Image{PNG: tinyPNG(t)}
	ref, err := a.Post(c, conversation.Thread{Chat: chat(groupChat)}, card)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Edit(c, ref, approvedCard()); err != nil {
		t.Fatalf("Edit: %v", err)
	}
	// The adapter knew it sent a photo: one editMessageCaption, no refused editMessageText.
	if n, m := len(e.fake.Calls("editMessageText")), len(e.fake.Calls("editMessageCaption")); n != 0 || m != 1 {
		t.Fatalf("editing a photo card made %d editMessageText and %d editMessageCaption calls, want 0 and 1", n, m)
	}
	m, _ := e.fake.Message(groupChat, atoi(t, ref.ID))
	if m.Buttons() != nil || !strings.HasSuffix(m.Caption, "Approved by Ana Moyo at 09:41") {
		t.Errorf("photo card after edit: caption %q, buttons %+v", m.Caption, m.Buttons())
	}
	if err := a.Edit(c, ref, approvedCard()); err != nil {
		t.Errorf("repeated Edit: %v", err)
	}
	// A photo the adapter no longer remembers (sent before it kept notes, or the note
	// expired) is still edited: editMessageText is refused, then the caption is edited.
	ref2, err := a.Post(c, conversation.Thread{Chat: chat(groupChat)}, card)
	if err != nil {
		t.Fatal(err)
	}
	iter := e.rdb.Scan(c, 0, e.prefix+"tg:photo:*", 100).Iterator()
	for iter.Next(c) {
		e.rdb.Del(c, iter.Val())
	}
	if err := a.Edit(c, ref2, approvedCard()); err != nil {
		t.Fatalf("Edit of an unremembered photo: %v", err)
	}
	if m, _ := e.fake.Message(groupChat, atoi(t, ref2.ID)); !strings.HasSuffix(m.Caption, "Approved by Ana Moyo at 09:41") {
		t.Errorf("unremembered photo card after edit: caption %q", m.Caption)
	}
}

func TestEditMissingMessage(t *testing.T) {
	e := newEnv(t)
	a, _ := e.adapter()
	err := a.Edit(deadline(t), conversation.MessageRef{Chat: chat(groupChat), ID: "999"}, approvedCard())
	if !errors.Is(err, tgbot.ErrorBadRequest) {
		t.Errorf("Edit of a missing message = %v, want a wrapped bad request", err)
	}
}

// TestDeliveredAsRendered sends every golden case through the fake, which parses HTML
// and checks lengths as Telegram does: each is accepted and shows what was meant.
func TestDeliveredAsRendered(t *testing.T) {
	for _, tt := range renderCases() {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			a, _ := e.adapter()
			msg := tt.msg
			if msg.Image != nil {
				msg.Image = &conversation.Image{PNG: tinyPNG(t), Alt: msg.Image.Alt}
			}
			r, err := render(msg)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.Post(deadline(t), conversation.Thread{Chat: chat(groupChat)}, msg); err != nil {
				t.Fatalf("Post: %v", err)
			}
			sent := e.fake.Sent(groupChat)
			want := len(r.parts)
			if r.photo != nil {
				want++
			}
			if len(sent) != want {
				t.Fatalf("%d messages, want %d", len(sent), want)
			}
			var buttons [][]telegramtest.InlineKeyboardButton
			for _, m := range sent {
				if b := m.Buttons(); b != nil {
					buttons = b
				}
			}
			var wantData, gotData []string
			for _, row := range msg.Buttons {
				for _, b := range row {
					wantData = append(wantData, b.Data)
				}
			}
			for _, row := range buttons {
				for _, b := range row {
					gotData = append(gotData, b.CallbackData)
				}
			}
			if diff := cmp.Diff(wantData, gotData); diff != "" {
				t.Errorf("callback data arrived changed (-sent +arrived):\n%s", diff)
			}
		})
	}
}

func TestHostileTextIsShownNotParsed(t *testing.T) {
	e := newEnv(t)
	a, _ := e.adapter()
	if _, err := a.Post(deadline(t), conversation.Thread{Chat: chat(groupChat)}, hostile()); err != nil {
		t.Fatalf("Post: %v", err)
	}
	sent := e.fake.Sent(groupChat)
	var seen []string
	for _, m := range sent {
		seen = append(seen, m.Text)
	}
	all := strings.Join(seen, "\n")
	for _, want := range []string{
		`<b>x</b><script>alert("pwned")</script>`,
		"literal &amp; &lt;tag&gt; &#65;",
		`quotes " ' and a bare & and <unclosed`,
		"مرحبا بالعالم — שלום עולם evil",
		"🔥🚨👩‍💻🇿🇼",
		"fix: <b>x</b>&amp;<b>x</b>",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("a user does not see %q", want)
		}
	}
	if strings.ContainsRune(all, '\u202e') {
		t.Error("a right-to-left override reached the chat")
	}
	// The title is bold as a whole: one entity over exactly the hostile text.
	title := sent[0]
	if len(title.Entities) != 1 || title.Entities[0].Type != "bold" || title.Entities[0].Length != units(`<b>x</b><script>alert("pwned")</script>`) {
		t.Errorf("title entities = %+v", title.Entities)
	}
	for _, m := range sent {
		if n := units(m.Text); n > maxText {
			t.Errorf("message %d has %d characters", m.MessageID, n)
		}
	}
}

func TestFloodControl(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		failures   int
		retryAfter int
		image      bool
		wantErr    bool
		wantSleeps []time.Duration
	}{
		{"429 once: waits retry_after, delivered once", "sendMessage", 1, 2, false, false, []time.Duration{2 * time.Second}},
		{"429 on a photo: the upload is sent again whole", "sendPhoto", 1, 3, true, false, []time.Duration{3 * time.Second}},
		{"429 without end: gives up after three retries", "sendMessage", 10, 1, false, true, []time.Duration{time.Second, time.Second, time.Second}},
		{"retry_after too long to hold a caller: fails at once", "sendMessage", 1, 120, false, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			a, slept := e.adapter()
			msg := incidentCard()
			png := tinyPNG(t)
			if tt.image {
				msg.Image = &conversation.Image{PNG: png}
			}
			e.fake.FailNext(tt.method, tt.failures, tt.retryAfter)
			_, err := a.Post(deadline(t), conversation.Thread{Chat: chat(groupChat)}, msg)
			sent := e.fake.Sent(groupChat)
			if tt.wantErr {
				var flood *tgbot.TooManyRequestsError
				if !errors.As(err, &flood) || flood.RetryAfter != tt.retryAfter {
					t.Errorf("Post = %v, want the 429 (retry_after %d) wrapped", err, tt.retryAfter)
				}
				if len(sent) != 0 {
					t.Errorf("%d messages delivered by a call that failed", len(sent))
				}
			} else {
				if err != nil {
					t.Fatalf("Post: %v", err)
				}
				if len(sent) != 1 {
					t.Fatalf("%d messages delivered, want exactly 1", len(sent))
				}
				if tt.image && !bytes.Equal(sent[0].PhotoData, png) {
					t.Error("the retried upload is not the whole image")
				}
			}
			if diff := cmp.Diff(tt.wantSleeps, slept.All()); diff != "" {
				t.Errorf("waits (-want +got):\n%s", diff)
			}
			refused := slices.DeleteFunc(e.fake.Calls(tt.method), func(c telegramtest.Call) bool { return c.ErrorCode != 429 })
			if want := min(tt.failures, len(tt.wantSleeps)+1); len(refused) != want {
				t.Errorf("%d calls refused with 429, want %d", len(refused), want)
			}
		})
	}
}
