package slack

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/alertengine/alertengine/bot/slack/slacktest"
	"github.com/alertengine/alertengine/conversation"
)

// waitCalls waits until the engine has been called n times in all, then for the
// adapter to be idle.
func waitCalls(t *testing.T, a *Adapter, r *recorder, n int) []conversation.Inbound {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.inbound()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the engine was called %d times, want %d", len(r.inbound()), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	a.Wait()
	got := r.inbound()
	if len(got) != n {
		t.Fatalf("the engine was called %d times, want %d: %+v", len(got), n, got)
	}
	return got
}

func send(t *testing.T, fake *slacktest.Server, base string, d slacktest.Delivery, sign slacktest.Sign) {
	t.Helper()
	code, body, err := fake.Send(base, d, sign)
	if err != nil || code != http.StatusOK {
		t.Fatalf("%s: %d %q %v", d.Path, code, body, err)
	}
}

func TestURLVerificationIsAnswered(t *testing.T) {
	a, fake, _ := newAdapter(t)
	base := serve(t, a, newRecorder(""))
	code, body, err := fake.Send(base, fake.URLVerification("3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"), slacktest.Sign{})
	if err != nil || code != 200 || body != "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P" {
		t.Fatalf("%d %q %v", code, body, err)
	}
}

func TestForgedAndStaleRequestsAreRefusedAndNeverHandled(t *testing.T) {
	a, fake, _ := newAdapter(t)
	r := newRecorder("ok")
	base := serve(t, a, r)
	th, card, err := a.OpenThread(t.Context(), chat(general), "", card())
	if err != nil {
		t.Fatal(err)
	}
	_, said := fake.Say(general, alice, "<@"+slacktest.BotUser+"> status", th.Root)
	press, err := fake.Press(general, card.ID, bob, "Approve restart_workers")
	if err != nil {
		t.Fatal(err)
	}
	deliveries := []slacktest.Delivery{said[0], press, fake.Command(general, bob, "/status", ""), fake.URLVerification("c")}
	for _, d := range deliveries {
		for name, sign := range map[string]slacktest.Sign{
			"forged":          {Secret: "not-the-signing-secret"},
			"stale":           {At: time.Now().Add(-6 * time.Minute)},
			"from the future": {At: time.Now().Add(6 * time.Minute)},
		} {
			code, _, err := fake.Send(base, d, sign)
			if err != nil || code != http.StatusUnauthorized {
				t.Errorf("%s %s: %d %v, want 401", name, d.Path, code, err)
			}
		}
		req := fake.Request(base, d, slacktest.Sign{})
		req.Header.Del("X-Slack-Signature")
		rec := httptest.NewRecorder()
		mux := http.NewServeMux()
		for _, rt := range a.Routes(r) {
			mux.Handle(rt.Pattern, rt.Handler)
		}
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("unsigned %s: %d", d.Path, rec.Code)
		}
		// A signed body changed on the way.
		tampered := d
		tampered.Body = append(append([]byte(nil), d.Body...), ' ')
		req = fake.Request(base, d, slacktest.Sign{})
		signed := req.Header.Get("X-Slack-Signature")
		req = fake.Request(base, tampered, slacktest.Sign{})
		req.Header.Set("X-Slack-Signature", signed)
		rec = httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized {
			t.Errorf("tampered %s: %d", d.Path, rec.Code)
		}
	}
	a.Wait()
	if got := r.inbound(); len(got) != 0 {
		t.Fatalf("refused requests reached the engine: %+v", got)
	}
	if e := fake.Ephemerals(general, bob); len(e) != 0 {
		t.Fatalf("a refused press was answered: %+v", e)
	}
	// No signing secret: nothing is served.
	b, _, _ := newAdapter(t, func(o *Options) { o.SigningSecret = "" })
	if rs := b.Routes(r); len(rs) != 0 {
		t.Fatalf("routes without a signing secret: %+v", rs)
	}
}

func TestFreeTextInAThreadAnswersItsRoot(t *testing.T) {
	a, fake, _ := newAdapter(t)
	r := newRecorder("")
	base := serve(t, a, r)
	th, _, err := a.OpenThread(t.Context(), chat(general), "", card())
	if err != nil {
		t.Fatal(err)
	}
	ts, ds := fake.Say(general, alice, "why is p95 up? a<b & c>d", th.Root)
	if len(ds) != 1 {
		t.Fatalf("%d deliveries", len(ds))
	}
	send(t, fake, base, ds[0], slacktest.Sign{})
	got := waitCalls(t, a, r, 1)[0]
	want := conversation.Inbound{Chat: chat(general), User: conversation.User{Channel: Channel, ID: alice, Name: alice},
		Text: "why is p95 up? a<b & c>d", ReplyTo: th.Root, MessageID: th.Root}
	if got != want {
		t.Fatalf("inbound\n %+v\nwant\n %+v", got, want)
	}
	if ts == th.Root {
		t.Fatal("the fake reused a timestamp")
	}
}

