// Package slack is the Slack adapter: it renders the conversation's neutral messages as
// Block Kit and delivers them through the Web API (github.com/slack-go/slack), and turns
// what people do in Slack — messages in an incident's thread, mentions, direct messages,
// slash commands, button presses — into conversation.Inbound events for the engine.
//
// # Threads
//
// An incident is a thread: its card is a message in the tenant's channel
// (chat.postMessage) and everything after it is posted with thread_ts set to the card's
// ts. Edit is chat.update. A message longer than 50 blocks goes out in parts, the later
// ones in the first one's thread; the buttons ride on the last part, which is the
// MessageRef Edit updates. The chart is uploaded into the thread after the text
// (files.getUploadURLExternal, the upload, files.completeUploadExternal); a failed upload
// is logged, not returned, since the card itself was delivered. A direct message is sent
// to the person's user id (Slack opens the app's Messages tab); its refs are written
// "D…/ts", naming the D… channel Slack answered with, so replies and edits reach it.
//
// # Rendering
//
// Blocks become mrkdwn lines (Title and Bold in *…*, Muted in _…_, Code in `…`), with &, <
// and > escaped as Slack requires, so text from alerts, commits or people is shown and
// never turns into a mention (<!channel>) or a link; a line that contains its style's
// marker is left unstyled rather than mis-parsed. Lines are packed into sections of at
// most 3,000 characters; a longer line is cut, between runes and never inside an entity,
// with "…". Buttons become actions blocks of at most three; a label is cut to 75
// characters; a value (Button.Data) over 2,000 bytes is refused before anything is sent.
// An approval button (its data an approval reference) is styled primary; one the engine
// marks with a Confirm question (a high-risk action) opens a confirm dialog first. No link or media previews are unfurled.
//
// # Inbound
//
// Over HTTP (SLACK_SIGNING_SECRET; Request URLs /slack/events, /slack/interactivity,
// /slack/commands under PUBLIC_URL) every request's v0 signature is checked (HMAC-SHA256
// of "v0:timestamp:body", the timestamp within five minutes, constant-time compare): 401
// otherwise, and nothing reaches the engine. The url_verification challenge is answered.
// Everything else is acknowledged with 200 at once and handled after, on a context
// detached from the request and bounded by HandleTimeout, at most Workers at a time. Over
// Socket Mode (SLACK_APP_TOKEN) Run holds the websocket and acknowledges each envelope as
// it arrives; the handling is the same.
//
// Each event is handled once across replicas and redeliveries (X-Slack-Retry-Num, an
// envelope's retry_attempt) by a claim in Redis (ledger/claim): a message by its channel
// and ts (so the message and app_mention events of one mention count once), a press by
// its action_ts, a slash command by its trigger_id. Messages from bots, this one
// included, and edits are ignored. A message in a thread reaches the engine with ReplyTo
// and MessageID set to the thread's root, so the answer lands in the thread. Where the bot
// is addressed — mentioned first, or in its direct messages — a first word that is one of
// its commands becomes "/word args" ("@AlertEngine replay INC-7F3" is "/replay
// INC-7F3"). A slash command named after a command ("/status checkout") is taken as it
// is; the app's own command (Options.Command, default /alertengine) takes the command as
// its text. A press's answer (Reply.Toast) is an ephemeral message to the presser only,
// in the pressed message's thread.
//
// The only Redis keys are KeyPrefix + "ae:slack:<team>:event:<key>".
//
// # Errors and rate limits
//
// A 429 comes back from slack-go as *slack.RateLimitedError; the method is then held
// until its Retry-After has passed (other calls of the same method wait too) and the call
// is retried, at most three times. Check is auth.test: invalid_auth, account_inactive,
// token_revoked and the like wrap channel.ErrRefused. channel_not_found and
// not_in_channel are logged once per channel, with what to do, and reported by Check
// (so /readyz) until a post there succeeds.
package slack
