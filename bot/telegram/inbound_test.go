package telegram

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/bot/webhook"
	"github.com/alertengine/alertengine/conversation"
)

// lastMessage is the id of the newest message in chat (the one a user just sent).
func lastMessage(t *testing.T, e *env, chatID int64) int {
	t.Helper()
	h := e.fake.History(chatID)
	if len(h) == 0 {
		t.Fatalf("no messages in chat %d", chatID)
	}
	return h[len(h)-1].MessageID
}

func user(u telegramtest.User, name string) conversation.User {
	return conversation.User{Channel: conversation.Telegram, ID: itoa(int(u.ID)), Name: name}
}

// waitAnswer waits for the bot's answer to callback query id and returns its text.
func waitAnswer(t *testing.T, c context.Context, e *env, id string) string {
	t.Helper()
	call, err := e.fake.WaitFor(c, func(c telegramtest.Call) bool {
		return c.Method == "answerCallbackQuery" && c.Params["callback_query_id"] == id
	})
	if err != nil {
		t.Fatalf("press %s was never answered: %v", id, err)
	}
	if !call.OK() {
		t.Errorf("answerCallbackQuery refused: %s", call.Description)
	}
	return call.Params["text"]
}

func TestLongPolling(t *testing.T) {
	e := newEnv(t)
	e.addForum(forumChat)
	a, _ := e.adapter()
	rec := newRecorder()
	rec.reply = func(in conversation.Inbound) (conversation.Reply, error) {
		switch in.Data {
		case "/details INC-7F3":
			return conversation.Reply{Toast: "internal: redis timeout at 10.0.0.3"}, errors.New("redis: i/o timeout at 10.0.0.3:6379")
		case "":
			return conversation.Reply{}, nil
		}
		return conversation.Reply{Toast: "Approved. restart_workers will run now."}, nil
	}
	c := deadline(t)

	forumThread, forumCard, err := a.OpenThread(c, chat(forumChat), "INC-7F3 · checkout", incidentCard())
	if err != nil {
		t.Fatal(err)
	}
	groupThread, _, err := a.OpenThread(c, chat(groupChat), "INC-9A1 · payments", dissentCard())
	if err != nil {
		t.Fatal(err)
	}
	run(t, a, rec)

	otherBot := telegramtest.User{ID: 99, IsBot: true, FirstName: "Other", Username: "other_bot"}
	self := e.fake.Bot()
	topic := atoi(t, forumThread.Topic)
	root := atoi(t, groupThread.Root)
	card := atoi(t, forumCard.ID)

	steps := []struct {
		name string
		// act does what the user does; it returns the callback query id for a press.
		act  func() string
		want *conversation.Inbound // nil: the adapter must ignore it
		// wantMessageID says Inbound.MessageID is the id of the message just sent.
		wantMessageID bool
		wantToast     string
	}{
		{name: "a message from another bot is ignored",
			act: func() string { e.fake.SendText(groupChat, otherBot, "/status@alertengine_bot checkout"); return "" }},
		{name: "a message from the bot itself is ignored",
			act: func() string { e.fake.SendText(groupChat, self, "hello"); return "" }},
		{name: "a command for another bot is ignored",
			act: func() string { e.fake.SendText(groupChat, ana, "/status@other_bot checkout"); return "" }},
		{name: "a command addressed to this bot loses the @name",
			act:  func() string { e.fake.SendText(groupChat, ana, "/status@alertengine_bot checkout"); return "" },
			want: &conversation.Inbound{Chat: chat(groupChat), User: user(ana, "Ana Moyo"), Text: "/status checkout"}, wantMessageID: true},
		{name: "a message in a private chat is marked direct",
			act:  func() string { e.fake.SendText(int64(ana.ID), ana, "why?"); return "" },
			want: &conversation.Inbound{Chat: chat(int64(ana.ID)), User: user(ana, "Ana Moyo"), Text: "why?", Direct: true}, wantMessageID: true},
		{name: "the bot's name matches in any case",
			act:  func() string { e.fake.SendText(groupChat, tendai, "/incidents@AlertEngine_Bot"); return "" },
			want: &conversation.Inbound{Chat: chat(groupChat), User: user(tendai, "Tendai"), Text: "/incidents"}, wantMessageID: true},
		{name: "free text in a forum topic carries the topic, and is no reply",
			act:  func() string { e.fake.SendText(forumChat, tendai, "why?", telegramtest.InTopic(topic)); return "" },
			want: &conversation.Inbound{Chat: chat(forumChat), User: user(tendai, "Tendai"), Text: "why?", Topic: itoa(topic)}, wantMessageID: true},
		{name: "a reply to the card in a topic carries both",
			act:  func() string { e.fake.SendText(forumChat, ana, "who deployed?", telegramtest.ReplyTo(card)); return "" },
			want: &conversation.Inbound{Chat: chat(forumChat), User: user(ana, "Ana Moyo"), Text: "who deployed?", Topic: itoa(topic), ReplyTo: itoa(card)}, wantMessageID: true},
		{name: "a reply to a root message in a plain group",
			act:  func() string { e.fake.SendText(groupChat, ana, "what changed?", telegramtest.ReplyTo(root)); return "" },
			want: &conversation.Inbound{Chat: chat(groupChat), User: user(ana, "Ana Moyo"), Text: "what changed?", ReplyTo: itoa(root)}, wantMessageID: true},
		{name: "a press carries its data, the message and the topic, and is answered with the toast",
			act:       func() string { return e.fake.PressButton(forumChat, card, ana, "ap:Q2hlY2tvdXRJbmNpZGVudA") },
			want:      &conversation.Inbound{Chat: chat(forumChat), User: user(ana, "Ana Moyo"), Data: "ap:Q2hlY2tvdXRJbmNpZGVudA", Topic: itoa(topic), ReplyTo: itoa(card)},
			wantToast: "Approved. restart_workers will run now."},
		{name: "a press the engine fails on is answered without internals",
			act:       func() string { return e.fake.PressButton(forumChat, card, tendai, "/details INC-7F3") },
			want:      &conversation.Inbound{Chat: chat(forumChat), User: user(tendai, "Tendai"), Data: "/details INC-7F3", Topic: itoa(topic), ReplyTo: itoa(card)},
			wantToast: "Something went wrong; nothing was done."},
		{name: "a press in a plain group",
			act:       func() string { return e.fake.PressButton(groupChat, root, tendai, "/reject INC-9A1") },
			want:      &conversation.Inbound{Chat: chat(groupChat), User: user(tendai, "Tendai"), Data: "/reject INC-9A1", ReplyTo: itoa(root)},
			wantToast: "Approved. restart_workers will run now."},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			query := s.act()
			if s.want == nil {
				return // the next step's event must be the next one the handler sees
			}
			want := *s.want
			if s.wantMessageID {
				want.MessageID = itoa(lastMessage(t, e, chatIDOf(want.Chat)))
			}
			got := rec.next(t, c)
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("inbound (-want +got):\n%s", diff)
			}
			if query != "" {
				if text := waitAnswer(t, c, e, query); text != s.wantToast {
					t.Errorf("toast %q, want %q", text, s.wantToast)
				}
			}
		})
	}

	calls := methods(e.fake.Calls(""))
	del, poll := indexOf(calls, "deleteWebhook"), indexOf(calls, "getUpdates")
	if del < 0 || poll < 0 || del > poll {
		t.Errorf("deleteWebhook (call %d) must come before getUpdates (call %d)", del, poll)
	}
}

