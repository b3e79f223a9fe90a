package telegram

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/alertengine/alertengine/conversation"
)

// OpenThread starts an incident's thread: in a forum, a topic named title with msg inside
// it; elsewhere msg as a root message whose reply chain is the thread. The MessageRef is
// the message that carries msg's buttons (the last one sent).
func (a *Adapter) OpenThread(ctx context.Context, chat conversation.Chat, title string, msg conversation.Message) (conversation.Thread, conversation.MessageRef, error) {
	id, err := chatID(chat)
	if err != nil {
		return conversation.Thread{}, conversation.MessageRef{}, err
	}
	r, err := render(msg)
	if err != nil {
		return conversation.Thread{}, conversation.MessageRef{}, err
	}
	forum, err := a.isForum(ctx, id)
	if err != nil {
		return conversation.Thread{}, conversation.MessageRef{}, fmt.Errorf("open thread in chat %d: %w", id, err)
	}
	th := conversation.Thread{Chat: chatOf(id)}
	topic := 0
	if forum {
		t, err := call(ctx, a, "createForumTopic", func(ctx context.Context) (*models.ForumTopic, error) {
			return a.api.CreateForumTopic(ctx, &tgbot.CreateForumTopicParams{ChatID: id, Name: topicName(title)})
		})
		switch {
		case err == nil:
			topic = t.MessageThreadID
			th.Topic = itoa(topic)
		case errors.Is(err, tgbot.ErrorBadRequest):
			// No right to manage topics, or topics were switched off: the incident must
			// still be announced, so it gets a root message in the general chat.
			// Remembered for forumTTL, so that each incident does not try again.
			a.log.Warn("cannot create a forum topic; opening the thread as a root message", "chat", id, "err", err)
			a.rememberForum(id, false)
		default:
			return conversation.Thread{}, conversation.MessageRef{}, fmt.Errorf("open thread in chat %d: %w", id, err)
		}
	}
	first, last, err := a.deliver(ctx, id, topic, 0, r)
	if err != nil {
		return conversation.Thread{}, conversation.MessageRef{}, fmt.Errorf("open thread in chat %d: %w", id, err)
	}
	if topic == 0 {
		th.Root = itoa(first)
	}
	return th, conversation.MessageRef{Chat: th.Chat, ID: itoa(last)}, nil
}

// Post sends msg into th: into its topic and/or as a reply to its root. The MessageRef is
// the message that carries msg's buttons.
func (a *Adapter) Post(ctx context.Context, th conversation.Thread, msg conversation.Message) (conversation.MessageRef, error) {
	id, err := chatID(th.Chat)
	if err != nil {
		return conversation.MessageRef{}, err
	}
	topic, err := optionalID("topic", th.Topic)
	if err != nil {
		return conversation.MessageRef{}, err
	}
	root, err := optionalID("root message", th.Root)
	if err != nil {
		return conversation.MessageRef{}, err
	}
	r, err := render(msg)
	if err != nil {
		return conversation.MessageRef{}, err
	}
	_, last, err := a.deliver(ctx, id, topic, root, r)
	if err != nil {
		return conversation.MessageRef{}, fmt.Errorf("post in chat %d: %w", id, err)
	}
	return conversation.MessageRef{Chat: chatOf(id), ID: itoa(last)}, nil
}

// Edit replaces the text (or, on a photo, the caption) and the buttons of a message the
// bot sent; no buttons removes them. An edit that changes nothing is not an error. The
// image of a photo is left as it is.
func (a *Adapter) Edit(ctx context.Context, ref conversation.MessageRef, msg conversation.Message) error {
	id, err := chatID(ref.Chat)
	if err != nil {
		return err
	}
	mid, err := optionalID("message", ref.ID)
	if err != nil || mid == 0 {
		return fmt.Errorf("telegram: edit: message id %q is not a Telegram message id", ref.ID)
	}
	if a.isPhoto(ctx, id, mid) {
		return a.editCaption(ctx, id, mid, msg)
	}
	text, kb, err := renderOne(msg, maxText)
	if err != nil {
		return err
	}
	_, err = call(ctx, a, "editMessageText", func(ctx context.Context) (*models.Message, error) {
		p := &tgbot.EditMessageTextParams{
			ChatID: id, MessageID: mid, Text: text, ParseMode: models.ParseModeHTML,
			LinkPreviewOptions: noPreview(),
		}
		if kb != nil {
			p.ReplyMarkup = kb
		}
		return a.api.EditMessageText(ctx, p)
	})
	if err == nil || notModified(err) {
		return nil
	}
	if !hasNoText(err) {
		return fmt.Errorf("edit message %d in chat %d: %w", mid, id, err)
	}
	// A photo sent before the adapter remembered photos (or whose note expired).
	return a.editCaption(ctx, id, mid, msg)
}

