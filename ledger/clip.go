package ledger

import (
	"strings"
	"unicode/utf8"
)

// MaxTextRunes bounds every string from outside (a health endpoint, an Alertmanager
// alert, a webhook) before it reaches an entry, a card or a log: entries are kept for
// ever and every replica logs them.
const MaxTextRunes = 300

// Clip returns s as valid UTF-8 on one line (CR, LF and NUL become spaces; invalid bytes
// U+FFFD) and at most n runes, the last being "…" when it was cut. n < 1 is taken as 1.
// It never splits a rune.
func Clip(s string, n int) string {
	n = max(n, 1)
	cut := len(s) > 4*(n+1)
	if cut {
		// Bound the work on huge inputs: n+1 runes take at most that many bytes.
		s = s[:4*(n+1)]
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == 0 {
			return ' '
		}
		return r
	}, s)
	if !cut && utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:min(n-1, len(r))]) + "…"
}

// ClipText is Clip at MaxTextRunes.
func ClipText(s string) string { return Clip(s, MaxTextRunes) }