func chatIDOf(c conversation.Chat) int64 {
	id, _ := chatID(c)
	return id
}

func indexOf(s []string, v string) int {
	for i, x := range s {
		if x == v {
			return i
		}
	}
	return -1
}

// serveWebhook serves a's webhook; it returns its URL.
func serveWebhook(t *testing.T, a *Adapter, h conversation.Handler) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("POST "+WebhookPath, webhook.Limit(a.WebhookHandler(h), MaxWebhookBody))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv.URL + WebhookPath
}

// messageUpdate is a message update as Telegram posts it.
func messageUpdate(t *testing.T, updateID int64, from telegramtest.User, text string) []byte {
	t.Helper()
	return encode(t, map[string]any{"update_id": updateID, "message": telegramtest.Message{
		MessageID: 500, From: &from, Date: 1764230400, Text: text,
		Chat: telegramtest.Chat{ID: groupChat, Type: telegramtest.ChatGroup, Title: "ops"},
	}})
}

// pressUpdate is a callback query update for a press on message 7 of the group.
func pressUpdate(t *testing.T, updateID int64, queryID string, from telegramtest.User, data string) []byte {
	t.Helper()
	bot := telegramtest.User{ID: 7000000001, IsBot: true, FirstName: "AlertEngine", Username: "alertengine_bot"}
	return encode(t, map[string]any{"update_id": updateID, "callback_query": telegramtest.CallbackQuery{
		ID: queryID, From: from, ChatInstance: "1", Data: data,
		Message: &telegramtest.Message{MessageID: 7, From: &bot, Date: 1764230400, Text: "card",
			Chat: telegramtest.Chat{ID: groupChat, Type: telegramtest.ChatGroup}},
	}})
}

