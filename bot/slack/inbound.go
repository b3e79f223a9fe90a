package slack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"strings"
	"time"

	slackapi "github.com/slack-go/slack"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/webhook"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/claim"
)

// Routes Slack calls when the app uses HTTP (Request URLs under PUBLIC_URL).
const (
	EventsPath        = "/slack/events"
	InteractivityPath = "/slack/interactivity"
	CommandsPath      = "/slack/commands"
)

// MaxBody is the largest request accepted from Slack; larger ones get 413 (each
// handler bounds its own bodies, so it holds wherever the handler is mounted).
const MaxBody = 1 << 20

// dedupTTL is how long a handled event is remembered; Slack stops retrying long before.
const dedupTTL = 24 * time.Hour

// claimSlack is how much longer than HandleTimeout an event stays claimed by a replica
// that neither finished nor gave it up (it died).
const claimSlack = 15 * time.Second

// What a person who pressed a button is told when the engine could not answer. It never
// carries internals.
const (
	toastFailed = "Something went wrong; nothing was done."
	toastStale  = "This button is no longer valid."
)

// commandWords are the bot's commands: typed as the first word of a message that
// addresses the bot ("@AlertEngine status checkout", or anything in its direct
// messages) they become "/status checkout".
var commandWords = map[string]bool{
	"status": true, "incidents": true, "commits": true, "silence": true, "approve": true,
	"replay": true, "details": true, "ack": true, "reject": true, "reissue": true,
	"help": true, "start": true,
}

// event is something a person did, ready for the engine.
type event struct {
	// key identifies it across Slack's redeliveries (and across the message and
	// app_mention events of one message).
	key string
	in  conversation.Inbound
	// press, for a button press: where its toast is shown.
	press *presser
	// refuse, when set, is the answer to a press that does not reach the engine.
	refuse string
}

type presser struct{ channel, user, thread string }

// Routes are Slack's three Request URLs, each verifying the signing secret; none
// without SLACK_SIGNING_SECRET (Socket Mode then brings everything in).
func (a *Adapter) Routes(h conversation.Handler) []channel.Route {
	if !a.opts.SigningSecret.IsSet() {
		return nil
	}
	return []channel.Route{
		{Pattern: "POST " + EventsPath, Handler: a.EventsHandler(h), MaxBody: MaxBody},
		{Pattern: "POST " + InteractivityPath, Handler: a.InteractivityHandler(h), MaxBody: MaxBody},
		{Pattern: "POST " + CommandsPath, Handler: a.CommandsHandler(h), MaxBody: MaxBody},
	}
}

// verified reads the request body and checks Slack's signature over it: v0, HMAC-SHA256
// of "v0:timestamp:body" with the signing secret, the timestamp within five minutes,
// compared in constant time. It answers the request itself (401, 413) and returns false
// when the request is not from Slack.
func (a *Adapter) verified(w http.ResponseWriter, r *http.Request) ([]byte, bool) {
	body, ok := webhook.ReadBody(w, r)
	if !ok {
		return nil, false
	}
	if !a.opts.SigningSecret.IsSet() {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return nil, false
	}
	v, err := slackapi.NewSecretsVerifier(r.Header, a.opts.SigningSecret.Reveal())
	if err == nil {
		_, _ = v.Write(body)
		err = v.Ensure()
	}
	if err != nil {
		why, reason := "bad signature", "signature"
		if errors.Is(err, slackapi.ErrExpiredTimestamp) {
			why, reason = "timestamp outside five minutes", "stale"
		} else if errors.Is(err, slackapi.ErrMissingHeaders) {
			why, reason = "no signature", "unsigned"
		}
		a.m.refused.WithLabelValues(reason).Inc()
		a.log.Warn("slack request refused", "path", r.URL.Path, "why", why, "remote", r.RemoteAddr)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return nil, false
	}
	return body, true
}

// EventsHandler serves the Events API: the url_verification challenge, and
// event_callback messages (in threads, mentions, direct messages), acknowledged at once
// and handled after.
func (a *Adapter) EventsHandler(h conversation.Handler) http.Handler {
	return webhook.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := a.verified(w, r)
		if !ok {
			return
		}
		var env envelope
		if err := json.Unmarshal(body, &env); err != nil {
			http.Error(w, "not a Slack event", http.StatusBadRequest)
			return
		}
		if env.Type == "url_verification" {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			_, _ = io.WriteString(w, env.Challenge)
			return
		}
		if env.Type == "event_callback" {
			a.later(r.Context(), h, func(ctx context.Context) (*event, error) { return a.fromEvent(ctx, env) })
		}
		w.WriteHeader(http.StatusOK)
	}), MaxBody)
}

