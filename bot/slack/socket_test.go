package slack

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/bot/slack/slacktest"
)

// runSocket starts Run on an adapter with an app token and waits for its connection.
func runSocket(t *testing.T, a *Adapter, fake *slacktest.Server, h *recorder) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx, h) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("Run did not stop")
		}
		a.Wait()
	})
	if err := fake.WaitSocket(10 * time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestSocketModeAcknowledgesEveryEnvelopeAndHandlesEachEventOnce(t *testing.T) {
	a, fake, _ := newAdapter(t, func(o *Options) { o.AppToken = slacktest.AppToken; o.SigningSecret = "" })
	r := newRecorder("Rejected by bob.")
	runSocket(t, a, fake, r)
	th, card, err := a.OpenThread(t.Context(), chat(general), "", card())
	if err != nil {
		t.Fatal(err)
	}

	_, ds := fake.Say(general, alice, "<@"+slacktest.BotUser+"> details", th.Root)
	var ids []string
	for _, d := range ds {
		for retry := range 2 { // Slack redelivers an envelope it thinks was lost
			id, err := fake.Envelope(d, retry)
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
	}
	press, err := fake.Press(general, card.ID, bob, "Reject")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := fake.Envelope(press, 0)
	if err != nil {
		t.Fatal(err)
	}
	cid, err := fake.Envelope(fake.Command(general, alice, "/alertengine", "incidents"), 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range append(ids, pid, cid) {
		if err := fake.WaitAck(id, 3*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	got := waitCalls(t, a, r, 3)
	seen := map[string]bool{}
	for _, in := range got {
		seen[in.Text+in.Data] = true
	}
	for _, want := range []string{"/details", "/reject INC-7F3", "/incidents"} {
		if !seen[want] {
			t.Errorf("%q did not reach the engine: %+v", want, got)
		}
	}
	if e := fake.Ephemerals(general, bob); len(e) != 1 || e[0].Text != "Rejected by bob." {
		t.Fatalf("bob was shown %+v", e)
	}
}

func TestSocketModeWithARefusedAppTokenStops(t *testing.T) {
	a, _, _ := newAdapter(t, func(o *Options) { o.AppToken = "xapp-1-wrong" })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	err := a.Run(ctx, newRecorder(""))
	if !errors.Is(err, channel.ErrRefused) {
		t.Fatalf("Run: %v, want ErrRefused", err)
	}
}

func TestRunWithoutAnAppTokenReturnsAtOnce(t *testing.T) {
	a, _, _ := newAdapter(t)
	if err := a.Run(t.Context(), newRecorder("")); err != nil {
		t.Fatal(err)
	}
}

func TestSocketModeReconnectsWhenSlackAsksIt(t *testing.T) {
	a, fake, _ := newAdapter(t, func(o *Options) { o.AppToken = slacktest.AppToken; o.SigningSecret = "" })
	r := newRecorder("")
	runSocket(t, a, fake, r)
	fake.Disconnect()
	if err := fake.WaitOpened(2, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	_, ds := fake.Say("D"+alice[1:], alice, "status", "")
	id, err := fake.Envelope(ds[0], 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := fake.WaitAck(id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := waitCalls(t, a, r, 1); got[0].Text != "/status" || !got[0].Direct {
		t.Fatalf("after reconnecting: %+v", got)
	}
}