func TestAMentionedCommandIsHandledOnceAcrossEventsAndRetries(t *testing.T) {
	a, fake, _ := newAdapter(t)
	r := newRecorder("")
	base := serve(t, a, r)
	th, _, err := a.OpenThread(t.Context(), chat(general), "", card())
	if err != nil {
		t.Fatal(err)
	}
	_, ds := fake.Say(general, alice, "<@"+slacktest.BotUser+"> Replay INC-7F3", th.Root)
	if len(ds) != 2 {
		t.Fatalf("want a message and an app_mention event, got %d", len(ds))
	}
	for _, d := range ds {
		send(t, fake, base, d, slacktest.Sign{})
		send(t, fake, base, d, slacktest.Sign{Retry: 1})
		send(t, fake, base, d, slacktest.Sign{Retry: 2})
	}
	got := waitCalls(t, a, r, 1)
	if got[0].Text != "/replay INC-7F3" || got[0].ReplyTo != th.Root {
		t.Fatalf("inbound %+v", got[0])
	}
	a.Wait()
	if n := len(r.inbound()); n != 1 {
		t.Fatalf("handled %d times", n)
	}
}

func TestWhatTheBotSaidItselfIsIgnored(t *testing.T) {
	a, fake, _ := newAdapter(t)
	r := newRecorder("")
	base := serve(t, a, r)
	ref, err := a.Post(t.Context(), conversation.Thread{Chat: chat(general)}, text("from the bot"))
	if err != nil {
		t.Fatal(err)
	}
	send(t, fake, base, fake.BotMessage(general, ref.ID, "from the bot"), slacktest.Sign{})
	_, ds := fake.Say(general, slacktest.BotUser, "also the bot", "")
	send(t, fake, base, ds[0], slacktest.Sign{})
	a.Wait()
	if got := r.inbound(); len(got) != 0 {
		t.Fatalf("the bot's own messages reached the engine: %+v", got)
	}
}

func TestDirectMessagesAreAddressedToTheBot(t *testing.T) {
	a, fake, _ := newAdapter(t)
	r := newRecorder("")
	base := serve(t, a, r)
	dm := "D" + alice[1:]
	_, ds := fake.Say(dm, alice, "status checkout", "")
	send(t, fake, base, ds[0], slacktest.Sign{})
	got := waitCalls(t, a, r, 1)[0]
	if !got.Direct || got.Chat != chat(alice) || got.Text != "/status checkout" {
		t.Fatalf("inbound %+v: want a direct chat with alice (her user id) and the command", got)
	}
	// The engine answers by replying to the message: it lands in the DM.
	if _, err := a.Post(t.Context(), conversation.Thread{Chat: got.Chat, Root: got.MessageID}, text("dm-answer")); err != nil {
		t.Fatal(err)
	}
	texts := fake.Texts(dm)
	if len(texts) != 2 || texts[1] != "dm-answer" {
		t.Fatalf("the DM holds %q", texts)
	}
	if m := fake.Messages(dm)[1]; m.ThreadTS != fake.Messages(dm)[0].TS {
		t.Fatalf("the answer is not in the thread of alice's message: %+v", m)
	}
}

func TestAPressReachesTheEngineOnceAndThePresserSeesTheToast(t *testing.T) {
	a, fake, _ := newAdapter(t)
	r := newRecorder("Approved by bob. Running restart_workers.")
	base := serve(t, a, r)
	th, card, err := a.OpenThread(t.Context(), chat(general), "", card())
	if err != nil {
		t.Fatal(err)
	}
	d, err := fake.Press(general, card.ID, bob, "Approve restart_workers")
	if err != nil {
		t.Fatal(err)
	}
	code, _, err := fake.Send(base, d, slacktest.Sign{})
	if err != nil || code != 200 {
		t.Fatal(code, err)
	}
	send(t, fake, base, d, slacktest.Sign{Retry: 1})
	got := waitCalls(t, a, r, 1)[0]
	want := conversation.Inbound{Chat: chat(general), User: conversation.User{Channel: Channel, ID: bob, Name: "bob"},
		Data: ref, ReplyTo: card.ID, MessageID: card.ID}
	if got != want {
		t.Fatalf("inbound\n %+v\nwant\n %+v", got, want)
	}
	toasts := fake.Ephemerals(general, bob)
	if len(toasts) != 1 || toasts[0].Text != "Approved by bob. Running restart_workers." {
		t.Fatalf("bob was shown %+v", toasts)
	}
	if len(fake.Ephemerals(general, alice)) != 0 {
		t.Fatal("the toast was shown to someone else")
	}
	_ = th

	// A press under a reply in the thread: the engine answers in the thread.
	m := text("reply with a button")
	m.Buttons = [][]conversation.Button{{{Label: "Details", Data: "/details INC-7F3"}}}
	reply, err := a.Post(t.Context(), th, m)
	if err != nil {
		t.Fatal(err)
	}
	d, err = fake.Press(general, reply.ID, alice, "Details")
	if err != nil {
		t.Fatal(err)
	}
	send(t, fake, base, d, slacktest.Sign{})
	got = waitCalls(t, a, r, 2)[1]
	if got.Data != "/details INC-7F3" || got.ReplyTo != reply.ID || got.MessageID != th.Root {
		t.Fatalf("inbound %+v", got)
	}
	if e := fake.Ephemerals(general, alice); len(e) != 1 || e[0].ThreadTS != th.Root {
		t.Fatalf("alice's toast %+v should be in the thread", e)
	}
}

