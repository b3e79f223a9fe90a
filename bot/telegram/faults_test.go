package telegram

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/alertengine/alertengine/ledger/ledgertest/redisfault"
)

// TestLateRedisReplyDoesNotDropAPress: the reply to the update's claim is late; the Redis
// client times out and sends the claim again. The press is still handled and answered
// once — the retry recognises its own claim rather than taking it for another replica's.
func TestLateRedisReplyDoesNotDropAPress(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	srv := ledgertest.NewServer(t)
	opt, err := redis.ParseURL(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := redisfault.Start(t, opt.Addr)
	opt.Addr, opt.ReadTimeout, opt.MaxRetries = proxy.Addr(), 200*time.Millisecond, 3
	slow := redis.NewClient(opt)
	t.Cleanup(func() { _ = slow.Close() })
	a, _ := e.adapter(func(o *Options) { o.Redis, o.KeyPrefix = slow, srv.Prefix(t) })
	rec := newRecorder()
	url := serveWebhook(t, a, rec)

	// The first command naming the update's key (its claim) gets its reply late.
	held := proxy.Hold(func(args []string) bool {
		for _, a := range args {
			if len(a) > 10 && a[len(a)-10:] == ":update:77" {
				return true
			}
		}
		return false
	}, 1)
	defer held.Release()
	status, err := e.fake.PostWebhook(deadline(t), url, secret, pressUpdate(t, 77, "q77", ana, "ap:late"))
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-held.Reached():
	default:
		t.Fatal("the claim's reply was never held: the fault did not happen")
	}
	if status != http.StatusOK {
		t.Errorf("status %d, want 200", status)
	}
	if got := rec.all(); len(got) != 1 {
		t.Fatalf("press handled %d times, want once", len(got))
	}
	answers := e.fake.Calls("answerCallbackQuery")
	if len(answers) != 1 || answers[0].Params["text"] != "Pressed ap:late" {
		t.Errorf("answers %+v, want the engine's one answer", answers)
	}
}

// TestPressBeingHandledElsewhereIsRedelivered: while one replica is still handling a press,
// Telegram's redelivery to another is answered 500 (not 200 and dropped); when the first
// fails, it gives the press up, and the next redelivery is handled and answered.
func TestPressBeingHandledElsewhereIsRedelivered(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	a1, _ := e.adapter()
	a2, _ := e.adapter()
	inside, fail := make(chan struct{}), make(chan struct{})
	stuck := newRecorder()
	stuck.reply = func(conversation.Inbound) (conversation.Reply, error) {
		close(inside)
		<-fail
		return conversation.Reply{}, errors.New("redis: i/o timeout")
	}
	rec := newRecorder()
	url1, url2 := serveWebhook(t, a1, stuck), serveWebhook(t, a2, rec)
	c := deadline(t)
	press := pressUpdate(t, 88, "q88", ana, "ap:busy")

	first := make(chan int, 1)
	go func() {
		status, _ := e.fake.PostWebhook(c, url1, secret, press)
		first <- status
	}()
	<-inside
	status, err := e.fake.PostWebhook(c, url2, secret, press)
	if err != nil {
		t.Fatal(err)
	}
	if status != http.StatusInternalServerError {
		t.Errorf("redelivery while another replica handles the press: %d, want 500 so Telegram tries again", status)
	}
	close(fail)
	if s := <-first; s != http.StatusInternalServerError {
		t.Errorf("the failed handling answered %d, want 500", s)
	}
	if n := len(e.fake.Calls("answerCallbackQuery")); n != 0 {
		t.Fatalf("press answered %d times before it was handled", n)
	}
	status, err = e.fake.PostWebhook(c, url2, secret, press)
	if err != nil || status != http.StatusOK {
		t.Fatalf("redelivery after the failure: %d, %v; want 200", status, err)
	}
	if got := rec.all(); len(got) != 1 {
		t.Errorf("redelivery handled %d times, want once", len(got))
	}
	answers := e.fake.Calls("answerCallbackQuery")
	if len(answers) != 1 || answers[0].Params["text"] != "Pressed ap:busy" {
		t.Errorf("answers %+v, want the handled press's one answer", answers)
	}
	// Handled now: a further redelivery is a duplicate.
	if status, _ := e.fake.PostWebhook(c, url1, secret, press); status != http.StatusOK || len(rec.all()) != 1 {
		t.Errorf("duplicate after handling: %d, handled %d times", status, len(rec.all()))
	}
}