// InteractivityHandler serves button presses (block_actions).
func (a *Adapter) InteractivityHandler(h conversation.Handler) http.Handler {
	return webhook.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := a.verified(w, r)
		if !ok {
			return
		}
		form, err := url.ParseQuery(string(body))
		var cb interaction
		if err == nil {
			err = json.Unmarshal([]byte(form.Get("payload")), &cb)
		}
		if err != nil {
			http.Error(w, "not a Slack interaction", http.StatusBadRequest)
			return
		}
		a.later(r.Context(), h, func(context.Context) (*event, error) { return fromInteraction(cb), nil })
		w.WriteHeader(http.StatusOK)
	}), MaxBody)
}

// CommandsHandler serves slash commands.
func (a *Adapter) CommandsHandler(h conversation.Handler) http.Handler {
	return webhook.Limit(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := a.verified(w, r)
		if !ok {
			return
		}
		form, err := url.ParseQuery(string(body))
		if err != nil || form.Get("command") == "" {
			http.Error(w, "not a Slack command", http.StatusBadRequest)
			return
		}
		c := slashCommand{Command: form.Get("command"), Text: form.Get("text"), ChannelID: form.Get("channel_id"),
			UserID: form.Get("user_id"), UserName: form.Get("user_name"), TriggerID: form.Get("trigger_id")}
		a.later(r.Context(), h, func(context.Context) (*event, error) { return a.fromCommand(c, body), nil })
		w.WriteHeader(http.StatusOK)
	}), MaxBody)
}

// later handles an acknowledged request: on its own goroutine (at most Workers at once),
// with a context detached from the request, which ends when the answer is sent, but
// bounded by HandleTimeout.
func (a *Adapter) later(parent context.Context, h conversation.Handler, classify func(ctx context.Context) (*event, error)) {
	a.pending.Add(1)
	go func() {
		defer a.pending.Done()
		a.work <- struct{}{}
		defer func() { <-a.work }()
		ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), a.opts.HandleTimeout)
		defer cancel()
		ev, err := classify(ctx)
		if err != nil {
			a.log.Error("slack event not handled", "err", err)
			return
		}
		if ev == nil {
			return
		}
		if err := a.handle(ctx, h, ev); err != nil {
			a.log.Error("slack event not handled", "key", ev.key, "err", err)
		}
	}()
}

// handle claims ev so that no other replica (or redelivery) handles it too, hands it to
// h and shows a press's toast to the person who pressed.
func (a *Adapter) handle(ctx context.Context, h conversation.Handler, ev *event) error {
	me, err := a.identity(ctx)
	if err != nil {
		return err
	}
	key := a.opts.KeyPrefix + "ae:slack:" + me.team + ":event:" + ev.key
	cl, outcome, err := a.events.Take(ctx, key)
	if err != nil {
		if ev.press != nil {
			a.toast(ctx, ev.press, toastFailed)
		}
		return fmt.Errorf("slack: claim event: %w", err)
	}
	switch outcome {
	case claim.Handled:
		a.m.events.WithLabelValues(ev.kind(), "duplicate").Inc()
		a.log.Debug("slack event already handled", "key", ev.key)
		return nil
	case claim.Busy:
		a.m.events.WithLabelValues(ev.kind(), "duplicate").Inc()
		a.log.Info("slack event being handled elsewhere", "key", ev.key)
		return nil
	}
	if ev.refuse != "" {
		a.m.events.WithLabelValues(ev.kind(), "refused").Inc()
		a.log.Warn("slack button press refused", "chat", ev.in.Chat.ID, "user", ev.in.User.ID)
		a.toast(ctx, ev.press, ev.refuse)
		a.settle(ctx, cl)
		return nil
	}
	reply, err := a.dispatch(ctx, h, ev.in)
	result := "handled"
	if err != nil {
		result = "failed"
	}
	a.m.events.WithLabelValues(ev.kind(), result).Inc()
	if err != nil {
		a.log.Error("engine failed on a slack event", "chat", ev.in.Chat.ID, "pressed", ev.in.Pressed(), "err", err)
	}
	if ev.press != nil {
		text := reply.Toast
		if err != nil || text == "" {
			text = toastFailed
		}
		a.toast(ctx, ev.press, text)
	}
	a.settle(ctx, cl)
	return nil
}

func (a *Adapter) settle(ctx context.Context, cl *claim.Claim) {
	if err := cl.Done(ctx); err != nil {
		a.log.Warn("slack event handled but not recorded as handled", "err", err)
	}
}