func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWebhookRequests(t *testing.T) {
	e := newEnv(t)
	a, _ := e.adapter()
	rec := newRecorder()
	url := serveWebhook(t, a, rec)
	c := deadline(t)
	valid := messageUpdate(t, 10, ana, "why?")
	tests := []struct {
		name        string
		secret      string
		body        []byte
		wantStatus  int
		wantHandled bool
	}{
		{"missing secret", "", valid, http.StatusUnauthorized, false},
		{"wrong secret", "wrong", valid, http.StatusUnauthorized, false},
		{"wrong secret of the right length", strings.Repeat("x", len(secret)), valid, http.StatusUnauthorized, false},
		{"right secret with a suffix", secret + "x", valid, http.StatusUnauthorized, false},
		{"malformed JSON", secret, []byte(`{"update_id": 11, "message": `), http.StatusBadRequest, false},
		{"not an update", secret, []byte(`{"hello": "world"}`), http.StatusBadRequest, false},
		{"over 1 MiB", secret, append(append([]byte(`{"update_id":12,"message":{"text":"`), bytes.Repeat([]byte("a"), MaxWebhookBody)...), `"}}`...), http.StatusRequestEntityTooLarge, false},
		{"a valid update", secret, valid, http.StatusOK, true},
		{"the same update again", secret, valid, http.StatusOK, false},
		{"an update from a bot", secret, messageUpdate(t, 13, telegramtest.User{ID: 99, IsBot: true, FirstName: "B"}, "hi"), http.StatusOK, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(rec.all())
			status, err := e.fake.PostWebhook(c, url, tt.secret, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d", status, tt.wantStatus)
			}
			// The webhook handles an update before it answers, so the count is final.
			if handled := len(rec.all()) > before; handled != tt.wantHandled {
				t.Errorf("handled = %v, want %v", handled, tt.wantHandled)
			}
		})
	}

	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET: status %d, want 405", resp.StatusCode)
	}
}

func TestWebhookWithoutSecretRefusesEverything(t *testing.T) {
	e := newEnv(t)
	a, _ := e.adapter(func(o *Options) { o.WebhookSecret = "" })
	rec := newRecorder()
	url := serveWebhook(t, a, rec)
	for _, s := range []string{"", "anything"} {
		status, err := e.fake.PostWebhook(deadline(t), url, s, messageUpdate(t, 1, ana, "hi"))
		if err != nil {
			t.Fatal(err)
		}
		if status != http.StatusUnauthorized {
			t.Errorf("secret %q: status %d, want 401", s, status)
		}
	}
	if n := len(rec.all()); n != 0 {
		t.Errorf("%d updates handled without a configured secret", n)
	}
	if err := a.SetWebhook(deadline(t), "https://bot.example/telegram/webhook"); err == nil {
		t.Error("SetWebhook without a secret: no error")
	}
}

// TestWebhookEndToEnd: the bot registers its webhook, Telegram delivers what users do.
func TestWebhookEndToEnd(t *testing.T) {
	e := newEnv(t)
	a, _ := e.adapter()
	rec := newRecorder()
	url := serveWebhook(t, a, rec)
	c := deadline(t)
	if err := a.SetWebhook(c, url); err != nil {
		t.Fatalf("SetWebhook: %v", err)
	}
	if gotURL, gotSecret := e.fake.Webhook(); gotURL != url || gotSecret != secret {
		t.Fatalf("webhook = %q with secret %q, want %q with the configured secret", gotURL, gotSecret, url)
	}
	ref, err := a.Post(c, conversation.Thread{Chat: chat(groupChat)}, incidentCard())
	if err != nil {
		t.Fatal(err)
	}
	e.fake.SendText(groupChat, ana, "/status@alertengine_bot checkout")
	query := e.fake.PressButton(groupChat, atoi(t, ref.ID), tendai, "/details INC-7F3")
	n, err := e.fake.DeliverPending(c)
	if err != nil || n != 2 {
		t.Fatalf("DeliverPending = %d, %v; want both updates accepted", n, err)
	}
	got := rec.all()
	if len(got) != 2 || got[0].Text != "/status checkout" || got[1].Data != "/details INC-7F3" || got[1].ReplyTo != ref.ID {
		t.Errorf("handled %+v", got)
	}
	if answer, ok := e.fake.CallbackAnswer(query); !ok || answer.Text != "Pressed /details INC-7F3" {
		t.Errorf("answer = %+v, %v", answer, ok)
	}
}

func TestDuplicateUpdateAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	a1, _ := e.adapter()
	a2, _ := e.adapter()
	rec := newRecorder()
	urls := []string{serveWebhook(t, a1, rec), serveWebhook(t, a2, rec)}
	c := deadline(t)

	ref, err := a1.Post(c, conversation.Thread{Chat: chat(groupChat)}, incidentCard())
	if err != nil {
		t.Fatal(err)
	}
	// A real press, so that the fake knows the query; its update reaches both replicas.
	query := e.fake.PressButton(groupChat, atoi(t, ref.ID), ana, "ap:Q2hlY2tvdXRJbmNpZGVudA")
	updates := [][]byte{
		messageUpdate(t, 4242, ana, "why?"),
		pressUpdate(t, 4243, query, ana, "ap:Q2hlY2tvdXRJbmNpZGVudA"),
	}
	for _, u := range updates {
		for _, url := range urls {
			status, err := e.fake.PostWebhook(c, url, secret, u)
			if err != nil || status != http.StatusOK {
				t.Fatalf("post to %s: %d, %v", url, status, err)
			}
		}
	}
	if got := rec.all(); len(got) != 2 {
		t.Errorf("handled %d times, want once per update: %+v", len(got), got)
	}
	answers := e.fake.Calls("answerCallbackQuery")
	if len(answers) != 1 || !answers[0].OK() {
		t.Errorf("press answered %d times, want once", len(answers))
	}

	keys, err := e.rdb.Keys(c, e.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 {
		t.Fatalf("dedup keys %v, want one per update", keys)
	}
	if os.Getenv("REDIS_URL") == "" { // the embedded Redis is this test's alone
		if all, err := e.rdb.Keys(c, "*").Result(); err != nil || len(all) != len(keys) {
			t.Errorf("keys in Redis: %v (%v); want only those under the prefix %q", all, err, e.prefix)
		}
	}
	for _, k := range keys {
		ttl, err := e.rdb.TTL(c, k).Result()
		if err != nil || ttl < 23*time.Hour || ttl > 24*time.Hour {
			t.Errorf("key %q expires in %v (%v), want 24 h", k, ttl, err)
		}
	}
}

func TestPressAnswers(t *testing.T) {
	tests := []struct {
		name        string
		data        string
		reply       func(conversation.Inbound) (conversation.Reply, error)
		wantHandled bool
		wantToast   string
	}{
		{"the engine's toast", "ap:ok", func(conversation.Inbound) (conversation.Reply, error) {
			return conversation.Reply{Toast: "Approved. restart_workers will run now."}, nil
		}, true, "Approved. restart_workers will run now."},
		{"a long toast is cut to 200 characters", "ap:long", func(conversation.Inbound) (conversation.Reply, error) {
			return conversation.Reply{Toast: strings.Repeat("é", 300)}, nil
		}, true, strings.Repeat("é", 199) + "…"},
		{"an engine panic: still answered", "ap:panic", func(conversation.Inbound) (conversation.Reply, error) {
			panic("nil map")
		}, true, "Something went wrong; nothing was done."},
		{"data over 64 bytes: refused before the engine", "ap:" + strings.Repeat("A", 62), nil, false, "This button is no longer valid."},
		{"no data (a game button, not ours): refused", "", nil, false, "This button is no longer valid."},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			a, _ := e.adapter()
			rec := newRecorder()
			rec.reply = tt.reply
			url := serveWebhook(t, a, rec)
			status, err := e.fake.PostWebhook(deadline(t), url, secret, pressUpdate(t, int64(100+i), "q"+itoa(i), ana, tt.data))
			if err != nil || status != http.StatusOK {
				t.Fatalf("webhook: %d, %v", status, err)
			}
			if handled := len(rec.all()) == 1; handled != tt.wantHandled {
				t.Errorf("handled = %v, want %v", handled, tt.wantHandled)
			}
			answers := e.fake.Calls("answerCallbackQuery")
			if len(answers) != 1 {
				t.Fatalf("%d answers, want 1", len(answers))
			}
			if got := answers[0].Params["text"]; got != tt.wantToast {
				t.Errorf("toast %q, want %q", got, tt.wantToast)
			}
		})
	}
}

func TestNormalizeCommand(t *testing.T) {
	tests := []struct {
		in     string
		want   string
		wantOK bool
	}{
		{"/status@alertengine_bot checkout", "/status checkout", true},
		{"/status@ALERTENGINE_BOT", "/status", true},
		{"/start@alertengine_bot ABC123", "/start ABC123", true},
		{"/status checkout", "/status checkout", true},
		{"/status@other_bot checkout", "", false},
		{"/status@alertengine_bot2", "", false},
		{"/status@alertengine_bot@other_bot", "", false},
		{"/status@alertengine_bot.", "/status.", true},
		{"/status@ x", "/status@ x", true},
		{"/@alertengine_bot", "/@alertengine_bot", true},
		{"/", "/", true},
		{"why? /status@other_bot", "why? /status@other_bot", true},
		{"mail me@alertengine_bot", "mail me@alertengine_bot", true},
	}
	for _, tt := range tests {
		got, ok := normalizeCommand(tt.in, "alertengine_bot")
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("normalizeCommand(%q) = %q, %v; want %q, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}
