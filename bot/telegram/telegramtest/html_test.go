package telegramtest

import (
	"reflect"
	"testing"
)

func TestParseHTMLAccepts(t *testing.T) {
	tests := []struct {
		name, in, text string
		entities       []MessageEntity
	}{
		{"plain", "checkout degraded", "checkout degraded", nil},
		{"bold", "<b>Health</b> 23/100", "Health 23/100", []MessageEntity{{Type: "bold", Offset: 0, Length: 6}}},
		{"offsets count UTF-16 units", "🚨 <b>checkout</b>", "🚨 checkout", []MessageEntity{{Type: "bold", Offset: 3, Length: 8}}},
		{"nested", "<i>a<b>b</b></i>", "ab", []MessageEntity{{Type: "italic", Offset: 0, Length: 2}, {Type: "bold", Offset: 1, Length: 1}}},
		{"tag names ignore case", "<B>x</B>", "x", []MessageEntity{{Type: "bold", Offset: 0, Length: 1}}},
		{"empty close tag closes innermost", "<u>x</>", "x", []MessageEntity{{Type: "underline", Offset: 0, Length: 1}}},
		{"spaces in end tag", "<u>x</u  >", "x", []MessageEntity{{Type: "underline", Offset: 0, Length: 1}}},
		{"named references", "&lt;b&gt; &amp; &quot;x&quot;", `<b> & "x"`, nil},
		{"reference without semicolon", "p95 &lt3s", "p95 <3s", nil},
		{"unknown references stay", "AT&T &nbsp; &copy;", "AT&T &nbsp; &copy;", nil},
		{"numeric references", "&#128680;&#x41;", "🚨A", nil},
		{"bare greater-than", "p95 > 3s", "p95 > 3s", nil},
		{"link", `<a href="https://ex.com/?a=1&amp;b=2">run</a>`, "run", []MessageEntity{{Type: "text_link", Offset: 0, Length: 3, URL: "https://ex.com/?a=1&b=2"}}},
		{"link single quotes", `<a href='tg://user?id=42'>Ana</a>`, "Ana", []MessageEntity{{Type: "text_link", Offset: 0, Length: 3, URL: "tg://user?id=42"}}},
		{"unquoted attribute token", `<a href=ex.com>x</a>`, "x", []MessageEntity{{Type: "text_link", Offset: 0, Length: 1, URL: "ex.com"}}},
		{"link without href", "<a>bare</a>", "bare", nil},
		{"unknown attribute ignored", `<b data-x="1">x</b>`, "x", []MessageEntity{{Type: "bold", Offset: 0, Length: 1}}},
		{"spoiler span", `<span class="tg-spoiler">s</span>`, "s", []MessageEntity{{Type: "spoiler", Offset: 0, Length: 1}}},
		{"spoiler tag", "<tg-spoiler>s</tg-spoiler>", "s", []MessageEntity{{Type: "spoiler", Offset: 0, Length: 1}}},
		{"pre with language", `<pre><code class="language-go">x := 1</code></pre>`, "x := 1", []MessageEntity{{Type: "pre", Offset: 0, Length: 6, Language: "go"}}},
		{"pre and plain code", "<pre><code>x</code></pre>", "x", []MessageEntity{{Type: "pre", Offset: 0, Length: 1}, {Type: "code", Offset: 0, Length: 1}}},
		{"code alone drops language", `<code class="language-go">x</code>`, "x", []MessageEntity{{Type: "code", Offset: 0, Length: 1}}},
		{"blockquote", "<blockquote>q</blockquote>", "q", []MessageEntity{{Type: "blockquote", Offset: 0, Length: 1}}},
		{"expandable blockquote", "<blockquote expandable>q</blockquote>", "q", []MessageEntity{{Type: "expandable_blockquote", Offset: 0, Length: 1}}},
		{"custom emoji", `<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>`, "👍", []MessageEntity{{Type: "custom_emoji", Offset: 0, Length: 2, CustomEmojiID: "5368324170671202286"}}},
		{"synonyms", "<strong>a</strong><em>b</em><ins>c</ins><s>d</s><strike>e</strike><del>f</del>", "abcdef", []MessageEntity{
			{Type: "bold", Offset: 0, Length: 1}, {Type: "italic", Offset: 1, Length: 1}, {Type: "underline", Offset: 2, Length: 1},
			{Type: "strikethrough", Offset: 3, Length: 1}, {Type: "strikethrough", Offset: 4, Length: 1}, {Type: "strikethrough", Offset: 5, Length: 1},
		}},
		{"empty tag makes no entity", "<b></b>x", "x", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			text, entities, err := parseHTML(tt.in)
			if err != nil {
				t.Fatalf("parseHTML(%q): %v", tt.in, err)
			}
			if text != tt.text {
				t.Errorf("text = %q, want %q", text, tt.text)
			}
			if !reflect.DeepEqual(entities, tt.entities) {
				t.Errorf("entities = %+v, want %+v", entities, tt.entities)
			}
		})
	}
}

func TestParseHTMLRefuses(t *testing.T) {
	tests := []struct{ in, err string }{
		{"<b>unclosed", `Can't find end tag corresponding to start tag "b"`},
		{"<b><i>x</i>", `Can't find end tag corresponding to start tag "b"`},
		{"p95 < 3s", `Unsupported start tag "" at byte offset 4`},
		{"<p>x</p>", `Unsupported start tag "p" at byte offset 0`},
		{"🚨 <br/>", `Unsupported start tag "br/" at byte offset 5`},
		{"<b>x</i>", `Unmatched end tag at byte offset 4, expected "</b>", found "</i>"`},
		{"x</b>", "Unexpected end tag at byte offset 1"},
		{"<b>x</b", "Unclosed end tag at byte offset 4"},
		{"tail <b", "Unclosed start tag at byte offset 5"},
		{"<span>x</span>", `Tag "span" must have class "tg-spoiler" at byte offset 0`},
		{`<a href=https://ex.com>x</a>`, "Unexpected end of name token at byte offset 8"},
		{`<a href="x>y</a>`, "Unclosed start tag at byte offset 0"},
		{"<i foo>x</i>", `Expected equal sign in declaration of an attribute of the tag "i" at byte offset 0`},
		{"<i =x>x</i>", `Empty attribute name in the tag "i" at byte offset 0`},
		{"<a href=", `Unclosed start tag "a" at byte offset 0`},
	}
	for _, tt := range tests {
		_, _, err := parseHTML(tt.in)
		if err == nil || err.Error() != tt.err {
			t.Errorf("parseHTML(%q) error = %v, want %q", tt.in, err, tt.err)
		}
	}
}

func TestCommandLength(t *testing.T) {
	tests := map[string]int{
		"/status":                     7,
		"/status checkout":            7,
		"/status@alertengine_bot now": 23,
		"/ack@ INC-7F3":               4,
		"/":                           0,
		"status":                      0,
		"/ silence":                   0,
	}
	for text, want := range tests {
		if got := commandLength(text); got != want {
			t.Errorf("commandLength(%q) = %d, want %d", text, got, want)
		}
	}
}
