package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"runtime/debug"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	tgbot "github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/alertengine/alertengine/bot/webhook"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/claim"
)

// WebhookPath is where Telegram posts updates in webhook mode.
const WebhookPath = "/telegram/webhook"

// SecretHeader carries the webhook's secret_token on every request Telegram makes.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// MaxWebhookBody is the largest webhook request accepted (the route's limit); larger ones
// get 413.
const MaxWebhookBody = 1 << 20

// dedupTTL is how long a handled update_id is remembered; Telegram gives up redelivering
// long before.
const dedupTTL = 24 * time.Hour

// claimSlack is how much longer than HandleTimeout an update stays claimed by a replica
// that neither finished nor gave it up (it died): after that, Telegram's redelivery of it
// is handled by whichever replica receives it.
const claimSlack = 15 * time.Second

// What a person who pressed a button is told when the engine could not answer. It never
// carries internals.
const (
	toastFailed = "Something went wrong; nothing was done."
	toastStale  = "This button is no longer valid."
)

// allowedUpdates are the updates the adapter asks for: typed messages and button presses.
var allowedUpdates = []string{models.AllowedUpdateMessage, models.AllowedUpdateCallbackQuery}

// Run receives updates until ctx ends, handing each to h. In webhook mode (PublicURL set)
// it registers PublicURL + WebhookPath as the bot's webhook and waits: the updates come
// to Routes. Otherwise it long-polls.
func (a *Adapter) Run(ctx context.Context, h conversation.Handler) error {
	if h == nil {
		return errors.New("telegram: Run without a handler")
	}
	if a.opts.PublicURL != "" {
		if err := a.SetWebhook(ctx, a.opts.PublicURL+WebhookPath); err != nil {
			return err
		}
		<-ctx.Done()
		return nil
	}
	return a.poll(ctx, h)
}

// poll receives updates by long polling until ctx ends; it deletes any webhook first
// (Telegram allows one or the other). Only one process per bot token may poll. It
// returns nil when ctx ends, after the updates being handled are done.
func (a *Adapter) poll(ctx context.Context, h conversation.Handler) error {
	if _, err := a.me(ctx); err != nil {
		return fmt.Errorf("telegram: run: %w", err)
	}
	if _, err := call(ctx, a, "deleteWebhook", func(ctx context.Context) (bool, error) {
		return a.api.DeleteWebhook(ctx, &tgbot.DeleteWebhookParams{})
	}); err != nil {
		return fmt.Errorf("telegram: run: %w", err)
	}
	poller, err := a.newClient(
		tgbot.WithAllowedUpdates(allowedUpdates),
		tgbot.WithWorkers(a.opts.Workers),
		// Handlers run on the workers, so Start returns only once they are done.
		tgbot.WithNotAsyncHandlers(),
		tgbot.WithDefaultHandler(func(ctx context.Context, _ *tgbot.Bot, u *models.Update) {
			if err := a.handle(ctx, h, u, false); err != nil {
				a.log.Error("telegram update not handled", "update_id", u.ID, "err", err)
			}
		}),
	)
	if err != nil {
		return err
	}
	a.log.Info("telegram long polling started")
	poller.Start(ctx)
	a.log.Info("telegram long polling stopped")
	return nil
}

// SetWebhook registers url as the bot's webhook, with Options.WebhookSecret as its
// secret_token, for the updates the adapter handles.
func (a *Adapter) SetWebhook(ctx context.Context, webhookURL string) error {
	if a.opts.WebhookSecret == "" {
		return errors.New("telegram: set webhook: no webhook secret configured")
	}
	if u, err := url.Parse(webhookURL); err != nil || !u.IsAbs() || u.Host == "" {
		return fmt.Errorf("telegram: set webhook: %q is not an absolute URL", webhookURL)
	}
	_, err := call(ctx, a, "setWebhook", func(ctx context.Context) (bool, error) {
		return a.api.SetWebhook(ctx, &tgbot.SetWebhookParams{
			URL: webhookURL, SecretToken: a.opts.WebhookSecret, AllowedUpdates: allowedUpdates,
		})
	})
	if err != nil {
		return fmt.Errorf("telegram: %w", err)
	}
	return nil
}

