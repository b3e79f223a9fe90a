// Package conversation is the chat-agnostic core of AlertEngine: inbound events (a
// detection, a stage change, a typed command, free text in a thread, a button press)
// become outbound messages in a neutral model — text blocks, rows of buttons, an optional
// image, a thread — that the adapters (bot/telegram, bot/whatsapp, bot/console) only
// render and transport.
//
// A button press goes through the same path as a typed command: a button's data is either
// an approval reference ("ap:" + 22 characters) or a command line ("/details INC-7F3").
// Every question and answer in a thread is a ledger entry.
package conversation
