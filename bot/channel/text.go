package channel

import (
	"strings"
	"unicode"
)

// CleanText makes one line of outside text safe for a platform to show: invalid UTF-8
// replaced; control characters other than tab dropped (a line has no newlines by now);
// and bidirectional embeddings, overrides and isolates dropped, so that text from a
// commit or an alert cannot make what follows it display reversed next to an Approve
// button ("Trojan Source"). Arabic and Hebrew need none of them to display right.
func CleanText(raw string) string {
	raw = strings.ToValidUTF8(raw, "\uFFFD")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t':
			return r
		case unicode.IsControl(r), r >= '\u202A' && r <= '\u202E', r >= '\u2066' && r <= '\u2069':
			return -1
		}
		return r
	}, raw)
}