// WebhookHandler serves Telegram's webhook requests: 401 when the secret token is missing
// or wrong, 413 over the route's body limit (MaxWebhookBody in Routes), 400 when the body
// is not an update, 500 when the update was not handled — it could not be claimed,
// another replica is still handling it, or the engine failed — so that Telegram delivers
// it again and the redelivery is handled; 200 once it was handled (or was before). Mount
// it for POST only, under a body limit: Routes does.
func (a *Adapter) WebhookHandler(h conversation.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !webhook.SecretEqual(r.Header.Get(SecretHeader), a.opts.WebhookSecret) {
			a.log.Warn("telegram webhook request refused: missing or wrong secret token", "remote", r.RemoteAddr)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		body, ok := webhook.ReadBody(w, r)
		if !ok {
			return
		}
		var u models.Update
		if err := json.Unmarshal(body, &u); err != nil || u.ID <= 0 {
			http.Error(w, "not a Telegram update", http.StatusBadRequest)
			return
		}
		if h == nil {
			http.Error(w, "no handler", http.StatusInternalServerError)
			return
		}
		if err := a.handle(r.Context(), h, &u, true); err != nil {
			a.log.Error("telegram update not handled", "update_id", u.ID, "err", err)
			http.Error(w, "try again", http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
}

// event is an update the engine should see.
type event struct {
	in conversation.Inbound
	// query is the id of the callback query to answer, for a press.
	query string
	// refuse, when set, is the answer to a press that does not reach the engine.
	refuse string
}

// handle takes one update: ignores what is not for the engine, claims it so that no other
// replica handles it at the same time or again, hands it to h and answers a press. Its
// error means the update was not handled and can be again: the claim is given up.
// redelivered says Telegram will redeliver it (webhook), so a press is left unanswered
// for that attempt and answered by the one that handles it; when long polling nothing is
// redelivered, so a press is answered whatever happens.
func (a *Adapter) handle(ctx context.Context, h conversation.Handler, u *models.Update, redelivered bool) error {
	// The update is ours from here on: finish it even if the request or the poll ends.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), a.opts.HandleTimeout)
	defer cancel()
	ev, err := a.classify(ctx, u)
	if err != nil || ev == nil {
		return err
	}
	key := a.opts.KeyPrefix + "ae:telegram:" + a.botID + ":update:" + strconv.FormatInt(u.ID, 10)
	cl, outcome, err := a.updates.Take(ctx, key)
	if err != nil {
		if ev.query != "" && !redelivered {
			a.answer(ctx, ev.query, toastFailed)
		}
		return fmt.Errorf("telegram: claim update %d: %w", u.ID, err)
	}
	switch outcome {
	case claim.Handled:
		a.log.Debug("telegram update already handled", "update_id", u.ID)
		return nil
	case claim.Busy:
		a.log.Info("telegram update being handled by another replica", "update_id", u.ID)
		if redelivered {
			return errBusy
		}
		return nil
	}
	if ev.refuse != "" {
		a.log.Warn("telegram button press refused", "update_id", u.ID, "chat", ev.in.Chat.ID, "user", ev.in.User.ID)
		a.answer(ctx, ev.query, ev.refuse)
		a.settle(ctx, cl, u.ID)
		return nil
	}
	reply, err := a.dispatch(ctx, h, ev.in)
	var panicked *panicError
	if err != nil && redelivered && !errors.As(err, &panicked) {
		// Telegram delivers it again; that attempt answers the presser.
		if rerr := cl.Release(ctx); rerr != nil {
			a.log.Warn("telegram update not given up; its redelivery waits for the lease", "update_id", u.ID, "err", rerr)
		}
		return fmt.Errorf("engine failed on update %d: %w", u.ID, err)
	}
	if err != nil {
		a.log.Error("engine failed on a telegram update", "update_id", u.ID, "chat", ev.in.Chat.ID, "pressed", ev.in.Pressed(), "err", err)
	}
	if ev.query != "" {
		text := reply.Toast
		if err != nil {
			text = toastFailed
		}
		a.answer(ctx, ev.query, text)
	}
	a.settle(ctx, cl, u.ID)
	return nil
}

// errBusy: another replica holds the update; Telegram should deliver it again later.
var errBusy = errors.New("telegram: update being handled by another replica")

// settle records a handled update; a failure is logged (the update may then be handled
// again when redelivered after the lease, which the engine answers as a duplicate press).
func (a *Adapter) settle(ctx context.Context, cl *claim.Claim, id int64) {
	if err := cl.Done(ctx); err != nil {
		a.log.Warn("telegram update handled but not recorded as handled", "update_id", id, "err", err)
	}
}

// panicError is a handler's panic: handling it again would panic again, so it is final.
type panicError struct{ msg string }

func (p *panicError) Error() string { return p.msg }

// dispatch calls the engine, turning a panic into an error so a press is still answered.
func (a *Adapter) dispatch(ctx context.Context, h conversation.Handler, in conversation.Inbound) (reply conversation.Reply, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{msg: fmt.Sprintf("handler panicked: %v\n%s", p, debug.Stack())}
		}
	}()
	return h.Handle(ctx, in)
}

// answer answers a callback query (which stops the button's spinner); failures are only
// logged, as the engine has already acted.
func (a *Adapter) answer(ctx context.Context, query, text string) {
	_, err := call(ctx, a, "answerCallbackQuery", func(ctx context.Context) (bool, error) {
		return a.api.AnswerCallbackQuery(ctx, &tgbot.AnswerCallbackQueryParams{CallbackQueryID: query, Text: toast(text)})
	})
	if err != nil {
		a.log.Warn("telegram press not answered", "err", err)
	}
}

// toast fits text into a callback answer: one paragraph of at most 200 characters.
func toast(text string) string {
	text = strings.ToValidUTF8(text, "\uFFFD")
	if utf8.RuneCountInString(text) <= maxToast {
		return text
	}
	r := []rune(text)
	return string(r[:maxToast-1]) + ellipsis
}

// classify turns an update into an event for the engine, or nil for one to ignore:
// anything from a bot, anything but text messages and button presses, and commands for
// another bot.
func (a *Adapter) classify(ctx context.Context, u *models.Update) (*event, error) {
	switch {
	case u.Message != nil:
		return a.fromMessage(ctx, u.Message)
	case u.CallbackQuery != nil:
		return fromCallback(u.CallbackQuery), nil
	}
	return nil, nil
}

func (a *Adapter) fromMessage(ctx context.Context, m *models.Message) (*event, error) {
	if m.From == nil || m.From.IsBot || m.Text == "" {
		return nil, nil
	}
	text := m.Text
	if strings.HasPrefix(text, "/") {
		me, err := a.me(ctx)
		if err != nil {
			return nil, err
		}
		var ok bool
		if text, ok = normalizeCommand(text, me); !ok {
			return nil, nil
		}
	}
	in := conversation.Inbound{
		Chat:      chatOf(m.Chat.ID),
		User:      userOf(m.From),
		Text:      text,
		MessageID: itoa(m.ID),
		Direct:    m.Chat.Type == models.ChatTypePrivate,
	}
	if m.IsTopicMessage && m.MessageThreadID != 0 {
		in.Topic = itoa(m.MessageThreadID)
	}
	// In a topic, a message that replies to nothing carries the topic's opening service
	// message as reply_to_message: that is not a reply.
	if r := m.ReplyToMessage; r != nil && !(m.IsTopicMessage && r.ID == m.MessageThreadID) {
		in.ReplyTo = itoa(r.ID)
	}
	return &event{in: in}, nil
}

func fromCallback(q *models.CallbackQuery) *event {
	if q.From.IsBot {
		return nil
	}
	ev := &event{query: q.ID, in: conversation.Inbound{User: userOf(&q.From), Data: q.Data}}
	switch m := q.Message; {
	case m.Message != nil:
		ev.in.Chat, ev.in.ReplyTo = chatOf(m.Message.Chat.ID), itoa(m.Message.ID)
		ev.in.Direct = m.Message.Chat.Type == models.ChatTypePrivate
		if m.Message.IsTopicMessage && m.Message.MessageThreadID != 0 {
			ev.in.Topic = itoa(m.Message.MessageThreadID)
		}
	case m.InaccessibleMessage != nil:
		ev.in.Chat, ev.in.ReplyTo = chatOf(m.InaccessibleMessage.Chat.ID), itoa(m.InaccessibleMessage.MessageID)
		ev.in.Direct = m.InaccessibleMessage.Chat.Type == models.ChatTypePrivate
	default: // a button under an inline message: not one of ours
		ev.refuse = toastStale
		return ev
	}
	if checkButtonData(q.Data) != nil || ev.in.Chat.ID == "0" {
		ev.refuse = toastStale
	}
	return ev
}

func userOf(u *models.User) conversation.User {
	id := strconv.FormatInt(u.ID, 10)
	name := strings.TrimSpace(strings.TrimSpace(u.FirstName) + " " + strings.TrimSpace(u.LastName))
	if name == "" {
		name = u.Username
	}
	if name == "" {
		name = id
	}
	return conversation.User{Channel: conversation.Telegram, ID: id, Name: name}
}

// normalizeCommand reads a leading bot command the way Telegram marks one ("/" and
// letters, digits or _, optionally "@" and a username). Addressed to this bot
// ("/status@alertengine_bot checkout") it becomes "/status checkout"; addressed to
// another bot it is not for us (false). Text that is not a command comes back unchanged.
func normalizeCommand(text, me string) (string, bool) {
	if len(text) < 2 || text[0] != '/' {
		return text, true
	}
	end := 1
	for end < len(text) && isWordByte(text[end]) {
		end++
	}
	if end == 1 || end == len(text) || text[end] != '@' {
		return text, true
	}
	at := end + 1
	stop := at
	for stop < len(text) && isWordByte(text[stop]) {
		stop++
	}
	if stop == at {
		return text, true // "/cmd@" and no name: not a mention
	}
	if !strings.EqualFold(text[at:stop], me) || me == "" {
		return "", false
	}
	if stop < len(text) && text[stop] == '@' {
		return "", false // "/cmd@thisbot@otherbot": not a command anyone can answer plainly
	}
	return text[:end] + text[stop:], true
}

func isWordByte(c byte) bool { return isWordChar(rune(c)) }
