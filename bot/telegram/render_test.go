package telegram

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/alertengine/alertengine/conversation"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// fakePNG stands for the chart: a PNG signature is enough for rendering; the fake decodes
// real images, so delivery tests use tinyPNG.
var fakePNG = []byte("\x89PNG\r\n\x1a\n")

func incidentCard() conversation.Message {
	return conversation.Message{
		Blocks: []conversation.Block{
			{Style: conversation.Title, Text: "🚨 checkout degraded — INC-7F3"},
			{Text: "Health 23/100 · P95 2.8 s · errors 19% · trend degrading"},
			{Style: conversation.Bold, Text: "Both lenses agree (87%): database connection pool exhausted …"},
			{Text: `Recent deploy: 3 min ago a1b2c3d "Fix checkout query isolation level" (john, +12/−3)`},
			{Style: conversation.Warning, Text: "⚠️ touched database/query files"},
			{Text: "Suggested: restart_workers"},
			{Style: conversation.Muted, Text: "Nothing runs without your approval."},
		},
		Buttons: [][]conversation.Button{{
			{Label: "Approve restart_workers", Data: "ap:Q2hlY2tvdXRJbmNpZGVudA"},
			{Label: "Reject", Data: "/reject INC-7F3"},
			{Label: "Details", Data: "/details INC-7F3"},
		}},
	}
}

func dissentCard() conversation.Message {
	return conversation.Message{
		Blocks: []conversation.Block{
			{Style: conversation.Title, Text: "🚨 payments degraded — INC-9A1"},
			{Style: conversation.Bold, Text: "The lenses disagree."},
			{Text: "A (72%): connection pool exhausted after deploy 9f8e7d6\nCheck: pool wait time, active connections"},
			{Text: "B (64%): upstream card processor timing out\nCheck: processor latency, 504s from the gateway"},
			{Style: conversation.Code, Text: "restart_workers | failover_processor"},
			{Style: conversation.Muted, Text: "Approving one voids the other. Nothing runs without your approval."},
		},
		Buttons: [][]conversation.Button{
			{{Label: "Trust A: restart_workers", Data: "ap:AAAAAAAAAAAAAAAAAAAAAA"}, {Label: "Trust B: failover_processor", Data: "ap:BBBBBBBBBBBBBBBBBBBBBB"}},
			{{Label: "Reject", Data: "/reject INC-9A1"}},
		},
	}
}

// longTimeline is a replay far longer than one message.
func longTimeline() conversation.Message {
	blocks := []conversation.Block{{Style: conversation.Title, Text: "Timeline of INC-7F3 — checkout"}}
	stages := []string{"DETECTED", "PROPOSED", "VALIDATED", "AUTHORIZED", "EXECUTED"}
	for i := range 60 {
		blocks = append(blocks, conversation.Block{Text: fmt.Sprintf(
			"%02d:%02d:%02d %s by policy/council (confidence 0.%02d, policy v3)\nreason: p95 %d ms over threshold; window %d of the rolling baseline",
			9+i/60, i%60, (i*7)%60, stages[i%len(stages)], 50+i%50, 900+i*13, i)})
	}
	blocks = append(blocks, conversation.Block{Style: conversation.Muted, Text: "hash chain verified: 60 entries"})
	return conversation.Message{Blocks: blocks, Buttons: [][]conversation.Button{{{Label: "Export", Data: "/export INC-7F3"}}}}
}

// hostileCommit is a commit message of 5,000 characters on one line.
var hostileCommit = "fix: " + strings.Repeat("<b>x</b>&amp;", 384) + "TAIL"

func hostile() conversation.Message {
	return conversation.Message{
		Blocks: []conversation.Block{
			{Style: conversation.Title, Text: `<b>x</b><script>alert("pwned")</script>`},
			{Style: conversation.Code, Text: hostileCommit},
			{Text: "RTL: مرحبا بالعالم — שלום עולם \u202eevil\u202c"},
			{Style: conversation.Bold, Text: "emoji: 🔥🚨👩‍💻🇿🇼 and a literal &amp; &lt;tag&gt; &#65;"},
			{Style: conversation.Muted, Text: `quotes " ' and a bare & and <unclosed`},
			{Text: "control\x00chars\x1b[31m and bad utf8 \xff"},
		},
		Buttons: [][]conversation.Button{{{Label: "<b>Approve</b> & go", Data: "ap:<script>&amp;\"'"}}},
	}
}

