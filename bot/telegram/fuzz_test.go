package telegram

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/go-telegram/bot/models"

	"github.com/alertengine/alertengine/conversation"
)

const me = "alertengine_bot"

func FuzzNormalizeCommand(f *testing.F) {
	for _, s := range []string{
		"/status@alertengine_bot checkout", "/status@ALERTENGINE_BOT", "/status@other_bot x",
		"/start@alertengine_bot CODE", "/@x", "/cmd@", "/cmd@alertengine_bot@other", "/cmd@alertengine_bot@",
		"", "/", "//", "hello @alertengine_bot", "/status\u00a0@alertengine_bot", "/s@alertengine_bot\xff",
		"/status@alertengine_bot\n/other@x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		out, ok := normalizeCommand(text, me)
		if !ok {
			if out != "" {
				t.Errorf("ignored %q but returned %q", text, out)
			}
			if !strings.HasPrefix(text, "/") || !strings.Contains(text, "@") {
				t.Errorf("ignored %q, which addresses no bot", text)
			}
			return
		}
		if again, ok2 := normalizeCommand(out, me); !ok2 || again != out {
			t.Errorf("not stable: %q → %q → %q, %v", text, out, again, ok2)
		}
		if utf8.ValidString(text) && !utf8.ValidString(out) {
			t.Errorf("%q became invalid UTF-8 %q", text, out)
		}
		if out != text {
			// Only the "@alertengine_bot" right after the command word may go.
			if len(out) >= len(text) || !strings.EqualFold(textCut(text, out), "@"+me) || !strings.HasPrefix(text, "/") {
				t.Errorf("%q → %q removed more than the mention", text, out)
			}
		}
	})
}

// textCut returns the one contiguous piece cut out of text to make out, or "" when out
// is not text with one piece cut out.
func textCut(text, out string) string {
	i := 0
	for i < len(out) && text[i] == out[i] {
		i++
	}
	cut := text[i : i+len(text)-len(out)]
	if text[:i]+text[i+len(cut):] != out {
		return ""
	}
	return cut
}

func FuzzCallbackData(f *testing.F) {
	for _, s := range []string{
		"ap:Q2hlY2tvdXRJbmNpZGVudA", "/details INC-7F3", "", "ap:" + strings.Repeat("A", 61), "ap:" + strings.Repeat("A", 62),
		"ap:\xff", "<script>&amp;", strings.Repeat("é", 32), strings.Repeat("é", 33), "\x00",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		valid := data != "" && len(data) <= 64 && utf8.ValidString(data)

		// Outbound: a button with this data is refused, or reaches Telegram unchanged.
		kb, err := renderKeyboard([][]conversation.Button{{{Label: "Approve", Data: data}}})
		if (err == nil) != valid {
			t.Fatalf("renderKeyboard(%q): err = %v, valid = %v", data, err, valid)
		}
		if err == nil {
			raw, err := json.Marshal(kb)
			if err != nil {
				t.Fatal(err)
			}
			var back keyboard
			if err := json.Unmarshal(raw, &back); err != nil {
				t.Fatal(err)
			}
			if got := back.InlineKeyboard[0][0].CallbackData; got != data {
				t.Errorf("callback_data %q arrives as %q", data, got)
			}
		}

		// Inbound: a press with this data reaches the engine unchanged, or is refused
		// (answered, never handled).
		ev := fromCallback(&models.CallbackQuery{
			ID: "q", From: models.User{ID: 42, FirstName: "Ana"}, Data: data,
			Message: models.MaybeInaccessibleMessage{Message: &models.Message{ID: 7, Chat: models.Chat{ID: -100}}},
		})
		if ev == nil || ev.query != "q" {
			t.Fatalf("press with %q: event %+v", data, ev)
		}
		if valid && (ev.refuse != "" || ev.in.Data != data || !ev.in.Pressed()) {
			t.Errorf("valid data %q: %+v", data, ev)
		}
		if !valid && ev.refuse == "" {
			t.Errorf("invalid data %q reaches the engine", data)
		}
	})
}

