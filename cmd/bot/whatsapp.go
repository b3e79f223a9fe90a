package main

import (
	"context"
	"log/slog"

	"github.com/alertengine/alertengine/bot/whatsapp"
	"github.com/alertengine/alertengine/conversation"
)

// voiceCaller is the escalation caller when TWILIO_VOICE_FROM is set, else nil.
func voiceCaller(w wiring) (conversation.Caller, error) {
	if w.env.TwilioVoiceFrom == "" {
		return nil, nil
	}
	return whatsapp.NewCaller(whatsapp.CallerOptions{AccountSID: w.env.TwilioAccountSID, AuthToken: w.env.TwilioAuthToken.Reveal(),
		From: w.env.TwilioVoiceFrom, APIURL: w.env.TwilioAPIURL, Logger: w.log})
}

// newWhatsApp builds the WhatsApp adapter when Twilio is configured for it (nil
// otherwise).
func newWhatsApp(w wiring) (*whatsapp.Adapter, error) {
	if !w.env.WhatsAppEnabled() {
		return nil, nil
	}
	return whatsapp.New(whatsapp.Options{AccountSID: w.env.TwilioAccountSID, AuthToken: w.env.TwilioAuthToken.Reveal(),
		From: w.env.TwilioWhatsAppFrom, APIURL: w.env.TwilioAPIURL, ContentSID: w.env.TwilioApprovalContentSID,
		PublicURL: w.env.PublicURL, Redis: w.rc, KeyPrefix: w.keyPrefix, Logger: w.log, Clock: w.clock})
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
