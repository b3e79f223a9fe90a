package telegramtest_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/png"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot"
	"github.com/go-telegram/bot/models"

	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
)

const forum = int64(-1001000000042)

var ana = telegramtest.User{ID: 42, FirstName: "Ana", Username: "ana"}

// harness is the fake with the real client pointed at it. Updates the bot receives
// without a matching handler land on updates; errors the library reports on errs.
type harness struct {
	s       *telegramtest.Server
	b       *bot.Bot
	updates chan *models.Update
	errs    chan error
}

func newHarness(t *testing.T, opts ...bot.Option) *harness {
	t.Helper()
	h := &harness{s: telegramtest.New(t), updates: make(chan *models.Update, 64), errs: make(chan error, 64)}
	opts = append([]bot.Option{
		bot.WithServerURL(h.s.URL()),
		bot.WithNotAsyncHandlers(),
		bot.WithDefaultHandler(func(_ context.Context, _ *bot.Bot, u *models.Update) { h.updates <- u }),
		bot.WithErrorsHandler(func(err error) {
			select {
			case h.errs <- err:
			default:
			}
		}),
	}, opts...)
	b, err := bot.New(h.s.Token(), opts...)
	if err != nil {
		t.Fatalf("bot.New against the fake: %v", err)
	}
	h.b = b
	return h
}

