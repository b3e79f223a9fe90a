package telegramtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	_ "image/gif"  // register GIF for photo size detection
	_ "image/jpeg" // register JPEG for photo size detection
	_ "image/png"  // register PNG for photo size detection
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"
)

// Limits Telegram enforces on what a bot sends.
const (
	maxTextLength     = 4096 // UTF-16 code units of text after entity parsing
	maxCaptionLength  = 1024
	maxCallbackData   = 64 // bytes
	notModifiedReason = "message is not modified: specified new message content and reply markup are exactly the same as a current content and reply markup of the message"
)

func (s *Server) getMe(params) answer {
	return ok(struct {
		User
		CanJoinGroups           bool `json:"can_join_groups"`
		CanReadAllGroupMessages bool `json:"can_read_all_group_messages"`
		SupportsInlineQueries   bool `json:"supports_inline_queries"`
	}{User: s.bot, CanJoinGroups: true})
}

// formatted is text (or a caption) after parse_mode or entities were applied.
type formatted struct {
	text      string
	entities  []MessageEntity
	parseMode string
	source    string
}

// format applies parse_mode (HTML is parsed; Markdown and MarkdownV2 are accepted and left
// as sent) or explicit entities to the parameter named field.
func format(p params, field, entitiesField string) (formatted, *apiError) {
	f := formatted{source: p.str(field), parseMode: p.str("parse_mode")}
	if raw := p.str(entitiesField); raw != "" {
		if err := unmarshalParam(raw, &f.entities); err != nil {
			return f, badRequest("can't parse entities JSON object")
		}
		f.text = f.source
		return f, nil
	}
	switch strings.ToLower(f.parseMode) {
	case "":
		f.text = f.source
	case "html":
		text, entities, err := parseHTML(f.source)
		if err != nil {
			return f, badRequest("can't parse entities: %v", err)
		}
		f.text, f.entities = text, entities
	case "markdown", "markdownv2":
		f.text = f.source
	default:
		return f, badRequest("unsupported parse_mode")
	}
	return f, nil
}

