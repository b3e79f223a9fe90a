package telegramtest

import (
	"encoding/json"
	"slices"
	"strconv"
	"time"
)

// User is a Telegram user or bot, encoded as the Bot API encodes it.
type User struct {
	ID           int64  `json:"id"`
	IsBot        bool   `json:"is_bot"`
	FirstName    string `json:"first_name"`
	LastName     string `json:"last_name,omitempty"`
	Username     string `json:"username,omitempty"`
	LanguageCode string `json:"language_code,omitempty"`
}

// Chat types as the Bot API names them.
const (
	ChatPrivate    = "private"
	ChatGroup      = "group"
	ChatSupergroup = "supergroup"
)

// Chat is a Telegram chat.
type Chat struct {
	ID        int64  `json:"id"`
	Type      string `json:"type"`
	Title     string `json:"title,omitempty"`
	Username  string `json:"username,omitempty"`
	FirstName string `json:"first_name,omitempty"`
	LastName  string `json:"last_name,omitempty"`
	IsForum   bool   `json:"is_forum,omitempty"`
}

// MessageEntity marks a span of a message's text, in UTF-16 code units as Telegram counts.
type MessageEntity struct {
	Type          string `json:"type"`
	Offset        int    `json:"offset"`
	Length        int    `json:"length"`
	URL           string `json:"url,omitempty"`
	Language      string `json:"language,omitempty"`
	CustomEmojiID string `json:"custom_emoji_id,omitempty"`
}

// InlineKeyboardMarkup is the inline keyboard attached to a message.
type InlineKeyboardMarkup struct {
	InlineKeyboard [][]InlineKeyboardButton `json:"inline_keyboard"`
}

// InlineKeyboardButton is one button of an inline keyboard. Buttons of other kinds
// (web_app, switch_inline_query, copy_text, …) are accepted; only their text is kept.
type InlineKeyboardButton struct {
	Text         string `json:"text"`
	URL          string `json:"url,omitempty"`
	CallbackData string `json:"callback_data,omitempty"`
}

// PhotoSize is one size of a photo. The fake stores a single size: the upload itself.
type PhotoSize struct {
	FileID       string `json:"file_id"`
	FileUniqueID string `json:"file_unique_id"`
	Width        int    `json:"width"`
	Height       int    `json:"height"`
	FileSize     int    `json:"file_size,omitempty"`
}

// ForumTopicCreated is the service content of the message that opens a forum topic.
type ForumTopicCreated struct {
	Name              string `json:"name"`
	IconColor         int    `json:"icon_color"`
	IconCustomEmojiID string `json:"icon_custom_emoji_id,omitempty"`
}

// ForumTopic is the result of createForumTopic.
type ForumTopic struct {
	MessageThreadID   int    `json:"message_thread_id"`
	Name              string `json:"name"`
	IconColor         int    `json:"icon_color"`
	IconCustomEmojiID string `json:"icon_custom_emoji_id,omitempty"`
}

// Message is a message as it stands in a chat. The fields with a json tag are the wire
// fields; ParseMode, Source and PhotoData are what the fake remembers besides.
type Message struct {
	MessageID         int                   `json:"message_id"`
	MessageThreadID   int                   `json:"message_thread_id,omitempty"`
	From              *User                 `json:"from,omitempty"`
	Date              int64                 `json:"date"`
	Chat              Chat                  `json:"chat"`
	IsTopicMessage    bool                  `json:"is_topic_message,omitempty"`
	ReplyToMessage    *Message              `json:"reply_to_message,omitempty"`
	EditDate          int64                 `json:"edit_date,omitempty"`
	Text              string                `json:"text,omitempty"`
	Entities          []MessageEntity       `json:"entities,omitempty"`
	Photo             []PhotoSize           `json:"photo,omitempty"`
	Caption           string                `json:"caption,omitempty"`
	CaptionEntities   []MessageEntity       `json:"caption_entities,omitempty"`
	ForumTopicCreated *ForumTopicCreated    `json:"forum_topic_created,omitempty"`
	ReplyMarkup       *InlineKeyboardMarkup `json:"reply_markup,omitempty"`

	// ParseMode is the parse_mode of the last send or edit of the text or caption.
	ParseMode string `json:"-"`
	// Source is the text or caption exactly as the bot last sent it, before parse_mode
	// was applied; Text and Caption hold what a user sees.
	Source string `json:"-"`
	// PhotoData is the uploaded photo; nil when the photo was given by file_id or URL.
	PhotoData []byte `json:"-"`
}