func TestAPressTheEngineFailsOnOrCannotTakeIsAnsweredPlainly(t *testing.T) {
	a, fake, _ := newAdapter(t)
	r := newRecorder("")
	r.err = errTest
	base := serve(t, a, r)
	_, card, err := a.OpenThread(t.Context(), chat(general), "", card())
	if err != nil {
		t.Fatal(err)
	}
	d, _ := fake.Press(general, card.ID, bob, "Reject")
	send(t, fake, base, d, slacktest.Sign{})
	waitCalls(t, a, r, 1)
	if e := fake.Ephemerals(general, bob); len(e) != 1 || e[0].Text != toastFailed {
		t.Fatalf("bob was shown %+v", e)
	}
	send(t, fake, base, fake.PressValue(general, card.ID, alice, strings.Repeat("x", MaxButtonData+1)), slacktest.Sign{})
	a.Wait()
	if n := len(r.inbound()); n != 1 {
		t.Fatalf("an invalid value reached the engine (%d calls)", n)
	}
	if e := fake.Ephemerals(general, alice); len(e) != 1 || e[0].Text != toastStale {
		t.Fatalf("alice was shown %+v", e)
	}
	if f, r := testutil.ToFloat64(a.m.events.WithLabelValues("press", "failed")), testutil.ToFloat64(a.m.events.WithLabelValues("press", "refused")); f != 1 || r != 1 {
		t.Errorf("press outcomes counted: failed %v, refused %v; want 1 and 1", f, r)
	}
}

func TestSlashCommandsBecomeTheEnginesCommands(t *testing.T) {
	a, fake, _ := newAdapter(t)
	r := newRecorder("")
	base := serve(t, a, r)
	for _, c := range []struct{ command, text, want string }{
		{"/status", "checkout", "/status checkout"},
		{"/incidents", "", "/incidents"},
		{"/alertengine", "replay INC-7F3", "/replay INC-7F3"},
		{"/alertengine", "", "/help"},
		{"/AlertEngine", "Silence checkout 30m", "/silence checkout 30m"},
	} {
		d := fake.Command(general, alice, c.command, c.text)
		start := time.Now()
		send(t, fake, base, d, slacktest.Sign{})
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("acknowledged after %s", took)
		}
		send(t, fake, base, d, slacktest.Sign{}) // the same trigger again: once
		got := waitCalls(t, a, r, 1)[0]
		if got.Text != c.want || got.Chat != chat(general) || got.User.ID != alice || got.Direct {
			t.Errorf("%s %q: inbound %+v, want %q", c.command, c.text, got, c.want)
		}
		r.mu.Lock()
		r.got = nil
		r.mu.Unlock()
	}
}

func TestRequestsAreAcknowledgedBeforeTheEngineIsDone(t *testing.T) {
	a, fake, _ := newAdapter(t)
	release := make(chan struct{})
	h := blocking{release: release, called: make(chan struct{}, 1)}
	base := serve(t, a, h)
	done := make(chan int, 1)
	go func() {
		code, _, _ := fake.Send(base, fake.Command(general, alice, "/status", ""), slacktest.Sign{})
		done <- code
	}()
	select {
	case code := <-done:
		if code != 200 {
			t.Fatalf("status %d", code)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the command was not acknowledged while the engine was still working")
	}
	select {
	case <-h.called:
	case <-time.After(5 * time.Second):
		t.Fatal("the engine was never called")
	}
	close(release)
	a.Wait()
}

type blocking struct {
	release chan struct{}
	called  chan struct{}
}

func (b blocking) Handle(ctx context.Context, in conversation.Inbound) (conversation.Reply, error) {
	b.called <- struct{}{}
	select {
	case <-b.release:
	case <-ctx.Done():
	}
	return conversation.Reply{}, nil
}

var errTest = errors.New("engine failed")

func TestOversizedRequestsAreRefusedBeforeTheSignatureIsChecked(t *testing.T) {
	a, fake, _ := newAdapter(t)
	r := newRecorder("")
	base := serve(t, a, r)
	_, ds := fake.Say(general, alice, strings.Repeat("x", MaxBody), "")
	code, _, err := fake.Send(base, ds[0], slacktest.Sign{})
	if err != nil || code != http.StatusRequestEntityTooLarge {
		t.Fatalf("%d %v, want 413", code, err)
	}
	a.Wait()
	if got := r.inbound(); len(got) != 0 {
		t.Fatalf("an oversized request reached the engine: %d events", len(got))
	}
}