// keyboard reads reply_markup. Only an inline keyboard is kept on the message; reply
// keyboards, keyboard removal and force_reply are accepted and not stored.
func keyboard(p params) (*InlineKeyboardMarkup, *apiError) {
	raw := p.str("reply_markup")
	if raw == "" {
		return nil, nil
	}
	var markup struct {
		InlineKeyboard *[][]map[string]json.RawMessage `json:"inline_keyboard"`
	}
	if err := unmarshalParam(raw, &markup); err != nil {
		return nil, badRequest("can't parse reply keyboard markup JSON object")
	}
	if markup.InlineKeyboard == nil {
		return nil, nil
	}
	var rows [][]InlineKeyboardButton
	for _, row := range *markup.InlineKeyboard {
		var out []InlineKeyboardButton
		for _, fields := range row {
			b, err := inlineButton(fields)
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
		if len(out) > 0 {
			rows = append(rows, out)
		}
	}
	if len(rows) == 0 {
		return nil, nil
	}
	return &InlineKeyboardMarkup{InlineKeyboard: rows}, nil
}

// isButtonKind reports whether field is one of those of which an inline button must have one.
func isButtonKind(field string) bool {
	switch field {
	case "url", "callback_data", "web_app", "login_url", "switch_inline_query",
		"switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
		"copy_text", "callback_game", "pay":
		return true
	}
	return false
}

func inlineButton(fields map[string]json.RawMessage) (InlineKeyboardButton, *apiError) {
	var b InlineKeyboardButton
	if err := json.Unmarshal(fields["text"], &b.Text); err != nil || b.Text == "" {
		return b, badRequest("can't parse inline keyboard button: Text must be non-empty")
	}
	kinds := 0
	for k, v := range fields {
		if isButtonKind(k) && !bytes.Equal(v, []byte("false")) && !bytes.Equal(v, []byte("null")) {
			kinds++
		}
	}
	if kinds == 0 {
		return b, badRequest("can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard")
	}
	if raw, ok := fields["callback_data"]; ok {
		if err := json.Unmarshal(raw, &b.CallbackData); err != nil {
			return b, badRequest("can't parse inline keyboard button: Field \"callback_data\" must be of type String")
		}
		if b.CallbackData == "" || len(b.CallbackData) > maxCallbackData {
			return b, badRequest("BUTTON_DATA_INVALID")
		}
	}
	if raw, ok := fields["url"]; ok {
		if err := json.Unmarshal(raw, &b.URL); err != nil || b.URL == "" {
			return b, badRequest("BUTTON_URL_INVALID")
		}
	}
	return b, nil
}

func unmarshalParam(raw string, v any) error { return json.Unmarshal([]byte(raw), v) }

// threadParam reads message_thread_id.
func threadParam(p params) (int, *apiError) {
	n, _, err := p.int("message_thread_id")
	if err != nil {
		return 0, badRequest("message thread not found")
	}
	return int(n), nil
}

// newMessageLocked places and stores a message from the bot.
func (s *Server) newMessageLocked(cs *chatState, p params, m Message) (*storedMessage, *apiError) {
	thread, err := threadParam(p)
	if err != nil {
		return nil, err
	}
	replyTo, allow, err := replyParams(p, cs)
	if err != nil {
		return nil, err
	}
	pl, err := placeLocked(cs, thread, replyTo, allow)
	if err != nil {
		return nil, err
	}
	bot := s.bot
	m.From = &bot
	m.Date = s.now().Unix()
	pl.apply(&m)
	return cs.add(m), nil
}

func (s *Server) sendMessage(p params) answer {
	cs, e := s.chatParamLocked(p, true)
	if e != nil {
		return fail(e)
	}
	if p.str("text") == "" {
		return fail(badRequest("message text is empty"))
	}
	f, e := format(p, "text", "entities")
	if e != nil {
		return fail(e)
	}
	if strings.TrimSpace(f.text) == "" {
		return fail(badRequest("message text is empty"))
	}
	if utf16Len(f.text) > maxTextLength {
		return fail(badRequest("message is too long"))
	}
	kb, e := keyboard(p)
	if e != nil {
		return fail(e)
	}
	sm, e := s.newMessageLocked(cs, p, Message{
		Text: f.text, Entities: f.entities, ReplyMarkup: kb, ParseMode: f.parseMode, Source: f.source,
	})
	if e != nil {
		return fail(e)
	}
	return ok(sm.msg)
}

// storedFile is a file the fake knows by file_id.
type storedFile struct {
	data          []byte
	width, height int
}

func (s *Server) sendPhoto(p params) answer {
	cs, e := s.chatParamLocked(p, true)
	if e != nil {
		return fail(e)
	}
	photo, data, e := s.photoLocked(p)
	if e != nil {
		return fail(e)
	}
	f, e := format(p, "caption", "caption_entities")
	if e != nil {
		return fail(e)
	}
	if utf16Len(f.text) > maxCaptionLength {
		return fail(badRequest("message caption is too long"))
	}
	kb, e := keyboard(p)
	if e != nil {
		return fail(e)
	}
	sm, e := s.newMessageLocked(cs, p, Message{
		Photo: []PhotoSize{photo}, PhotoData: data,
		Caption: f.text, CaptionEntities: f.entities, ReplyMarkup: kb, ParseMode: f.parseMode, Source: f.source,
	})
	if e != nil {
		return fail(e)
	}
	return ok(sm.msg)
}

// photoLocked reads the photo parameter: an upload (also as attach://name), a file_id the
// fake issued, or an HTTP URL (not fetched).
func (s *Server) photoLocked(p params) (PhotoSize, []byte, *apiError) {
	upload, uploaded := p.files["photo"]
	ref := p.str("photo")
	if name, ok := strings.CutPrefix(ref, "attach://"); ok {
		upload, uploaded = p.files[name]
	}
	if uploaded {
		cfg, _, err := image.DecodeConfig(bytes.NewReader(upload.Data))
		if err != nil {
			return PhotoSize{}, nil, badRequest("IMAGE_PROCESS_FAILED")
		}
		s.nextFile++
		ps := PhotoSize{
			FileID:       fmt.Sprintf("AgACAgfake%06d", s.nextFile),
			FileUniqueID: fmt.Sprintf("AQADfake%06d", s.nextFile),
			Width:        cfg.Width, Height: cfg.Height, FileSize: len(upload.Data),
		}
		s.files[ps.FileID] = storedFile{data: upload.Data, width: cfg.Width, height: cfg.Height}
		return ps, slices.Clone(upload.Data), nil
	}
	if ref == "" {
		return PhotoSize{}, nil, badRequest("there is no photo in the request")
	}
	if f, ok := s.files[ref]; ok {
		return PhotoSize{FileID: ref, FileUniqueID: "AQAD" + strings.TrimPrefix(ref, "AgACAg"), Width: f.width, Height: f.height, FileSize: len(f.data)}, nil, nil
	}
	if strings.HasPrefix(ref, "http://") || strings.HasPrefix(ref, "https://") {
		s.nextFile++
		return PhotoSize{FileID: fmt.Sprintf("AgACAgurl%06d", s.nextFile), FileUniqueID: fmt.Sprintf("AQADurl%06d", s.nextFile)}, nil, nil
	}
	return PhotoSize{}, nil, badRequest("wrong file identifier/HTTP URL specified")
}

// editTargetLocked finds the bot message an edit method names.
func (s *Server) editTargetLocked(p params) (*storedMessage, *apiError) {
	if p.str("inline_message_id") != "" {
		return nil, badRequest("MESSAGE_ID_INVALID")
	}
	cs, e := s.chatParamLocked(p, false)
	if e != nil {
		return nil, e
	}
	id, present, err := p.int("message_id")
	if !present || err != nil {
		return nil, badRequest("message identifier is not specified")
	}
	sm := cs.get(int(id))
	if sm == nil {
		return nil, badRequest("message to edit not found")
	}
	if sm.msg.From == nil || sm.msg.From.ID != s.bot.ID || sm.msg.ForumTopicCreated != nil {
		return nil, badRequest("message can't be edited")
	}
	return sm, nil
}

// editLocked applies an edit unless it changes nothing, which Telegram refuses.
func (s *Server) editLocked(sm *storedMessage, next Message) answer {
	cur := sm.msg
	if cur.Text == next.Text && cur.Caption == next.Caption &&
		sameEntities(cur.Entities, next.Entities) && sameEntities(cur.CaptionEntities, next.CaptionEntities) &&
		reflect.DeepEqual(cur.ReplyMarkup, next.ReplyMarkup) {
		return fail(badRequest(notModifiedReason))
	}
	next.EditDate = s.now().Unix()
	sm.msg = next
	sm.offer(next.ReplyMarkup)
	return ok(sm.msg)
}

func sameEntities(a, b []MessageEntity) bool {
	return len(a) == 0 && len(b) == 0 || reflect.DeepEqual(a, b)
}

func (s *Server) editMessageText(p params) answer {
	sm, e := s.editTargetLocked(p)
	if e != nil {
		return fail(e)
	}
	if p.str("text") == "" {
		return fail(badRequest("message text is empty"))
	}
	if sm.msg.Photo != nil {
		return fail(badRequest("there is no text in the message to edit"))
	}
	f, e := format(p, "text", "entities")
	if e != nil {
		return fail(e)
	}
	if strings.TrimSpace(f.text) == "" {
		return fail(badRequest("message text is empty"))
	}
	if utf16Len(f.text) > maxTextLength {
		return fail(badRequest("message is too long"))
	}
	kb, e := keyboard(p)
	if e != nil {
		return fail(e)
	}
	next := sm.msg.clone()
	next.Text, next.Entities, next.ParseMode, next.Source, next.ReplyMarkup = f.text, f.entities, f.parseMode, f.source, kb
	return s.editLocked(sm, next)
}

func (s *Server) editMessageCaption(p params) answer {
	sm, e := s.editTargetLocked(p)
	if e != nil {
		return fail(e)
	}
	if sm.msg.Photo == nil {
		return fail(badRequest("there is no caption in the message to edit"))
	}
	f, e := format(p, "caption", "caption_entities")
	if e != nil {
		return fail(e)
	}
	if utf16Len(f.text) > maxCaptionLength {
		return fail(badRequest("message caption is too long"))
	}
	kb, e := keyboard(p)
	if e != nil {
		return fail(e)
	}
	next := sm.msg.clone()
	next.Caption, next.CaptionEntities, next.ParseMode, next.Source, next.ReplyMarkup = f.text, f.entities, f.parseMode, f.source, kb
	return s.editLocked(sm, next)
}

func (s *Server) editMessageReplyMarkup(p params) answer {
	sm, e := s.editTargetLocked(p)
	if e != nil {
		return fail(e)
	}
	kb, e := keyboard(p)
	if e != nil {
		return fail(e)
	}
	next := sm.msg.clone()
	next.ReplyMarkup = kb
	return s.editLocked(sm, next)
}

func (s *Server) deleteMessage(p params) answer {
	cs, e := s.chatParamLocked(p, false)
	if e != nil {
		return fail(e)
	}
	id, present, err := p.int("message_id")
	if !present || err != nil {
		return fail(badRequest("message identifier is not specified"))
	}
	sm := cs.get(int(id))
	if sm == nil {
		return fail(badRequest("message to delete not found"))
	}
	sm.deleted = true
	return ok(true)
}

// queryState is a callback query a user made, and the bot's answer.
type queryState struct {
	answered bool
	answer   CallbackAnswer
}

func (s *Server) answerCallbackQuery(p params) answer {
	q, found := s.queries[p.str("callback_query_id")]
	if !found || q.answered {
		return fail(badRequest("query is too old and response timeout expired or query ID is invalid"))
	}
	if utf8.RuneCountInString(p.str("text")) > 200 {
		return fail(badRequest("MESSAGE_TOO_LONG"))
	}
	cache, _, _ := p.int("cache_time")
	q.answered = true
	q.answer = CallbackAnswer{Text: p.str("text"), ShowAlert: p.bool("show_alert"), URL: p.str("url"), CacheTime: int(cache)}
	return ok(true)
}

// CallbackAnswer returns the bot's answer to the callback query id, if it answered.
func (s *Server) CallbackAnswer(queryID string) (CallbackAnswer, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	q, found := s.queries[queryID]
	if !found || !q.answered {
		return CallbackAnswer{}, false
	}
	return q.answer, true
}

// getChat answers a ChatFullInfo: the chat as the fake knows it (is_forum included) plus
// the fields Telegram always sends.
func (s *Server) getChat(p params) answer {
	cs, e := s.chatParamLocked(p, true)
	if e != nil {
		return fail(e)
	}
	return ok(struct {
		Chat
		AccentColorID    int `json:"accent_color_id"`
		MaxReactionCount int `json:"max_reaction_count"`
	}{Chat: cs.chat, MaxReactionCount: 11})
}

func (s *Server) createForumTopic(p params) answer {
	cs, e := s.chatParamLocked(p, false)
	if e != nil {
		return fail(e)
	}
	if !cs.chat.IsForum {
		return fail(badRequest("the chat is not a forum"))
	}
	name := p.str("name")
	if strings.TrimSpace(name) == "" {
		return fail(badRequest("TOPIC_TITLE_EMPTY"))
	}
	color := defaultIconColor
	if n, present, err := p.int("icon_color"); present {
		if err != nil || !validIconColor(int(n)) {
			return fail(badRequest("TOPIC_ICON_COLOR_INVALID"))
		}
		color = int(n)
	}
	topic := ForumTopic{Name: name, IconColor: color, IconCustomEmojiID: p.str("icon_custom_emoji_id")}
	bot := s.bot
	sm := cs.add(Message{
		From: &bot, Date: s.now().Unix(),
		ForumTopicCreated: &ForumTopicCreated{Name: name, IconColor: color, IconCustomEmojiID: topic.IconCustomEmojiID},
	})
	// The topic is identified by the id of the service message that opened it.
	topic.MessageThreadID = sm.msg.MessageID
	sm.msg.MessageThreadID = topic.MessageThreadID
	sm.msg.IsTopicMessage = true
	cs.topics[topic.MessageThreadID] = topic
	return ok(topic)
}

// validIconColor reports whether c is one of the six colours the Bot API allows.
func validIconColor(c int) bool {
	switch c {
	case 7322096, 16766590, 13338331, 9367192, 16749490, 16478047:
		return true
	}
	return false
}

// validSecretToken reports whether s has the form Telegram requires of a webhook's
// secret_token: 1 to 256 of A-Z, a-z, 0-9, _ and -.
func validSecretToken(s string) bool {
	if len(s) == 0 || len(s) > 256 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isAlnum(s[i]) && s[i] != '_' && s[i] != '-' {
			return false
		}
	}
	return true
}

