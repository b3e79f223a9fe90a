package conversation

import (
	"context"
	"errors"
)

// Channel names a chat platform.
type Channel string

// Channels.
const (
	Telegram Channel = "telegram"
	WhatsApp Channel = "whatsapp"
	Console  Channel = "console"
)

// Chat is a place messages go: a Telegram chat id, a WhatsApp number, a console session.
type Chat struct {
	Channel Channel `json:"channel"`
	ID      string  `json:"id"`
}

// Thread is where an incident's conversation lives inside a chat: a forum topic when the
// chat has topics, otherwise the reply chain of a root message.
type Thread struct {
	Chat  Chat   `json:"chat"`
	Topic string `json:"topic,omitempty"` // forum topic id
	Root  string `json:"root,omitempty"`  // id of the message the thread hangs from
}

// MessageRef identifies a message the bot sent.
type MessageRef struct {
	Chat Chat   `json:"chat"`
	ID   string `json:"id"`
}

// User is a chat identity: the platform's stable user id and, for display, its name.
type User struct {
	Channel Channel
	ID      string
	Name    string
}

// Style says how a block is rendered.
type Style int

// Block styles.
const (
	Plain   Style = iota
	Title         // the first line of a card (bold)
	Bold          // emphasised
	Code          // monospace (a hash, a command)
	Warning       // a warning line (⚠️ already in the text)
	Muted         // secondary (italic)
)

// Block is one paragraph of a message. Text is raw: adapters escape it for their platform.
type Block struct {
	Style Style
	Text  string
}

// Button is a choice under a message. Data is what a press sends back: an approval
// reference ("ap:…") or a command line ("/details INC-7F3"). The engine keeps it within
// the transport's Capabilities.MaxButtonData.
type Button struct {
	Label string
	Data  string
	// Confirm, when set, is the question a platform that can ask before sending a press
	// (Slack's confirm dialog) asks first; the engine sets it on approvals of high-risk
	// actions. Platforms that cannot ask ignore it: the approval rules are the same.
	Confirm string
}

// MaxButtonsPerRow is the widest row a message may carry.
const MaxButtonsPerRow = 3

// Image is a picture sent with a message (the incident card's chart).
type Image struct {
	PNG []byte
	Alt string
}

// Message is the neutral form of everything the bot says.
type Message struct {
	Blocks  []Block
	Buttons [][]Button
	Image   *Image
}

// Text returns the message as plain text, blocks separated by newlines (for logs, the
// console and platforms without formatting).
func (m Message) Text() string {
	s := ""
	for i, b := range m.Blocks {
		if i > 0 {
			s += "\n"
		}
		s += b.Text
	}
	return s
}

// Inbound is something a person did in a chat.
type Inbound struct {
	Chat Chat
	User User
	// Text is what was typed ("/status checkout", "why?"); empty for a press.
	Text string
	// Data is the pressed button's data; empty for typed text.
	Data string
	// Topic is the forum topic the message was posted in, if any.
	Topic string
	// ReplyTo is the id of the message this one replies to, if any.
	ReplyTo string
	// MessageID is the id of the inbound message itself (so replies can quote it).
	MessageID string
	// Direct is set by the adapter when the chat is one-to-one between the person and
	// the bot (a private Telegram chat, a WhatsApp number, a console session): free text
	// there is addressed to the bot, so it is always answered.
	Direct bool
}

// Pressed reports whether the inbound is a button press.
func (in Inbound) Pressed() bool { return in.Data != "" }

// Reply is the engine's direct answer to one inbound event. Messages are posted by the
// engine itself through the Transport (so it can remember which incident each belongs
// to); Toast is the short notice an adapter shows the person who pressed a button
// (Telegram's answerCallbackQuery text). Every press gets a non-empty Toast.
type Reply struct {
	Toast string
}

// Handler takes inbound events; the engine implements it and adapters call it.
type Handler interface {
	Handle(ctx context.Context, in Inbound) (Reply, error)
}

// Capabilities are what a platform can do. The engine decides by them, never by the
// channel's name, so a new adapter needs no change to the core.
type Capabilities struct {
	// Name is the platform as people write it ("Telegram", "WhatsApp", "the console"):
	// the engine names where a decision was made when a tenant's incidents live in
	// several chat apps. Empty: the channel's own name.
	Name string
	// Buttons: every button of a message is shown and a press comes back as Inbound.Data.
	// Without it the engine writes each button's typed alternative into the text (a
	// one-time reply code for an approval, the command word otherwise); the adapter may
	// still offer some of them natively (WhatsApp's quick replies).
	Buttons bool
	// MaxButtonData is the largest Button.Data the platform carries back, in bytes
	// (Telegram: 64); 0 is no limit. A longer button is replaced by its typed alternative.
	MaxButtonData int
	// Direct: the bot can write to a person in a one-to-one chat whose id is their user
	// id (escalation direct messages go there).
	Direct bool
	// Media: messages may carry an Image; without it the engine leaves images out.
	Media bool
	// Threads: the platform groups an incident's messages (forum topics, reply chains),
	// so free text outside a known thread is not about an incident. Without it every
	// message is addressed to the bot and free text from a person belongs to their most
	// recent incident (README, "WhatsApp").
	Threads bool
	// NoEdit: the platform cannot change a sent message; Edit sends the update, the
	// message's last block, as a new message instead (WhatsApp). The engine leaves out
	// the edits that would only repeat what the thread is told anyway.
	NoEdit bool
	// Words: people type commands as bare words without a slash ("STATUS checkout",
	// "JOIN CODE" to enroll), so help lists them that way.
	Words bool
}

// Transport delivers messages to one platform. Adapters implement it; the engine uses it
// for everything it says: cards, answers, stage changes, escalations, edits. Adapters
// also normalise what comes in: commands reach the engine as "/name args" and one-to-one
// chats are marked Inbound.Direct.
type Transport interface {
	Channel() Channel
	// Capabilities says what the platform can do; it does not change while the
	// transport is in use.
	Capabilities() Capabilities
	// OpenThread starts an incident's thread in chat with msg as its first message: a
	// forum topic titled title where the chat has topics, otherwise a root message.
	OpenThread(ctx context.Context, chat Chat, title string, msg Message) (Thread, MessageRef, error)
	// Post sends msg into a thread: into th.Topic when set, as a reply to th.Root when set
	// (both may be), or as a plain message in th.Chat when neither is.
	Post(ctx context.Context, th Thread, msg Message) (MessageRef, error)
	// Edit replaces a sent message's text and buttons (an empty Buttons removes them).
	Edit(ctx context.Context, ref MessageRef, msg Message) error
}

// ErrNoTransport: no adapter is configured for a channel.
var ErrNoTransport = errors.New("no transport for channel")
