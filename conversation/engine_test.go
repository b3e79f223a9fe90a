package conversation_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"github.com/redis/go-redis/v9"
)

const group = "-1001"

type world struct {
	rc       *redis.Client
	prefix   string
	tenants  []conversation.Tenant
	t        *testing.T
	eng      *conversation.Engine
	led      *ledger.Ledger
	tg       *memTransport
	now      time.Time
	incident string
	ap       *approval.Service
}

var (
	tendai = conversation.User{Channel: conversation.Telegram, ID: "11", Name: "Tendai"}
	vimbai = conversation.User{Channel: conversation.Telegram, ID: "33", Name: "Vimbai"}
	rudo   = conversation.User{Channel: conversation.Telegram, ID: "77", Name: "Rudo"}
)

func newWorld(t *testing.T, forum bool) *world {
	t.Helper()
	rc, prefix := ledgertest.Redis(t)
	w := &world{t: t, now: time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC), rc: rc, prefix: prefix}
	clock := func() time.Time { return w.now }
	led, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(rc, prefix), Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	ap, err := approval.New(approval.Options{Redis: rc, KeyPrefix: prefix, Secret: []byte(strings.Repeat("k", 32)), Ledger: led, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	var forums []string
	if forum {
		forums = []string{group}
	}
	w.tg = newMem(conversation.Telegram, forums...)
	w.led, w.ap = led, ap
	w.tenants = []conversation.Tenant{{
		ID: "acme", Chats: []conversation.Chat{{Channel: conversation.Telegram, ID: group}},
		People: []conversation.Person{
			{Name: "tendai", Approver: true, IDs: map[conversation.Channel]string{conversation.Telegram: "11"}},
			{Name: "vimbai", IDs: map[conversation.Channel]string{conversation.Telegram: "33"}},
		},
		Actions:       []conversation.Action{{Name: "restart_workers"}, {Name: "rollback", HighRisk: true}},
		DefaultAction: "restart_workers", Services: []string{"checkout", "payments"},
		ApprovalTTL: 5 * time.Minute, EscalateAfter: 3 * time.Minute, PolicyVersion: "pol-1",
	}}
	w.eng, err = conversation.New(conversation.Options{
		Ledger: led, Approvals: ap, Redis: rc, KeyPrefix: prefix, Clock: clock, Transports: []conversation.Transport{w.tg},
		Tenants: w.tenants,
	})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// open records an incident up to VALIDATED, as the pipeline does, and presents it.
func (w *world) open() { w.openOffering("restart_workers") }

// openOffering is open with the policy offering action.
func (w *world) openOffering(action string) {
	ctx := context.Background()
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	e, err := w.led.Record(ctx, ledger.Entry{Tenant: "acme", Event: ledger.Detect, Service: "checkout", Actor: policy, PolicyVersion: "pol-1",
		Reason: "health 23/100 < 70 for 2 evaluations", Data: map[string]string{"score": "23", "p95_ms": "2800", "error_rate": "0.19", "trend": "degrading"}})
	if err != nil {
		w.t.Fatal(err)
	}
	w.incident = e.Incident
	p := conversation.Proposal{Theories: []conversation.Theory{{Lens: "policy", Summary: "default recovery of the policy", Action: action, Confidence: 0.87}},
		Agree: true, Offers: []conversation.Offer{{Action: action}}}
	if _, err := w.led.Record(ctx, ledger.Entry{Tenant: "acme", Incident: w.incident, Event: ledger.Propose, Actor: policy, Action: action, Confidence: 0.87, Data: p.Data()}); err != nil {
		w.t.Fatal(err)
	}
	if _, err := w.led.Record(ctx, ledger.Entry{Tenant: "acme", Incident: w.incident, Event: ledger.Validate, Actor: policy}); err != nil {
		w.t.Fatal(err)
	}
	if err := w.eng.Present(ctx, "acme", w.incident); err != nil {
		w.t.Fatal(err)
	}
}

// card is the incident's newest card in the group: its headline names the incident
// ("🚨 checkout degraded — INC-1", retitled once the incident is closed).
func (w *world) card() sent {
	all := w.tg.all(group)
	for i := len(all) - 1; i >= 0; i-- {
		b := all[i].Msg.Blocks
		if len(b) > 0 && b[0].Style == conversation.Title && strings.Contains(b[0].Text, "— "+w.incident) {
			return all[i]
		}
	}
	w.t.Fatal("no incident card in the group")
	return sent{}
}

func (w *world) handle(in conversation.Inbound) conversation.Reply {
	w.t.Helper()
	r, err := w.eng.Handle(context.Background(), in)
	if err != nil {
		w.t.Fatalf("handle %+v: %v", in, err)
	}
	return r
}

func (w *world) stage() ledger.Stage {
	in, _, err := w.led.Incident(context.Background(), "acme", w.incident)
	if err != nil {
		w.t.Fatal(err)
	}
	return in.Stage
}

func TestCardQuestionReplayStatus(t *testing.T) {
	for _, forum := range []bool{false, true} {
		t.Run(map[bool]string{false: "reply chain", true: "forum topic"}[forum], func(t *testing.T) {
			w := newWorld(t, forum)
			w.open()
			card := w.card()
			text := card.Msg.Text()
			for _, want := range []string{"🚨 checkout critical — " + w.incident, "Health 23/100 · P95 2.8 s · errors 19% · trend degrading", "Suggested: restart_workers", "Nothing runs without your approval."} {
				if !strings.Contains(text, want) {
					t.Errorf("card lacks %q:\n%s", want, text)
				}
			}
			if len(card.Msg.Buttons) != 1 || len(card.Msg.Buttons[0]) != 3 || !approval.ValidRef(card.Msg.Buttons[0][0].Data) || card.Msg.Buttons[0][0].Label != "Approve restart_workers" {
				t.Fatalf("buttons %+v", card.Msg.Buttons)
			}
			if forum && card.Topic == "" {
				t.Fatal("forum chat: card not in a topic")
			}
			// A question in the thread: a reply to the card, or any message in the topic.
			q := conversation.Inbound{Chat: conversation.Chat{Channel: conversation.Telegram, ID: group}, User: vimbai, Text: "what changed?", MessageID: "500"}
			if forum {
				q.Topic = card.Topic
			} else {
				q.ReplyTo = card.ID
			}
			w.handle(q)
			ans, ok := w.tg.find(group, "No commits were recorded")
			if !ok || ans.ReplyTo != "500" || ans.Topic != q.Topic {
				t.Fatalf("answer not in the thread: %+v", ans)
			}
			// A follow-up replying to the bot's answer still belongs to the incident.
			w.handle(conversation.Inbound{Chat: q.Chat, User: tendai, Text: "show p95", ReplyTo: ans.ID, Topic: q.Topic, MessageID: "501"})
			if _, ok := w.tg.find(group, "At detection: health 23/100, P95 2.8 s"); !ok {
				t.Fatal("second question unanswered")
			}
			w.handle(conversation.Inbound{Chat: q.Chat, User: tendai, Text: "/replay " + w.incident, MessageID: "502"})
			replay, ok := w.tg.find(group, "Timeline of "+w.incident)
			if !ok || !strings.Contains(replay.Msg.Text(), "question · unlinked") && !strings.Contains(replay.Msg.Text(), "question · vimbai") {
				t.Fatalf("replay lacks the question:\n%s", replay.Msg.Text())
			}
			w.handle(conversation.Inbound{Chat: q.Chat, User: tendai, Text: "/status", MessageID: "503"})
			status, ok := w.tg.find(group, "Status — acme")
			if !ok || !strings.Contains(status.Msg.Text(), "checkout: no health data — open incident "+w.incident+" (VALIDATED)") {
				t.Fatalf("status:\n%s", status.Msg.Text())
			}
		})
	}
}

func TestApprovePressEditsTheCard(t *testing.T) {
	w := newWorld(t, false)
	w.open()
	card := w.card()
	ref := card.Msg.Buttons[0][0].Data
	chat := conversation.Chat{Channel: conversation.Telegram, ID: group}
	if r := w.handle(conversation.Inbound{Chat: chat, User: vimbai, Data: ref, ReplyTo: card.ID}); r.Toast != "You are not an approver for acme." {
		t.Fatalf("viewer press: %q", r.Toast)
	}
	if w.stage() != ledger.Validated {
		t.Fatal("a viewer's press moved the incident")
	}
	if r := w.handle(conversation.Inbound{Chat: chat, User: tendai, Data: ref, ReplyTo: card.ID}); !strings.HasPrefix(r.Toast, "Approved.") {
		t.Fatalf("approver press: %q", r.Toast)
	}
	if w.stage() != ledger.Authorized {
		t.Fatalf("stage %s", w.stage())
	}
	edited := w.card()
	if len(edited.Msg.Buttons) != 0 || !strings.Contains(edited.Msg.Text(), "✅ Approved by tendai at 09:00 UTC: restart_workers") {
		t.Fatalf("card after approval: %+v", edited.Msg)
	}
	if r := w.handle(conversation.Inbound{Chat: chat, User: tendai, Data: ref, ReplyTo: card.ID}); r.Toast != "Already approved by tendai." {
		t.Fatalf("second press: %q", r.Toast)
	}
}

func TestRejectButtonGoesThroughTheCommandPath(t *testing.T) {
	w := newWorld(t, false)
	w.open()
	card := w.card()
	chat := conversation.Chat{Channel: conversation.Telegram, ID: group}
	reject := card.Msg.Buttons[0][1]
	if reject.Label != "Reject" {
		t.Fatalf("second button %+v", reject)
	}
	w.handle(conversation.Inbound{Chat: chat, User: vimbai, Data: reject.Data, ReplyTo: card.ID})
	if w.stage() != ledger.Validated {
		t.Fatal("a viewer rejected")
	}
	w.handle(conversation.Inbound{Chat: chat, User: tendai, Data: reject.Data, ReplyTo: card.ID})
	if w.stage() != ledger.Rejected || !strings.Contains(w.card().Msg.Text(), "❌ Rejected by tendai") || len(w.card().Msg.Buttons) != 0 {
		t.Fatalf("after reject: %s %+v", w.stage(), w.card().Msg)
	}
}

func TestExpiryEscalationAndReissue(t *testing.T) {
	w := newWorld(t, false)
	w.open()
	ctx := context.Background()
	w.now = w.now.Add(4 * time.Minute)
	if err := w.eng.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	dm := w.tg.all("11")
	if len(dm) != 1 || !strings.Contains(dm[0].Msg.Text(), "waited 3m0s for a decision") || !approval.ValidRef(dm[0].Msg.Buttons[0][0].Data) {
		t.Fatalf("escalation DM to the approver: %+v", dm)
	}
	if len(w.tg.all("33")) != 0 {
		t.Fatal("a viewer was escalated to")
	}
	w.now = w.now.Add(2 * time.Minute)
	if err := w.eng.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if w.stage() != ledger.Expired || len(w.card().Msg.Buttons) != 0 || !strings.Contains(w.card().Msg.Text(), "⌛ Approval expired") {
		t.Fatalf("after TTL: %s %+v", w.stage(), w.card().Msg)
	}
	fresh, ok := w.tg.find(group, "The approval expired")
	if !ok || fresh.Msg.Buttons[0][0].Data != "/reissue "+w.incident {
		t.Fatalf("no fresh-approval button: %+v", fresh)
	}
	chat := conversation.Chat{Channel: conversation.Telegram, ID: group}
	w.handle(conversation.Inbound{Chat: chat, User: tendai, Data: fresh.Msg.Buttons[0][0].Data, ReplyTo: fresh.ID})
	if w.stage() != ledger.Validated {
		t.Fatalf("after reissue: %s", w.stage())
	}
	newCard := w.card()
	if newCard.ID == fresh.ID || len(newCard.Msg.Buttons) == 0 {
		t.Fatalf("no new card with buttons: %+v", newCard)
	}
	if r := w.handle(conversation.Inbound{Chat: chat, User: tendai, Data: newCard.Msg.Buttons[0][0].Data, ReplyTo: newCard.ID}); !strings.HasPrefix(r.Toast, "Approved.") {
		t.Fatalf("approve the reissued card: %q", r.Toast)
	}
}

func TestEnrollmentLinksAnApprover(t *testing.T) {
	w := newWorld(t, false)
	ctx := context.Background()
	code, err := w.eng.Enroll(ctx, "acme", "rudo", "approver", 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	dm := conversation.Chat{Channel: conversation.Telegram, ID: rudo.ID}
	w.handle(conversation.Inbound{Chat: dm, User: rudo, Text: "/start " + code, MessageID: "1"})
	if _, ok := w.tg.find(rudo.ID, "Linked: you are rudo (approver) for acme."); !ok {
		t.Fatalf("no confirmation: %+v", w.tg.all(rudo.ID))
	}
	w.handle(conversation.Inbound{Chat: dm, User: vimbai, Text: "/start " + code, MessageID: "2"})
	if _, ok := w.tg.find(rudo.ID, "unknown, used or expired"); !ok {
		t.Fatal("a used code was accepted again")
	}
	w.open()
	card := w.card()
	if r := w.handle(conversation.Inbound{Chat: conversation.Chat{Channel: conversation.Telegram, ID: group}, User: rudo, Data: card.Msg.Buttons[0][0].Data, ReplyTo: card.ID}); !strings.HasPrefix(r.Toast, "Approved.") {
		t.Fatalf("enrolled approver: %q", r.Toast)
	}
}

func TestUnknownCommandGetsHelp(t *testing.T) {
	w := newWorld(t, false)
	chat := conversation.Chat{Channel: conversation.Telegram, ID: group}
	w.handle(conversation.Inbound{Chat: chat, User: tendai, Text: "/frobnicate now", MessageID: "9"})
	m, ok := w.tg.find(group, "I don't know /frobnicate.")
	if !ok || !strings.Contains(m.Msg.Text(), "/status [service]") {
		t.Fatalf("unknown command: %+v", w.tg.all(group))
	}
}

// TestIncidentCommandWithoutIncident: /replay (and the other commands about one incident)
// typed outside any thread with no code answers how to name the incident, not
// `No incident ""`; the same command in the incident's thread needs no code.
func TestIncidentCommandWithoutIncident(t *testing.T) {
	t.Parallel()
	w := newWorld(t, false)
	w.open()
	chat := conversation.Chat{Channel: conversation.Telegram, ID: group}
	for i, cmd := range []string{"replay", "details", "ack"} {
		w.handle(conversation.Inbound{Chat: chat, User: tendai, Text: "/" + cmd, MessageID: fmt.Sprint(700 + i)})
		m, ok := w.tg.find(group, "Usage: /"+cmd+" INC-7F3")
		if !ok || strings.Contains(m.Msg.Text(), `No incident ""`) {
			t.Fatalf("/%s outside a thread: %+v", cmd, w.tg.all(group))
		}
	}
	w.handle(conversation.Inbound{Chat: chat, User: tendai, Text: "/replay", ReplyTo: w.card().ID, MessageID: "710"})
	if _, ok := w.tg.find(group, "Timeline of "+w.incident); !ok {
		t.Fatal("/replay in the incident's thread did not show its timeline")
	}
	if w.stage() != ledger.Validated {
		t.Fatalf("stage %s after the usage answers, want VALIDATED", w.stage())
	}
}

func FuzzParseCommand(f *testing.F) {
	for _, s := range []string{"/status", "/status@alertengine_bot checkout", "/replay INC-7F3", "/", "/@", "hello", "/SILENCE checkout 30m", "/start\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, ok := conversation.ParseCommand(s)
		if !ok {
			return
		}
		if c.Name == "" || strings.ContainsAny(c.Name, "@/ \t\n") || c.Name != strings.ToLower(c.Name) {
			t.Fatalf("%q parsed to name %q", s, c.Name)
		}
		for _, a := range c.Args {
			if a == "" || strings.ContainsAny(a, " \t\n") {
				t.Fatalf("%q: bad arg %q", s, a)
			}
		}
	})
}

// TestTwoTenantsOnePerson: tendai approves for acme and beta, whose first incidents are
// both INC-1. A button in beta's escalation message acts on beta's incident; a typed
// command outside any thread asks which tenant.
func TestTwoTenantsOnePerson(t *testing.T) {
	rc, prefix := ledgertest.Redis(t)
	now := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	led, _ := ledger.New(ledger.Options{Store: ledger.NewRedisStore(rc, prefix), Clock: clock})
	ap, _ := approval.New(approval.Options{Redis: rc, KeyPrefix: prefix, Secret: []byte(strings.Repeat("k", 32)), Ledger: led, Clock: clock})
	tg := newMem(conversation.Telegram)
	tenant := func(id, chat string) conversation.Tenant {
		return conversation.Tenant{ID: id, Chats: []conversation.Chat{{Channel: conversation.Telegram, ID: chat}},
			People:  []conversation.Person{{Name: "tendai", Approver: true, IDs: map[conversation.Channel]string{conversation.Telegram: "11"}}},
			Actions: []conversation.Action{{Name: "restart_workers"}}, Services: []string{"checkout"},
			ApprovalTTL: 5 * time.Minute, EscalateAfter: 3 * time.Minute, PolicyVersion: "pol-1"}
	}
	eng, err := conversation.New(conversation.Options{Ledger: led, Approvals: ap, Redis: rc, KeyPrefix: prefix, Clock: clock,
		Transports: []conversation.Transport{tg}, Tenants: []conversation.Tenant{tenant("acme", "-1"), tenant("beta", "-2")}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	policy := ledger.Actor{Kind: ledger.ActorPolicy, ID: "gate"}
	for _, id := range []string{"acme", "beta"} {
		e, err := led.Record(ctx, ledger.Entry{Tenant: id, Event: ledger.Detect, Service: "checkout", Actor: policy})
		if err != nil || e.Incident != "INC-1" {
			t.Fatalf("%s: %+v %v", id, e, err)
		}
		p := conversation.Proposal{Theories: []conversation.Theory{{Lens: "policy", Action: "restart_workers"}}, Agree: true, Offers: []conversation.Offer{{Action: "restart_workers"}}}
		led.Record(ctx, ledger.Entry{Tenant: id, Incident: "INC-1", Event: ledger.Propose, Actor: policy, Action: "restart_workers", Data: p.Data()})
		led.Record(ctx, ledger.Entry{Tenant: id, Incident: "INC-1", Event: ledger.Validate, Actor: policy})
		if err := eng.Present(ctx, id, "INC-1"); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(4 * time.Minute)
	if err := eng.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	dms := tg.all("11")
	if len(dms) != 2 {
		t.Fatalf("want one escalation DM per tenant, got %d", len(dms))
	}
	stage := func(tenant string) ledger.Stage {
		in, _, _ := led.Incident(ctx, tenant, "INC-1")
		return in.Stage
	}
	dm := conversation.Chat{Channel: conversation.Telegram, ID: "11"}
	for _, m := range dms {
		reject := m.Msg.Buttons[0][1]
		if reject.Data != "/reject INC-1" {
			t.Fatalf("escalation buttons %+v", m.Msg.Buttons)
		}
		before := map[string]ledger.Stage{"acme": stage("acme"), "beta": stage("beta")}
		r, err := eng.Handle(ctx, conversation.Inbound{Chat: dm, User: tendai, Data: reject.Data, ReplyTo: m.ID})
		if err != nil {
			t.Fatal(err)
		}
		changed := []string{}
		for _, id := range []string{"acme", "beta"} {
			if stage(id) != before[id] {
				changed = append(changed, id)
			}
		}
		if len(changed) != 1 || !strings.Contains(m.Msg.Text(), "INC-1") {
			t.Fatalf("reject from a DM changed %v (toast %q)", changed, r.Toast)
		}
	}
	if stage("acme") != ledger.Rejected || stage("beta") != ledger.Rejected {
		t.Fatalf("each DM's Reject should have rejected its own tenant's incident: acme %s, beta %s", stage("acme"), stage("beta"))
	}
	eng.Handle(ctx, conversation.Inbound{Chat: dm, User: tendai, Text: "/replay INC-1", MessageID: "900"})
	if m, ok := tg.find("11", "You belong to several tenants (acme, beta)"); !ok || !strings.Contains(m.Msg.Text(), "/replay acme/INC-…") {
		t.Fatalf("an ambiguous command was not questioned: %+v", tg.all("11"))
	}
	eng.Handle(ctx, conversation.Inbound{Chat: dm, User: tendai, Text: "/replay beta/INC-1", MessageID: "901"})
	if _, ok := tg.find("11", "Timeline of INC-1"); !ok {
		t.Fatal("/replay beta/INC-1 did not answer")
	}
}

// brokenLedger fails every append of one event, like Redis failing at the wrong moment.
type brokenStore struct {
	ledger.Store
	event ledger.Event
	fail  bool
}

func (b *brokenStore) Append(ctx context.Context, tenant string, tail ledger.Tail, es []ledger.Entry) (int, error) {
	for _, e := range es {
		if e.Event == b.event && b.fail {
			return 0, errors.New("redis: connection refused")
		}
	}
	return b.Store.Append(ctx, tenant, tail, es)
}

// TestDeadlineSurvivesAFailure: an expiry whose ledger append fails is tried again later
// rather than lost.
func TestDeadlineSurvivesAFailure(t *testing.T) {
	w := newWorld(t, false)
	w.open()
	ctx := context.Background()
	rc, prefix := w.rc, w.prefix
	broken := &brokenStore{Store: ledger.NewRedisStore(rc, prefix), event: ledger.Expire, fail: true}
	led, _ := ledger.New(ledger.Options{Store: broken, Clock: func() time.Time { return w.now }})
	ap, _ := approval.New(approval.Options{Redis: rc, KeyPrefix: prefix, Secret: []byte(strings.Repeat("k", 32)), Ledger: led, Clock: func() time.Time { return w.now }})
	eng, err := conversation.New(conversation.Options{Ledger: led, Approvals: ap, Redis: rc, KeyPrefix: prefix, Clock: func() time.Time { return w.now },
		Transports: []conversation.Transport{w.tg}, Tenants: w.tenants})
	if err != nil {
		t.Fatal(err)
	}
	w.now = w.now.Add(6 * time.Minute)
	if err := eng.Tick(ctx); err == nil {
		t.Fatal("a failed expiry was not reported")
	}
	if w.stage() != ledger.Validated {
		t.Fatalf("stage %s", w.stage())
	}
	broken.fail = false
	w.now = w.now.Add(time.Minute)
	if err := eng.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if w.stage() != ledger.Expired {
		t.Fatalf("the expiry was lost: stage %s", w.stage())
	}
}

func TestQuestionsAreRateLimited(t *testing.T) {
	w := newWorld(t, false)
	w.open()
	card := w.card()
	chat := conversation.Chat{Channel: conversation.Telegram, ID: group}
	for i := 0; i < conversation.MaxQuestionsPerHour+2; i++ {
		w.handle(conversation.Inbound{Chat: chat, User: vimbai, Text: "why?", ReplyTo: card.ID, MessageID: fmt.Sprint(1000 + i)})
	}
	_, hist, _ := w.led.Incident(context.Background(), "acme", w.incident)
	q := 0
	for _, e := range hist {
		if e.Event == ledger.Question {
			q++
		}
	}
	if q != conversation.MaxQuestionsPerHour {
		t.Fatalf("%d questions recorded, want %d", q, conversation.MaxQuestionsPerHour)
	}
	notices := 0
	for _, m := range w.tg.all(group) {
		if strings.Contains(m.Msg.Text(), "I will answer again later") {
			notices++
		}
	}
	if notices != 1 {
		t.Fatalf("%d rate-limit notices, want 1", notices)
	}
}

// TestStrangersRepliesAreBounded: 300 replies to a card by 30 people who are not people
// of the tenant: each stranger gets MaxStrangerQuestionsPerHour answers and one "slow
// down"; the thread gets at most MaxRepliesPerThreadPerHour replies and one pause notice;
// the ledger keeps only what was answered; every question over a bound is counted.
func TestStrangersRepliesAreBounded(t *testing.T) {
	w := newWorld(t, false)
	var mu sync.Mutex
	throttled := map[string]int{}
	eng, err := conversation.New(conversation.Options{Ledger: w.led, Approvals: w.ap, Redis: w.rc, KeyPrefix: w.prefix,
		Clock: func() time.Time { return w.now }, Transports: []conversation.Transport{w.tg}, Tenants: w.tenants,
		OnThrottled: func(tenant, bound string) { mu.Lock(); throttled[bound]++; mu.Unlock() }})
	if err != nil {
		t.Fatal(err)
	}
	w.eng = eng
	w.open()
	card := w.card()
	before := len(w.tg.all(group))
	chat := conversation.Chat{Channel: conversation.Telegram, ID: group}
	for i := range 300 {
		stranger := conversation.User{Channel: conversation.Telegram, ID: fmt.Sprint(77000 + i%30), Name: "stranger"}
		w.handle(conversation.Inbound{Chat: chat, User: stranger, Text: "why?", ReplyTo: card.ID, MessageID: fmt.Sprint(5000 + i)})
	}
	said := w.tg.all(group)[before:]
	pauses, slow := 0, 0
	for _, m := range said {
		switch {
		case strings.Contains(m.Msg.Text(), "I pause answering questions here"):
			pauses++
		case strings.Contains(m.Msg.Text(), "Slow down: you have asked"):
			slow++
		}
	}
	if len(said) != conversation.MaxRepliesPerThreadPerHour+1 || pauses != 1 {
		t.Fatalf("the bot said %d things (%d pause notices), want %d and 1", len(said), pauses, conversation.MaxRepliesPerThreadPerHour+1)
	}
	_, hist, _ := w.led.Incident(context.Background(), "acme", w.incident)
	q, a := 0, 0
	for _, e := range hist {
		switch e.Event {
		case ledger.Question:
			q++
		case ledger.Answer:
			a++
		}
	}
	if q != a || q+slow != conversation.MaxRepliesPerThreadPerHour {
		t.Fatalf("%d questions and %d answers recorded, %d slow-down notices", q, a, slow)
	}
	if throttled["sender"]+throttled["thread"] != 300-q {
		t.Fatalf("throttled %v, want %d in all", throttled, 300-q)
	}
}

// A high-risk action's Approve button carries the question a platform that can ask
// (Slack's confirm dialog) asks before the press is sent; an ordinary action's does not.
func TestHighRiskApprovalAsksForConfirmation(t *testing.T) {
	for action, risky := range map[string]bool{"rollback": true, "restart_workers": false} {
		t.Run(action, func(t *testing.T) {
			w := newWorld(t, false)
			w.openOffering(action)
			b := w.card().Msg.Buttons[0][0]
			if b.Label != "Approve "+action || !approval.ValidRef(b.Data) {
				t.Fatalf("first button %+v", b)
			}
			if got := b.Confirm != ""; got != risky {
				t.Errorf("Confirm = %q; want a question: %v", b.Confirm, risky)
			}
			if risky && !strings.Contains(b.Confirm, "rollback is a high-risk action") {
				t.Errorf("Confirm = %q", b.Confirm)
			}
		})
	}
}

// fixedStatus reports one reading for every service.
type fixedStatus struct{ st conversation.ServiceStatus }

func (f fixedStatus) ServiceStatus(_ context.Context, _, service string) (conversation.ServiceStatus, error) {
	s := f.st
	s.Service = service
	return s, nil
}

// /status says where each service's signal comes from and how fresh it is, so a service
// whose exporter went quiet shows it.
func TestStatusSaysWhereTheSignalComesFrom(t *testing.T) {
	w := newWorld(t, false)
	clock := func() time.Time { return w.now }
	eng, err := conversation.New(conversation.Options{
		Ledger: w.led, Approvals: w.ap, Redis: w.rc, KeyPrefix: w.prefix, Clock: clock, Transports: []conversation.Transport{w.tg}, Tenants: w.tenants,
		Status: fixedStatus{conversation.ServiceStatus{Status: "healthy", Score: 96, P95Ms: 120, Trend: "stable", SampleSize: 400, Source: "otlp", At: w.now.Add(-7 * time.Minute)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Handle(context.Background(), conversation.Inbound{Chat: conversation.Chat{Channel: conversation.Telegram, ID: group}, User: tendai, Text: "/status", MessageID: "900"}); err != nil {
		t.Fatal(err)
	}
	s, ok := w.tg.find(group, "Status — acme")
	if !ok {
		t.Fatal("no status message")
	}
	if text := s.Msg.Text(); !strings.Contains(text, "checkout: healthy 96/100 · P95 120 ms · errors 0% · stable · from otlp, 7 min ago") {
		t.Errorf("status:\n%s", text)
	}
}