// poll runs the library's long-polling loop until the test ends.
func (h *harness) poll(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.b.Start(ctx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

func (h *harness) nextUpdate(t *testing.T, ctx context.Context) *models.Update {
	t.Helper()
	select {
	case u := <-h.updates:
		return u
	case <-ctx.Done():
		t.Fatal("no update reached the bot")
		return nil
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func approveKeyboard(data string) *models.InlineKeyboardMarkup {
	return &models.InlineKeyboardMarkup{InlineKeyboard: [][]models.InlineKeyboardButton{{
		{Text: "Approve restart_workers", CallbackData: data},
		{Text: "Reject", CallbackData: "rj:1"},
	}}}
}

func TestLongPollingCommandAndButtonPress(t *testing.T) {
	ctx := testContext(t)
	h := newHarness(t)
	const approval = "ap:0123456789abcdefghijkl"
	handlerErrs := make(chan error, 8)
	h.b.RegisterHandler(bot.HandlerTypeMessageText, "status", bot.MatchTypeCommand, func(ctx context.Context, b *bot.Bot, u *models.Update) {
		_, err := b.SendMessage(ctx, &bot.SendMessageParams{
			ChatID:          u.Message.Chat.ID,
			Text:            "🚨 <b>checkout</b> degraded — INC-7F3",
			ParseMode:       models.ParseModeHTML,
			ReplyParameters: &models.ReplyParameters{MessageID: u.Message.ID},
			ReplyMarkup:     approveKeyboard(approval),
		})
		handlerErrs <- err
	})
	h.b.RegisterHandler(bot.HandlerTypeCallbackQueryData, "ap:", bot.MatchTypePrefix, func(ctx context.Context, b *bot.Bot, u *models.Update) {
		q := u.CallbackQuery
		if _, err := b.AnswerCallbackQuery(ctx, &bot.AnswerCallbackQueryParams{CallbackQueryID: q.ID, Text: "Approved"}); err != nil {
			handlerErrs <- err
			return
		}
		card := q.Message.Message
		_, err := b.EditMessageText(ctx, &bot.EditMessageTextParams{
			ChatID: card.Chat.ID, MessageID: card.ID, Text: "Approved by " + q.From.FirstName,
		})
		handlerErrs <- err
	})
	h.poll(t)

	command := h.s.SendText(forum, ana, "/status checkout")
	call, err := h.s.WaitFor(ctx, func(c telegramtest.Call) bool { return c.Method == "sendMessage" })
	if err != nil {
		t.Fatal(err)
	}
	if err := <-handlerErrs; err != nil || !call.OK() {
		t.Fatalf("the /status handler could not reply: %v (%s)", err, call.Description)
	}
	if err := h.s.WaitConfirmed(ctx, command); err != nil {
		t.Fatal(err)
	}
	card, err := call.Message()
	if err != nil {
		t.Fatal(err)
	}
	if sent := h.s.Sent(forum); len(sent) != 1 || !reflect.DeepEqual(sent[0].Buttons(), card.Buttons()) {
		t.Fatalf("Sent = %+v, want the card %+v", sent, card)
	}
	if card.Text != "🚨 checkout degraded — INC-7F3" || card.ReplyToMessage == nil || card.ReplyToMessage.Text != "/status checkout" {
		t.Errorf("card = %q replying to %+v", card.Text, card.ReplyToMessage)
	}
	if got := card.Buttons(); len(got) != 1 || len(got[0]) != 2 || got[0][0].CallbackData != approval {
		t.Errorf("card buttons = %+v", got)
	}

	query := h.s.PressButton(forum, card.MessageID, ana, approval)
	edited, err := h.s.WaitForMessage(ctx, forum, func(m telegramtest.Message) bool { return m.Text == "Approved by Ana" })
	if err != nil {
		t.Fatal(err)
	}
	if err := <-handlerErrs; err != nil {
		t.Fatalf("the approval handler failed: %v", err)
	}
	if edited.MessageID != card.MessageID || edited.ReplyMarkup != nil || edited.EditDate == 0 {
		t.Errorf("card after approval = %+v; want it edited in place and the buttons gone", edited)
	}
	if answer, ok := h.s.CallbackAnswer(query); !ok || answer.Text != "Approved" {
		t.Errorf("CallbackAnswer = %+v, %v; want the handler's answer", answer, ok)
	}
	if calls := h.s.Calls("answerCallbackQuery"); len(calls) != 1 || calls[0].Params["callback_query_id"] != query {
		t.Errorf("answerCallbackQuery calls = %+v", calls)
	}
}

func TestUpdatesAsTheLibraryDecodesThem(t *testing.T) {
	ctx := testContext(t)
	h := newHarness(t)
	h.poll(t)
	h.s.AddForum(forum)
	topic, err := h.b.CreateForumTopic(ctx, &bot.CreateForumTopicParams{ChatID: forum, Name: "INC-7F3 checkout degraded"})
	if err != nil {
		t.Fatal(err)
	}
	card, err := h.b.SendMessage(ctx, &bot.SendMessageParams{
		ChatID: forum, MessageThreadID: topic.MessageThreadID, Text: "card", ReplyMarkup: approveKeyboard("ap:x"),
	})
	if err != nil {
		t.Fatal(err)
	}

	h.s.SendText(forum, ana, "/ack@alertengine_bot INC-7F3", telegramtest.InTopic(topic.MessageThreadID))
	u := h.nextUpdate(t, ctx)
	m := u.Message
	if m == nil || m.From.ID != ana.ID || m.Chat.ID != forum || !m.Chat.IsForum || m.Chat.Type != models.ChatTypeSupergroup {
		t.Fatalf("command update = %+v", u)
	}
	wantEntities := []models.MessageEntity{{Type: models.MessageEntityTypeBotCommand, Offset: 0, Length: 20}}
	if !reflect.DeepEqual(m.Entities, wantEntities) {
		t.Errorf("entities = %+v, want %+v", m.Entities, wantEntities)
	}
	if m.MessageThreadID != topic.MessageThreadID || !m.IsTopicMessage || m.ReplyToMessage == nil || m.ReplyToMessage.ForumTopicCreated == nil {
		t.Errorf("topic message = thread %d topic %v reply %+v; want the topic and its opening message", m.MessageThreadID, m.IsTopicMessage, m.ReplyToMessage)
	}

	h.s.SendText(forum, ana, "why?", telegramtest.ReplyTo(card.ID))
	m = h.nextUpdate(t, ctx).Message
	if m.ReplyToMessage == nil || m.ReplyToMessage.ID != card.ID || m.ReplyToMessage.From.ID != h.s.Bot().ID || m.MessageThreadID != topic.MessageThreadID {
		t.Errorf("reply = %+v; want a reply to the card in its topic", m)
	}
	if len(m.Entities) != 0 {
		t.Errorf("plain text carries entities %+v", m.Entities)
	}

	query := h.s.PressButton(forum, card.ID, ana, "ap:x")
	q := h.nextUpdate(t, ctx).CallbackQuery
	if q == nil || q.ID != query || q.Data != "ap:x" || q.From.ID != ana.ID || q.ChatInstance == "" {
		t.Fatalf("callback query = %+v", q)
	}
	if q.Message.Type != models.MaybeInaccessibleMessageTypeMessage || q.Message.Message.ID != card.ID || q.Message.Message.ReplyMarkup == nil {
		t.Errorf("callback message = %+v; want the card with its keyboard", q.Message)
	}

	// A press on a message deleted since carries it as inaccessible.
	if _, err := h.b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: forum, MessageID: card.ID}); err != nil {
		t.Fatal(err)
	}
	h.s.PressButton(forum, card.ID, ana, "ap:x")
	q = h.nextUpdate(t, ctx).CallbackQuery
	if q.Message.Type != models.MaybeInaccessibleMessageTypeInaccessibleMessage || q.Message.InaccessibleMessage.MessageID != card.ID {
		t.Errorf("press on a deleted message = %+v; want an inaccessible message", q.Message)
	}

	h.s.Update([]byte(`{"edited_message":{"message_id":1,"date":1700000000,"chat":{"id":1,"type":"private"},"text":"edited"}}`))
	if u := h.nextUpdate(t, ctx); u.EditedMessage == nil || u.EditedMessage.Text != "edited" {
		t.Errorf("hand-made update = %+v", u)
	}
}

func TestSendMessageRoundTrip(t *testing.T) {
	ctx := testContext(t)
	h := newHarness(t)
	kb := approveKeyboard("ap:0123456789abcdefghijkl")
	m, err := h.b.SendMessage(ctx, &bot.SendMessageParams{
		ChatID:      forum,
		Text:        "Health <b>23</b>/100 &amp; <i>falling</i>",
		ParseMode:   models.ParseModeHTML,
		ReplyMarkup: kb,
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.ID != 1 || m.Chat.ID != forum || m.From == nil || !m.From.IsBot || m.From.Username != telegramtest.DefaultBotUsername || m.Date == 0 {
		t.Errorf("message header = %+v", m)
	}
	if m.Text != "Health 23/100 & falling" {
		t.Errorf("text = %q", m.Text)
	}
	wantEntities := []models.MessageEntity{{Type: "bold", Offset: 7, Length: 2}, {Type: "italic", Offset: 16, Length: 7}}
	if !reflect.DeepEqual(m.Entities, wantEntities) {
		t.Errorf("entities = %+v, want %+v", m.Entities, wantEntities)
	}
	if m.ReplyMarkup == nil || !reflect.DeepEqual(m.ReplyMarkup.InlineKeyboard, kb.InlineKeyboard) {
		t.Errorf("keyboard = %+v, want %+v", m.ReplyMarkup, kb)
	}

	stored := h.s.Sent(forum)
	if len(stored) != 1 || stored[0].ParseMode != "HTML" || stored[0].Source != "Health <b>23</b>/100 &amp; <i>falling</i>" {
		t.Fatalf("Sent = %+v", stored)
	}
	// The multipart form the library sent carries reply_markup as JSON text.
	var markup models.InlineKeyboardMarkup
	if err := h.s.Calls("sendMessage")[0].Decode("reply_markup", &markup); err != nil || !reflect.DeepEqual(markup.InlineKeyboard, kb.InlineKeyboard) {
		t.Errorf("recorded reply_markup = %+v (%v)", markup, err)
	}

	// Plain text is left as it is, markup characters and all.
	m, err = h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, Text: "p95 < 3s & <b>"})
	if err != nil || m.Text != "p95 < 3s & <b>" || len(m.Entities) != 0 || m.ID != 2 {
		t.Errorf("plain message = %+v, %v", m, err)
	}
}

func TestTooManyRequests(t *testing.T) {
	ctx := testContext(t)
	h := newHarness(t)
	h.s.FailNext("sendMessage", 1, 2)
	_, err := h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, Text: "card"})
	var tooMany *bot.TooManyRequestsError
	if !errors.As(err, &tooMany) {
		t.Fatalf("SendMessage error = %v (%T), want *bot.TooManyRequestsError", err, err)
	}
	if tooMany.RetryAfter != 2 || tooMany.Message != "too many requests, Too Many Requests: retry after 2" {
		t.Errorf("TooManyRequestsError = %+v", tooMany)
	}
	// What callers must know about the library: the sentinel is not wrapped.
	if !bot.IsTooManyRequestsError(err) || errors.Is(err, bot.ErrorTooManyRequests) {
		t.Errorf("IsTooManyRequestsError = %v, errors.Is(ErrorTooManyRequests) = %v; the library's behaviour changed",
			bot.IsTooManyRequestsError(err), errors.Is(err, bot.ErrorTooManyRequests))
	}
	if sent := h.s.Sent(forum); len(sent) != 0 {
		t.Errorf("a throttled call delivered %+v", sent)
	}
	if calls := h.s.Calls("sendMessage"); len(calls) != 1 || calls[0].ErrorCode != 429 {
		t.Errorf("Calls = %+v, want the one throttled call (the library does not retry)", calls)
	}
	m, err := h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, Text: "card"})
	if err != nil || m.ID != 1 {
		t.Errorf("retry = %+v, %v; want message 1 delivered", m, err)
	}
}

