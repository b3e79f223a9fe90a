package telegram

import (
	"errors"
	"fmt"
	"github.com/alertengine/alertengine/bot/channel"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/alertengine/alertengine/conversation"
)

// Telegram's limits, in UTF-16 code units of the text a user sees (after HTML parsing),
// which is how Telegram counts.
const (
	maxText    = 4096
	maxCaption = 1024
	maxToast   = 200 // answerCallbackQuery text, in characters
	maxTopic   = 128 // forum topic name
)

// ellipsis marks text that was cut.
const ellipsis = "…"

// Errors of rendering: the message cannot be shown as asked, so nothing is sent.
var (
	// ErrButtonData: a button's data is empty, over 64 bytes or not UTF-8; Telegram would
	// refuse it, or a press would send back something else.
	ErrButtonData = errors.New("telegram: button data must be 1 to 64 bytes of UTF-8")
	// ErrButtonLabel: a button has no label.
	ErrButtonLabel = errors.New("telegram: button without a label")
	// ErrEmptyMessage: the message has no text to show (and no image).
	ErrEmptyMessage = errors.New("telegram: empty message")
)

// line is one line of rendered HTML, complete in itself (every tag it opens it closes), so
// a message can be cut between any two lines.
type line struct {
	html string
	// n is the line's length as Telegram counts it: UTF-16 code units of the visible text.
	n int
	// blockStart says the line begins a block: the preferred place to split.
	blockStart bool
}

// keyboard is an inline keyboard as the Bot API takes it. It is its own type rather than
// models.InlineKeyboardMarkup because that one always encodes an empty copy_text, which
// Telegram refuses (BUTTON_COPY_TEXT_INVALID).
type keyboard struct {
	InlineKeyboard [][]button `json:"inline_keyboard"`
}

type button struct {
	Text         string `json:"text"`
	CallbackData string `json:"callback_data"`
}

// rendered is a neutral message as Telegram messages: an optional photo with its
// caption, then zero or more text parts; the keyboard goes on the last message sent.
type rendered struct {
	photo   []byte
	caption string
	parts   []string
	kb      *keyboard
}

// render turns msg into what is sent. It refuses, before anything is sent, a message
// Telegram would refuse or show wrongly.
func render(msg conversation.Message) (rendered, error) {
	kb, err := renderKeyboard(msg.Buttons)
	if err != nil {
		return rendered{}, err
	}
	lines := renderLines(msg.Blocks, maxText)
	r := rendered{kb: kb}
	if msg.Image == nil || len(msg.Image.PNG) == 0 {
		r.parts = split(lines, maxText)
		if len(r.parts) == 0 {
			return rendered{}, ErrEmptyMessage
		}
		return r, nil
	}
	r.photo = msg.Image.PNG
	if whole := trimBlank(lines); size(whole) <= maxCaption {
		r.caption = joinHTML(whole)
		return r, nil
	}
	r.caption = shortCaption(msg)
	r.parts = split(lines, maxText)
	return r, nil
}

// renderOne renders msg as a single message of at most limit units, for an edit: lines
// that do not fit are dropped and an ellipsis line says so.
func renderOne(msg conversation.Message, limit int) (string, *keyboard, error) {
	kb, err := renderKeyboard(msg.Buttons)
	if err != nil {
		return "", nil, err
	}
	lines := trimBlank(renderLines(msg.Blocks, limit))
	if len(lines) == 0 {
		return "", nil, ErrEmptyMessage
	}
	if size(lines) <= limit {
		return joinHTML(lines), kb, nil
	}
	// Cut lines so that even the first one leaves room for the ellipsis line.
	lines = trimBlank(renderLines(msg.Blocks, limit-2))
	total := 0
	keep := 0
	for i, l := range lines {
		add := l.n
		if i > 0 {
			add++
		}
		if total+add+2 > limit { // room for "\n…"
			break
		}
		total += add
		keep = i + 1
	}
	kept := trimBlank(lines[:keep])
	kept = append(kept, line{html: ellipsis, n: 1})
	return joinHTML(kept), kb, nil
}

// shortCaption is the caption of a photo whose text follows it: the image's Alt text,
// else the message's first line.
func shortCaption(msg conversation.Message) string {
	if alt := strings.TrimSpace(msg.Image.Alt); alt != "" {
		return renderLine(conversation.Muted, firstLine(alt), maxCaption).html
	}
	for _, b := range msg.Blocks {
		if t := strings.TrimSpace(b.Text); t != "" {
			return renderLine(b.Style, firstLine(t), maxCaption).html
		}
	}
	return ""
}