// dispatch calls the engine, turning a panic into an error so a press is still answered.
func (a *Adapter) dispatch(ctx context.Context, h conversation.Handler, in conversation.Inbound) (reply conversation.Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("handler panicked: %v\n%s", p, debug.Stack())
		}
	}()
	if h == nil {
		return conversation.Reply{}, errors.New("no handler")
	}
	return h.Handle(ctx, in)
}

// toast shows text to the person who pressed, and to nobody else (chat.postEphemeral,
// in the thread of the pressed message). Failures are only logged: the engine has
// already acted.
func (a *Adapter) toast(ctx context.Context, p *presser, text string) {
	if p == nil || p.channel == "" || p.user == "" {
		return
	}
	opts := []slackapi.MsgOption{slackapi.MsgOptionText(escapeClip(clean(text), maxToast), false)}
	if p.thread != "" {
		opts = append(opts, slackapi.MsgOptionTS(p.thread))
	}
	_, err := call(ctx, a, "chat.postEphemeral", func(ctx context.Context) (string, error) {
		return a.api.PostEphemeralContext(ctx, p.channel, p.user, opts...)
	})
	if err != nil {
		a.log.Warn("slack press not answered", "err", err)
	}
}

// envelope is an Events API request (and a Socket Mode events_api payload).
type envelope struct {
	Type      string     `json:"type"`
	Challenge string     `json:"challenge"`
	TeamID    string     `json:"team_id"`
	EventID   string     `json:"event_id"`
	Event     innerEvent `json:"event"`
}

type innerEvent struct {
	Type        string `json:"type"`
	Subtype     string `json:"subtype"`
	Channel     string `json:"channel"`
	ChannelType string `json:"channel_type"`
	User        string `json:"user"`
	BotID       string `json:"bot_id"`
	Text        string `json:"text"`
	TS          string `json:"ts"`
	ThreadTS    string `json:"thread_ts"`
}

// interaction is an Interactivity request's payload.
type interaction struct {
	Type      string `json:"type"`
	TriggerID string `json:"trigger_id"`
	User      struct {
		ID       string `json:"id"`
		Username string `json:"username"`
		Name     string `json:"name"`
	} `json:"user"`
	Channel struct {
		ID string `json:"id"`
	} `json:"channel"`
	Container struct {
		ChannelID string `json:"channel_id"`
		MessageTS string `json:"message_ts"`
		ThreadTS  string `json:"thread_ts"`
	} `json:"container"`
	Message struct {
		TS       string `json:"ts"`
		ThreadTS string `json:"thread_ts"`
	} `json:"message"`
	Actions []struct {
		ActionID string `json:"action_id"`
		Value    string `json:"value"`
		ActionTS string `json:"action_ts"`
	} `json:"actions"`
}

// slashCommand is a slash command's fields.
type slashCommand struct {
	Command   string `json:"command"`
	Text      string `json:"text"`
	ChannelID string `json:"channel_id"`
	UserID    string `json:"user_id"`
	UserName  string `json:"user_name"`
	TriggerID string `json:"trigger_id"`
}

// place is where something happened as the engine sees it: a direct message's chat is
// the person (their user id, where the bot writes to them), and its message refs name
// the D… channel they live in.
func place(channelID, user string) (chat conversation.Chat, ref func(ts string) string, direct bool) {
	if strings.HasPrefix(channelID, "D") && user != "" {
		return chatOf(user), func(ts string) string {
			if ts == "" {
				return ""
			}
			return channelID + "/" + ts
		}, true
	}
	return chatOf(channelID), func(ts string) string { return ts }, false
}

// fromEvent turns a message or app_mention into an event, or nil for one to ignore:
// anything from a bot (this one included), edits and other subtypes, empty text.
func (a *Adapter) fromEvent(ctx context.Context, env envelope) (*event, error) {
	e := env.Event
	if e.Type != "message" && e.Type != "app_mention" {
		return nil, nil
	}
	if e.Subtype != "" && e.Subtype != "thread_broadcast" && e.Subtype != "file_share" {
		return nil, nil
	}
	if e.BotID != "" || e.User == "" || e.Channel == "" || e.TS == "" || strings.TrimSpace(e.Text) == "" {
		return nil, nil
	}
	me, err := a.identity(ctx)
	if err != nil {
		return nil, err
	}
	if e.User == me.userID {
		return nil, nil
	}
	chat, ref, direct := place(e.Channel, e.User)
	direct = direct || e.ChannelType == "im"
	text := normalize(e.Text, me.userID, direct)
	if text == "" {
		return nil, nil
	}
	in := conversation.Inbound{Chat: chat, User: conversation.User{Channel: Channel, ID: e.User, Name: e.User},
		Text: text, Direct: direct, MessageID: ref(e.TS)}
	if e.ThreadTS != "" && e.ThreadTS != e.TS {
		// In a thread: it answers the thread's root, and the bot answers in the thread.
		in.ReplyTo, in.MessageID = ref(e.ThreadTS), ref(e.ThreadTS)
	}
	// One message comes as a message event and, when it mentions the bot, as an
	// app_mention too: one key for both, and for Slack's retries.
	return &event{key: "msg:" + e.Channel + ":" + e.TS, in: in}, nil
}