func TestTooManyRequestsWhilePolling(t *testing.T) {
	ctx := testContext(t)
	h := newHarness(t)
	// retry_after is far longer than the test may run: the update still arrives, because
	// the library's polling loop backs off on its own schedule and ignores retry_after.
	h.s.FailNext("getUpdates", 1, 3600)
	h.poll(t)
	var tooMany *bot.TooManyRequestsError
	select {
	case err := <-h.errs:
		if !errors.As(err, &tooMany) || tooMany.RetryAfter != 3600 || !strings.HasPrefix(err.Error(), "error get updates, ") {
			t.Errorf("polling error = %v, want a wrapped *bot.TooManyRequestsError", err)
		}
	case <-ctx.Done():
		t.Fatal("the library reported no error for the throttled getUpdates")
	}
	h.s.SendText(forum, ana, "/status")
	if u := h.nextUpdate(t, ctx); u.Message == nil || u.Message.Text != "/status" {
		t.Errorf("update after the 429 = %+v", u)
	}
}

func TestEditRefusals(t *testing.T) {
	ctx := testContext(t)
	h := newHarness(t)
	m, err := h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, Text: "<b>card</b>", ParseMode: models.ParseModeHTML, ReplyMarkup: approveKeyboard("ap:1")})
	if err != nil {
		t.Fatal(err)
	}
	same := &bot.EditMessageTextParams{ChatID: forum, MessageID: m.ID, Text: "<b>card</b>", ParseMode: models.ParseModeHTML, ReplyMarkup: approveKeyboard("ap:1")}
	_, err = h.b.EditMessageText(ctx, same)
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "Bad Request: message is not modified") {
		t.Errorf("identical edit error = %v, want bad request: message is not modified", err)
	}
	// The same text without its bold is a change.
	if _, err := h.b.EditMessageText(ctx, &bot.EditMessageTextParams{ChatID: forum, MessageID: m.ID, Text: "card", ReplyMarkup: approveKeyboard("ap:1")}); err != nil {
		t.Errorf("edit dropping the bold: %v", err)
	}
	// Editing the text without reply_markup removes the keyboard, as in Telegram.
	edited, err := h.b.EditMessageText(ctx, &bot.EditMessageTextParams{ChatID: forum, MessageID: m.ID, Text: "card"})
	if err != nil || edited.ReplyMarkup != nil {
		t.Errorf("edit without reply_markup = %+v, %v; want the keyboard gone", edited, err)
	}
	_, err = h.b.EditMessageReplyMarkup(ctx, &bot.EditMessageReplyMarkupParams{ChatID: forum, MessageID: m.ID})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "message is not modified") {
		t.Errorf("removing an absent keyboard: %v, want message is not modified", err)
	}
	_, err = h.b.EditMessageText(ctx, &bot.EditMessageTextParams{ChatID: forum, MessageID: 999, Text: "x"})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "Bad Request: message to edit not found") {
		t.Errorf("editing a missing message: %v", err)
	}
	_, err = h.b.DeleteMessage(ctx, &bot.DeleteMessageParams{ChatID: forum, MessageID: 999})
	if !strings.Contains(fmtErr(err), "Bad Request: message to delete not found") {
		t.Errorf("deleting a missing message: %v", err)
	}
	if got := h.s.Sent(forum); len(got) != 1 || got[0].Text != "card" || got[0].Entities != nil {
		t.Errorf("Sent = %+v", got)
	}
}

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

