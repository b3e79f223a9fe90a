package telegramtest

import (
	"fmt"
	"strconv"
	"strings"
)

// chatState is one chat: its messages (ids count up from 1, shared by the bot and the
// users as in a real chat) and, in a forum, its topics.
type chatState struct {
	chat     Chat
	messages []*storedMessage // index i holds message_id i+1
	topics   map[int]ForumTopic
}

type storedMessage struct {
	msg     Message
	deleted bool
	// offered is every callback_data the message's keyboard has carried, so that a press
	// racing an edit that removed the button is still a press a user could have made.
	offered map[string]bool
}

// defaultIconColor is the colour Telegram gives a topic when none is chosen.
const defaultIconColor = 7322096

// AddChat registers a chat (its type, title, username, forum flag). Chats need no
// registration to be written to: an unknown positive id is a private chat, an id at or
// below -1000000000000 a supergroup, any other negative id a group. Register a chat to
// give it a title or a @username, or to make it a forum.
func (s *Server) AddChat(c Chat) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs := s.chatLocked(c.ID)
	if c.Type != "" {
		cs.chat.Type = c.Type
	}
	if c.Title != "" {
		cs.chat.Title = c.Title
	}
	cs.chat.Username = c.Username
	cs.chat.FirstName = c.FirstName
	cs.chat.LastName = c.LastName
	cs.chat.IsForum = c.IsForum
	if c.IsForum {
		cs.chat.Type = ChatSupergroup
	}
	s.notifyLocked()
}

// AddForum registers chatID as a supergroup with topics enabled, where createForumTopic works.
func (s *Server) AddForum(chatID int64) {
	s.AddChat(Chat{ID: chatID, Type: ChatSupergroup, IsForum: true})
}

// chatLocked returns the chat, creating it from its id's shape when unknown.
func (s *Server) chatLocked(id int64) *chatState {
	if cs, ok := s.chats[id]; ok {
		return cs
	}
	c := Chat{ID: id}
	switch {
	case id > 0:
		c.Type, c.FirstName = ChatPrivate, "User "+strconv.FormatInt(id, 10)
	case id <= -1000000000000:
		c.Type, c.Title = ChatSupergroup, "Chat "+strconv.FormatInt(id, 10)
	default:
		c.Type, c.Title = ChatGroup, "Chat "+strconv.FormatInt(id, 10)
	}
	cs := &chatState{chat: c, topics: map[int]ForumTopic{}}
	s.chats[id] = cs
	return cs
}

// chatParamLocked resolves the chat_id parameter: a number, or @username of a registered
// chat. create says whether an unknown numeric chat springs into being (sending) or is
// not found (editing, deleting).
func (s *Server) chatParamLocked(p params, create bool) (*chatState, *apiError) {
	raw := strings.TrimSpace(p.str("chat_id"))
	if raw == "" {
		return nil, badRequest("chat_id is empty")
	}
	if strings.HasPrefix(raw, "@") {
		for _, cs := range s.chats {
			if cs.chat.Username != "" && strings.EqualFold("@"+cs.chat.Username, raw) {
				return cs, nil
			}
		}
		return nil, badRequest("chat not found")
	}
	id, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || id == 0 {
		return nil, badRequest("chat not found")
	}
	if cs, ok := s.chats[id]; ok || create {
		if !ok {
			cs = s.chatLocked(id)
		}
		return cs, nil
	}
	return nil, badRequest("chat not found")
}

// get returns the live (not deleted) message id, or nil.
func (cs *chatState) get(id int) *storedMessage {
	if id < 1 || id > len(cs.messages) {
		return nil
	}
	if sm := cs.messages[id-1]; !sm.deleted {
		return sm
	}
	return nil
}

// add stores m under the chat's next message id and returns the stored copy.
func (cs *chatState) add(m Message) *storedMessage {
	m.MessageID = len(cs.messages) + 1
	m.Chat = cs.chat
	sm := &storedMessage{msg: m, offered: map[string]bool{}}
	sm.offer(m.ReplyMarkup)
	cs.messages = append(cs.messages, sm)
	return sm
}

func (sm *storedMessage) offer(k *InlineKeyboardMarkup) {
	for _, row := range k.rows() {
		for _, b := range row {
			if b.CallbackData != "" {
				sm.offered[b.CallbackData] = true
			}
		}
	}
}

func (k *InlineKeyboardMarkup) rows() [][]InlineKeyboardButton {
	if k == nil {
		return nil
	}
	return k.InlineKeyboard
}