func (s *Server) setWebhook(p params) answer {
	url := strings.TrimSpace(p.str("url"))
	secret := p.str("secret_token")
	if secret != "" && !validSecretToken(secret) {
		return fail(badRequest("secret token contains unallowed characters"))
	}
	if e := s.setAllowedLocked(p); e != nil {
		return fail(e)
	}
	if p.bool("drop_pending_updates") {
		s.pending = nil
	}
	if url == "" {
		return s.removeWebhookLocked()
	}
	s.webhookURL, s.webhookSecret = url, secret
	s.notifyLocked() // a held getUpdates ends with a conflict
	return answer{result: true, description: "Webhook was set"}
}

func (s *Server) deleteWebhook(p params) answer {
	if p.bool("drop_pending_updates") {
		s.pending = nil
	}
	return s.removeWebhookLocked()
}

func (s *Server) removeWebhookLocked() answer {
	if s.webhookURL == "" {
		return answer{result: true, description: "Webhook is already deleted"}
	}
	s.webhookURL, s.webhookSecret = "", ""
	return answer{result: true, description: "Webhook was deleted"}
}

func (s *Server) getWebhookInfo(params) answer {
	return ok(struct {
		URL                  string   `json:"url"`
		HasCustomCertificate bool     `json:"has_custom_certificate"`
		PendingUpdateCount   int      `json:"pending_update_count"`
		AllowedUpdates       []string `json:"allowed_updates,omitempty"`
	}{URL: s.webhookURL, PendingUpdateCount: len(s.pending), AllowedUpdates: s.allowed})
}

// Webhook returns the webhook the bot set with setWebhook, "" when none is set.
func (s *Server) Webhook() (url, secretToken string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.webhookURL, s.webhookSecret
}

// setAllowedLocked records allowed_updates when given; Telegram keeps the last list given.
func (s *Server) setAllowedLocked(p params) *apiError {
	raw := p.str("allowed_updates")
	if raw == "" {
		return nil
	}
	var list []string
	if err := unmarshalParam(raw, &list); err != nil {
		return badRequest("can't parse allowed updates JSON array")
	}
	s.allowed = list
	return nil
}