func TestLengthLimits(t *testing.T) {
	ctx := testContext(t)
	h := newHarness(t)
	send := func(text string) error {
		_, err := h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, Text: text})
		return err
	}
	for _, text := range []string{strings.Repeat("x", 4096), strings.Repeat("🚨", 2048)} {
		if err := send(text); err != nil {
			t.Errorf("%d UTF-16 units refused: %v", 4096, err)
		}
	}
	for _, text := range []string{strings.Repeat("x", 4097), strings.Repeat("🚨", 2049)} {
		if err := send(text); !errors.Is(err, bot.ErrorBadRequest) || !strings.HasSuffix(err.Error(), "Bad Request: message is too long") {
			t.Errorf("over-long text error = %v, want message is too long", err)
		}
	}
	// The limit applies to the text after entity parsing: tags count only without parse_mode.
	if err := send("<b>" + strings.Repeat("x", 4096) + "</b>"); err == nil {
		t.Error("4103 characters of plain text were accepted")
	}
	_, err := h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, Text: "<b>" + strings.Repeat("x", 4096) + "</b>", ParseMode: models.ParseModeHTML})
	if err != nil {
		t.Errorf("4096 characters inside <b> refused: %v", err)
	}
	_, err = h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, Text: "card", ReplyMarkup: approveKeyboard("ap:" + strings.Repeat("a", 62))})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.HasSuffix(err.Error(), "Bad Request: BUTTON_DATA_INVALID") {
		t.Errorf("65-byte callback_data error = %v, want BUTTON_DATA_INVALID", err)
	}
	if _, err := h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, Text: "card", ReplyMarkup: approveKeyboard("ap:" + strings.Repeat("a", 61))}); err != nil {
		t.Errorf("64-byte callback_data refused: %v", err)
	}
	_, err = h.b.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: forum, Photo: upload(t), Caption: strings.Repeat("c", 1025)})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.HasSuffix(err.Error(), "Bad Request: message caption is too long") {
		t.Errorf("over-long caption error = %v", err)
	}
}