// placement is where a new message goes: its topic and the message it replies to.
type placement struct {
	thread  int
	replyTo *storedMessage
}

// placeLocked works out the topic and reply of a new message in cs the way Telegram does:
// a reply goes to the topic of the message it answers unless a topic is given; in a forum
// a topic must exist, and a message in a topic that replies to nothing replies, on the
// wire, to the topic's opening service message; outside forums there are no topics.
func placeLocked(cs *chatState, thread, replyTo int, allowWithoutReply bool) (placement, *apiError) {
	var pl placement
	if replyTo != 0 {
		pl.replyTo = cs.get(replyTo)
		if pl.replyTo == nil && !allowWithoutReply {
			return pl, badRequest("message to be replied not found")
		}
	}
	if thread == 0 && pl.replyTo != nil {
		thread = pl.replyTo.msg.MessageThreadID
	}
	if thread != 0 {
		if _, ok := cs.topics[thread]; !ok || !cs.chat.IsForum {
			return pl, badRequest("message thread not found")
		}
		if pl.replyTo == nil {
			pl.replyTo = cs.get(thread)
		}
	}
	pl.thread = thread
	return pl, nil
}

// apply stamps the placement onto a new message.
func (pl placement) apply(m *Message) {
	if pl.thread != 0 {
		m.MessageThreadID = pl.thread
		m.IsTopicMessage = true
	}
	if pl.replyTo != nil {
		r := pl.replyTo.msg.clone()
		r.ReplyToMessage = nil // Telegram nests replies one level only
		m.ReplyToMessage = &r
	}
}

// replyParamsLocked reads reply_parameters, or the older reply_to_message_id and
// allow_sending_without_reply.
func replyParams(p params, cs *chatState) (int, bool, *apiError) {
	if raw := p.str("reply_parameters"); raw != "" {
		var rp struct {
			MessageID                int    `json:"message_id"`
			ChatID                   any    `json:"chat_id"`
			AllowSendingWithoutReply bool   `json:"allow_sending_without_reply"`
			Quote                    string `json:"quote"`
		}
		if err := unmarshalParam(raw, &rp); err != nil {
			return 0, false, badRequest("can't parse reply parameters JSON object")
		}
		if rp.ChatID != nil && fmt.Sprint(rp.ChatID) != strconv.FormatInt(cs.chat.ID, 10) {
			return 0, false, badRequest("replies to messages of other chats are not supported by telegramtest")
		}
		return rp.MessageID, rp.AllowSendingWithoutReply, nil
	}
	id, _, err := p.int("reply_to_message_id")
	if err != nil {
		return 0, false, badRequest("message to be replied not found")
	}
	return int(id), p.bool("allow_sending_without_reply"), nil
}

// Sent returns the bot's messages in chatID as they now stand (after edits, without the
// deleted ones and without service messages), oldest first.
func (s *Server) Sent(chatID int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sentLocked(chatID)
}

func (s *Server) sentLocked(chatID int64) []Message {
	cs, ok := s.chats[chatID]
	if !ok {
		return nil
	}
	var out []Message
	for _, sm := range cs.messages {
		if sm.deleted || sm.msg.From == nil || sm.msg.From.ID != s.bot.ID || sm.msg.ForumTopicCreated != nil {
			continue
		}
		out = append(out, sm.msg.clone())
	}
	return out
}

// History returns every live message in chatID, the users' and the service messages
// included, oldest first.
func (s *Server) History(chatID int64) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.chats[chatID]
	if !ok {
		return nil
	}
	var out []Message
	for _, sm := range cs.messages {
		if !sm.deleted {
			out = append(out, sm.msg.clone())
		}
	}
	return out
}

// Message returns a live message of chatID as it now stands.
func (s *Server) Message(chatID int64, messageID int) (Message, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.chats[chatID]
	if !ok {
		return Message{}, false
	}
	sm := cs.get(messageID)
	if sm == nil {
		return Message{}, false
	}
	return sm.msg.clone(), true
}

// Topics returns the forum topics created in chatID, in the order they were created.
func (s *Server) Topics(chatID int64) []ForumTopic {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, ok := s.chats[chatID]
	if !ok {
		return nil
	}
	var out []ForumTopic
	for id := 1; id <= len(cs.messages); id++ {
		if t, ok := cs.topics[id]; ok {
			out = append(out, t)
		}
	}
	return out
}
