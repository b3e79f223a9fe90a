package slack

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	slackapi "github.com/slack-go/slack"

	"github.com/alertengine/alertengine/conversation"
)

// OpenThread posts msg as the root message of an incident's thread in chat (Slack has
// no titled topics: the title is not used). Parts after the first of a very long message,
// and the chart, go into the new thread. The MessageRef is the message that carries
// msg's buttons (the last part), which Edit updates.
func (a *Adapter) OpenThread(ctx context.Context, chat conversation.Chat, _ string, msg conversation.Message) (conversation.Thread, conversation.MessageRef, error) {
	if err := checkChat(chat); err != nil {
		return conversation.Thread{}, conversation.MessageRef{}, err
	}
	r, err := render(msg)
	if err != nil {
		return conversation.Thread{}, conversation.MessageRef{}, err
	}
	first, last, err := a.deliver(ctx, chat.ID, "", r)
	if err != nil {
		return conversation.Thread{}, conversation.MessageRef{}, fmt.Errorf("open thread in %s: %w", chat.ID, err)
	}
	th := conversation.Thread{Chat: chatOf(chat.ID), Root: first}
	return th, conversation.MessageRef{Chat: th.Chat, ID: last}, nil
}

// Post sends msg into th: into the thread of th.Root when set, else into the channel
// itself. The MessageRef is the message that carries msg's buttons.
func (a *Adapter) Post(ctx context.Context, th conversation.Thread, msg conversation.Message) (conversation.MessageRef, error) {
	if err := checkChat(th.Chat); err != nil {
		return conversation.MessageRef{}, err
	}
	r, err := render(msg)
	if err != nil {
		return conversation.MessageRef{}, err
	}
	_, last, err := a.deliver(ctx, th.Chat.ID, th.Root, r)
	if err != nil {
		return conversation.MessageRef{}, fmt.Errorf("post in %s: %w", th.Chat.ID, err)
	}
	return conversation.MessageRef{Chat: chatOf(th.Chat.ID), ID: last}, nil
}

// Edit replaces a sent message's blocks (chat.update); no buttons removes them. An
// uploaded chart is a message of its own and stays.
func (a *Adapter) Edit(ctx context.Context, ref conversation.MessageRef, msg conversation.Message) error {
	if err := checkChat(ref.Chat); err != nil {
		return err
	}
	ch, ts := splitRef(ref.Chat.ID, ref.ID)
	if !validTS(ts) {
		return fmt.Errorf("slack: edit: %q is not a Slack message timestamp", ref.ID)
	}
	m, err := renderOne(msg)
	if err != nil {
		return err
	}
	_, err = call(ctx, a, "chat.update", func(ctx context.Context) (string, error) {
		_, _, _, err := a.api.UpdateMessageContext(ctx, ch, ts, msgOptions(m)...)
		return "", err
	})
	if err != nil {
		a.noteChat(ref.Chat.ID, err)
		return fmt.Errorf("edit message %s in %s: %w", ts, ch, err)
	}
	return nil
}

// msgOptions are the chat.postMessage / chat.update arguments of m: its blocks, its
// notification text (already escaped), and no link or media previews, so a URL in a
// commit message does not unfurl into the incident.
func msgOptions(m message) []slackapi.MsgOption {
	return []slackapi.MsgOption{
		slackapi.MsgOptionBlocks(m.blocks...),
		slackapi.MsgOptionText(m.fallback, false),
		slackapi.MsgOptionDisableLinkUnfurl(),
		slackapi.MsgOptionDisableMediaUnfurl(),
	}
}

