package slack

import (
	"errors"
	"fmt"
	"github.com/alertengine/alertengine/bot/channel"
	"strconv"
	"strings"
	"unicode/utf8"

	slackapi "github.com/slack-go/slack"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/approval"
)

// Slack's Block Kit limits, in characters (what Slack counts) of the text as sent.
const (
	maxBlocks      = 50   // blocks in one message
	maxSectionText = 3000 // a section's text
	maxButtonText  = 75   // a button's label
	maxFallback    = 3000 // the notification text we send beside the blocks
	maxConfirmText = 300  // a confirm dialog's text
	maxToast       = 3000 // an ephemeral answer to a press
)

const ellipsis = "…"

// Errors of rendering: the message cannot be shown as asked, so nothing is sent.
var (
	// ErrButtonData: a button's value is empty, over 2,000 bytes or not UTF-8; Slack
	// would refuse it, or a press would send back something else.
	ErrButtonData = errors.New("slack: button data must be 1 to 2000 bytes of UTF-8")
	// ErrButtonLabel: a button has no label.
	ErrButtonLabel = errors.New("slack: button without a label")
	// ErrEmptyMessage: the message has no text to show (and no image).
	ErrEmptyMessage = errors.New("slack: empty message")
)

// message is one chat.postMessage / chat.update: its blocks and the plain notification
// text Slack shows where blocks cannot be (push notifications, screen readers).
type message struct {
	blocks   []slackapi.Block
	fallback string
}

// rendered is a neutral message as Slack messages: one or more (a message longer than 50
// blocks is split), the buttons on the last, and the image uploaded after them.
type rendered struct {
	parts []message
	image *conversation.Image
}

// render turns msg into what is sent. It refuses, before anything is sent, a message
// Slack would refuse.
func render(msg conversation.Message) (rendered, error) {
	actions, err := renderButtons(msg.Buttons)
	if err != nil {
		return rendered{}, err
	}
	sections := pack(renderLines(msg.Blocks))
	r := rendered{}
	if msg.Image != nil && len(msg.Image.PNG) > 0 {
		r.image = msg.Image
	}
	if len(sections) == 0 && len(actions) == 0 {
		// An image alone would be a file message, which cannot be edited or carry
		// buttons: the engine always sends text with its chart.
		return rendered{}, ErrEmptyMessage
	}
	// Sections fill messages of 50 blocks; the actions go with the last sections.
	var cur []slackapi.Block
	var curText []string
	flush := func() {
		r.parts = append(r.parts, message{blocks: cur, fallback: fallbackOf(curText)})
		cur, curText = nil, nil
	}
	for _, s := range sections {
		if len(cur) == maxBlocks {
			flush()
		}
		cur = append(cur, section(s))
		curText = append(curText, s)
	}
	if len(cur) > 0 && len(cur)+len(actions) > maxBlocks {
		flush()
	}
	cur = append(cur, actions...)
	flush()
	return r, nil
}

// renderOne renders msg as a single message, for an edit: sections that do not fit are
// dropped and a last one says so. The image is left out (an edit keeps the uploaded one).
func renderOne(msg conversation.Message) (message, error) {
	actions, err := renderButtons(msg.Buttons)
	if err != nil {
		return message{}, err
	}
	sections := pack(renderLines(msg.Blocks))
	if len(sections) == 0 && len(actions) == 0 {
		return message{}, ErrEmptyMessage
	}
	if room := maxBlocks - len(actions); len(sections) > room {
		sections = append(sections[:room-1:room-1], "_"+ellipsis+" (shortened: too long for one Slack message)_")
	}
	var blocks []slackapi.Block
	for _, s := range sections {
		blocks = append(blocks, section(s))
	}
	return message{blocks: append(blocks, actions...), fallback: fallbackOf(sections)}, nil
}

func section(text string) slackapi.Block {
	return slackapi.NewSectionBlock(slackapi.NewTextBlockObject(slackapi.MarkdownType, text, false, false), nil, nil)
}

// fallbackOf is a message's notification text: its first line, without the markup.
func fallbackOf(sections []string) string {
	for _, s := range sections {
		first, _, _ := strings.Cut(s, "\n")
		if first = strings.TrimSpace(strings.Trim(first, "*_`")); first != "" {
			return clip(first, maxFallback)
		}
	}
	return "AlertEngine"
}

// renderLines renders every block, line by line, as mrkdwn lines of at most
// maxSectionText characters.
func renderLines(blocks []conversation.Block) []string {
	var out []string
	for _, b := range blocks {
		text := strings.ReplaceAll(b.Text, "\r\n", "\n")
		for _, raw := range strings.Split(text, "\n") {
			out = append(out, renderLine(b.Style, raw))
		}
	}
	return out
}

// delimiters are the mrkdwn markers of each style.
var delimiters = map[conversation.Style]string{
	conversation.Title: "*",
	conversation.Bold:  "*",
	conversation.Code:  "`",
	conversation.Muted: "_",
}