func TestBadHTMLIsRefused(t *testing.T) {
	ctx := testContext(t)
	h := newHarness(t)
	tests := map[string]string{
		"<b>checkout degraded":                 `can't parse entities: Can't find end tag corresponding to start tag "b"`,
		"p95 <3s at peak":                      `can't parse entities: Unsupported start tag "3s" at byte offset 4`,
		"p95 <3s":                              `can't parse entities: Unclosed start tag at byte offset 4`,
		"<p>card</p>":                          `can't parse entities: Unsupported start tag "p" at byte offset 0`,
		"<b>a</i>":                             `can't parse entities: Unmatched end tag at byte offset 4, expected "</b>", found "</i>"`,
		`<span class="spoiler">x</span>`:       `can't parse entities: Tag "span" must have class "tg-spoiler" at byte offset 0`,
		`<a href=https://ex.com/run>run</a>`:   `can't parse entities: Unexpected end of name token at byte offset 8`,
		"deploy by <john@example.com> at noon": `can't parse entities: Unsupported start tag "john@example.com" at byte offset 10`,
	}
	for text, want := range tests {
		_, err := h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, Text: text, ParseMode: models.ParseModeHTML})
		if !errors.Is(err, bot.ErrorBadRequest) || !strings.HasSuffix(err.Error(), "Bad Request: "+want) {
			t.Errorf("%q: error = %v, want %q", text, err, want)
		}
	}
	if sent := h.s.Sent(forum); len(sent) != 0 {
		t.Errorf("refused HTML delivered %d messages", len(sent))
	}
	escaped := "deploy by &lt;john@example.com&gt; <a href=\"https://ex.com/run?a=1&amp;b=2\">run</a>"
	m, err := h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, Text: escaped, ParseMode: models.ParseModeHTML})
	if err != nil || m.Text != "deploy by <john@example.com> run" || len(m.Entities) != 1 || m.Entities[0].URL != "https://ex.com/run?a=1&b=2" {
		t.Errorf("escaped HTML = %+v, %v", m, err)
	}
}

