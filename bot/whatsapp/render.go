package whatsapp

import (
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/alertengine/alertengine/conversation"
)

// MaxBody is Twilio's limit on one message body (characters; counted here in UTF-16
// code units, which is never fewer).
const MaxBody = 1600

// MaxVariable is the longest value given to a template variable, in characters: the
// strictest of Twilio's documented limits (older pages: 255; current ones: recommended
// under 250). WhatsApp also refuses a variable with a newline, a tab or more than four
// consecutive spaces (Twilio error 63013), so every value is one clean line.
const MaxVariable = 250

// The approval template's variables (the body to register is in the README):
//
//	{{1}} the card's title: "🚨 checkout degraded — INC-7F3"
//	{{2}} the Approve quick reply's id (an approval reference)
//	{{3}} the Reject quick reply's id ("/reject INC-7F3")
//	{{4}} the action the Approve reply approves: "restart_workers", "rollback (theory B)"
//	{{5}} one line of what the card says: health, then the diagnosis
func templateVariables(m conversation.Message, label, approve, reject string) map[string]string {
	var title, action string
	var summary []string
	for _, bl := range m.Blocks {
		switch {
		case bl.Style == conversation.Title && title == "":
			title = bl.Text
		case bl.Style == conversation.Plain || bl.Style == conversation.Bold || bl.Style == conversation.Warning:
			if strings.HasPrefix(bl.Text, "Suggested: ") || strings.HasPrefix(bl.Text, "Approving one ") {
				continue
			}
			summary = append(summary, bl.Text)
		}
	}
	for _, row := range m.Buttons {
		for _, b := range row {
			if b.Data == approve && action == "" {
				action = strings.TrimPrefix(b.Label, "Approve ")
				if th, a, ok := strings.Cut(strings.TrimPrefix(b.Label, "Trust "), ": "); ok && strings.HasPrefix(b.Label, "Trust ") {
					action = a + " (theory " + th + ")"
				}
			}
		}
	}
	if label != "" && !strings.Contains(title, label) {
		title = label + " · " + title
	}
	return map[string]string{"1": oneLine(title, "AlertEngine incident"), "2": approve, "3": reject,
		"4": oneLine(action, "the proposed action"), "5": oneLine(strings.Join(summary, " · "), "see the incident thread")}
}

// oneLine makes v a template variable WhatsApp accepts: whitespace runs (newlines and
// tabs included) become one space, at most MaxVariable characters, never empty.
func oneLine(v, empty string) string {
	v = strings.Join(strings.Fields(strings.ToValidUTF8(v, "\uFFFD")), " ")
	if v == "" {
		return empty
	}
	if r := []rune(v); len(r) > MaxVariable {
		v = strings.TrimSpace(string(r[:MaxVariable-1])) + "…"
	}
	return v
}

// render turns a neutral message into WhatsApp text: titles and bold blocks in *…*,
// muted ones in _…_, code in ```…```. The marker of a styled block is replaced by a
// look-alike inside it, so text cannot end the style early. label (the incident id)
// opens the first line unless the text already names it.
func render(m conversation.Message, label string) string {
	var b strings.Builder
	for i, bl := range m.Blocks {
		if i > 0 {
			b.WriteByte('\n')
		}
		t := strings.ToValidUTF8(strings.TrimRight(bl.Text, " \n"), "\uFFFD")
		switch bl.Style {
		case conversation.Title, conversation.Bold:
			t = wrap(t, "*", "∗")
		case conversation.Muted:
			t = wrap(t, "_", "＿")
		case conversation.Code:
			t = wrap(strings.ReplaceAll(t, "```", "'''"), "```", "")
		}
		b.WriteString(t)
	}
	out := b.String()
	if label != "" && !strings.Contains(out, label) {
		out = label + " · " + out
	}
	return out
}

// wrap styles each line of t with marker (WhatsApp styles do not span lines).
func wrap(t, marker, lookalike string) string {
	lines := strings.Split(t, "\n")
	for i, l := range lines {
		if strings.TrimSpace(l) == "" {
			continue
		}
		if lookalike != "" {
			l = strings.ReplaceAll(l, marker, lookalike)
		}
		lines[i] = marker + l + marker
	}
	return strings.Join(lines, "\n")
}

func units(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// split cuts text into parts of at most limit UTF-16 units, between lines where it can,
// else inside a line at a rune boundary. Nothing is lost: the parts joined with
// newlines are the text.
func split(text string, limit int) []string {
	if units(text) <= limit {
		return []string{text}
	}
	var parts []string
	var cur strings.Builder
	curN := 0
	flush := func() {
		if cur.Len() > 0 {
			parts = append(parts, cur.String())
			cur.Reset()
			curN = 0
		}
	}
	for _, line := range strings.Split(text, "\n") {
		n := units(line)
		if curN > 0 && curN+1+n <= limit {
			cur.WriteByte('\n')
			cur.WriteString(line)
			curN += 1 + n
			continue
		}
		flush()
		for n > limit {
			cut, cn := 0, 0
			for i, r := range line {
				if cn+utf16.RuneLen(r) > limit {
					break
				}
				cn += utf16.RuneLen(r)
				cut = i + utf8.RuneLen(r)
			}
			parts = append(parts, line[:cut])
			line = line[cut:]
			n = units(line)
		}
		cur.WriteString(line)
		curN = n
	}
	flush()
	return parts
}
