package main

import (
	"context"
	"log/slog"

	"github.com/alertengine/alertengine/bot/voice"
	"github.com/alertengine/alertengine/bot/whatsapp"
	"github.com/alertengine/alertengine/conversation"
)

// voiceCaller is the escalation caller when TWILIO_VOICE_FROM is set, else nil.
func voiceCaller(w wiring) (conversation.Caller, error) {
	if w.env.TwilioVoiceFrom == "" {
		return nil, nil
	}
	return voice.New(voice.Options{AccountSID: w.env.TwilioAccountSID, AuthToken: w.env.TwilioAuthToken.Reveal(),
		From: w.env.TwilioVoiceFrom, APIURL: w.env.TwilioAPIURL, Logger: w.log})
}

// wireWhatsApp adds the WhatsApp adapter when Twilio is configured for it: its transport
// to the engine, POST /whatsapp/webhook and the chart images Twilio fetches.
func wireWhatsApp(w wiring, s *system) error {
	if !w.env.WhatsAppEnabled() {
		return nil
	}
	a, err := whatsapp.New(whatsapp.Options{AccountSID: w.env.TwilioAccountSID, AuthToken: w.env.TwilioAuthToken.Reveal(),
		From: w.env.TwilioWhatsAppFrom, APIURL: w.env.TwilioAPIURL, ContentSID: w.env.TwilioApprovalContentSID,
		PublicURL: w.env.PublicURL, Redis: w.rc, KeyPrefix: w.keyPrefix, Logger: w.log, Clock: w.clock})
	if err != nil {
		return err
	}
	s.whatsapp = a
	s.engine.AddTransport(a)
	s.server.Handle("POST "+whatsapp.WebhookPath, a.WebhookHandler(s.engine))
	s.server.Handle("GET "+whatsapp.MediaPath, a.MediaHandler())
	return nil
}

// checkWhatsAppTemplate warns once at start-up when the approval template is unusable
// (cards then fall back to reply codes, which always work).
func checkWhatsAppTemplate(ctx context.Context, a *whatsapp.Adapter, log *slog.Logger) error {
	if err := a.CheckTemplate(ctx); err != nil && ctx.Err() == nil {
		log.Warn("TWILIO_APPROVAL_CONTENT_SID: approvals fall back to reply codes", "err", err)
	}
	<-ctx.Done()
	return nil
}
