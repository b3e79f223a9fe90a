package main

import (
	"context"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/voice"
	"github.com/alertengine/alertengine/bot/whatsapp"
	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// fakeClock is the time the engine and the ledger see; the test moves it.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// TestVoiceEscalationOnAFakeClock: no decision after escalate_after → the approvers are
// re-notified; still none a minute later → the first approver with a phone is called
// with a spoken summary, recorded as ESCALATED; an incident decided before its call
// time is never called about.
func TestVoiceEscalationOnAFakeClock(t *testing.T) {
	t.Parallel()
	rc, prefix := ledgertest.Redis(t)
	clock := &fakeClock{now: time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	led, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(rc, prefix), Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := approval.New(approval.Options{Redis: rc, KeyPrefix: prefix, Secret: []byte(strings.Repeat("s", 32)), Ledger: led, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tw := twiliotest.New(t)
	wa, err := whatsapp.New(whatsapp.Options{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken, From: waBot, APIURL: tw.URL(),
		PublicURL: waPublic, Redis: rc, KeyPrefix: prefix, Logger: log, Clock: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	caller, err := voice.New(voice.Options{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken, From: waVoiceCaller, APIURL: tw.URL()})
	if err != nil {
		t.Fatal(err)
	}
	tenant := conversation.Tenant{ID: "acme", PolicyVersion: "pol-1", ApprovalTTL: 5 * time.Minute, EscalateAfter: 3 * time.Minute,
		Services: []string{"checkout", "payments"}, DefaultAction: "restart_workers", Actions: []conversation.Action{{Name: "restart_workers"}},
		Chats: []conversation.Chat{{Channel: conversation.WhatsApp, ID: waTendai}},
		People: []conversation.Person{
			{Name: "vimbai", Approver: false, Phone: "+263773333333"},
			{Name: "tendai", Approver: true, IDs: map[conversation.Channel]string{conversation.WhatsApp: waTendai}, Phone: waTendai},
			{Name: "rudo", Approver: true, IDs: map[conversation.Channel]string{conversation.WhatsApp: waRudo}, Phone: waRudo},
		}}
	eng, err := conversation.New(conversation.Options{Ledger: led, Approvals: ap, Redis: rc, KeyPrefix: prefix, Tenants: []conversation.Tenant{tenant},
		Transports: []conversation.Transport{wa}, Caller: caller, Clock: clock.Now, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	open := func(service string) string {
		policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
		d, err := led.Record(ctx, ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: service, Actor: policy, PolicyVersion: "pol-1",
			Reason: "health 23/100 < 70", Data: map[string]string{"score": "23"}})
		if err != nil {
			t.Fatal(err)
		}
		p := conversation.Proposal{Theories: []conversation.Theory{{Lens: "policy", Summary: "default recovery", Action: "restart_workers", Confidence: 0.9}},
			Agree: true, Offers: []conversation.Offer{{Action: "restart_workers"}}}
		if _, err := led.Record(ctx, ledger.Entry{Tenant: "acme", Incident: d.Incident, Event: ledger.Propose, Actor: policy, Action: "restart_workers", Data: p.Data()}); err != nil {
			t.Fatal(err)
		}
		if _, err := led.Record(ctx, ledger.Entry{Tenant: "acme", Incident: d.Incident, Event: ledger.Validate, Actor: policy}); err != nil {
			t.Fatal(err)
		}
		if err := eng.Present(ctx, "acme", d.Incident); err != nil {
			t.Fatal(err)
		}
		return d.Incident
	}
	tick := func() {
		if err := eng.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	escalations := func(inc string) (renotified, called []string) {
		_, hist, err := led.Incident(ctx, "acme", inc)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range hist {
			if e.Event == ledger.Escalation {
				if e.Data["kind"] == "call" {
					called = append(called, e.Reason)
				} else {
					renotified = append(renotified, e.Reason)
				}
			}
		}
		return renotified, called
	}

	undecided := open("checkout")
	decided := open("payments")
	clock.Advance(3*time.Minute - time.Second)
	tick()
	if r, c := escalations(undecided); len(r)+len(c) != 0 {
		t.Fatalf("escalated before escalate_after: %v %v", r, c)
	}
	clock.Advance(time.Second)
	tick()
	if r, c := escalations(undecided); len(r) != 1 || len(c) != 0 {
		t.Fatalf("at escalate_after: re-notified %v, called %v", r, c)
	}
	if len(tw.Calls()) != 0 {
		t.Fatal("called together with the re-notification")
	}
	// Somebody decides the second incident before its call.
	card, err := tw.WaitForMessage(ctxT(t, 10*time.Second), func(m twiliotest.Message) bool {
		return strings.Contains(m.Text(), decided) && strings.Contains(m.Text(), "Reply APPROVE")
	})
	if err != nil {
		t.Fatal(err)
	}
	code := card.Text()[strings.Index(card.Text(), "Reply APPROVE ")+len("Reply APPROVE "):][:6]
	if _, err := eng.Handle(ctx, conversation.Inbound{Chat: conversation.Chat{Channel: conversation.WhatsApp, ID: waTendai},
		User: conversation.User{Channel: conversation.WhatsApp, ID: waTendai}, Direct: true, Text: "/approve " + code}); err != nil {
		t.Fatal(err)
	}
	if st, _ := led.Store().Stage(ctx, "acme", decided); st != ledger.Authorized {
		t.Fatalf("decided incident is %s", st)
	}
	clock.Advance(time.Minute - time.Second)
	tick()
	if len(tw.Calls()) != 0 {
		t.Fatal("called before the call time")
	}
	clock.Advance(time.Second)
	tick()
	calls := tw.Calls()
	if len(calls) != 1 {
		t.Fatalf("%d calls: %+v", len(calls), calls)
	}
	spelled := strings.Join(strings.Split(strings.ReplaceAll(undecided, "-", ""), ""), " ")
	wantTwiML := `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<Response><Say loop="2">AlertEngine escalation for acme. checkout is in trouble, health 23 of 100. Incident ` +
		spelled + ` has waited for a decision. Suggested action: restart workers. Nothing runs without an approval. Please approve or reject in chat.</Say></Response>`
	if calls[0].To != waTendai || calls[0].From != waVoiceCaller || calls[0].TwiML != wantTwiML {
		t.Errorf("call %+v\nwant TwiML %s", calls[0], wantTwiML)
	}
	if _, c := escalations(undecided); len(c) != 1 || !strings.Contains(c[0], "ESCALATED: called tendai") {
		t.Errorf("call entries %v", c)
	}
	if _, c := escalations(decided); len(c) != 0 {
		t.Errorf("the decided incident has call entries %v", c)
	}
	// Nothing more happens for the decided one, and the undecided one expires at its TTL
	// without a second call.
	clock.Advance(time.Minute)
	tick()
	if n := len(tw.Calls()); n != 1 {
		t.Errorf("%d calls after expiry", n)
	}
	if st, _ := led.Store().Stage(ctx, "acme", undecided); st != ledger.Expired {
		t.Errorf("undecided incident is %s at its TTL", st)
	}
}