// editCaption replaces the caption and buttons of photo message mid.
func (a *Adapter) editCaption(ctx context.Context, id int64, mid int, msg conversation.Message) error {
	caption, kb, err := renderOne(msg, maxCaption)
	if err != nil {
		return err
	}
	_, err = call(ctx, a, "editMessageCaption", func(ctx context.Context) (*models.Message, error) {
		p := &tgbot.EditMessageCaptionParams{ChatID: id, MessageID: mid, Caption: caption, ParseMode: models.ParseModeHTML}
		if kb != nil {
			p.ReplyMarkup = kb
		}
		return a.api.EditMessageCaption(ctx, p)
	})
	if err == nil || notModified(err) {
		return nil
	}
	return fmt.Errorf("edit caption of message %d in chat %d: %w", mid, id, err)
}

// notModified: Telegram refuses an edit that changes nothing; the message already says
// what it should.
func notModified(err error) bool {
	return errors.Is(err, tgbot.ErrorBadRequest) && strings.Contains(err.Error(), "message is not modified")
}

// hasNoText: editMessageText on a photo.
func hasNoText(err error) bool {
	return errors.Is(err, tgbot.ErrorBadRequest) && strings.Contains(err.Error(), "there is no text in the message to edit")
}

func noPreview() *models.LinkPreviewOptions {
	return &models.LinkPreviewOptions{IsDisabled: tgbot.True()}
}

// deliver sends r into chat: into topic when set, as replies to replyTo when set. Parts
// after the first of a message that is neither in a topic nor a reply answer the first,
// so they stay together. It returns the ids of the first message sent and of the last,
// which carries the keyboard.
func (a *Adapter) deliver(ctx context.Context, chat int64, topic, replyTo int, r rendered) (first, last int, err error) {
	reply := func() *models.ReplyParameters {
		to := replyTo
		if to == 0 && topic == 0 {
			to = first
		}
		if to == 0 {
			return nil
		}
		return &models.ReplyParameters{MessageID: to, AllowSendingWithoutReply: true}
	}
	sent := func(id int) {
		if first == 0 {
			first = id
		}
		last = id
	}
	if r.photo != nil {
		m, err := call(ctx, a, "sendPhoto", func(ctx context.Context) (*models.Message, error) {
			p := &tgbot.SendPhotoParams{
				ChatID: chat, MessageThreadID: topic, ReplyParameters: reply(),
				// A fresh reader per attempt: a retried upload sends the whole image.
				Photo:   &models.InputFileUpload{Filename: "chart.png", Data: bytes.NewReader(r.photo)},
				Caption: r.caption, ParseMode: models.ParseModeHTML,
			}
			if len(r.parts) == 0 && r.kb != nil {
				p.ReplyMarkup = r.kb
			}
			return a.api.SendPhoto(ctx, p)
		})
		if err != nil {
			return first, last, err
		}
		sent(m.ID)
		a.rememberPhoto(ctx, chat, m.ID)
	}
	for i, text := range r.parts {
		m, err := call(ctx, a, "sendMessage", func(ctx context.Context) (*models.Message, error) {
			p := &tgbot.SendMessageParams{
				ChatID: chat, MessageThreadID: topic, ReplyParameters: reply(),
				Text: text, ParseMode: models.ParseModeHTML, LinkPreviewOptions: noPreview(),
			}
			if i == len(r.parts)-1 && r.kb != nil {
				p.ReplyMarkup = r.kb
			}
			return a.api.SendMessage(ctx, p)
		})
		if err != nil {
			if first != 0 {
				return first, last, fmt.Errorf("part %d of %d (earlier parts were sent): %w", i+1, len(r.parts), err)
			}
			return first, last, err
		}
		sent(m.ID)
	}
	return first, last, nil
}

// isForum reports whether chat has topics (getChat's is_forum), remembered for forumTTL.
func (a *Adapter) isForum(ctx context.Context, chat int64) (bool, error) {
	a.forumMu.Lock()
	e, ok := a.forums[chat]
	a.forumMu.Unlock()
	if ok && a.now().Before(e.until) {
		return e.forum, nil
	}
	info, err := call(ctx, a, "getChat", func(ctx context.Context) (*models.ChatFullInfo, error) {
		return a.api.GetChat(ctx, &tgbot.GetChatParams{ChatID: chat})
	})
	if err != nil {
		return false, err
	}
	a.rememberForum(chat, info.IsForum)
	return info.IsForum, nil
}

func (a *Adapter) rememberForum(chat int64, forum bool) {
	a.forumMu.Lock()
	a.forums[chat] = forumEntry{forum: forum, until: a.now().Add(forumTTL)}
	a.forumMu.Unlock()
}

// topicName makes a forum topic name of an incident title: one line, 1 to 128 characters.
func topicName(title string) string {
	name := strings.Join(strings.Fields(clean(strings.ReplaceAll(title, "\n", " "))), " ")
	if name == "" {
		name = "Incident"
	}
	return cut(name, maxTopic)
}