func TestForumTopics(t *testing.T) {
	ctx := testContext(t)
	h := newHarness(t)
	const plainGroup = int64(-4000000001)
	_, err := h.b.CreateForumTopic(ctx, &bot.CreateForumTopicParams{ChatID: plainGroup, Name: "INC-7F3"})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.Contains(err.Error(), "chat not found") {
		t.Errorf("topic in an unknown chat: %v", err)
	}
	h.s.AddChat(telegramtest.Chat{ID: plainGroup, Type: telegramtest.ChatGroup, Title: "oncall"})
	_, err = h.b.CreateForumTopic(ctx, &bot.CreateForumTopicParams{ChatID: plainGroup, Name: "INC-7F3"})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.HasSuffix(err.Error(), "Bad Request: the chat is not a forum") {
		t.Errorf("topic in a plain group: %v", err)
	}

	h.s.AddForum(forum)
	topic, err := h.b.CreateForumTopic(ctx, &bot.CreateForumTopicParams{ChatID: forum, Name: "INC-7F3 checkout degraded"})
	if err != nil {
		t.Fatal(err)
	}
	if topic.MessageThreadID == 0 || topic.Name != "INC-7F3 checkout degraded" || topic.IconColor == 0 {
		t.Errorf("topic = %+v", topic)
	}
	second, err := h.b.CreateForumTopic(ctx, &bot.CreateForumTopicParams{ChatID: forum, Name: "INC-8A1", IconColor: 16766590})
	if err != nil || second.MessageThreadID == topic.MessageThreadID || second.IconColor != 16766590 {
		t.Errorf("second topic = %+v, %v", second, err)
	}
	if got := h.s.Topics(forum); len(got) != 2 || got[0].MessageThreadID != topic.MessageThreadID {
		t.Errorf("Topics = %+v", got)
	}

	m, err := h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, MessageThreadID: topic.MessageThreadID, Text: "card"})
	if err != nil {
		t.Fatal(err)
	}
	if m.MessageThreadID != topic.MessageThreadID || !m.IsTopicMessage || m.ReplyToMessage == nil || m.ReplyToMessage.ID != topic.MessageThreadID {
		t.Errorf("topic message = thread %d topic %v reply %+v", m.MessageThreadID, m.IsTopicMessage, m.ReplyToMessage)
	}
	// A reply without a thread id lands in the replied message's topic.
	reply, err := h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, Text: "follow-up", ReplyParameters: &models.ReplyParameters{MessageID: m.ID}})
	if err != nil || reply.MessageThreadID != topic.MessageThreadID || reply.ReplyToMessage.ID != m.ID {
		t.Errorf("reply = %+v, %v", reply, err)
	}
	_, err = h.b.SendMessage(ctx, &bot.SendMessageParams{ChatID: forum, MessageThreadID: 999, Text: "card"})
	if !errors.Is(err, bot.ErrorBadRequest) || !strings.HasSuffix(err.Error(), "Bad Request: message thread not found") {
		t.Errorf("unknown topic: %v", err)
	}
	if sent := h.s.Sent(forum); len(sent) != 2 || sent[0].MessageThreadID != topic.MessageThreadID {
		t.Errorf("Sent = %+v; want the two topic messages, without the service messages", sent)
	}
}

