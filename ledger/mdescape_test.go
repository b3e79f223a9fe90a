package ledger

import "testing"

// TestReportTextKeepsAngleBracketsReadable: the Markdown report escapes what would be
// HTML or break its table with Markdown's backslashes, never with HTML entities that a
// plain-text reader sees as "&lt;".
func TestReportTextKeepsAngleBracketsReadable(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"p95 < 300 ms":           `p95 \< 300 ms`,
		"<script>x</script> | y": `\<script\>x\</script\> \| y`,
		"a\nb `c`":               "a b 'c'",
	} {
		if got := mdEscape(in); got != want {
			t.Errorf("mdEscape(%q) = %q, want %q", in, got, want)
		}
	}
}
