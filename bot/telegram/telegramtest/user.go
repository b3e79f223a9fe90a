package telegramtest

import "strconv"

// SendOption places a user's message.
type SendOption func(*sendOptions)

type sendOptions struct {
	thread  int
	replyTo int
}

// InTopic sends the message into the forum topic threadID (a message_thread_id the bot got
// from createForumTopic).
func InTopic(threadID int) SendOption { return func(o *sendOptions) { o.thread = threadID } }

// ReplyTo makes the message a reply to messageID of the same chat (typically one of the
// bot's). In a forum the reply lands in that message's topic.
func ReplyTo(messageID int) SendOption { return func(o *sendOptions) { o.replyTo = messageID } }

// SendText acts as user from writing text in chatID and queues the message update the bot
// will receive; it returns the update_id. A text starting with a /command (also
// /command@botname) carries a bot_command entity. A reply carries reply_to_message (the
// replied message as it now stands); a message in a topic carries message_thread_id,
// is_topic_message and, as in Telegram, reply_to_message set to the topic's opening service
// message when it replies to nothing else.
func (s *Server) SendText(chatID int64, from User, text string, opts ...SendOption) int64 {
	s.t.Helper()
	var o sendOptions
	for _, opt := range opts {
		opt(&o)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.chatLocked(chatID)
	if cs.chat.Type == ChatPrivate && cs.chat.ID == from.ID {
		// A private chat is named after the user in it.
		cs.chat.FirstName, cs.chat.LastName, cs.chat.Username = from.FirstName, from.LastName, from.Username
	}
	pl, err := placeLocked(cs, o.thread, o.replyTo, false)
	if err != nil {
		s.t.Fatalf("telegramtest: SendText in chat %d: %s", chatID, err.description)
	}
	m := Message{From: &from, Date: s.now().Unix(), Text: text}
	if n := commandLength(text); n > 0 {
		m.Entities = []MessageEntity{{Type: "bot_command", Offset: 0, Length: n}}
	}
	pl.apply(&m)
	sm := cs.add(m)
	return s.enqueueLocked("message", sm.msg)
}

// commandLength is the UTF-16 length of the /command (with an optional @botname) that
// starts text, or 0 when text does not start with one.
func commandLength(text string) int {
	if len(text) < 2 || text[0] != '/' {
		return 0
	}
	word := func(i int) int {
		for i < len(text) && (isAlnum(text[i]) || text[i] == '_') {
			i++
		}
		return i
	}
	end := word(1)
	if end == 1 {
		return 0
	}
	if end < len(text) && text[end] == '@' {
		if at := word(end + 1); at > end+1 {
			end = at
		}
	}
	return end // ASCII only: bytes are UTF-16 code units
}

// PressButton acts as user from pressing the inline button with callback_data data under
// the bot's message messageID in chatID, and queues the callback_query update carrying the
// message as it now stands. It returns the callback query id to look up the bot's answer
// with CallbackAnswer. The button must have been on the message at some point: a press
// that races the edit removing it is a press a real user can make. When the message has
// been deleted, the update carries it as inaccessible (date 0), as Telegram does.
func (s *Server) PressButton(chatID int64, messageID int, from User, data string) string {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, found := s.chats[chatID]
	if !found || messageID < 1 || messageID > len(cs.messages) {
		s.t.Fatalf("telegramtest: PressButton: no message %d in chat %d", messageID, chatID)
	}
	sm := cs.messages[messageID-1]
	if sm.msg.From == nil || sm.msg.From.ID != s.bot.ID {
		s.t.Fatalf("telegramtest: PressButton: message %d in chat %d is not the bot's", messageID, chatID)
	}
	if !sm.offered[data] {
		s.t.Fatalf("telegramtest: PressButton: message %d in chat %d never had a button with callback_data %q", messageID, chatID, data)
	}
	s.nextQuery++
	id := strconv.FormatInt(4_000_000_000_000_000_000+s.nextQuery, 10)
	s.queries[id] = &queryState{}
	msg := sm.msg.clone()
	if sm.deleted {
		msg = Message{MessageID: messageID, Chat: cs.chat}
	}
	s.enqueueLocked("callback_query", CallbackQuery{
		ID:           id,
		From:         from,
		Message:      &msg,
		ChatInstance: strconv.FormatUint(uint64(chatID)*0x9E3779B97F4A7C15, 10),
		Data:         data,
	})
	return id
}
