// Package conversationtest is the contract every conversation.Transport keeps: what the
// engine relies on when it opens threads, posts, edits and reads capabilities. Each
// adapter runs Run against its platform's fake (bot/telegram on telegramtest,
// bot/whatsapp on twiliotest, bot/console on its own page), so a new adapter proves it
// behaves before the engine ever talks through it.
package conversationtest
