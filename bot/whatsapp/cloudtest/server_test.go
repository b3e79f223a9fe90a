package cloudtest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"
)

const person = "+263771234567"

func post(t *testing.T, s *Server, token string, body any) (int, int) {
	t.Helper()
	js, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/"+PhoneNumberID+"/messages", bytes.NewReader(js))
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e struct {
		Error struct {
			Code int `json:"code"`
		} `json:"error"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Error.Code
}

func msg(typ string, content any) map[string]any {
	return map[string]any{"messaging_product": "whatsapp", "to": strings.TrimPrefix(person, "+"), "type": typ, typ: content}
}

func buttons(titles ...string) map[string]any {
	var bs []any
	for i, ti := range titles {
		bs = append(bs, map[string]any{"type": "reply", "reply": map[string]string{"id": "id" + string(rune('a'+i)), "title": ti}})
	}
	return map[string]any{"type": "button", "body": map[string]string{"text": "choose"}, "action": map[string]any{"buttons": bs}}
}

func template(params ...string) map[string]any {
	var ps []any
	for _, p := range params {
		ps = append(ps, map[string]string{"type": "text", "text": p})
	}
	return map[string]any{"name": "approval", "language": map[string]string{"code": "en_US"}, "components": []any{
		map[string]any{"type": "body", "parameters": ps},
		map[string]any{"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": []any{map[string]string{"type": "payload", "payload": "ap:x"}}},
	}}
}

// TestLimits: the fake refuses what the Graph API documents as refused, with its codes.
func TestLimits(t *testing.T) {
	s := New(t)
	s.AddTemplate(Template{Name: "approval", Language: "en_US", BodyParams: 2, QuickReplies: 1})
	text := msg("text", map[string]string{"body": "hello"})
	if st, code := post(t, s, Token, text); st != 400 || code != 131047 {
		t.Errorf("text outside the window: %d %d; want 400 131047", st, code)
	}
	if st, code := post(t, s, Token, msg("template", template("a", "b"))); st != 200 {
		t.Errorf("template outside the window: %d %d", st, code)
	}
	s.Opened(person, time.Now())
	for name, c := range map[string]struct {
		body any
		code int
	}{
		"wrong token":          {nil, 190},
		"four buttons":         {msg("interactive", buttons("a", "b", "c", "d")), 100},
		"no button":            {msg("interactive", buttons()), 100},
		"title of 21":          {msg("interactive", buttons(strings.Repeat("x", 21))), 100},
		"same titles":          {msg("interactive", buttons("Yes", "Yes")), 100},
		"body of 4097":         {msg("text", map[string]string{"body": strings.Repeat("x", 4097)}), 100},
		"newline in parameter": {msg("template", template("a\nb", "c")), 132018},
		"five spaces":          {msg("template", template("a     b", "c")), 132018},
		"parameter count":      {msg("template", template("a")), 132000},
		"unknown media":        {msg("image", map[string]string{"id": "123"}), 100},
	} {
		token := Token
		body := c.body
		if body == nil {
			token, body = "EAAwrong", text
		}
		if st, code := post(t, s, token, body); code != c.code || st == 200 {
			t.Errorf("%s: %d code %d; want code %d", name, st, code, c.code)
		}
	}
	if st, _ := post(t, s, Token, msg("interactive", buttons("Approve restart_wor…", "Reject", "Details"))); st != 200 {
		t.Errorf("three buttons of 20 characters: %d", st)
	}
	s.RateLimitNext(1)
	if _, code := post(t, s, Token, text); code != 80007 {
		t.Errorf("rate limit: %d", code)
	}
	if st, _ := post(t, s, Token, text); st != 200 {
		t.Errorf("after the rate limit: %d", st)
	}
	s.SetClock(func() time.Time { return time.Now().Add(25 * time.Hour) })
	if _, code := post(t, s, Token, text); code != 131047 {
		t.Errorf("25 hours later: %d", code)
	}
	if n := len(s.MessagesTo(person)); n != 3 {
		t.Errorf("%d messages recorded, want 3", n)
	}
}

// TestSign: the signature is sha256= and the hex HMAC of the body.
func TestSign(t *testing.T) {
	// HMAC-SHA256("secret", "test"), as any HMAC implementation computes it.
	if got := Sign("secret", []byte("test")); got != "sha256=0329a06b62cd16b33eb6792be8c60b158d89a2ee3a876fce9a881ebb488c0914" {
		t.Errorf("Sign = %s", got)
	}
}