func withImage(m conversation.Message, alt string) conversation.Message {
	m.Image = &conversation.Image{PNG: fakePNG, Alt: alt}
	return m
}

func manyButtons() conversation.Message {
	var row []conversation.Button
	for i := range 7 {
		row = append(row, conversation.Button{Label: fmt.Sprintf("Option %d", i+1), Data: fmt.Sprintf("/pick %d", i+1)})
	}
	return conversation.Message{Blocks: []conversation.Block{{Text: "Pick one"}}, Buttons: [][]conversation.Button{row}}
}

func renderCases() []struct {
	name string
	msg  conversation.Message
} {
	return []struct {
		name string
		msg  conversation.Message
	}{
		{"incident_card", incidentCard()},
		{"dissent_card", dissentCard()},
		{"long_timeline", longTimeline()},
		{"hostile", hostile()},
		{"card_with_chart", withImage(incidentCard(), "")},
		{"long_with_chart", withImage(longTimeline(), "p95 and 5xx of checkout, last 30 minutes")},
		{"seven_buttons", manyButtons()},
	}
}

// golden renders r the way the golden files show it.
func golden(t *testing.T, r rendered) []byte {
	t.Helper()
	var b bytes.Buffer
	if r.photo != nil {
		fmt.Fprintf(&b, "=== photo (%d bytes), caption (%d characters)\n%s\n", len(r.photo), visibleLen(t, r.caption), r.caption)
	}
	for i, p := range r.parts {
		fmt.Fprintf(&b, "=== part %d of %d (%d characters)\n%s\n", i+1, len(r.parts), visibleLen(t, p), p)
	}
	b.WriteString("=== keyboard\n")
	if r.kb == nil {
		b.WriteString("none\n")
	} else {
		enc := json.NewEncoder(&b)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r.kb); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

// visibleLen is what Telegram counts: UTF-16 units of the text once the HTML is parsed.
// Rendering only produces <b>, <i>, <code> and the four escapes.
func visibleLen(t *testing.T, html string) int {
	t.Helper()
	s := html
	for _, tag := range []string{"<b>", "</b>", "<i>", "</i>", "<code>", "</code>"} {
		s = strings.ReplaceAll(s, tag, "")
	}
	if strings.ContainsAny(s, "<>") {
		t.Errorf("unescaped < or > in %q", s)
	}
	s = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&quot;", `"`, "&amp;", "&").Replace(s)
	return units(s)
}

func TestRenderGolden(t *testing.T) {
	for _, tt := range renderCases() {
		t.Run(tt.name, func(t *testing.T) {
			r, err := render(tt.msg)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			got := golden(t, r)
			path := filepath.Join("testdata", "render", tt.name+".golden")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("rendering changed (-golden +got); if intended, go test -update:\n%s", diff)
			}
		})
	}
}

func TestRenderLimits(t *testing.T) {
	for _, tt := range renderCases() {
		t.Run(tt.name, func(t *testing.T) {
			r, err := render(tt.msg)
			if err != nil {
				t.Fatal(err)
			}
			if n := visibleLen(t, r.caption); n > maxCaption {
				t.Errorf("caption is %d characters, over %d", n, maxCaption)
			}
			for i, p := range r.parts {
				if n := visibleLen(t, p); n > maxText || n == 0 {
					t.Errorf("part %d is %d characters, want 1 to %d", i+1, n, maxText)
				}
			}
			for _, row := range buttonsOf(r.kb) {
				if len(row) > conversation.MaxButtonsPerRow {
					t.Errorf("row of %d buttons", len(row))
				}
			}
		})
	}
}

func buttonsOf(k *keyboard) [][]button {
	if k == nil {
		return nil
	}
	return k.InlineKeyboard
}

func TestRenderSplitsBetweenBlocks(t *testing.T) {
	r, err := render(longTimeline())
	if err != nil {
		t.Fatal(err)
	}
	if len(r.parts) < 2 {
		t.Fatalf("a %d-block timeline fits in %d part(s)", len(longTimeline().Blocks), len(r.parts))
	}
	// Every timeline block is two lines; a part that ends between them would end with a
	// time line and the next one start with "reason:".
	for i, p := range r.parts[1:] {
		if strings.HasPrefix(p, "reason:") {
			t.Errorf("part %d starts in the middle of a block: %.40q", i+2, p)
		}
	}
}

func TestRenderCutsOneLongLine(t *testing.T) {
	r, err := render(hostile())
	if err != nil {
		t.Fatal(err)
	}
	all := strings.Join(r.parts, "\n")
	if strings.Contains(all, "TAIL") {
		t.Error("the end of a 5,000-character line survived: it was not cut")
	}
	if !strings.Contains(all, "…</code>") {
		t.Error("the cut line does not end with an ellipsis inside its <code>")
	}
	// Cutting never leaves half an escape: every & starts one of the four entities.
	rest := all
	for {
		i := strings.IndexByte(rest, '&')
		if i < 0 {
			break
		}
		rest = rest[i:]
		if !strings.HasPrefix(rest, "&amp;") && !strings.HasPrefix(rest, "&lt;") && !strings.HasPrefix(rest, "&gt;") && !strings.HasPrefix(rest, "&quot;") {
			t.Fatalf("broken entity at %.12q", rest)
		}
		rest = rest[1:]
	}
}

func TestRenderRefuses(t *testing.T) {
	tests := []struct {
		name string
		msg  conversation.Message
		want error
	}{
		{"data over 64 bytes", conversation.Message{Blocks: []conversation.Block{{Text: "x"}},
			Buttons: [][]conversation.Button{{{Label: "Approve", Data: "ap:" + strings.Repeat("A", 62)}}}}, ErrButtonData},
		{"64 multibyte bytes plus one", conversation.Message{Blocks: []conversation.Block{{Text: "x"}},
			Buttons: [][]conversation.Button{{{Label: "Approve", Data: strings.Repeat("é", 32) + "x"}}}}, ErrButtonData},
		{"empty data", conversation.Message{Blocks: []conversation.Block{{Text: "x"}},
			Buttons: [][]conversation.Button{{{Label: "Approve"}}}}, ErrButtonData},
		{"data not UTF-8", conversation.Message{Blocks: []conversation.Block{{Text: "x"}},
			Buttons: [][]conversation.Button{{{Label: "Approve", Data: "ap:\xff"}}}}, ErrButtonData},
		{"no label", conversation.Message{Blocks: []conversation.Block{{Text: "x"}},
			Buttons: [][]conversation.Button{{{Label: " \n", Data: "/help"}}}}, ErrButtonLabel},
		{"no text", conversation.Message{Blocks: []conversation.Block{{Text: " \n "}}}, ErrEmptyMessage},
		{"nothing", conversation.Message{}, ErrEmptyMessage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := render(tt.msg); !errors.Is(err, tt.want) {
				t.Errorf("render = %v, want %v", err, tt.want)
			}
		})
	}
	// Exactly 64 bytes is Telegram's limit and allowed.
	ok := conversation.Message{Blocks: []conversation.Block{{Text: "x"}},
		Buttons: [][]conversation.Button{{{Label: "Approve", Data: "ap:" + strings.Repeat("A", 61)}}}}
	if _, err := render(ok); err != nil {
		t.Errorf("64-byte data refused: %v", err)
	}
}

func TestRenderOneForEdits(t *testing.T) {
	text, kb, err := renderOne(longTimeline(), maxText)
	if err != nil {
		t.Fatal(err)
	}
	if n := visibleLen(t, text); n > maxText {
		t.Errorf("edit text is %d characters", n)
	}
	if !strings.HasSuffix(text, "\n"+ellipsis) {
		t.Errorf("a shortened edit does not end with an ellipsis line: …%q", text[len(text)-20:])
	}
	if kb == nil || kb.InlineKeyboard[0][0].CallbackData != "/export INC-7F3" {
		t.Errorf("keyboard = %+v", kb)
	}
	caption, _, err := renderOne(longTimeline(), maxCaption)
	if err != nil {
		t.Fatal(err)
	}
	if n := visibleLen(t, caption); n > maxCaption {
		t.Errorf("edit caption is %d characters", n)
	}
}

func TestRenderOneKeepsAFirstLineAtTheLimit(t *testing.T) {
	msg := conversation.Message{Blocks: []conversation.Block{
		{Text: strings.Repeat("a", maxCaption)},
		{Text: "second line"},
	}}
	caption, _, err := renderOne(msg, maxCaption)
	if err != nil {
		t.Fatal(err)
	}
	if n := visibleLen(t, caption); n > maxCaption || !strings.HasPrefix(caption, "aaaa") || !strings.HasSuffix(caption, "\n"+ellipsis) {
		t.Errorf("caption of %d characters: %.10q…%q", n, caption, caption[max(0, len(caption)-10):])
	}
}
