package telegram

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// photoTTL is how long the adapter remembers that a message it sent is a photo, so that
// editing it sends editMessageCaption at once (editMessageText on a photo is a 400). As
// long as the conversation remembers the message itself.
const photoTTL = 90 * 24 * time.Hour

func (a *Adapter) photoKey(chat int64, mid int) string {
	return a.opts.KeyPrefix + "tg:photo:" + strconv.FormatInt(chat, 10) + ":" + strconv.Itoa(mid)
}

// rememberPhoto notes that message mid of chat is a photo. A failure only costs the first
// edit of that message one refused editMessageText.
func (a *Adapter) rememberPhoto(ctx context.Context, chat int64, mid int) {
	if err := a.opts.Redis.Set(ctx, a.photoKey(chat, mid), 1, photoTTL).Err(); err != nil {
		a.log.Warn("remember a sent photo", "chat", chat, "message", mid, "err", err)
	}
}

// isPhoto reports whether message mid of chat was sent as a photo (false when unknown).
func (a *Adapter) isPhoto(ctx context.Context, chat int64, mid int) bool {
	err := a.opts.Redis.Get(ctx, a.photoKey(chat, mid)).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		a.log.Warn("look up a sent photo", "chat", chat, "message", mid, "err", err)
	}
	return err == nil
}
