// Package whatsapp is the WhatsApp adapter, on one of two providers: Twilio or Meta's
// WhatsApp Cloud API (WHATSAPP_PROVIDER). The channel's behaviour is the same on both
// and lives here once — rendering in WhatsApp's *bold* / _italic_ syntax, the incident
// label, the 24-hour session window, the approval template outside it, typed words as
// commands ("STATUS checkout" → "/status checkout", "JOIN CODE" → "/start CODE"),
// de-duplication across replicas, what a quoted reply points at — and a small provider
// interface (provider.go) is the wire: send a text (with the chart), the template, reply
// buttons; the provider's webhook, verified and parsed into the channel's Form; its
// readiness check.
//
// On Twilio (New) messages go through twilio-go's REST client, split under 1,600
// characters, the chart as media served from PUBLIC_URL; webhook posts are checked with
// twilio-go's RequestValidator. On the Cloud API (NewCloud) messages go to the Graph API's
// /{phone-number-id}/messages, split under 4,096 characters, the chart uploaded to
// /{phone-number-id}/media; the webhook (CloudWebhookPath) answers Meta's verification
// handshake and takes only posts whose X-Hub-Signature-256 verifies with the app secret;
// message-status callbacks are counted and failures logged with their error code. Voice
// escalation calls are bot/voice's.
//
// WhatsApp has no buttons under ordinary messages and no threads: the adapter declares
// so in its Capabilities, and the engine adds typed alternatives ("Reply APPROVE 7F3-K9")
// and routes free text by incident id, reply, or the sender's latest incident. Where an
// approval template is configured (TWILIO_APPROVAL_CONTENT_SID, WHATSAPP_CLOUD_TEMPLATE)
// a card carrying an approval is sent through it, so Approve and Reject are also one tap.
// On the Cloud API a card sent inside the session window gets real reply buttons instead
// (at most three, their ids the approval reference). A message to a number that has not
// written within WhatsApp's 24-hour session window can only be a template: a card with
// an approval goes through the template then; other messages are sent as text and the
// provider may refuse them (logged).
//
// Every message of an incident carries its id ("INC-7F3 ·"): the adapter keeps it in
// Thread.Topic, which WhatsApp has no other use for.
package whatsapp