// renderLine renders one line of raw text in style: cleaned, escaped, cut to
// maxSectionText characters with an ellipsis, wrapped in the style's markers. A line that
// contains its style's marker is left unstyled, so it is shown as written rather than
// parsed into something else.
func renderLine(style conversation.Style, raw string) string {
	text := clean(raw)
	if strings.TrimSpace(text) == "" {
		return ""
	}
	d := delimiters[style]
	lead := text[:len(text)-len(strings.TrimLeft(text, " \t"))]
	body := strings.TrimSpace(text)
	if d != "" && strings.Contains(body, d) {
		d = ""
	}
	limit := maxSectionText - 2*utf8.RuneCountInString(d) - utf8.RuneCountInString(lead)
	return lead + d + escapeClip(body, limit) + d
}

// clean is channel.CleanText.
func clean(raw string) string { return channel.CleanText(raw) }

// escapeClip escapes s for mrkdwn (& < >, which Slack reserves for its own markup:
// mentions, links, dates) and cuts the result to at most limit characters, ending with
// an ellipsis when it cut. It cuts between runes and never inside an entity.
func escapeClip(s string, limit int) string {
	var b strings.Builder
	n := 0
	total := escapedLen(s)
	for _, r := range s {
		e := escapeRune(r)
		w := utf8.RuneCountInString(e)
		if total > limit && n+w > limit-1 {
			b.WriteString(ellipsis)
			return b.String()
		}
		b.WriteString(e)
		n += w
	}
	return b.String()
}

func escapeRune(r rune) string {
	switch r {
	case '&':
		return "&amp;"
	case '<':
		return "&lt;"
	case '>':
		return "&gt;"
	}
	return string(r)
}

func escapedLen(s string) int {
	n := 0
	for _, r := range s {
		n += utf8.RuneCountInString(escapeRune(r))
	}
	return n
}

// clip cuts plain text to limit characters with an ellipsis, between runes.
func clip(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	n := 0
	for i := range s {
		if n == limit-1 {
			return s[:i] + ellipsis
		}
		n++
	}
	return s
}

// pack joins lines into section texts of at most maxSectionText characters, without
// blank lines at a section's ends (Slack refuses an empty section).
func pack(lines []string) []string {
	var out []string
	var cur []string
	size := 0
	flush := func() {
		for len(cur) > 0 && cur[len(cur)-1] == "" {
			cur = cur[:len(cur)-1]
		}
		if len(cur) > 0 {
			out = append(out, strings.Join(cur, "\n"))
		}
		cur, size = nil, 0
	}
	for _, l := range lines {
		if len(cur) == 0 && l == "" {
			continue
		}
		n := utf8.RuneCountInString(l)
		if len(cur) > 0 && size+1+n > maxSectionText {
			flush()
			if l == "" {
				continue
			}
		}
		if len(cur) > 0 {
			size++
		}
		cur = append(cur, l)
		size += n
	}
	flush()
	return out
}

// renderButtons lays the buttons out as actions blocks, one per row of at most three,
// refusing values Slack would refuse or change. An approval is the primary button; one
// the engine marks with a Confirm question (a high-risk action) asks it first.
func renderButtons(rows [][]conversation.Button) ([]slackapi.Block, error) {
	var out []slackapi.Block
	for ri, row := range rows {
		for start := 0; start < len(row); start += conversation.MaxButtonsPerRow {
			end := min(start+conversation.MaxButtonsPerRow, len(row))
			var elems []slackapi.BlockElement
			for i, b := range row[start:end] {
				if err := checkButtonData(b.Data); err != nil {
					return nil, fmt.Errorf("button %q: %w", b.Label, err)
				}
				label := strings.Join(strings.Fields(clean(b.Label)), " ")
				if label == "" {
					return nil, fmt.Errorf("button with data %q: %w", b.Data, ErrButtonLabel)
				}
				id := "ae:" + strconv.Itoa(ri) + ":" + strconv.Itoa(start+i)
				btn := slackapi.NewButtonBlockElement(id, b.Data, slackapi.NewTextBlockObject(slackapi.PlainTextType, clip(label, maxButtonText), true, false))
				if approval.ValidRef(b.Data) {
					btn.Style = slackapi.StylePrimary
				}
				if b.Confirm != "" {
					btn.Confirm = confirmOf(b.Confirm)
				}
				elems = append(elems, btn)
			}
			out = append(out, slackapi.NewActionBlock("ae:row:"+strconv.Itoa(ri)+":"+strconv.Itoa(start), elems...))
		}
	}
	if len(out) > maxBlocks-1 {
		return nil, fmt.Errorf("slack: %d rows of buttons do not fit in one message", len(out))
	}
	return out, nil
}

// confirmOf is the dialog Slack shows before a high-risk approval press is sent.
func confirmOf(question string) *slackapi.ConfirmationBlockObject {
	text := clip(strings.Join(strings.Fields(clean(question)), " "), maxConfirmText)
	return slackapi.NewConfirmationBlockObject(
		slackapi.NewTextBlockObject(slackapi.PlainTextType, "Approve this action?", false, false),
		slackapi.NewTextBlockObject(slackapi.PlainTextType, text, false, false),
		slackapi.NewTextBlockObject(slackapi.PlainTextType, "Approve", false, false),
		slackapi.NewTextBlockObject(slackapi.PlainTextType, "Cancel", false, false),
	)
}

// checkButtonData accepts what Slack carries unchanged as a button value: 1 to 2,000
// bytes of valid UTF-8.
func checkButtonData(data string) error {
	if data == "" || len(data) > MaxButtonData || !utf8.ValidString(data) {
		return ErrButtonData
	}
	return nil
}
