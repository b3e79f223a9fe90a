package telegramtest

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

var ana = User{ID: 42, FirstName: "Ana", Username: "ana"}

const group = int64(-1001234567890)

// request calls the fake directly, as a client in any language would.
func request(t *testing.T, ctx context.Context, s *Server, path, contentType, body string) (int, envelope, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		t.Fatalf("POST %s: answer %q is not JSON: %v", path, raw, err)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("POST %s: Content-Type = %q", path, got)
	}
	return resp.StatusCode, env, string(raw)
}

func callJSON(t *testing.T, ctx context.Context, s *Server, method, body string) (int, envelope) {
	t.Helper()
	status, env, _ := request(t, ctx, s, "/bot"+s.Token()+"/"+method, "application/json", body)
	return status, env
}

func updateIDs(t *testing.T, env envelope) []int64 {
	t.Helper()
	var updates []struct {
		UpdateID int64 `json:"update_id"`
	}
	if err := json.Unmarshal(env.Result, &updates); err != nil {
		t.Fatalf("getUpdates result %s: %v", env.Result, err)
	}
	ids := []int64{}
	for _, u := range updates {
		ids = append(ids, u.UpdateID)
	}
	return ids
}

func TestTokenAndMethodChecks(t *testing.T) {
	s := New(t)
	ctx := t.Context()
	tests := []struct {
		path   string
		status int
		body   string
	}{
		{"/bot123:wrong/getMe", 401, `{"ok":false,"error_code":401,"description":"Unauthorized"}`},
		{"/bot" + s.Token() + "/sendCarrierPigeon", 404, `{"ok":false,"error_code":404,"description":"Not Found"}`},
		{"/getMe", 404, `{"ok":false,"error_code":404,"description":"Not Found"}`},
	}
	for _, tt := range tests {
		status, _, body := request(t, ctx, s, tt.path, "", "")
		if status != tt.status || body != tt.body {
			t.Errorf("POST %s = %d %s, want %d %s", tt.path, status, body, tt.status, tt.body)
		}
	}
	// Method names are case-insensitive, as in Telegram.
	status, env := callJSON(t, ctx, s, "GETME", "")
	if status != 200 || !env.OK {
		t.Fatalf("GETME = %d %+v", status, env)
	}
	var me struct {
		User
		CanJoinGroups bool `json:"can_join_groups"`
	}
	if err := json.Unmarshal(env.Result, &me); err != nil {
		t.Fatal(err)
	}
	want := User{ID: 7000000001, IsBot: true, FirstName: "AlertEngine", Username: "alertengine_bot"}
	if me.User != want || !me.CanJoinGroups {
		t.Errorf("getMe = %+v, want %+v", me, want)
	}
	// Refused calls are recorded too: the wrong token's getMe, then this one.
	if calls := s.Calls("getme"); len(calls) != 2 || calls[0].ErrorCode != 401 || calls[1].Method != "getMe" || !calls[1].OK() {
		t.Errorf("Calls(getme) = %+v, want a 401 then a success", calls)
	}
}

