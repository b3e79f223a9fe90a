// Package conversationtest is the contract every chat adapter keeps, both ways. Run is
// the outbound side, what the engine relies on when it opens threads, posts, edits and
// reads capabilities; RunInbound is the inbound side, what people write and press
// reaching the engine as it expects: commands as "/name args", Direct for one-to-one
// chats, presses as Data with an answer shown, a redelivery handled once, a forged
// request refused. Each adapter runs both against its platform's fake (bot/telegram on
// telegramtest, bot/whatsapp on twiliotest, bot/console on its own page), so a new
// adapter proves it behaves before the engine ever talks through it.
package conversationtest