func TestWrongToken(t *testing.T) {
	s := telegramtest.New(t)
	_, err := bot.New("7000000001:not-the-token", bot.WithServerURL(s.URL()))
	if !errors.Is(err, bot.ErrorUnauthorized) || !strings.Contains(err.Error(), "error call getMe, unauthorized, Unauthorized") {
		t.Errorf("bot.New with a wrong token: %v", err)
	}
	calls := s.Calls("getMe")
	if len(calls) != 1 || calls[0].ErrorCode != 401 {
		t.Errorf("Calls = %+v", calls)
	}
}

func TestCustomBot(t *testing.T) {
	ctx := testContext(t)
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s := telegramtest.New(t, telegramtest.WithToken("123:abc"), telegramtest.WithBotUsername("ae_staging_bot"), telegramtest.WithClock(func() time.Time { return at }))
	b, err := bot.New("123:abc", bot.WithServerURL(s.URL()))
	if err != nil {
		t.Fatal(err)
	}
	me, err := b.GetMe(ctx)
	if err != nil || me.ID != 123 || me.Username != "ae_staging_bot" || !me.IsBot {
		t.Errorf("getMe = %+v, %v", me, err)
	}
	m, err := b.SendMessage(ctx, &bot.SendMessageParams{ChatID: 42, Text: "hi"})
	if err != nil || m.Date != int(at.Unix()) || m.Chat.Type != models.ChatTypePrivate || m.From.ID != 123 {
		t.Errorf("message = %+v, %v", m, err)
	}
	if c := s.Calls("sendMessage")[0]; !c.Time.Equal(at) {
		t.Errorf("call time = %v, want %v", c.Time, at)
	}
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 3, 2))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func upload(t *testing.T) *models.InputFileUpload {
	return &models.InputFileUpload{Filename: "p95.png", Data: bytes.NewReader(pngBytes(t))}
}