// Buttons returns the keyboard's buttons row by row, or nil when the message has none.
func (m Message) Buttons() [][]InlineKeyboardButton {
	if m.ReplyMarkup == nil {
		return nil
	}
	return m.ReplyMarkup.InlineKeyboard
}

func (m Message) clone() Message {
	c := m
	if m.From != nil {
		u := *m.From
		c.From = &u
	}
	if m.ReplyToMessage != nil {
		r := m.ReplyToMessage.clone()
		c.ReplyToMessage = &r
	}
	c.Entities = slices.Clone(m.Entities)
	c.CaptionEntities = slices.Clone(m.CaptionEntities)
	c.Photo = slices.Clone(m.Photo)
	c.PhotoData = slices.Clone(m.PhotoData)
	if m.ForumTopicCreated != nil {
		f := *m.ForumTopicCreated
		c.ForumTopicCreated = &f
	}
	c.ReplyMarkup = m.ReplyMarkup.clone()
	return c
}

func (k *InlineKeyboardMarkup) clone() *InlineKeyboardMarkup {
	if k == nil {
		return nil
	}
	rows := make([][]InlineKeyboardButton, len(k.InlineKeyboard))
	for i, row := range k.InlineKeyboard {
		rows[i] = slices.Clone(row)
	}
	return &InlineKeyboardMarkup{InlineKeyboard: rows}
}

// CallbackQuery is the callback_query of an update, sent when a user presses a button.
type CallbackQuery struct {
	ID           string   `json:"id"`
	From         User     `json:"from"`
	Message      *Message `json:"message,omitempty"`
	ChatInstance string   `json:"chat_instance"`
	Data         string   `json:"data,omitempty"`
}

// CallbackAnswer is what the bot answered to a callback query.
type CallbackAnswer struct {
	Text      string
	ShowAlert bool
	URL       string
	CacheTime int
}

// File is a file uploaded in a multipart request.
type File struct {
	Name        string
	ContentType string
	Data        []byte
}

// Call is one request the bot made, as the fake answered it. Calls answered with an
// error (including injected 429s) are recorded too, with ErrorCode set.
type Call struct {
	Method string
	// Params are the request's parameters as strings, whatever the encoding: JSON
	// bodies are flattened so that strings are unquoted and objects stay JSON text,
	// which is how multipart and urlencoded bodies carry them.
	Params map[string]string
	Files  map[string]File
	Time   time.Time
	// ErrorCode and Description are set when the call was refused.
	ErrorCode   int
	Description string
	// Result is the JSON result returned when the call succeeded.
	Result json.RawMessage
}

// OK reports whether the call succeeded.
func (c Call) OK() bool { return c.ErrorCode == 0 }

// Int returns an integer parameter, or 0 when it is absent or not an integer.
func (c Call) Int(name string) int64 {
	n, err := strconv.ParseInt(c.Params[name], 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// Decode unmarshals a JSON parameter (reply_markup, reply_parameters, entities, …) into v.
func (c Call) Decode(name string, v any) error {
	return json.Unmarshal([]byte(c.Params[name]), v)
}

// Message decodes the message the call returned (sendMessage, editMessageText, …).
func (c Call) Message() (Message, error) {
	var m Message
	err := json.Unmarshal(c.Result, &m)
	return m, err
}
