package whatsapp

import (
	"strings"
	"unicode/utf8"
)

// commandWords are the commands people type on WhatsApp, without a slash (README,
// "WhatsApp"), and the words of the typed alternatives the engine offers ("APPROVE 7F3-K9").
var commandWords = map[string]string{
	"start": "start", "join": "start", "help": "help", "status": "status", "incidents": "incidents",
	"replay": "replay", "ack": "ack", "silence": "silence", "commits": "commits", "details": "details",
	"reject": "reject", "approve": "approve", "reissue": "reissue",
}

// maxWords bounds the text read for a command word.
const maxWords = 4096

// Command turns a typed WhatsApp command into the engine's command line: "STATUS
// checkout" → "/status checkout", "JOIN ABCD" → "/start ABCD", "/help" stays. ok is false
// for text that is not a command (a question), which is returned trimmed.
func Command(text string) (line string, ok bool) {
	text = strings.TrimSpace(strings.ToValidUTF8(text, "\uFFFD"))
	if len(text) > maxWords {
		return text, false
	}
	if strings.HasPrefix(text, "/") {
		return text, utf8.RuneCountInString(text) > 1
	}
	first, rest, _ := strings.Cut(text, " ")
	first, _, _ = strings.Cut(first, "\n")
	word := strings.ToLower(strings.TrimRight(first, ".!:,"))
	name, known := commandWords[word]
	if !known {
		return text, false
	}
	if len(first) < len(text) {
		rest = strings.Join(strings.Fields(text[len(first):]), " ")
	}
	return strings.TrimSpace("/" + name + " " + rest), true
}