func TestSendMessageAcceptsEveryEncoding(t *testing.T) {
	s := New(t)
	ctx := t.Context()
	markup := `{"inline_keyboard":[[{"text":"Approve","callback_data":"ap:1"},{"text":"Runbook","url":"https://ex.com/rb"}]]}`
	want := &InlineKeyboardMarkup{InlineKeyboard: [][]InlineKeyboardButton{{
		{Text: "Approve", CallbackData: "ap:1"}, {Text: "Runbook", URL: "https://ex.com/rb"},
	}}}

	status, env := callJSON(t, ctx, s, "sendMessage", `{"chat_id":`+itoa(group)+`,"text":"<b>json</b>","parse_mode":"HTML","reply_markup":`+markup+`}`)
	if status != 200 {
		t.Fatalf("JSON sendMessage = %d %s", status, env.Description)
	}
	form := url.Values{"chat_id": {itoa(group)}, "text": {"form"}, "reply_markup": {markup}, "reply_to_message_id": {"1"}}
	status, env, _ = request(t, ctx, s, "/bot"+s.Token()+"/sendMessage", "application/x-www-form-urlencoded", form.Encode())
	if status != 200 {
		t.Fatalf("urlencoded sendMessage = %d %s", status, env.Description)
	}
	query := url.Values{"chat_id": {itoa(group)}, "text": {"query"}}
	status, env, _ = request(t, ctx, s, "/bot"+s.Token()+"/sendMessage?"+query.Encode(), "", "")
	if status != 200 {
		t.Fatalf("query sendMessage = %d %s", status, env.Description)
	}

	sent := s.Sent(group)
	if len(sent) != 3 {
		t.Fatalf("Sent = %d messages, want 3", len(sent))
	}
	if sent[0].Text != "json" || sent[0].Source != "<b>json</b>" || sent[0].ParseMode != "HTML" || !reflect.DeepEqual(sent[0].ReplyMarkup, want) {
		t.Errorf("JSON message = %+v", sent[0])
	}
	if sent[1].Text != "form" || !reflect.DeepEqual(sent[1].ReplyMarkup, want) || sent[1].ReplyToMessage == nil || sent[1].ReplyToMessage.MessageID != 1 {
		t.Errorf("form message = %+v", sent[1])
	}
	if sent[2].Text != "query" || sent[2].MessageID != 3 {
		t.Errorf("query message = %+v", sent[2])
	}
	// JSON and form parameters are recorded alike: objects as JSON text.
	calls := s.Calls("sendMessage")
	for _, c := range calls[:2] {
		var got InlineKeyboardMarkup
		if err := c.Decode("reply_markup", &got); err != nil || !reflect.DeepEqual(&got, want) {
			t.Errorf("%s reply_markup param = %+v (%v)", c.Params["text"], got, err)
		}
		if c.Int("chat_id") != group {
			t.Errorf("chat_id param = %q", c.Params["chat_id"])
		}
	}
}

func TestSendMessageRefusals(t *testing.T) {
	s := New(t)
	ctx := t.Context()
	chat := itoa(group)
	tests := []struct{ body, description string }{
		{`{"text":"x"}`, "Bad Request: chat_id is empty"},
		{`{"chat_id":"@nobody","text":"x"}`, "Bad Request: chat not found"},
		{`{"chat_id":` + chat + `}`, "Bad Request: message text is empty"},
		{`{"chat_id":` + chat + `,"text":"<b></b>","parse_mode":"HTML"}`, "Bad Request: message text is empty"},
		{`{"chat_id":` + chat + `,"text":"x","parse_mode":"BBCode"}`, "Bad Request: unsupported parse_mode"},
		{`{"chat_id":` + chat + `,"text":"` + strings.Repeat("x", 4097) + `"}`, "Bad Request: message is too long"},
		{`{"chat_id":` + chat + `,"text":"x","reply_markup":{"inline_keyboard":[[{"text":"A","callback_data":"` + strings.Repeat("a", 65) + `"}]]}}`, "Bad Request: BUTTON_DATA_INVALID"},
		{`{"chat_id":` + chat + `,"text":"x","reply_markup":{"inline_keyboard":[[{"text":"A","callback_data":""}]]}}`, "Bad Request: BUTTON_DATA_INVALID"},
		{`{"chat_id":` + chat + `,"text":"x","reply_markup":{"inline_keyboard":[[{"text":"A"}]]}}`, "Bad Request: can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"},
		{`{"chat_id":` + chat + `,"text":"x","reply_markup":"{not json"}`, "Bad Request: can't parse reply keyboard markup JSON object"},
		{`{"chat_id":` + chat + `,"text":"x","reply_parameters":{"message_id":99}}`, "Bad Request: message to be replied not found"},
		{`{"chat_id":` + chat + `,"text":"x","message_thread_id":5}`, "Bad Request: message thread not found"},
		{`{"chat_id":` + chat + `,"text":"a < b","parse_mode":"HTML"}`, `Bad Request: can't parse entities: Unsupported start tag "" at byte offset 2`},
	}
	for _, tt := range tests {
		status, env := callJSON(t, ctx, s, "sendMessage", tt.body)
		if status != 400 || env.OK || env.ErrorCode != 400 || env.Description != tt.description {
			t.Errorf("sendMessage %.80s = %d %q, want 400 %q", tt.body, status, env.Description, tt.description)
		}
	}
	if sent := s.Sent(group); len(sent) != 0 {
		t.Errorf("refused sends delivered %d messages", len(sent))
	}
	// allow_sending_without_reply sends anyway.
	status, env := callJSON(t, ctx, s, "sendMessage", `{"chat_id":`+chat+`,"text":"x","reply_parameters":{"message_id":99,"allow_sending_without_reply":true}}`)
	if status != 200 {
		t.Errorf("allow_sending_without_reply = %d %s", status, env.Description)
	}
}

