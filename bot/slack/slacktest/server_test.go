package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func client(s *Server, token string) *slack.Client {
	return slack.New(token, slack.OptionAPIURL(s.URL))
}

func section(text string) slack.Block {
	return slack.NewSectionBlock(slack.NewTextBlockObject(slack.MarkdownType, text, false, false), nil, nil)
}

func button(id, label, value string) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(id, value, slack.NewTextBlockObject(slack.PlainTextType, label, false, false))
}

func code(err error) string {
	var e slack.SlackErrorResponse
	if errors.As(err, &e) {
		return e.Err
	}
	if err != nil {
		return "other: " + err.Error()
	}
	return ""
}

func TestBlockKitLimits(t *testing.T) {
	s := New(t)
	c := client(s, BotToken)
	ctx := context.Background()
	many := func(n int) []slack.Block {
		var bs []slack.Block
		for range n {
			bs = append(bs, section("x"))
		}
		return bs
	}
	for _, tc := range []struct {
		name string
		opts []slack.MsgOption
		want string
	}{
		{"50 blocks", []slack.MsgOption{slack.MsgOptionBlocks(many(50)...)}, ""},
		{"51 blocks", []slack.MsgOption{slack.MsgOptionBlocks(many(51)...)}, "invalid_blocks"},
		{"3000-character section", []slack.MsgOption{slack.MsgOptionBlocks(section(strings.Repeat("漢", 3000)))}, ""},
		{"3001-character section", []slack.MsgOption{slack.MsgOptionBlocks(section(strings.Repeat("a", 3001)))}, "invalid_blocks"},
		{"empty section", []slack.MsgOption{slack.MsgOptionBlocks(section(""))}, "invalid_blocks"},
		{"75-character button", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", button("b", strings.Repeat("é", 75), "v")))}, ""},
		{"76-character button", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", button("b", strings.Repeat("é", 76), "v")))}, "invalid_blocks"},
		{"2000-character value", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", button("b", "ok", strings.Repeat("v", 2000))))}, ""},
		{"2001-character value", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", button("b", "ok", strings.Repeat("v", 2001))))}, "invalid_blocks"},
		{"duplicate action_id", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", button("b", "1", "v"), button("b", "2", "v")))}, "invalid_blocks"},
		{"mrkdwn button text", []slack.MsgOption{slack.MsgOptionBlocks(slack.NewActionBlock("a", slack.NewButtonBlockElement("b", "v", slack.NewTextBlockObject(slack.MarkdownType, "x", false, false))))}, "invalid_blocks"},
		{"text of 40,000", []slack.MsgOption{slack.MsgOptionText(strings.Repeat("t", 40000), false)}, ""},
		{"text of 40,001", []slack.MsgOption{slack.MsgOptionText(strings.Repeat("t", 40001), false)}, "msg_too_long"},
		{"nothing", nil, "no_text"},
	} {
		_, _, err := c.PostMessageContext(ctx, "CGENERAL01", tc.opts...)
		if got := code(err); got != tc.want {
			t.Errorf("%s: error %q, want %q", tc.name, got, tc.want)
		}
	}
	// A confirm dialog within its limits passes; a 301-character text does not.
	b := button("b", "Approve", "ap:x")
	b.Confirm = slack.NewConfirmationBlockObject(slack.NewTextBlockObject(slack.PlainTextType, "Sure?", false, false),
		slack.NewTextBlockObject(slack.PlainTextType, strings.Repeat("c", 300), false, false), nil, nil)
	if _, _, err := c.PostMessageContext(ctx, "CGENERAL01", slack.MsgOptionBlocks(slack.NewActionBlock("a", b))); err != nil {
		t.Errorf("confirm of 300: %v", err)
	}
	b.Confirm.Text.Text += "c"
	if _, _, err := c.PostMessageContext(ctx, "CGENERAL01", slack.MsgOptionBlocks(slack.NewActionBlock("a", b))); code(err) != "invalid_blocks" {
		t.Errorf("confirm of 301: %v", err)
	}
}

func TestChannelsTokensAndThreads(t *testing.T) {
	s := New(t)
	s.AddChannel("COUTSIDE01", false)
	ctx := context.Background()
	c := client(s, BotToken)
	msg := slack.MsgOptionText("hi", false)
	for ch, want := range map[string]string{"CNOPE00001": "channel_not_found", "COUTSIDE01": "not_in_channel", "UNOBODY001": "channel_not_found"} {
		if _, _, err := c.PostMessageContext(ctx, ch, msg); code(err) != want {
			t.Errorf("%s: %v, want %s", ch, err, want)
		}
	}
	for token, want := range map[string]string{"xoxb-other": "invalid_auth", "": "not_authed"} {
		if _, err := client(s, token).AuthTestContext(ctx); code(err) != want {
			t.Errorf("token %q: %v, want %s", token, err, want)
		}
	}

	_, root, err := c.PostMessageContext(ctx, "CGENERAL01", msg)
	if err != nil {
		t.Fatal(err)
	}
	_, reply, err := c.PostMessageContext(ctx, "CGENERAL01", msg, slack.MsgOptionTS(root))
	if err != nil {
		t.Fatal(err)
	}
	_, nested, err := c.PostMessageContext(ctx, "CGENERAL01", msg, slack.MsgOptionTS(reply))
	if err != nil {
		t.Fatal(err)
	}
	_, _, orphan, err := c.PostMessageWithResponseContext(ctx, "CGENERAL01", msg, slack.MsgOptionTS("1.000001"))
	if err != nil {
		t.Fatal(err)
	}
	if r := s.Replies("CGENERAL01", root); len(r) != 2 || r[0].TS != reply || r[1].TS != nested {
		t.Errorf("thread of %s: %+v", root, r)
	}
	if m, _ := s.Message("CGENERAL01", orphan.Timestamp); m.ThreadTS != "" || orphan.ThreadTimestamp != "" {
		t.Errorf("a reply to no message should land in the channel, unthreaded: %+v", m)
	}

	// Only the bot's own messages can be updated, and only existing ones.
	ts, _ := s.Say("CGENERAL01", "UALICE0001", "mine", "")
	if _, _, _, err := c.UpdateMessageContext(ctx, "CGENERAL01", ts, msg); code(err) != "cant_update_message" {
		t.Errorf("update of alice's message: %v", err)
	}
	if _, _, _, err := c.UpdateMessageContext(ctx, "CGENERAL01", "9.000009", msg); code(err) != "message_not_found" {
		t.Errorf("update of a missing message: %v", err)
	}

	s.RevokeToken()
	if _, err := c.AuthTestContext(ctx); code(err) != "token_revoked" {
		t.Errorf("revoked: %v", err)
	}
}

func TestRateLimitAnswers429WithRetryAfter(t *testing.T) {
	s := New(t)
	s.RateLimit("chat.postMessage", 1, 30)
	c := client(s, BotToken)
	_, _, err := c.PostMessageContext(context.Background(), "CGENERAL01", slack.MsgOptionText("x", false))
	var rl *slack.RateLimitedError
	if !errors.As(err, &rl) || rl.RetryAfter != 30*time.Second {
		t.Fatalf("err %v, want a rate limit of 30s", err)
	}
	if _, _, err := c.PostMessageContext(context.Background(), "CGENERAL01", slack.MsgOptionText("x", false)); err != nil {
		t.Fatalf("after the limit: %v", err)
	}
	if n := len(s.Messages("CGENERAL01")); n != 1 || s.Calls("chat.postMessage") != 2 {
		t.Fatalf("%d messages after %d calls", n, s.Calls("chat.postMessage"))
	}
}

func TestUploadNeedsItsBytesBeforeItIsShared(t *testing.T) {
	s := New(t)
	c := client(s, BotToken)
	ctx := context.Background()
	u, err := c.GetUploadURLExternalContext(ctx, slack.GetUploadURLExternalParameters{FileName: "a.png", FileSize: 3})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.CompleteUploadExternalContext(ctx, slack.CompleteUploadExternalParameters{Files: []slack.FileSummary{{ID: u.FileID}}, Channel: "CGENERAL01"})
	if code(err) != "file_not_found" {
		t.Fatalf("completing before the upload: %v", err)
	}
	if _, err := c.UploadFileContext(ctx, slack.UploadFileParameters{Content: "png", FileSize: 3, Filename: "b.png", Channel: "COTHER0001"}); err == nil {
		t.Fatal("sharing into a missing channel succeeded")
	}
	f, err := c.UploadFileContext(ctx, slack.UploadFileParameters{Content: "png", FileSize: 3, Filename: "c.png", Title: "chart", Channel: "CGENERAL01"})
	if err != nil {
		t.Fatal(err)
	}
	ms := s.Messages("CGENERAL01")
	if len(ms) != 1 || ms[0].File == nil || ms[0].File.ID != f.ID || string(ms[0].File.Data) != "png" {
		t.Fatalf("messages %+v", ms)
	}
}

func TestSignatureMatchesSlacksVerifier(t *testing.T) {
	body := []byte(`{"type":"event_callback"}`)
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := http.Header{}
	h.Set("X-Slack-Request-Timestamp", ts)
	h.Set("X-Slack-Signature", Signature(SigningSecret, ts, body))
	v, err := slack.NewSecretsVerifier(h, SigningSecret)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = v.Write(body)
	if err := v.Ensure(); err != nil {
		t.Fatalf("the fake's signature does not verify: %v", err)
	}
}

func TestSocketOpensOnlyWithTheAppToken(t *testing.T) {
	s := New(t)
	if _, _, err := slack.New(BotToken, slack.OptionAPIURL(s.URL), slack.OptionAppLevelToken("xapp-wrong")).StartSocketModeContext(context.Background()); code(err) != "invalid_auth" {
		t.Fatalf("wrong app token: %v", err)
	}
	_, u, err := slack.New(BotToken, slack.OptionAPIURL(s.URL), slack.OptionAppLevelToken(AppToken)).StartSocketModeContext(context.Background())
	if err != nil || !strings.HasPrefix(u, "ws://") {
		t.Fatalf("url %q, %v", u, err)
	}
	if _, err := s.Envelope(Delivery{Kind: "events_api", Payload: []byte(`{}`)}, 0); !errors.Is(err, ErrNoSocket) {
		t.Fatalf("envelope without a connection: %v", err)
	}
}

func TestSayEscapesWhatPeopleTypeAsSlackDoes(t *testing.T) {
	s := New(t)
	_, ds := s.Say("CGENERAL01", "UALICE0001", "<@"+BotUser+"> a<b & c>d <@UBOB000001|bob>", "")
	if len(ds) != 2 || ds[1].Kind != "events_api" {
		t.Fatalf("deliveries %+v: want a message and an app_mention", ds)
	}
	var env struct {
		Event struct{ Text, Type string } `json:"event"`
	}
	if err := json.Unmarshal(ds[0].Body, &env); err != nil {
		t.Fatal(err)
	}
	if want := "<@" + BotUser + "> a&lt;b &amp; c&gt;d <@UBOB000001|bob>"; env.Event.Text != want {
		t.Fatalf("event text %q, want %q", env.Event.Text, want)
	}
}
