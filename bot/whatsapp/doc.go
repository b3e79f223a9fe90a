// Package whatsapp is the WhatsApp adapter, on Twilio: it renders the conversation's
// neutral messages in WhatsApp's *bold* / _italic_ syntax, split under Twilio's 1,600
// characters, and sends them with twilio-go's REST client (Messages; the incident chart
// as media served from PUBLIC_URL); it takes Twilio's signed webhook posts (checked with
// twilio-go's RequestValidator), de-duplicates them across replicas, turns typed words
// into commands ("STATUS checkout" → "/status checkout", "JOIN CODE" → "/start CODE") and
// hands them to the conversation engine. Voice escalation calls are bot/voice's.
//
// WhatsApp has no buttons under ordinary messages and no threads: the adapter declares
// so in its Capabilities, and the engine adds typed alternatives ("Reply APPROVE 7F3-K9")
// and routes free text by incident id, reply, or the sender's latest incident. Where a
// quick-reply template is configured (TWILIO_APPROVAL_CONTENT_SID) a card carrying an
// approval is sent through it, so Approve and Reject are also one tap. A message to a
// number that has not written within WhatsApp's 24-hour session window can only be a
// template: a card with an approval goes through the template then; other messages are
// sent as text and Twilio may refuse them (logged).
//
// Every message of an incident carries its id ("INC-7F3 ·"): the adapter keeps it in
// Thread.Topic, which WhatsApp has no other use for.
package whatsapp