func TestGetUpdatesOffsets(t *testing.T) {
	s := New(t)
	ctx := t.Context()
	first := s.SendText(group, ana, "one")
	s.SendText(group, ana, "two")
	third := s.SendText(group, ana, "three")

	_, env := callJSON(t, ctx, s, "getUpdates", `{"timeout":0}`)
	if got, want := updateIDs(t, env), []int64{first, first + 1, third}; !reflect.DeepEqual(got, want) {
		t.Fatalf("getUpdates ids = %v, want %v", got, want)
	}
	// Until an offset confirms them, updates are sent again.
	_, env = callJSON(t, ctx, s, "getUpdates", `{"limit":2}`)
	if got, want := updateIDs(t, env), []int64{first, first + 1}; !reflect.DeepEqual(got, want) {
		t.Fatalf("getUpdates limit 2 = %v, want %v", got, want)
	}
	_, env = callJSON(t, ctx, s, "getUpdates", `{"offset":`+itoa(first+1)+`}`)
	if got, want := updateIDs(t, env), []int64{first + 1, third}; !reflect.DeepEqual(got, want) {
		t.Fatalf("getUpdates offset = %v, want %v", got, want)
	}
	if s.Pending() != 2 {
		t.Errorf("Pending = %d after confirming one, want 2", s.Pending())
	}
	_, env = callJSON(t, ctx, s, "getUpdates", `{"offset":-1}`)
	if got, want := updateIDs(t, env), []int64{third}; !reflect.DeepEqual(got, want) {
		t.Fatalf("getUpdates offset -1 = %v, want %v", got, want)
	}
	if err := s.WaitConfirmed(ctx, first+1); err != nil {
		t.Error(err)
	}
	_, env = callJSON(t, ctx, s, "getUpdates", `{"offset":`+itoa(third+1)+`}`)
	if got := updateIDs(t, env); len(got) != 0 || string(env.Result) != "[]" {
		t.Fatalf("getUpdates past the end = %s, want []", env.Result)
	}
}

func TestGetUpdatesAllowedUpdates(t *testing.T) {
	s := New(t)
	ctx := t.Context()
	msg := s.SendText(group, ana, "hello")
	reaction := s.Update([]byte(`{"update_id":999,"message_reaction":{"chat":{"id":1,"type":"private"},"message_id":1,"date":1,"old_reaction":[],"new_reaction":[]}}`))
	if reaction != msg+1 {
		t.Errorf("Update id = %d, want %d (ids are the fake's)", reaction, msg+1)
	}
	_, env := callJSON(t, ctx, s, "getUpdates", `{}`)
	if got, want := updateIDs(t, env), []int64{msg}; !reflect.DeepEqual(got, want) {
		t.Errorf("default allowed_updates = %v, want %v (message_reaction is opt-in)", got, want)
	}
	_, env = callJSON(t, ctx, s, "getUpdates", `{"allowed_updates":["message_reaction"]}`)
	if got, want := updateIDs(t, env), []int64{reaction}; !reflect.DeepEqual(got, want) {
		t.Errorf("allowed_updates [message_reaction] = %v, want %v", got, want)
	}
	// The list is remembered.
	_, env = callJSON(t, ctx, s, "getUpdates", `{}`)
	if got, want := updateIDs(t, env), []int64{reaction}; !reflect.DeepEqual(got, want) {
		t.Errorf("remembered allowed_updates = %v, want %v", got, want)
	}
}

