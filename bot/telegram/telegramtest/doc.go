// Package telegramtest is a fake Telegram Bot API server for tests: an httptest server that
// speaks the real wire protocol, so the real client, github.com/go-telegram/bot, is pointed
// at it with bot.WithServerURL(fake.URL()) and nothing is mocked.
//
// # Wire protocol
//
// Requests go to /bot<token>/<method> (method names are case-insensitive, as in Telegram),
// by GET or POST, with parameters in the query string or a body encoded as
// application/json, multipart/form-data (what go-telegram/bot always sends, objects such as
// reply_markup as JSON text, uploads as file parts) or application/x-www-form-urlencoded.
// Answers are {"ok":true,"result":…} or {"ok":false,"error_code":N,"description":"…"} with
// HTTP status N, and parameters.retry_after on 429. A wrong token is 401 Unauthorized and an
// unknown method 404 Not Found.
//
// Implemented: getMe, getUpdates, setWebhook, deleteWebhook, getWebhookInfo, sendMessage,
// sendPhoto, editMessageText, editMessageCaption, editMessageReplyMarkup, deleteMessage,
// answerCallbackQuery, createForumTopic, getChat. The checks that matter to a bot are Telegram's:
// text over 4096 UTF-16 code units after entity parsing ("message is too long"), captions
// over 1024, callback_data empty or over 64 bytes (BUTTON_DATA_INVALID), buttons without an
// action, HTML that Telegram's parser refuses ("can't parse entities: …", with Telegram's
// wording and byte offsets), edits of missing messages ("message to edit not found") and
// edits that change nothing ("message is not modified: …"). Editing text or caption
// without reply_markup removes the inline keyboard, as in Telegram.
//
// getUpdates is a real long poll: offset confirms earlier updates (a negative offset keeps
// the last -offset), timeout holds the request until an update is queued, the timeout
// passes or the client goes away, a newer getUpdates ends a held one with 409, and while a
// webhook is set getUpdates answers 409. allowed_updates is honoured and remembered.
//
// Forums: AddForum registers a chat with topics. createForumTopic opens a topic whose
// message_thread_id is the id of its opening service message (forum_topic_created), as in
// Telegram; messages in a topic carry message_thread_id and is_topic_message, and, when
// they reply to nothing else, reply_to_message set to that service message. Outside
// forums, message_thread_id is refused with "message thread not found".
//
// # Acting as users
//
// SendText, PressButton and Update queue updates for the bot; DeliverPending and
// PostWebhook post them to a webhook with the X-Telegram-Bot-Api-Secret-Token header.
// Calls, Sent, History, Message, Topics and CallbackAnswer show what the bot did; WaitFor,
// WaitForMessage and WaitConfirmed wait for it without sleeping.
//
// # Flood control and go-telegram/bot
//
// FailNext(method, n, retryAfter) makes the next n calls answer 429 with
// parameters.retry_after; they change nothing. go-telegram/bot v1.19.0 does not retry:
// every method returns *bot.TooManyRequestsError{Message: "too many requests, Too Many
// Requests: retry after N", RetryAfter: N}. Find it with errors.As; bot.IsTooManyRequestsError
// is a plain type assertion (false once wrapped), and errors.Is(err, bot.ErrorTooManyRequests)
// is false because the error does not wrap that sentinel. Its long-polling loop (Bot.Start)
// passes the error to the errors handler wrapped as "error get updates, %w" and polls again
// after its own backoff (100 ms doubling to 5 s), ignoring retry_after. Other refusals are
// wrapped sentinels: bot.ErrorBadRequest (400), ErrorUnauthorized (401), ErrorForbidden
// (403), ErrorNotFound (404), ErrorConflict (409).
//
// # Not modelled
//
// Markdown and MarkdownV2 are accepted and left as sent (no entities, no parse errors);
// Telegram's automatic detection of URLs, mentions and commands in the bot's own text is
// not done; a photo has one size; inline messages (inline_message_id), replies to other
// chats, getFile and file downloads, rate limits other than FailNext, privacy mode and
// HTTPS-only webhooks are not modelled.
package telegramtest
