// Package twiliotest is an httptest fake of the Twilio endpoints AlertEngine uses:
// Messages and Calls of the 2010-04-01 REST API and Content v1 templates. The real
// twilio-go client reaches it through TWILIO_API_URL. It checks credentials and the
// limits Twilio enforces (1,600 characters per body, whatsapp: addresses, a known
// content SID), records every request, injects 429 and 5xx answers, and plays Twilio's
// side of the webhook: it posts signed inbound messages to the bot the way Twilio does.
package twiliotest