// normalize reads a message's text as the engine takes it: Slack's escapes undone, a
// leading mention of the bot dropped, and, where the bot is addressed (mentioned, or in
// its direct messages), a first word that is one of its commands made "/word args".
func normalize(text, botUser string, direct bool) string {
	text = strings.TrimSpace(text)
	addressed := direct
	if botUser != "" {
		for _, m := range []string{"<@" + botUser + ">", "<@" + botUser + "|"} {
			if rest, ok := strings.CutPrefix(text, m); ok {
				if strings.HasSuffix(m, "|") {
					_, rest, _ = strings.Cut(rest, ">")
				}
				text, addressed = strings.TrimSpace(rest), true
				break
			}
		}
	}
	text = unescape(text)
	if strings.HasPrefix(text, "/") || !addressed {
		return text
	}
	word, rest, _ := strings.Cut(text, " ")
	if w := strings.ToLower(word); commandWords[w] {
		return strings.TrimSpace("/" + w + " " + strings.TrimSpace(rest))
	}
	return text
}

var unescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

func unescape(s string) string { return unescaper.Replace(s) }

// fromInteraction turns a block_actions press into an event; nil for anything else.
func fromInteraction(cb interaction) *event {
	if cb.Type != "block_actions" || len(cb.Actions) == 0 || cb.User.ID == "" {
		return nil
	}
	act := cb.Actions[0]
	ch := cb.Container.ChannelID
	if ch == "" {
		ch = cb.Channel.ID
	}
	msgTS := cb.Container.MessageTS
	if msgTS == "" {
		msgTS = cb.Message.TS
	}
	thread := cb.Container.ThreadTS
	if thread == "" {
		thread = cb.Message.ThreadTS
	}
	chat, ref, direct := place(ch, cb.User.ID)
	name := cb.User.Name
	if name == "" {
		name = cb.User.Username
	}
	if name == "" {
		name = cb.User.ID
	}
	in := conversation.Inbound{Chat: chat, User: conversation.User{Channel: Channel, ID: cb.User.ID, Name: name},
		Data: act.Value, Direct: direct, ReplyTo: ref(msgTS), MessageID: ref(msgTS)}
	if thread != "" {
		in.MessageID = ref(thread)
	}
	id := act.ActionTS
	if id == "" {
		id = cb.TriggerID
	}
	ev := &event{key: "press:" + ch + ":" + msgTS + ":" + cb.User.ID + ":" + id, in: in,
		press: &presser{channel: ch, user: cb.User.ID, thread: thread}}
	if checkButtonData(act.Value) != nil || ch == "" || msgTS == "" {
		ev.refuse = toastStale
	}
	return ev
}

// fromCommand turns a slash command into an event: "/status checkout" as it is, and
// the app's own command with the bot's command as its text ("/alertengine status
// checkout", "/alertengine" alone for help).
func (a *Adapter) fromCommand(c slashCommand, raw []byte) *event {
	if c.UserID == "" || c.ChannelID == "" {
		return nil
	}
	text := strings.TrimSpace(c.Text)
	if strings.EqualFold(c.Command, a.opts.Command) {
		word, rest, _ := strings.Cut(text, " ")
		word = strings.TrimPrefix(strings.ToLower(word), "/")
		if word == "" {
			word = "help"
		}
		text = strings.TrimSpace("/" + word + " " + strings.TrimSpace(rest))
	} else {
		text = strings.TrimSpace(strings.ToLower(c.Command) + " " + text)
	}
	chat, _, direct := place(c.ChannelID, c.UserID)
	id := c.TriggerID
	if id == "" {
		sum := sha256.Sum256(raw)
		id = hex.EncodeToString(sum[:16])
	}
	name := c.UserName
	if name == "" {
		name = c.UserID
	}
	return &event{key: "cmd:" + id, in: conversation.Inbound{Chat: chat, User: conversation.User{Channel: Channel, ID: c.UserID, Name: name},
		Text: text, Direct: direct}}
}