func TestSendPhoto(t *testing.T) {
	ctx := testContext(t)
	h := newHarness(t)
	m, err := h.b.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: forum, Photo: upload(t), Caption: "<b>p95</b> 2.8 s", ParseMode: models.ParseModeHTML})
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Photo) != 1 || m.Photo[0].Width != 3 || m.Photo[0].Height != 2 || m.Photo[0].FileID == "" {
		t.Errorf("photo = %+v", m.Photo)
	}
	if m.Caption != "p95 2.8 s" || len(m.CaptionEntities) != 1 || m.CaptionEntities[0].Type != "bold" {
		t.Errorf("caption = %q %+v", m.Caption, m.CaptionEntities)
	}
	sent := h.s.Sent(forum)
	if len(sent) != 1 || !bytes.Equal(sent[0].PhotoData, pngBytes(t)) {
		t.Fatalf("the uploaded bytes were not recorded: %+v", sent)
	}
	if f := h.s.Calls("sendPhoto")[0].Files["photo"]; f.Name != "p95.png" || !bytes.Equal(f.Data, pngBytes(t)) {
		t.Errorf("recorded upload = %s %d bytes", f.Name, len(f.Data))
	}

	edited, err := h.b.EditMessageCaption(ctx, &bot.EditMessageCaptionParams{ChatID: forum, MessageID: m.ID, Caption: "p95 1.1 s"})
	if err != nil || edited.Caption != "p95 1.1 s" {
		t.Errorf("caption edit = %+v, %v", edited, err)
	}
	_, err = h.b.EditMessageText(ctx, &bot.EditMessageTextParams{ChatID: forum, MessageID: m.ID, Text: "x"})
	if !strings.HasSuffix(fmtErr(err), "Bad Request: there is no text in the message to edit") {
		t.Errorf("text edit of a photo: %v", err)
	}

	again, err := h.b.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: forum, Photo: &models.InputFileString{Data: m.Photo[0].FileID}})
	if err != nil || again.Photo[0].FileID != m.Photo[0].FileID || again.Photo[0].Width != 3 {
		t.Errorf("resend by file_id = %+v, %v", again, err)
	}
	_, err = h.b.SendPhoto(ctx, &bot.SendPhotoParams{ChatID: forum, Photo: &models.InputFileUpload{Filename: "x.png", Data: strings.NewReader("not an image")}})
	if !strings.HasSuffix(fmtErr(err), "Bad Request: IMAGE_PROCESS_FAILED") {
		t.Errorf("corrupt upload: %v", err)
	}
}

func TestWebhookMode(t *testing.T) {
	ctx := testContext(t)
	h := newHarness(t, bot.WithWebhookSecretToken("s3cret-token"))
	endpoint := httptest.NewServer(h.b.WebhookHandler())
	t.Cleanup(endpoint.Close)
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.b.StartWebhook(runCtx)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	if _, err := h.s.DeliverPending(ctx); err == nil {
		t.Error("DeliverPending without a webhook returned no error")
	}
	ok, err := h.b.SetWebhook(ctx, &bot.SetWebhookParams{URL: endpoint.URL, SecretToken: "s3cret-token"})
	if err != nil || !ok {
		t.Fatalf("SetWebhook = %v, %v", ok, err)
	}
	h.s.SendText(ana.ID, ana, "/start ABC123")
	h.s.SendText(ana.ID, ana, "/help")
	n, err := h.s.DeliverPending(ctx)
	if err != nil || n != 2 || h.s.Pending() != 0 {
		t.Fatalf("DeliverPending = %d, %v (pending %d)", n, err, h.s.Pending())
	}
	for _, want := range []string{"/start ABC123", "/help"} {
		if u := h.nextUpdate(t, ctx); u.Message == nil || u.Message.Text != want || u.Message.Chat.FirstName != "Ana" {
			t.Errorf("webhook update = %+v, want %q from Ana's private chat", u, want)
		}
	}

	// The header is Telegram's; an endpoint that checks it sees it.
	var got http.Header
	checker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		if r.Header.Get("X-Telegram-Bot-Api-Secret-Token") != "right" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	t.Cleanup(checker.Close)
	status, err := h.s.PostWebhook(ctx, checker.URL, "wrong", []byte(`{"update_id":1,"message":{"message_id":1,"date":1,"chat":{"id":1,"type":"private"},"text":"x"}}`))
	if err != nil || status != http.StatusUnauthorized || got.Get("Content-Type") != "application/json" || got.Get("X-Telegram-Bot-Api-Secret-Token") != "wrong" {
		t.Errorf("PostWebhook = %d, %v, headers %v", status, err, got)
	}

	// An endpoint that refuses keeps the update queued for a retry.
	if _, err := h.b.SetWebhook(ctx, &bot.SetWebhookParams{URL: checker.URL, SecretToken: "wrong"}); err != nil {
		t.Fatal(err)
	}
	h.s.SendText(ana.ID, ana, "/status")
	if n, err := h.s.DeliverPending(ctx); n != 0 || err == nil || h.s.Pending() != 1 {
		t.Errorf("DeliverPending to a refusing endpoint = %d, %v (pending %d)", n, err, h.s.Pending())
	}
}
