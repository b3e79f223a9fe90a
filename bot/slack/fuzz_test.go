package slack

import (
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/alertengine/alertengine/conversation"
)

// FuzzRender: whatever the text, what is sent stays within Slack's limits, is valid
// UTF-8, and carries no unescaped markup.
func FuzzRender(f *testing.F) {
	for _, s := range []string{"plain", "<!channel> & <@U1>", strings.Repeat("漢&<", 1500), "*bold* `code` _it_", "\xff\xfe", "a\nb\r\n\nc", ""} {
		f.Add(s, "Approve "+s, 3)
	}
	f.Fuzz(func(t *testing.T, text, label string, n int) {
		n = n%70 + 1
		if n < 0 {
			n = -n
		}
		var blocks []conversation.Block
		for i := range n {
			blocks = append(blocks, conversation.Block{Style: conversation.Style(i % 6), Text: text})
		}
		m := conversation.Message{Blocks: blocks, Buttons: [][]conversation.Button{{{Label: label, Data: "/details INC-1"}}}}
		r, err := render(m)
		if err != nil {
			if strings.TrimSpace(clean(label)) == "" {
				return // a button without a label is refused
			}
			t.Fatalf("render: %v", err)
		}
		one, err := renderOne(m)
		if err != nil {
			t.Fatalf("renderOne: %v", err)
		}
		for _, part := range append(r.parts, one) {
			if len(part.blocks) > maxBlocks || len(part.blocks) == 0 {
				t.Fatalf("%d blocks", len(part.blocks))
			}
			if !utf8.ValidString(part.fallback) || utf8.RuneCountInString(part.fallback) > maxFallback {
				t.Fatalf("fallback %q", part.fallback)
			}
			for _, b := range part.blocks {
				raw, _ := json.Marshal(b)
				var got struct {
					Text     *slackapi.TextBlockObject `json:"text"`
					Elements []struct {
						Text slackapi.TextBlockObject `json:"text"`
					} `json:"elements"`
				}
				if err := json.Unmarshal(raw, &got); err != nil {
					t.Fatal(err)
				}
				if got.Text != nil {
					s := got.Text.Text
					if s == "" || strings.TrimSpace(s) == "" || utf8.RuneCountInString(s) > maxSectionText || !utf8.ValidString(s) || strings.ContainsAny(s, "<>") {
						t.Fatalf("section text of %d characters: %q", utf8.RuneCountInString(s), s)
					}
				}
				for _, e := range got.Elements {
					if utf8.RuneCountInString(e.Text.Text) > maxButtonText || e.Text.Text == "" || !utf8.ValidString(e.Text.Text) {
						t.Fatalf("button text %q", e.Text.Text)
					}
				}
			}
		}
	})
}

// FuzzNormalize: whatever people type, the text handed on is valid for the engine's
// command parser when it is a command.
func FuzzNormalize(f *testing.F) {
	for _, s := range []string{"<@UBOT000001> status checkout", "status", "/replay INC-1", "&lt;b&gt;", "<@UBOT000001|bot> help", ""} {
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, text string, direct bool) {
		got := normalize(text, "UBOT000001", direct)
		if strings.HasPrefix(got, "/") && len(got) > 1 && !strings.HasPrefix(text, "/") {
			word, _, _ := strings.Cut(got[1:], " ")
			if !commandWords[word] {
				t.Fatalf("%q became the command %q", text, got)
			}
		}
	})
}