// poll runs getUpdates in the background and returns its answer on a channel.
func poll(t *testing.T, ctx context.Context, s *Server, body string) <-chan envelope {
	t.Helper()
	out := make(chan envelope, 1)
	go func() {
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+"/bot"+s.Token()+"/getUpdates", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			close(out)
			return
		}
		defer resp.Body.Close()
		var env envelope
		_ = json.NewDecoder(resp.Body).Decode(&env)
		out <- env
	}()
	return out
}

func waitPolling(t *testing.T, ctx context.Context, s *Server, n int) {
	t.Helper()
	if err := s.waitUntil(ctx, func() bool { return s.waiting == n }); err != nil {
		t.Fatalf("waiting for %d held getUpdates: %v", n, err)
	}
}

func TestGetUpdatesHoldsUntilAnUpdate(t *testing.T) {
	s := New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	answer := poll(t, ctx, s, `{"timeout":50}`)
	waitPolling(t, ctx, s, 1)
	select {
	case env := <-answer:
		t.Fatalf("getUpdates answered %+v before any update", env)
	default:
	}
	id := s.SendText(group, ana, "/status")
	select {
	case env := <-answer:
		if got := updateIDs(t, env); !reflect.DeepEqual(got, []int64{id}) {
			t.Errorf("held getUpdates = %v, want [%d]", got, id)
		}
	case <-ctx.Done():
		t.Fatal("held getUpdates did not answer when an update was queued")
	}
}

func TestGetUpdatesTimeout(t *testing.T) {
	s := New(t)
	start := time.Now()
	_, env := callJSON(t, t.Context(), s, "getUpdates", `{"timeout":1}`)
	if !env.OK || string(env.Result) != "[]" {
		t.Errorf("getUpdates timeout = %+v, want ok []", env)
	}
	if elapsed := time.Since(start); elapsed < time.Second {
		t.Errorf("getUpdates with timeout 1 answered after %v", elapsed)
	}
}

func TestGetUpdatesClientGoesAway(t *testing.T) {
	s := New(t)
	ctx, cancel := context.WithCancel(t.Context())
	answer := poll(t, ctx, s, `{"timeout":50}`)
	waitPolling(t, t.Context(), s, 1)
	cancel()
	if _, ok := <-answer; ok {
		t.Error("the cancelled request got an answer")
	}
	waitPolling(t, t.Context(), s, 0)
	if n := len(s.Calls("getUpdates")); n != 0 {
		t.Errorf("abandoned poll recorded %d calls", n)
	}
}

