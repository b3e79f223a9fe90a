package conversation

import (
	"strings"
	"testing"
)

// TestHelpIsWrittenForItsChannel: the console's /help speaks of its own page (no
// enrollment code, no shell command in backticks); Telegram's keeps /start CODE.
func TestHelpIsWrittenForItsChannel(t *testing.T) {
	t.Parallel()
	text := func(m Message) string {
		var b strings.Builder
		for _, bl := range m.Blocks {
			b.WriteString(bl.Text + "\n")
		}
		return b.String()
	}
	console := text(consoleHelp())
	for _, bad := range []string{"`", "/start", "CODE", "bot enroll"} {
		if strings.Contains(console, bad) {
			t.Errorf("the console's help shows %q, which means nothing there:\n%s", bad, console)
		}
	}
	if !strings.Contains(console, "/status") || !strings.Contains(console, "To") {
		t.Errorf("the console's help does not list the commands and where they go:\n%s", console)
	}
	if tg := text(helpFor(false)); !strings.Contains(tg, "/start CODE") {
		t.Errorf("Telegram's help lost /start CODE:\n%s", tg)
	}
}