func firstLine(s string) string {
	first, _, _ := strings.Cut(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	return first
}

// renderLines renders every block, line by line, each line cut to limit.
func renderLines(blocks []conversation.Block, limit int) []line {
	var out []line
	for _, b := range blocks {
		text := strings.ReplaceAll(b.Text, "\r\n", "\n")
		for i, raw := range strings.Split(text, "\n") {
			l := renderLine(b.Style, raw, limit)
			l.blockStart = i == 0
			out = append(out, l)
		}
	}
	return out
}

// renderLine renders one line of raw text in style: cleaned, cut to limit units with an
// ellipsis, escaped and wrapped in the style's tag.
func renderLine(style conversation.Style, raw string, limit int) line {
	text := cut(clean(raw), limit)
	n := units(text)
	if strings.TrimSpace(text) == "" {
		return line{html: text, n: n}
	}
	esc := escape(text)
	switch style {
	case conversation.Title, conversation.Bold:
		esc = "<b>" + esc + "</b>"
	case conversation.Code:
		esc = "<code>" + esc + "</code>"
	case conversation.Muted:
		esc = "<i>" + esc + "</i>"
	}
	return line{html: esc, n: n}
}

// clean is channel.CleanText.
func clean(raw string) string { return channel.CleanText(raw) }

// cut shortens s to at most limit UTF-16 units, ending with an ellipsis when it cut.
func cut(s string, limit int) string {
	if units(s) <= limit {
		return s
	}
	n := 0
	for i, r := range s {
		n += utf16.RuneLen(r)
		if n > limit-1 {
			return s[:i] + ellipsis
		}
	}
	return s
}

// escape makes text literal in Telegram HTML.
func escape(s string) string {
	return htmlEscaper.Replace(s)
}

var htmlEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;")

// units is the length of s as Telegram counts it: UTF-16 code units.
func units(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// size is the length of lines joined by newlines.
func size(lines []line) int {
	if len(lines) == 0 {
		return 0
	}
	n := len(lines) - 1
	for _, l := range lines {
		n += l.n
	}
	return n
}

func blank(l line) bool { return strings.TrimSpace(l.html) == "" }

// trimBlank drops blank lines at both ends (Telegram would strip them anyway).
func trimBlank(lines []line) []line {
	for len(lines) > 0 && blank(lines[0]) {
		lines = lines[1:]
	}
	for len(lines) > 0 && blank(lines[len(lines)-1]) {
		lines = lines[:len(lines)-1]
	}
	return lines
}

func joinHTML(lines []line) string {
	s := make([]string, len(lines))
	for i, l := range lines {
		s[i] = l.html
	}
	return strings.Join(s, "\n")
}

// split packs lines into parts of at most limit units. A part ends between lines; when
// the line that does not fit is inside a block, the part ends instead at the last block
// boundary that keeps it at least half full, so blocks stay together where they can.
func split(lines []line, limit int) []string {
	var parts []string
	var cur []line
	flush := func(n int) {
		if p := trimBlank(cur[:n]); len(p) > 0 {
			parts = append(parts, joinHTML(p))
		}
		cur = append([]line(nil), cur[n:]...)
	}
	for _, l := range lines {
		for len(cur) > 0 && size(cur)+1+l.n > limit {
			at := len(cur)
			if !l.blockStart {
				for k := len(cur) - 1; k > 0; k-- {
					if cur[k].blockStart && size(cur[:k]) >= limit/2 {
						at = k
						break
					}
				}
			}
			flush(at)
		}
		cur = append(cur, l)
	}
	flush(len(cur))
	return parts
}

// renderKeyboard lays the buttons out in rows of at most three, refusing data Telegram
// would refuse or change.
func renderKeyboard(rows [][]conversation.Button) (*keyboard, error) {
	var out [][]button
	for _, row := range rows {
		for start := 0; start < len(row); start += conversation.MaxButtonsPerRow {
			end := min(start+conversation.MaxButtonsPerRow, len(row))
			var r []button
			for _, b := range row[start:end] {
				if err := checkButtonData(b.Data); err != nil {
					return nil, fmt.Errorf("button %q: %w", b.Label, err)
				}
				label := strings.Join(strings.Fields(clean(b.Label)), " ")
				if label == "" {
					return nil, fmt.Errorf("button with data %q: %w", b.Data, ErrButtonLabel)
				}
				r = append(r, button{Text: label, CallbackData: b.Data})
			}
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, nil
	}
	return &keyboard{InlineKeyboard: out}, nil
}

// checkButtonData accepts what Telegram carries unchanged as callback_data: 1 to 64 bytes
// of valid UTF-8.
func checkButtonData(data string) error {
	if data == "" || len(data) > MaxButtonData || !utf8.ValidString(data) {
		return ErrButtonData
	}
	return nil
}