func TestGetUpdatesConflicts(t *testing.T) {
	s := New(t)
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()

	held := poll(t, ctx, s, `{"timeout":50}`)
	waitPolling(t, ctx, s, 1)
	_, env := callJSON(t, ctx, s, "getUpdates", `{"timeout":0}`)
	if !env.OK {
		t.Errorf("second getUpdates = %+v, want ok", env)
	}
	if env := <-held; env.ErrorCode != 409 || env.Description != conflictPoll {
		t.Errorf("held getUpdates = %+v, want 409 %q", env, conflictPoll)
	}

	held = poll(t, ctx, s, `{"timeout":50}`)
	waitPolling(t, ctx, s, 1)
	status, env := callJSON(t, ctx, s, "setWebhook", `{"url":"https://bot.example.com/telegram/webhook","secret_token":"s3cret_Token-1"}`)
	if status != 200 || env.Description != "Webhook was set" {
		t.Fatalf("setWebhook = %d %+v", status, env)
	}
	if env := <-held; env.ErrorCode != 409 || env.Description != conflictSet {
		t.Errorf("held getUpdates = %+v, want 409 %q", env, conflictSet)
	}
	status, env = callJSON(t, ctx, s, "getUpdates", `{}`)
	if status != 409 || env.Description != conflictWebhook {
		t.Errorf("getUpdates with a webhook = %d %q, want 409 %q", status, env.Description, conflictWebhook)
	}
	if url, secret := s.Webhook(); url != "https://bot.example.com/telegram/webhook" || secret != "s3cret_Token-1" {
		t.Errorf("Webhook = %q %q", url, secret)
	}
	_, env = callJSON(t, ctx, s, "deleteWebhook", `{}`)
	if !env.OK || env.Description != "Webhook was deleted" {
		t.Errorf("deleteWebhook = %+v", env)
	}
	if _, env = callJSON(t, ctx, s, "getUpdates", `{}`); !env.OK {
		t.Errorf("getUpdates after deleteWebhook = %+v", env)
	}
	status, env = callJSON(t, ctx, s, "setWebhook", `{"url":"https://x","secret_token":"not+allowed="}`)
	if status != 400 || env.Description != "Bad Request: secret token contains unallowed characters" {
		t.Errorf("setWebhook with a bad secret = %d %q", status, env.Description)
	}
}

func TestFailNext(t *testing.T) {
	s := New(t)
	ctx := t.Context()
	s.FailNext("SENDMESSAGE", 2, 7)
	for range 2 {
		status, _, body := request(t, ctx, s, "/bot"+s.Token()+"/sendMessage", "application/json", `{"chat_id":1,"text":"x"}`)
		want := `{"ok":false,"error_code":429,"description":"Too Many Requests: retry after 7","parameters":{"retry_after":7}}`
		if status != 429 || body != want {
			t.Errorf("throttled sendMessage = %d %s, want 429 %s", status, body, want)
		}
	}
	if status, env := callJSON(t, ctx, s, "sendMessage", `{"chat_id":1,"text":"x"}`); status != 200 {
		t.Errorf("third sendMessage = %d %+v", status, env)
	}
	sent := s.Sent(1)
	if len(sent) != 1 || sent[0].MessageID != 1 {
		t.Errorf("Sent = %+v, want the one delivered message, id 1", sent)
	}
	calls := s.Calls("sendMessage")
	if len(calls) != 3 || calls[0].ErrorCode != 429 || calls[1].ErrorCode != 429 || !calls[2].OK() {
		t.Errorf("Calls = %+v, want two 429s then a success", calls)
	}
}

func TestWaitForEndsWithContext(t *testing.T) {
	s := New(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := s.WaitFor(ctx, func(Call) bool { return true }); err == nil {
		t.Error("WaitFor on a done context returned no error")
	}
	if _, err := s.WaitForMessage(ctx, 1, func(Message) bool { return true }); err == nil {
		t.Error("WaitForMessage on a done context returned no error")
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

func TestGetChatTellsForumsApart(t *testing.T) {
	s := New(t)
	s.AddForum(-100500)
	s.AddChat(Chat{ID: -100600, Type: ChatSupergroup, Title: "plain"})
	for _, tc := range []struct {
		id    int64
		forum bool
	}{{-100500, true}, {-100600, false}} {
		resp, err := http.Get(s.URL() + "/bot" + s.Token() + "/getChat?chat_id=" + strconv.FormatInt(tc.id, 10))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			OK     bool `json:"ok"`
			Result Chat `json:"result"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil || !r.OK || r.Result.ID != tc.id || r.Result.IsForum != tc.forum {
			t.Fatalf("getChat %d: %+v %v", tc.id, r, err)
		}
	}
}