// deliver posts r's parts into chat — into root's thread when root is set; otherwise
// the first part is a new message and the rest go into its thread — then uploads the
// image into the same thread. It returns the refs (ts, or "channel/ts" where Slack
// answered from another channel id, as for a direct message sent to a user id) of the
// first message and of the last part, which carries the buttons.
func (a *Adapter) deliver(ctx context.Context, chat, root string, r rendered) (first, last string, err error) {
	ch, rootTS := splitRef(chat, root)
	if root != "" && !validTS(rootTS) {
		return "", "", fmt.Errorf("slack: thread root %q is not a Slack message timestamp", root)
	}
	for i, m := range r.parts {
		opts := msgOptions(m)
		thread := rootTS
		if thread == "" && first != "" {
			_, thread = splitRef(chat, first)
		}
		if thread != "" {
			opts = append(opts, slackapi.MsgOptionTS(thread))
		}
		posted, err := call(ctx, a, "chat.postMessage", func(ctx context.Context) (postedMsg, error) {
			c, ts, m, err := a.api.PostMessageWithResponseContext(ctx, ch, opts...)
			return postedMsg{channel: c, ts: ts, thread: m.ThreadTimestamp}, err
		})
		a.noteChat(chat, err)
		if err != nil {
			if i > 0 {
				return first, last, fmt.Errorf("part %d of %d (earlier parts were sent): %w", i+1, len(r.parts), err)
			}
			return first, last, err
		}
		if thread != "" && posted.thread == "" {
			// Slack posts into the channel when thread_ts names no message (the root
			// was deleted): delivered, but not where the incident is.
			a.log.Warn("slack posted a thread reply into the channel: its thread root is gone", "chat", chat, "root", thread)
		}
		ref := posted.ts
		if posted.channel != "" && posted.channel != chat {
			ref = posted.channel + "/" + posted.ts
			ch = posted.channel
		}
		if first == "" {
			first = ref
		}
		last = ref
	}
	if r.image != nil {
		imgCh, thread := ch, rootTS
		if thread == "" && first != "" {
			imgCh, thread = splitRef(chat, first)
		}
		a.upload(ctx, imgCh, thread, r.image)
	}
	return first, last, nil
}

type postedMsg struct{ channel, ts, thread string }

// upload shares img into the thread (files.getUploadURLExternal, the upload, then
// files.completeUploadExternal). The message with the text and buttons is already
// delivered, so a failed upload is logged rather than returned: the incident is
// announced either way, and the engine must not post it again.
func (a *Adapter) upload(ctx context.Context, ch, thread string, img *conversation.Image) {
	alt := clip(strings.TrimSpace(clean(img.Alt)), 1000)
	_, err := call(ctx, a, "files.uploadV2", func(ctx context.Context) (*slackapi.FileSummary, error) {
		// A fresh reader per attempt: a retried upload sends the whole image.
		return a.api.UploadFileContext(ctx, slackapi.UploadFileParameters{
			Reader: bytes.NewReader(img.PNG), FileSize: len(img.PNG), Filename: "chart.png",
			Title: "chart.png", AltTxt: alt, Channel: ch, ThreadTimestamp: thread,
		})
	})
	if err != nil {
		a.log.Warn("slack: the chart was not uploaded; the message went without it", "chat", ch, "err", err)
	}
}

// checkChat accepts a chat of this channel.
func checkChat(c conversation.Chat) error {
	if c.Channel != "" && c.Channel != Channel {
		return fmt.Errorf("slack: chat of channel %q", c.Channel)
	}
	if !validChatID(c.ID) && !validUserID(c.ID) {
		return fmt.Errorf("slack: %q is not a Slack channel or user id", c.ID)
	}
	return nil
}

func chatOf(id string) conversation.Chat { return conversation.Chat{Channel: Channel, ID: id} }

// splitRef reads a message ref: "ts", or "channel/ts" when the message lives under
// another id than the chat's (a direct message sent to a user id lives in a D… channel).
func splitRef(chat, ref string) (channel, ts string) {
	if c, t, ok := strings.Cut(ref, "/"); ok {
		return c, t
	}
	return chat, ref
}

// validTS accepts a Slack message timestamp: digits, a dot, digits ("1712345678.000100").
func validTS(ts string) bool {
	sec, frac, ok := strings.Cut(ts, ".")
	return ok && sec != "" && frac != "" && len(ts) <= 32 && digits(sec) && digits(frac)
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
