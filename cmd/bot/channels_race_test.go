package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/telegram"
	"github.com/alertengine/alertengine/bot/telegram/telegramtest"
	"github.com/alertengine/alertengine/bot/whatsapp"
	"github.com/alertengine/alertengine/bot/whatsapp/twiliotest"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// TestTelegramAndWhatsAppApproversPressAtOnce: tendai presses Approve in Telegram while
// rudo types the reply code on WhatsApp, at the same moment, on 200 incidents. Each
// time exactly one approval wins, the other is told who decided, and both channels show
// the decision.
func TestTelegramAndWhatsAppApproversPressAtOnce(t *testing.T) {
	t.Parallel()
	rounds := 200
	if testing.Short() {
		rounds = 20
	}
	rc, prefix := ledgertest.Redis(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	led, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(rc, prefix)})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := approval.New(approval.Options{Redis: rc, KeyPrefix: prefix, Secret: []byte(strings.Repeat("s", 32)), Ledger: led})
	if err != nil {
		t.Fatal(err)
	}
	tenant := conversation.Tenant{ID: "acme", PolicyVersion: "pol-1", ApprovalTTL: 5 * time.Minute, Services: []string{"checkout"},
		DefaultAction: "restart_workers", Actions: []conversation.Action{{Name: "restart_workers"}},
		Chats: []conversation.Chat{{Channel: conversation.Telegram, ID: fmt.Sprint(groupID)}, {Channel: conversation.WhatsApp, ID: waRudo}},
		People: []conversation.Person{
			{Name: "tendai", Approver: true, IDs: map[conversation.Channel]string{conversation.Telegram: "11"}},
			{Name: "rudo", Approver: true, IDs: map[conversation.Channel]string{conversation.WhatsApp: waRudo}},
		}}
	tg := telegramtest.New(t)
	tg.AddChat(telegramtest.Chat{ID: groupID, Type: "supergroup", Title: "acme on-call"})
	tga, err := telegram.New(telegram.Options{Token: tg.Token(), APIURL: tg.URL(), Redis: rc, KeyPrefix: prefix, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	tw := twiliotest.New(t)
	wa, err := whatsapp.New(whatsapp.Options{AccountSID: twiliotest.AccountSID, AuthToken: twiliotest.AuthToken, From: waBot, APIURL: tw.URL(),
		PublicURL: waPublic, Redis: rc, KeyPrefix: prefix, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	var authorized sync.Map
	eng, err := conversation.New(conversation.Options{Ledger: led, Approvals: ap, Redis: rc, KeyPrefix: prefix, Tenants: []conversation.Tenant{tenant}, Logger: log,
		Transports: []conversation.Transport{tga, wa},
		OnAuthorized: func(_ context.Context, e ledger.Entry) error {
			if _, dup := authorized.LoadOrStore(e.Incident, e.Actor.ID); dup {
				t.Errorf("%s authorized twice", e.Incident)
			}
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	hook := httptest.NewServer(wa.WebhookHandler(eng))
	t.Cleanup(hook.Close)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tga.Run(ctx, eng) }()
	t.Cleanup(func() { cancel(); <-done })

	codeRe := regexp.MustCompile(`Reply APPROVE ([2-9A-Z]{3}-[2-9A-Z]{2})`)
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	wins := map[string]int{}
	for round := range rounds {
		d, err := led.Record(ctx, ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: fmt.Sprintf("checkout-%d", round), Actor: policy, PolicyVersion: "pol-1",
			Reason: "health 23/100 < 70", Data: map[string]string{"score": "23"}})
		if err != nil {
			t.Fatal(err)
		}
		inc := d.Incident
		p := conversation.Proposal{Theories: []conversation.Theory{{Lens: "policy", Summary: "default recovery", Action: "restart_workers", Confidence: 0.9}},
			Agree: true, Offers: []conversation.Offer{{Action: "restart_workers"}}}
		if _, err := led.Record(ctx, ledger.Entry{Tenant: "acme", Incident: inc, Event: ledger.Propose, Actor: policy, Action: "restart_workers", Confidence: 0.9, Data: p.Data()}); err != nil {
			t.Fatal(err)
		}
		if _, err := led.Record(ctx, ledger.Entry{Tenant: "acme", Incident: inc, Event: ledger.Validate, Actor: policy}); err != nil {
			t.Fatal(err)
		}
		if err := eng.Present(ctx, "acme", inc); err != nil {
			t.Fatal(err)
		}
		names := regexp.MustCompile(regexp.QuoteMeta(inc) + `\b`)
		card, err := tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, func(m telegramtest.Message) bool {
			return names.MatchString(m.Text+m.Caption) && len(m.Buttons()) > 0
		})
		if err != nil {
			t.Fatal(err)
		}
		waCard, err := tw.WaitForMessage(ctxT(t, 30*time.Second), func(m twiliotest.Message) bool {
			return m.To == "whatsapp:"+waRudo && names.MatchString(m.Text()) && codeRe.MatchString(m.Text())
		})
		if err != nil {
			t.Fatal(err)
		}
		code := codeRe.FindStringSubmatch(waCard.Text())[1]
		start := make(chan struct{})
		var wg sync.WaitGroup
		var query string
		wg.Add(2)
		go func() {
			defer wg.Done()
			<-start
			query = tg.PressButton(groupID, card.MessageID, userTendai, card.Buttons()[0][0].CallbackData)
		}()
		go func() {
			defer wg.Done()
			<-start
			form := twiliotest.Inbound{From: waRudo, Name: "Rudo", Body: "APPROVE " + code}.Form(waBot)
			if code, err := tw.Post(ctx, hook.URL+whatsapp.WebhookPath, waPublic+whatsapp.WebhookPath, form, nil); err != nil || code != http.StatusOK {
				t.Errorf("webhook: %d %v", code, err)
			}
		}()
		close(start)
		wg.Wait()
		toast := waitAnswer(t, tg, query).Text
		winner, ok := authorized.Load(inc)
		if !ok {
			t.Fatalf("round %d: nobody won", round)
		}
		wins[winner.(string)]++
		in, hist, err := led.Incident(ctx, "acme", inc)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range hist {
			if e.Event == ledger.Authorize {
				n++
			}
		}
		if in.Stage != ledger.Authorized || n != 1 {
			t.Fatalf("round %d: stage %s with %d authorizations", round, in.Stage, n)
		}
		// The loser is told who decided; both channels show the decision.
		switch winner {
		case "tendai":
			if !strings.HasPrefix(toast, "Approved.") {
				t.Errorf("round %d: winner's toast %q", round, toast)
			}
			if _, err := tw.WaitForMessage(ctxT(t, 30*time.Second), func(m twiliotest.Message) bool {
				return m.To == "whatsapp:"+waRudo && strings.Contains(m.Text(), "Already approved by tendai")
			}); err != nil {
				t.Fatalf("round %d: rudo not told: %v", round, err)
			}
		case "rudo":
			if toast != "Already approved by rudo." {
				t.Errorf("round %d: tendai's toast %q", round, toast)
			}
		}
		if _, err := tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, func(m telegramtest.Message) bool {
			return m.MessageID == card.MessageID && strings.Contains(m.Text+m.Caption, "Approved by "+winner.(string)+" in ") && len(m.Buttons()) == 0
		}); err != nil {
			t.Fatalf("round %d: the Telegram card does not show the decision: %v", round, err)
		}
		if _, err := tw.WaitForMessage(ctxT(t, 30*time.Second), func(m twiliotest.Message) bool {
			return m.To == "whatsapp:"+waRudo && strings.Contains(m.Text(), inc+" · ") && strings.Contains(m.Text(), "Approved by "+winner.(string)+" in ")
		}); err != nil {
			t.Fatalf("round %d: WhatsApp not shown the decision: %v", round, err)
		}
	}
	t.Logf("winners over %d rounds: %v", rounds, wins)
}