func TestClassify(t *testing.T) {
	a := &Adapter{username: me}
	human := &models.User{ID: 42, FirstName: "Ana"}
	tests := []struct {
		name   string
		update models.Update
		want   *event
	}{
		{"edited message: not asked for, ignored", models.Update{EditedMessage: &models.Message{From: human, Text: "x"}}, nil},
		{"a photo without text", models.Update{Message: &models.Message{From: human, Chat: models.Chat{ID: 1}}}, nil},
		{"a channel post (no sender)", models.Update{Message: &models.Message{Text: "x", Chat: models.Chat{ID: 1}}}, nil},
		{"a press from a bot", models.Update{CallbackQuery: &models.CallbackQuery{ID: "q", From: models.User{ID: 9, IsBot: true}, Data: "x"}}, nil},
		{"a press on a message too old to show: still the engine's", models.Update{CallbackQuery: &models.CallbackQuery{
			ID: "q", From: models.User{ID: 42, Username: "ana"}, Data: "ap:x",
			Message: models.MaybeInaccessibleMessage{Type: models.MaybeInaccessibleMessageTypeInaccessibleMessage,
				InaccessibleMessage: &models.InaccessibleMessage{Chat: models.Chat{ID: -5}, MessageID: 3}},
		}}, &event{query: "q", in: conversation.Inbound{Chat: chatOf(-5), User: conversation.User{Channel: conversation.Telegram, ID: "42", Name: "ana"}, Data: "ap:x", ReplyTo: "3"}}},
		{"a press on an inline message: not ours", models.Update{CallbackQuery: &models.CallbackQuery{
			ID: "q", From: models.User{ID: 42, FirstName: "Ana"}, InlineMessageID: "abc", Data: "ap:x",
		}}, &event{query: "q", refuse: toastStale, in: conversation.Inbound{User: conversation.User{Channel: conversation.Telegram, ID: "42", Name: "Ana"}, Data: "ap:x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := a.classify(t.Context(), &tt.update)
			if err != nil {
				t.Fatal(err)
			}
			if (got == nil) != (tt.want == nil) || got != nil && *got != *tt.want {
				t.Errorf("classify = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestOptionsValidate(t *testing.T) {
	e := newEnv(t)
	ok := func() Options { return Options{Token: "123:Zq9Secret-def_9", Redis: e.rdb} }
	tests := []struct {
		name    string
		mod     func(*Options)
		wantErr string
	}{
		{"minimal", func(*Options) {}, ""},
		{"no token", func(o *Options) { o.Token = "" }, "token"},
		{"token without a colon", func(o *Options) { o.Token = "123Zq9Secret" }, "token"},
		{"token with a bad id", func(o *Options) { o.Token = "abc:Zq9Secret" }, "token"},
		{"token with a slash", func(o *Options) { o.Token = "123:Zq9Secret/C" }, "token"},
		{"no Redis", func(o *Options) { o.Redis = nil }, "Redis"},
		{"relative API URL", func(o *Options) { o.APIURL = "api.telegram.org" }, "API URL"},
		{"bad webhook secret", func(o *Options) { o.WebhookSecret = "has space" }, "webhook secret"},
		{"webhook secret too long", func(o *Options) { o.WebhookSecret = strings.Repeat("a", 257) }, "webhook secret"},
		{"negative timeout", func(o *Options) { o.CallTimeout = -1 }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok()
			tt.mod(&o)
			err := o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if o.APIURL != DefaultAPIURL || o.Logger == nil || o.Sleep == nil || o.CallTimeout != DefaultCallTimeout || o.Workers != DefaultWorkers {
					t.Errorf("defaults not filled: %+v", o)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Validate = %v, want an error about %s", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "Zq9Secret") {
				t.Errorf("the error shows the token: %v", err)
			}
		})
	}
}
