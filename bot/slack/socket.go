package slack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"

	"github.com/slack-go/slack/socketmode"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/conversation"
)

// Run receives events over Socket Mode until ctx ends, when SLACK_APP_TOKEN is set; it
// returns nil at once otherwise (the HTTP routes receive them). Every envelope is
// acknowledged as soon as it arrives and handled after, as over HTTP; Slack redelivers
// an envelope that was not acknowledged, and the claim makes the redelivery a no-op
// when the first was handled. An app token Slack refuses is an error wrapping
// channel.ErrRefused.
func (a *Adapter) Run(ctx context.Context, h conversation.Handler) error {
	if !a.opts.AppToken.IsSet() {
		return nil
	}
	if h == nil {
		return errors.New("slack: Run without a handler")
	}
	if _, err := a.identity(ctx); err != nil {
		return fmt.Errorf("slack: socket mode: %w", err)
	}
	client := socketmode.New(a.api, socketmode.OptionLog(log.New(io.Discard, "", 0)))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- client.RunContext(ctx) }()
	a.log.Info("slack socket mode started")
	for {
		select {
		case <-ctx.Done():
			<-done
			a.log.Info("slack socket mode stopped")
			return nil
		case err := <-done:
			if ctx.Err() != nil {
				return nil
			}
			if code := apiError(err); code == "invalid_auth" || code == "not_authed" || code == "token_revoked" {
				return fmt.Errorf("slack: socket mode: %w: %w", channel.ErrRefused, err)
			}
			return fmt.Errorf("slack: socket mode: %w", err)
		case evt := <-client.Events:
			if evt.Type == socketmode.EventTypeInvalidAuth {
				cancel()
				<-done
				return fmt.Errorf("slack: socket mode: %w: the app token was refused", channel.ErrRefused)
			}
			a.envelope(ctx, client, h, evt)
		}
	}
}

// envelope acknowledges one Socket Mode envelope and hands what it carries to the same
// handling as the HTTP routes.
func (a *Adapter) envelope(ctx context.Context, client *socketmode.Client, h conversation.Handler, evt socketmode.Event) {
	if evt.Request == nil {
		return
	}
	var classify func(ctx context.Context) (*event, error)
	payload := evt.Request.Payload
	switch evt.Type {
	case socketmode.EventTypeEventsAPI:
		var env envelope
		if err := json.Unmarshal(payload, &env); err != nil {
			a.log.Warn("slack socket mode: unreadable event", "err", err)
			break
		}
		if env.Type == "event_callback" {
			classify = func(ctx context.Context) (*event, error) { return a.fromEvent(ctx, env) }
		}
	case socketmode.EventTypeInteractive:
		var cb interaction
		if err := json.Unmarshal(payload, &cb); err != nil {
			a.log.Warn("slack socket mode: unreadable interaction", "err", err)
			break
		}
		classify = func(context.Context) (*event, error) { return fromInteraction(cb), nil }
	case socketmode.EventTypeSlashCommand:
		var c slashCommand
		if err := json.Unmarshal(payload, &c); err != nil {
			a.log.Warn("slack socket mode: unreadable command", "err", err)
			break
		}
		classify = func(context.Context) (*event, error) { return a.fromCommand(c, payload), nil }
	default:
		return
	}
	// Acknowledged whatever it carried, so Slack does not redeliver what the bot ignores.
	if err := client.AckCtx(ctx, evt.Request.EnvelopeID, nil); err != nil {
		a.log.Warn("slack socket mode: envelope not acknowledged", "err", err)
	}
	if classify != nil {
		a.later(ctx, h, classify)
	}
}
