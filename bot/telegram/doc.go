// Package telegram is the Telegram adapter: it renders the conversation's neutral messages
// as Telegram HTML with inline keyboards and delivers them through the Bot API
// (github.com/go-telegram/bot), and turns updates — typed text, /commands, button presses —
// into conversation.Inbound events for the engine.
//
// # Threads
//
// In a forum supergroup every incident gets its own topic (createForumTopic) and its
// messages go into it (message_thread_id). Elsewhere the first message is a root message
// and the thread is its reply chain (reply_parameters, allow_sending_without_reply).
//
// # Rendering
//
// Blocks become lines of HTML (Title and Bold in <b>, Muted in <i>, Code in <code>); every
// string is escaped, so text from users, commit messages or alerts is shown, never parsed.
// Messages longer than Telegram's 4096 characters are split between lines (preferably
// between blocks), a single line that is too long is cut with "…", and the buttons go on
// the last part. A message with an image is sent as a photo with the text as caption when it
// fits in 1024 characters, otherwise as a photo followed by the text. Button data longer
// than 64 bytes is refused before anything is sent.
//
// # Inbound
//
// Without Options.PublicURL, Run long-polls (getUpdates, after deleteWebhook) and there are
// no routes. With it (and the webhook secret), Run registers PublicURL + WebhookPath with
// setWebhook and Routes serves POST WebhookPath, the secret checked in constant time. Either way every update is handled at most once
// across replicas (SET NX on its update_id in Redis, kept 24 h), updates from bots are
// ignored, "/cmd@thisbot args" becomes "/cmd args", a command for another bot is ignored,
// and every button press is answered (answerCallbackQuery) with the engine's toast.
//
// The only Redis keys are KeyPrefix + "ae:telegram:<bot id>:update:<update_id>".
//
// # Flood control
//
// go-telegram/bot does not retry: a 429 comes back as *tgbot.TooManyRequestsError with
// RetryAfter in seconds. The adapter waits that long (through Options.Sleep) and retries,
// so a message is delivered once; other errors are returned wrapped.
package telegram
