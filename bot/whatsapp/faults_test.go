package whatsapp

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"

	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/conversation"
)

// handlerFunc adapts a function to conversation.Handler.
type handlerFunc func(context.Context, conversation.Inbound) (conversation.Reply, error)

func (f handlerFunc) Handle(ctx context.Context, in conversation.Inbound) (conversation.Reply, error) {
	return f(ctx, in)
}

// TestFailedMessageIsGivenUpToTwiliosRetry: while one replica handles a message, Twilio's
// retry to another is answered 503 (not 200 and dropped); when the handling fails, the
// message is given up, the retry is handled once and answered.
func TestFailedMessageIsGivenUpToTwiliosRetry(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a1, _ := e.adapter()
	a2, _ := e.adapter()
	inside, fail := make(chan struct{}), make(chan struct{})
	var once sync.Once
	stuck := handlerFunc(func(context.Context, conversation.Inbound) (conversation.Reply, error) {
		once.Do(func() { close(inside) })
		<-fail
		return conversation.Reply{}, errors.New("redis: i/o timeout")
	})
	rec := &recorder{}
	b1, b2 := serve(t, a1, stuck), serve(t, a2, rec)
	ctx := t.Context()
	form := twiliotest.Inbound{From: ana, Body: "HELP"}.Form(botNumber)
	token := http.Header{"I-Twilio-Idempotency-Token": {"idem-fault-1"}}

	first := make(chan int, 1)
	go func() {
		code, _ := e.fake.Post(ctx, b1+WebhookPath, publicURL+WebhookPath, form, token)
		first <- code
	}()
	<-inside
	if code, err := e.fake.Post(ctx, b2+WebhookPath, publicURL+WebhookPath, form, token); err != nil || code != http.StatusServiceUnavailable {
		t.Errorf("retry while another replica handles the message: %d, %v; want 503", code, err)
	}
	close(fail)
	if code := <-first; code != http.StatusServiceUnavailable {
		t.Errorf("the failed handling answered %d, want 503 so Twilio retries", code)
	}
	if code, err := e.fake.Post(ctx, b2+WebhookPath, publicURL+WebhookPath, form, token); err != nil || code != http.StatusOK {
		t.Fatalf("retry after the failure: %d, %v; want 200", code, err)
	}
	if code, _ := e.fake.Post(ctx, b1+WebhookPath, publicURL+WebhookPath, form, token); code != http.StatusOK {
		t.Errorf("duplicate after handling: %d, want 200", code)
	}
	if n := len(rec.all()); n != 1 {
		t.Errorf("message handled %d times after the failure, want once", n)
	}
}
