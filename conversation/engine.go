package conversation

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/ledger"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/singleflight"
)

// StatusSource gives a service's latest health (the detector).
type StatusSource interface {
	ServiceStatus(ctx context.Context, tenant, service string) (ServiceStatus, error)
}

// CommitSource gives the commits correlated with a service (the commit store).
type CommitSource interface {
	RecentCommits(ctx context.Context, tenant, service string, since time.Time) ([]Commit, error)
}

// Question is a follow-up asked in an incident thread.
type Question struct {
	Tenant   string
	Incident ledger.Incident
	// History is the incident's ledger entries, earlier questions and answers included.
	History []ledger.Entry
	Commits []Commit
	Status  *ServiceStatus
	Text    string
	Asker   string
}

// Answerer answers follow-up questions (the council; FactsAnswerer offline).
type Answerer interface {
	Answer(ctx context.Context, q Question) (text string, by ledger.Actor, err error)
}

// Charter renders an incident's chart (optional).
type Charter interface {
	Chart(ctx context.Context, tenant, service string, detectedAt time.Time) (*Image, error)
}

// Options configure the engine.
type Options struct {
	Ledger     *ledger.Ledger
	Approvals  *approval.Service
	Redis      redis.UniversalClient
	KeyPrefix  string
	Tenants    []Tenant
	Transports []Transport
	Status     StatusSource
	Commits    CommitSource
	Answerer   Answerer
	Charts     Charter
	// Caller places voice escalation calls (optional).
	Caller Caller
	// OnAuthorized is called after an approval's AUTHORIZED entry is durable, to hand the
	// execution to the executor. If it fails, the executor's sweep of AUTHORIZED incidents
	// still picks the execution up.
	OnAuthorized func(ctx context.Context, e ledger.Entry) error
	Clock        func() time.Time
	Logger       *slog.Logger
	// LinkURL, when set, turns a link-approval reference into the URL of its preview page
	// (PUBLIC_URL + /action/recover?ref=…). A chat without buttons whose identity is an
	// approver's is then also sent that approver's own links, a further fallback beside the
	// reply codes (the same approval records, the same single use).
	LinkURL func(ref string) string
	// OnThrottled, when set, is told of each question over a bound ("sender": its asker's
	// hourly limit; "thread": the thread's replies of the hour), for the bot's metrics.
	OnThrottled func(tenant, bound string)
}

// Validate checks the options.
func (o *Options) Validate() error {
	switch {
	case o.Ledger == nil:
		return errors.New("conversation: no ledger")
	case o.Approvals == nil:
		return errors.New("conversation: no approvals")
	case o.Redis == nil:
		return errors.New("conversation: no Redis")
	}
	seen := map[string]bool{}
	chats := map[Chat]string{}
	for _, t := range o.Tenants {
		for _, c := range t.Chats {
			if other, dup := chats[c]; dup {
				return fmt.Errorf("conversation: chat %s %s belongs to tenants %q and %q; a chat belongs to one tenant", c.Channel, c.ID, other, t.ID)
			}
			chats[c] = t.ID
		}
		if seen[t.ID] {
			return fmt.Errorf("conversation: tenant %q twice", t.ID)
		}
		seen[t.ID] = true
		if t.ApprovalTTL <= 0 {
			return fmt.Errorf("conversation: tenant %q has no approval TTL", t.ID)
		}
	}
	return nil
}

// Engine is the conversation core. It implements Handler for the adapters.
type Engine struct {
	o          Options
	st         *store
	tenants    map[string]*Tenant
	transports map[Channel]Transport
	mu         sync.Mutex // guards transports
	// suspectReads shares one read of an incident's suspects among the presses asking at
	// once: a burst of presses on one card reads the ledger once, not once a press.
	suspectReads singleflight.Group
}

// New returns an engine.
func New(o Options) (*Engine, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.Answerer == nil {
		o.Answerer = FactsAnswerer{}
	}
	e := &Engine{o: o, st: &store{rc: o.Redis, prefix: o.KeyPrefix}, tenants: map[string]*Tenant{}, transports: map[Channel]Transport{}}
	for i := range o.Tenants {
		e.tenants[o.Tenants[i].ID] = &o.Tenants[i]
	}
	for _, t := range o.Transports {
		e.transports[t.Channel()] = t
	}
	return e, nil
}

func (e *Engine) transport(c Channel) (Transport, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	t, ok := e.transports[c]
	if !ok {
		return nil, fmt.Errorf("%w %s", ErrNoTransport, c)
	}
	return t, nil
}

// caps are the capabilities of a channel's transport (none when it has no transport).
func (e *Engine) caps(c Channel) Capabilities {
	tr, err := e.transport(c)
	if err != nil {
		return Capabilities{}
	}
	return tr.Capabilities()
}

// post sends msg into th and remembers the message as part of the incident.
func (e *Engine) post(ctx context.Context, tenant, incident string, th Thread, msg Message) (MessageRef, error) {
	tr, err := e.transport(th.Chat.Channel)
	if err != nil {
		return MessageRef{}, err
	}
	ref, err := tr.Post(ctx, th, e.fit(ctx, tr.Capabilities(), msg))
	if err != nil {
		return ref, fmt.Errorf("post to %s %s: %w", th.Chat.Channel, th.Chat.ID, err)
	}
	if incident != "" {
		e.st.routeMessage(ctx, ref, tenant, incident)
	}
	return ref, nil
}

// Present opens the incident's thread with the incident card in every chat of its tenant
// that does not have it yet — so presenting again after a partial failure fills only the
// gaps — and, when the incident awaits approval (VALIDATED), puts approval buttons backed
// by fresh single-use approvals on the card.
func (e *Engine) Present(ctx context.Context, tenant, incident string) error {
	return e.present(ctx, tenant, incident, false)
}

// Unpresented reports whether some chat of the incident's tenant lacks its card.
func (e *Engine) Unpresented(ctx context.Context, tenant, incident string) (bool, error) {
	t, ok := e.tenants[tenant]
	if !ok {
		return false, fmt.Errorf("unknown tenant %q", tenant)
	}
	ps, err := e.st.placements(ctx, tenant, incident)
	if err != nil {
		return false, err
	}
	have := map[Chat]bool{}
	for _, p := range ps {
		have[p.Thread.Chat] = true
	}
	for _, c := range t.Chats {
		if !have[c] {
			return true, nil
		}
	}
	return false, nil
}

// presentLease bounds how long one replica may take to present an incident before another
// may try.
const presentLease = 2 * time.Minute

// present posts the card; with again (a reissue) it also posts a new card into the
// threads that exist. One replica presents an incident at a time.
func (e *Engine) present(ctx context.Context, tenant, incident string, again bool) error {
	t, ok := e.tenants[tenant]
	if !ok {
		return fmt.Errorf("present %s: unknown tenant %q", incident, tenant)
	}
	lock := e.o.KeyPrefix + "conv:{" + tenant + "}:presenting:" + incident
	got, err := e.o.Redis.SetNX(ctx, lock, "1", presentLease).Result()
	if err != nil {
		return fmt.Errorf("present %s: %w", incident, err)
	}
	if !got {
		return fmt.Errorf("present %s: another replica is presenting it", incident)
	}
	defer e.o.Redis.Del(context.WithoutCancel(ctx), lock)
	existing, err := e.st.placements(ctx, tenant, incident)
	if err != nil {
		return err
	}
	have := map[Chat]Placement{}
	for _, p := range existing {
		have[p.Thread.Chat] = p
	}
	var targets []Chat
	for _, c := range t.Chats {
		if _, ok := have[c]; again || !ok {
			targets = append(targets, c)
		}
	}
	if len(targets) == 0 {
		return nil
	}
	in, hist, err := e.o.Ledger.Incident(ctx, tenant, incident)
	if err != nil {
		return fmt.Errorf("present %s: %w", incident, err)
	}
	ci := cardInput{in: in, hist: hist, now: e.o.Clock()}
	ci.proposal = latestProposal(hist)
	ci.highRisk = func(a string) bool {
		x, _ := t.Action(a)
		return x.HighRisk || (ci.proposal != nil && ci.proposal.HighRisk)
	}
	ci.commits = e.commits(ctx, tenant, in.Service, in.OpenedAt)
	card := incidentCard(ci)
	if in.Stage == ledger.Validated && ci.proposal != nil && len(ci.proposal.Offers) > 0 {
		offers := make([]approval.Offer, len(ci.proposal.Offers))
		for i, o := range ci.proposal.Offers {
			a, _ := t.Action(o.Action)
			offers[i] = approval.Offer{Tenant: tenant, Incident: incident, Action: o.Action, HighRisk: a.HighRisk || ci.proposal.HighRisk,
				PolicyVersion: t.PolicyVersion, Theory: o.Theory, Evidence: Evidence(card)}
		}
		refs, err := e.o.Approvals.Issue(ctx, t.ApprovalTTL, offers...)
		if err != nil {
			return fmt.Errorf("present %s: %w", incident, err)
		}
		ci.refs = refs
		card = incidentCard(ci)
		now := e.o.Clock()
		if err := e.st.addDeadline(ctx, tenant, incident, deadlineExpire, now.Add(t.ApprovalTTL)); err != nil {
			return err
		}
		if t.EscalateAfter > 0 && t.EscalateAfter < t.ApprovalTTL {
			if err := e.st.addDeadline(ctx, tenant, incident, deadlineEscalate, now.Add(t.EscalateAfter)); err != nil {
				return err
			}
		}
	}
	if e.o.Charts != nil {
		if img, err := e.o.Charts.Chart(ctx, tenant, in.Service, in.OpenedAt); err == nil && img != nil {
			card.Image = img
		} else if err != nil {
			e.o.Logger.Warn("incident chart", "incident", incident, "err", err)
		}
	}
	var errs []error
	for _, chat := range targets {
		tr, err := e.transport(chat.Channel)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var p Placement
		card := e.fit(ctx, tr.Capabilities(), card)
		if old, ok := have[chat]; ok {
			ref, err := tr.Post(ctx, old.Thread, card)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			p = Placement{Thread: old.Thread, Card: ref}
		} else {
			th, ref, err := tr.OpenThread(ctx, chat, in.ID+" · "+in.Service, card)
			if err != nil {
				errs = append(errs, fmt.Errorf("open thread in %s %s: %w", chat.Channel, chat.ID, err))
				continue
			}
			p = Placement{Thread: th, Card: ref}
			if th.Topic != "" {
				e.st.routeTopic(ctx, chat, th.Topic, tenant, incident)
			}
			if th.Root != "" {
				e.st.routeMessage(ctx, MessageRef{Chat: chat, ID: th.Root}, tenant, incident)
			}
		}
		p.Refs = ci.refs
		e.st.routeMessage(ctx, p.Card, tenant, incident)
		if err := e.st.savePlacement(ctx, tenant, incident, p); err != nil {
			errs = append(errs, err)
			continue
		}
		if !tr.Capabilities().Buttons && len(ci.refs) > 0 {
			e.postLinks(ctx, t, chat, tr, p.Thread, ci.proposal.Offers, ci.refs)
		}
	}
	return errors.Join(errs...)
}

// postLinks sends the approver whose chat this is their own link approvals, one per
// offer, when LinkURL is configured. The card is already placed, so a failure here is
// logged, never retried as a failed presentation: the reply codes on the card still work.
func (e *Engine) postLinks(ctx context.Context, t *Tenant, chat Chat, tr Transport, th Thread, offers []Offer, refs []string) {
	if e.o.LinkURL == nil || len(offers) != len(refs) {
		return
	}
	for _, person := range t.People {
		if !person.Approver || person.IDs[chat.Channel] != chat.ID {
			continue
		}
		blocks := []Block{{Muted, "Or approve in your browser (a link for " + person.Name + " only, used once):"}}
		for i, o := range offers {
			l, err := e.o.Approvals.IssueLink(ctx, refs[i], person.Name, string(chat.Channel), chat.ID)
			if err != nil {
				e.o.Logger.Warn("issue link approval", "tenant", t.ID, "person", person.Name, "err", err)
				return
			}
			blocks = append(blocks, Block{Plain, o.Action + ": " + e.o.LinkURL(l)})
		}
		if _, err := tr.Post(ctx, th, Message{Blocks: blocks}); err != nil {
			e.o.Logger.Warn("post link approvals", "tenant", t.ID, "person", person.Name, "err", err)
		}
	}
}

func latestProposal(hist []ledger.Entry) *Proposal {
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].Event == ledger.Propose {
			if p, err := ProposalOf(hist[i]); err == nil {
				return &p
			}
		}
	}
	return nil
}

// CommitWindow is how far before an incident's detection its commits are correlated.
const CommitWindow = time.Hour

// commits are the service's commits in the CommitWindow before an incident opened at
// around: nothing pushed after detection is the incident's suspect.
func (e *Engine) commits(ctx context.Context, tenant, service string, around time.Time) []Commit {
	cs := e.commitsSince(ctx, tenant, service, around.Add(-CommitWindow))
	var out []Commit
	for _, c := range cs {
		if !c.At.After(around) {
			out = append(out, c)
		}
	}
	return out
}

func (e *Engine) commitsSince(ctx context.Context, tenant, service string, since time.Time) []Commit {
	if e.o.Commits == nil {
		return nil
	}
	cs, err := e.o.Commits.RecentCommits(ctx, tenant, service, since)
	if err != nil {
		e.o.Logger.Warn("recent commits", "tenant", tenant, "service", service, "err", err)
		return nil
	}
	return cs
}

// Say posts a message into every thread of an incident.
func (e *Engine) Say(ctx context.Context, tenant, incident string, msg Message) error {
	ps, err := e.st.placements(ctx, tenant, incident)
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range ps {
		if _, err := e.post(ctx, tenant, incident, p.Thread, msg); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// closeCards edits every card of the incident: buttons removed, a closing line added,
// and, once the incident is closed for good, the headline retitled with its stage. The
// line is remembered so that a later edit (settleCards) keeps it.
func (e *Engine) closeCards(ctx context.Context, tenant, incident, line string) error {
	return e.editCards(ctx, tenant, incident, line, false, false)
}

// settleCards edits every card of an incident that reached a terminal stage after its
// card was closed (the approved recovery ran and the service is healthy): the headline
// says the stage, the closing line it was closed with stays. A platform that cannot edit
// in place is left out: its thread is told the outcome anyway, and its update would only
// repeat the closing line.
func (e *Engine) settleCards(ctx context.Context, tenant, incident string) error {
	return e.editCards(ctx, tenant, incident, "", true, false)
}

// editCards is closeCards (settle false) or settleCards (settle true). unhealthy: the
// incident closed without being known healthy (the detector closed it RECOVERED because
// its alerts expired or a newer incident superseded it), so the headline does not say
// "healthy again".
func (e *Engine) editCards(ctx context.Context, tenant, incident, line string, settle, unhealthy bool) error {
	ps, err := e.st.placements(ctx, tenant, incident)
	if err != nil {
		return err
	}
	in, hist, err := e.o.Ledger.Incident(ctx, tenant, incident)
	if err != nil {
		return err
	}
	if settle {
		if line, err = e.st.closing(ctx, tenant, incident); err != nil {
			return err
		}
	} else if err := e.st.setClosing(ctx, tenant, incident, line); err != nil {
		e.o.Logger.Warn("remember the closing line", "incident", incident, "err", err)
	}
	card := incidentCard(cardInput{in: in, hist: hist, proposal: latestProposal(hist), commits: e.commits(ctx, tenant, in.Service, in.OpenedAt), now: e.o.Clock()})
	card.Buttons = nil
	card.Blocks = headline(card.Blocks, in.Stage, !unhealthy && (in.Stage == ledger.Resolved || in.Stage == ledger.Recovered))
	closed := decided(card, line)
	var errs []error
	for _, p := range ps {
		tr, err := e.transport(p.Thread.Chat.Channel)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if settle && tr.Capabilities().NoEdit {
			continue
		}
		if err := tr.Edit(ctx, p.Card, e.fit(ctx, tr.Capabilities(), closed)); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Notify tells the threads about a ledger entry the pipeline recorded (a stage change
// made outside the conversation: execution, failure, recovery, resolution). A Recover entry
// with a Reason closed the incident without it being known healthy: the thread says
// "Closed" and why, not "Recovered".
func (e *Engine) Notify(ctx context.Context, en ledger.Entry) error {
	switch en.Event {
	case ledger.Execute:
		return e.Say(ctx, en.Tenant, en.Incident, Message{Blocks: []Block{{Bold, fmt.Sprintf("✅ Recovery %s executed.", en.Action)},
			{Muted, "Watching health until the service is healthy again."}}})
	case ledger.WebhookFail:
		return e.Say(ctx, en.Tenant, en.Incident, Message{Blocks: []Block{{Bold, fmt.Sprintf("❌ Recovery %s failed: %s", en.Action, en.Reason)},
			{Plain, "It was dead-lettered; an operator can re-drive it with the same idempotency key:"},
			{Code, fmt.Sprintf("bot dlq redrive --tenant %s %s", en.Tenant, en.Incident)}}})
	case ledger.Resolve:
		if err := e.settleCards(ctx, en.Tenant, en.Incident); err != nil {
			e.o.Logger.Warn("edit cards after resolution", "incident", en.Incident, "err", err)
		}
		return e.Say(ctx, en.Tenant, en.Incident, Message{Blocks: []Block{{Bold, "✅ Resolved: the service is healthy again."}}})
	case ledger.Recover:
		if _, hist, err := e.o.Ledger.Incident(ctx, en.Tenant, en.Incident); err == nil && authorized(hist) {
			// Approved, and the recovery was tried (its webhook failed): the card keeps
			// who approved, and nothing says "nothing was run".
			if err := e.editCards(ctx, en.Tenant, en.Incident, "", true, en.Reason != ""); err != nil {
				e.o.Logger.Warn("edit cards after recovery", "incident", en.Incident, "err", err)
			}
			if en.Reason != "" {
				return e.Say(ctx, en.Tenant, en.Incident, Message{Blocks: []Block{{Bold, "⏹ Closed: " + en.Reason + "."}}})
			}
			return e.Say(ctx, en.Tenant, en.Incident, Message{Blocks: []Block{{Bold, "✅ Recovered: the service is healthy again."}}})
		}
		if en.Reason != "" {
			// Closed without being known healthy (the detector says why: its alerts
			// expired, or a new incident superseded it).
			_ = e.editCards(ctx, en.Tenant, en.Incident, "Closed at "+hhmm(en.At)+"; nothing was run.", false, true)
			return e.Say(ctx, en.Tenant, en.Incident, Message{Blocks: []Block{{Bold, "⏹ Closed: " + en.Reason + "."}}})
		}
		_ = e.closeCards(ctx, en.Tenant, en.Incident, "Healthy again at "+hhmm(en.At)+" before any action was approved; nothing was run.")
		return e.Say(ctx, en.Tenant, en.Incident, Message{Blocks: []Block{{Bold, "✅ Recovered: healthy again before any action was approved."}}})
	case ledger.Redrive:
		return e.Say(ctx, en.Tenant, en.Incident, Message{Blocks: []Block{{Plain, fmt.Sprintf("↻ %s re-drove the recovery %s.", en.Actor.ID, en.Action)}}})
	case ledger.Security:
		// The executor refused to run a recovery again (its reason is written for people).
		return e.Say(ctx, en.Tenant, en.Incident, Message{Blocks: []Block{{Bold, fmt.Sprintf("⛔ Recovery %s %s.", en.Action, en.Reason)},
			{Plain, "An operator reviews the ledger loss with `bot ledger accept-loss`."}}})
	}
	return nil
}

// authorized reports whether an approval of the incident was ever given.
func authorized(hist []ledger.Entry) bool {
	for _, h := range hist {
		if h.Event == ledger.Authorize {
			return true
		}
	}
	return false
}

// Handle implements Handler: a typed command, free text, or a button press.
func (e *Engine) Handle(ctx context.Context, in Inbound) (Reply, error) {
	if in.Pressed() {
		if approval.ValidRef(in.Data) || strings.HasPrefix(in.Data, "ap:") {
			return e.press(ctx, in)
		}
		if strings.HasPrefix(in.Data, "/") {
			r, err := e.command(ctx, in, in.Data)
			if r.Toast == "" {
				r.Toast = "Done."
			}
			return r, err
		}
		return Reply{Toast: "This button is no longer valid."}, nil
	}
	text := strings.TrimSpace(in.Text)
	if text == "" {
		return Reply{}, nil
	}
	if strings.HasPrefix(text, "/") {
		return e.command(ctx, in, text)
	}
	return e.followUp(ctx, in, text)
}

// tenantFor finds the tenant an inbound event belongs to: the tenant of the incident
// thread it was posted in (the message replied to, the forum topic, the message whose
// button was pressed), else its chat's tenant, else the one tenant the person belongs to.
// A person of several tenants writing outside any thread is ambiguous: others lists
// their tenants and t is nil.
func (e *Engine) tenantFor(ctx context.Context, in Inbound) (t *Tenant, others []string) {
	if tn, _, ok := e.st.lookupRoute(ctx, in); ok {
		if t, ok := e.tenants[tn]; ok {
			return t, nil
		}
	}
	for _, t := range e.o.Tenants {
		if t.hasChat(in.Chat) {
			return e.tenants[t.ID], nil
		}
	}
	seen := map[string]bool{}
	for _, t := range e.o.Tenants {
		if _, ok := t.personByID(in.User); ok {
			seen[t.ID] = true
		}
	}
	for _, id := range e.st.linkedTenants(ctx, in.User) {
		if _, ok := e.tenants[id]; ok {
			seen[id] = true
		}
	}
	for id := range seen {
		others = append(others, id)
	}
	if len(others) == 1 {
		return e.tenants[others[0]], nil
	}
	sort.Strings(others)
	return nil, others
}

// who resolves a chat identity to a person of the tenant: configured identities first,
// then enrolled ones. The config decides a configured person's role: demoting someone in
// the config takes away the approvals of every account linked to them.
func (e *Engine) who(ctx context.Context, t *Tenant, u User) (name string, approver bool) {
	if p, ok := t.personByID(u); ok {
		return p.Name, p.Approver
	}
	if en, ok := e.st.linked(ctx, t.ID, u); ok {
		if p, ok := t.person(en.Name); ok {
			return p.Name, p.Approver
		}
		return en.Name, en.Role == "approver"
	}
	return "", false
}

func actorOf(name string, u User) ledger.Actor {
	id := name
	if id == "" {
		id = "unlinked:" + string(u.Channel) + ":" + u.ID
	}
	return ledger.Actor{Kind: ledger.ActorEngineer, ID: id, Channel: string(u.Channel)}
}

// press redeems an approval button.
func (e *Engine) press(ctx context.Context, in Inbound) (Reply, error) {
	t, _ := e.tenantFor(ctx, in)
	return e.redeem(ctx, t, in.User, in.Data)
}

// redeem runs an approval for u (in tenant t, nil when the chat belongs to no tenant):
// the approval rules, then the card edits and the hand-over to the executor.
func (e *Engine) redeem(ctx context.Context, t *Tenant, u User, ref string) (Reply, error) {
	tenantID := ""
	var name string
	var approver bool
	pol := approval.Policy{}
	if t != nil {
		tenantID = t.ID
		name, approver = e.who(ctx, t, u)
		pol.Version = t.PolicyVersion
		pol.SuspectsOf = func(ctx context.Context, incident string) []string { return e.suspects(ctx, t, incident) }
	}
	res, err := e.o.Approvals.Redeem(ctx, ref, approval.Presser{Tenant: tenantID, Name: name, Approver: approver,
		Channel: string(u.Channel), UserID: u.ID}, pol)
	if err != nil {
		if refusal(err) {
			return Reply{Toast: approval.Explain(err, tenantID)}, nil
		}
		if errors.Is(err, approval.ErrOutcomeUnknown) {
			// Neither "approved" nor "nothing was run" is known to be true.
			e.o.Logger.Warn("approval press with an unknown outcome", "incident", res.Incident, "err", err)
			return Reply{Toast: "Your approval was sent but could not be confirmed yet. The incident thread will say if " + res.Action + " runs; don't act by hand meanwhile."}, nil
		}
		e.o.Logger.Error("redeem approval", "err", err)
		return Reply{Toast: "Something went wrong: your press did nothing. Press again to see where things stand."}, err
	}
	if res.Status == approval.Partial {
		_ = e.Say(ctx, res.Tenant, res.Incident, Message{Blocks: []Block{{Plain, fmt.Sprintf("☑️ %s approved %s (1 of 2). A second, different approver is needed.", name, res.Action)}}})
		return Reply{Toast: "Recorded. A second approver is needed for " + res.Action + "."}, nil
	}
	if e.o.OnAuthorized != nil {
		if err := e.o.OnAuthorized(ctx, res.Entry); err != nil {
			e.o.Logger.Error("hand authorized execution to the executor", "incident", res.Incident, "err", err)
		}
	}
	line := fmt.Sprintf("✅ Approved by %s at %s: %s", strings.Join(res.By, " and "), hhmm(res.Entry.At), res.Action)
	if t != nil && len(t.channels()) > 1 {
		// The tenant's incidents live in several chat apps: each says where the decision
		// was made.
		line = fmt.Sprintf("✅ Approved by %s in %s at %s: %s", strings.Join(res.By, " and "), e.channelName(u.Channel), hhmm(res.Entry.At), res.Action)
	}
	if err := e.closeCards(ctx, res.Tenant, res.Incident, line); err != nil {
		e.o.Logger.Warn("edit cards after approval", "incident", res.Incident, "err", err)
	}
	return Reply{Toast: "Approved. " + res.Action + " will run now."}, nil
}

// refusal reports whether err is a refusal the presser should read (not a failure).
func refusal(err error) bool {
	for _, s := range []error{approval.ErrUnknown, approval.ErrExpired, approval.ErrUsed, approval.ErrNotApprover, approval.ErrSelfApproval,
		approval.ErrSameApprover, approval.ErrPolicyChanged, approval.ErrIncidentMoved, approval.ErrInvalidToken, ledger.ErrFenced} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// PreviewLink shows what a link approval would do, with no side effect.
func (e *Engine) PreviewLink(ctx context.Context, id string) (approval.Preview, error) {
	return e.o.Approvals.PreviewLink(ctx, id)
}

// ConfirmLink redeems a link approval as the approver it was issued to, through the same
// rules as a button press. It returns the text to show.
func (e *Engine) ConfirmLink(ctx context.Context, id string) (string, error) {
	p, err := e.o.Approvals.PreviewLink(ctx, id)
	if err != nil {
		if refusal(err) {
			return approval.Explain(err, ""), nil
		}
		return "", err
	}
	t, ok := e.tenants[p.Tenant]
	if !ok {
		return approval.Explain(approval.ErrUnknown, ""), nil
	}
	r, err := e.redeem(ctx, t, User{Channel: Channel(p.Channel), ID: p.UserID}, p.Ref)
	return r.Toast, err
}

// IssueLinks creates one link approval per approver of the incident's tenant, per action
// of the incident's current card, for chats without buttons. A person is reached on a
// channel whose transport has no buttons when they have an identity there, else on one
// that can write to them directly. It returns link references by person name and action.
func (e *Engine) IssueLinks(ctx context.Context, tenant, incident string) (map[string]map[string]string, error) {
	t, ok := e.tenants[tenant]
	if !ok {
		return nil, fmt.Errorf("unknown tenant %q", tenant)
	}
	ps, err := e.st.placements(ctx, tenant, incident)
	if err != nil {
		return nil, err
	}
	p := latestProposalOf(ctx, e, tenant, incident)
	if p == nil {
		return nil, fmt.Errorf("incident %s has no open approvals", incident)
	}
	// Any card's references will do (each is a live approval until one is used); take
	// them from the chats in a fixed order so that repeated calls agree.
	sort.Slice(ps, func(i, j int) bool { return chatField(ps[i].Thread.Chat) < chatField(ps[j].Thread.Chat) })
	var refs []string
	for _, pl := range ps {
		if len(pl.Refs) == len(p.Offers) && len(pl.Refs) > 0 {
			refs = pl.Refs
			break
		}
	}
	if refs == nil {
		return nil, fmt.Errorf("incident %s has no card with approvals yet", incident)
	}
	out := map[string]map[string]string{}
	for _, person := range t.People {
		if !person.Approver {
			continue
		}
		ch, uid, ok := e.linkChannel(person)
		if !ok {
			continue
		}
		for i, o := range p.Offers {
			l, err := e.o.Approvals.IssueLink(ctx, refs[i], person.Name, string(ch), uid)
			if err != nil {
				return out, err
			}
			if out[person.Name] == nil {
				out[person.Name] = map[string]string{}
			}
			out[person.Name][o.Action] = l
		}
	}
	return out, nil
}

// linkChannel is where a person gets a link approval: a channel without buttons first,
// else one that reaches them directly; channels in name order, so repeated calls agree.
func (e *Engine) linkChannel(p Person) (Channel, string, bool) {
	chs := make([]Channel, 0, len(p.IDs))
	for ch := range p.IDs {
		chs = append(chs, ch)
	}
	sort.Slice(chs, func(i, j int) bool { return chs[i] < chs[j] })
	for _, direct := range []bool{false, true} {
		for _, ch := range chs {
			tr, err := e.transport(ch)
			if err != nil {
				continue
			}
			c := tr.Capabilities()
			if (!direct && !c.Buttons) || (direct && c.Direct) {
				return ch, p.IDs[ch], true
			}
		}
	}
	return "", "", false
}

// suspects are the config people who authored the incident's risky commits. Presses of
// one incident asking at the same time share one read (the incident's ledger and its
// commits), started by the first of them; it ends with its own bound, not the first
// press's request.
func (e *Engine) suspects(ctx context.Context, t *Tenant, incident string) []string {
	if t.SuspectsMayApprove {
		return nil
	}
	v, _, _ := e.suspectReads.Do(t.ID+"/"+incident, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), suspectReadTimeout)
		defer cancel()
		return e.readSuspects(rctx, t, incident), nil
	})
	return v.([]string)
}

// suspectReadTimeout bounds a shared read of an incident's suspects.
const suspectReadTimeout = 10 * time.Second

func (e *Engine) readSuspects(ctx context.Context, t *Tenant, incident string) []string {
	in, _, err := e.o.Ledger.Incident(ctx, t.ID, incident)
	if err != nil {
		return nil
	}
	var out []string
	for _, c := range e.commits(ctx, t.ID, in.Service, in.OpenedAt) {
		if c.Risky != "" && c.Person != "" {
			out = append(out, c.Person)
		}
	}
	return out
}

// Tick handles due deadlines: approvals that expired, and incidents nobody decided on
// within escalate_after. Each deadline is handled by exactly one replica.
func (e *Engine) Tick(ctx context.Context) error {
	due, err := e.st.claimDue(ctx, e.o.Clock())
	if err != nil {
		return err
	}
	var errs []error
	for _, d := range due {
		tenant, incident, kind := d[0], d[1], d[2]
		t, ok := e.tenants[tenant]
		if !ok {
			continue
		}
		var err error
		in, _, ierr := e.o.Ledger.Incident(ctx, tenant, incident)
		switch {
		case ierr != nil:
			err = ierr
		case in.Stage != ledger.Validated:
			continue // decided, recovered or expired meanwhile: nothing to do
		case kind == deadlineExpire:
			err = e.expire(ctx, t, in)
		case kind == deadlineEscalate:
			err = e.escalate(ctx, t, in)
		case kind == deadlineCall:
			err = e.call(ctx, t, in)
		}
		if err != nil {
			// Not handled: the deadline comes back, so an expiry or an escalation is never
			// lost to a Redis or chat hiccup.
			errs = append(errs, err)
			if aerr := e.st.addDeadline(context.WithoutCancel(ctx), tenant, incident, kind, e.o.Clock().Add(DeadlineRetry)); aerr != nil {
				errs = append(errs, aerr)
			}
		}
	}
	return errors.Join(errs...)
}

// TickEvery is how often Run handles due deadlines.
const TickEvery = 2 * time.Second

// Run handles due deadlines (Tick) every TickEvery until ctx ends, and returns nil then. A
// failed tick is logged; its deadlines come back (see Tick).
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(TickEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := e.Tick(ctx); err != nil {
				e.o.Logger.Warn("approval deadlines", "err", err)
			}
		}
	}
}

// DeadlineRetry is how long after a deadline fails to be handled it is tried again.
const DeadlineRetry = 30 * time.Second

func (e *Engine) expire(ctx context.Context, t *Tenant, in ledger.Incident) error {
	en, err := e.o.Ledger.Record(ctx, ledger.Entry{Tenant: t.ID, Incident: in.ID, Event: ledger.Expire,
		Actor: ledger.Actor{Kind: ledger.ActorSystem, ID: "approvals"}, PolicyVersion: t.PolicyVersion,
		Reason: fmt.Sprintf("no decision within %s", t.ApprovalTTL)})
	if err != nil {
		var te *ledger.TransitionError
		if errors.As(err, &te) {
			return nil
		}
		return fmt.Errorf("expire %s: %w", in.ID, err)
	}
	_ = e.closeCards(ctx, t.ID, in.ID, "⌛ Approval expired at "+hhmm(en.At)+"; nothing was run.")
	if _, hist, err := e.o.Ledger.Incident(ctx, t.ID, in.ID); err == nil {
		if d, ok := agentRequest(hist); ok {
			return e.Say(ctx, t.ID, in.ID, Message{Blocks: []Block{{Plain, "⌛ The approval expired: agent " + d["agent"] + " is told its request was denied."}}})
		}
	}
	return e.Say(ctx, t.ID, in.ID, Message{
		Blocks:  []Block{{Plain, "⌛ The approval expired. An approver can ask for a fresh one."}},
		Buttons: [][]Button{{{Label: "Request fresh approval", Data: "/reissue " + in.ID}}},
	})
}

func (e *Engine) escalate(ctx context.Context, t *Tenant, in ledger.Incident) error {
	var names []string
	var dms []Chat
	for _, p := range t.People {
		if !p.Approver {
			continue
		}
		names = append(names, p.Name)
		for ch, id := range p.IDs {
			// A direct chat that is also an incident chat (a WhatsApp number) already
			// gets the re-notification in the thread.
			if c := (Chat{Channel: ch, ID: id}); e.caps(ch).Direct && !t.hasChat(c) {
				dms = append(dms, c)
			}
		}
	}
	if _, err := e.o.Ledger.Record(ctx, ledger.Entry{Tenant: t.ID, Incident: in.ID, Event: ledger.Escalation,
		Actor: ledger.Actor{Kind: ledger.ActorSystem, ID: "escalation"}, PolicyVersion: t.PolicyVersion,
		Reason: fmt.Sprintf("no decision after %s; re-notified %s", t.EscalateAfter, strings.Join(names, ", "))}); err != nil {
		if errors.Is(err, ledger.ErrFenced) {
			// Its buttons may be of an approval already used before the loss: none are
			// sent again, and the thread says why (once: the deadline is done).
			e.o.Logger.Warn("escalation withheld: incident fenced after a ledger loss", "incident", in.ID)
			return e.Say(ctx, t.ID, in.ID, Message{Blocks: []Block{{Bold, "⏸ " + in.ID + ": approvals are on hold."},
				{Plain, "The audit ledger lost recent entries of this incident, so it may already have been approved or run. An operator must review the loss (bot ledger accept-loss) before anything runs."}}})
		}
		return fmt.Errorf("escalate %s: %w", in.ID, err)
	}
	ps, _ := e.st.placements(ctx, t.ID, in.ID)
	var refs []string
	if len(ps) > 0 {
		refs = ps[0].Refs
	}
	msg := Message{Blocks: []Block{{Bold, fmt.Sprintf("⏰ %s on %s has waited %s for a decision.", in.ID, in.Service, t.EscalateAfter)},
		{Plain, "Open the incident thread, or decide here:"}}}
	if p := latestProposalOf(ctx, e, t.ID, in.ID); p != nil && len(refs) == len(p.Offers) {
		var bs []Button
		for i, o := range p.Offers {
			a, _ := t.Action(o.Action)
			bs = append(bs, approveButton("Approve "+o.Action, refs[i], o.Action, a.HighRisk))
		}
		bs = append(bs, Button{Label: "Reject", Data: "/reject " + in.ID})
		msg.Buttons = rows(bs)
	}
	_ = e.Say(ctx, t.ID, in.ID, Message{Blocks: []Block{{Bold, "⏰ No decision yet: re-notifying " + strings.Join(names, ", ") + "."}}})
	// The escalation is recorded; a direct chat that cannot be reached (an approver who
	// never started the bot) is logged, not retried, so the ledger is not flooded.
	for _, c := range dms {
		if _, err := e.post(ctx, t.ID, in.ID, Thread{Chat: c}, msg); err != nil {
			e.o.Logger.Warn("escalation direct message", "incident", in.ID, "channel", c.Channel, "err", err)
		}
	}
	if err := e.scheduleCall(ctx, t, in); err != nil {
		e.o.Logger.Warn("schedule escalation call", "incident", in.ID, "err", err)
	}
	return nil
}

func latestProposalOf(ctx context.Context, e *Engine, tenant, incident string) *Proposal {
	_, hist, err := e.o.Ledger.Incident(ctx, tenant, incident)
	if err != nil {
		return nil
	}
	return latestProposal(hist)
}

// Enroll creates a one-time code that links the chat identity sending `/start CODE` (or
// `JOIN CODE`) to the person name of tenant, for ttl.
func (e *Engine) Enroll(ctx context.Context, tenant, name, role string, ttl time.Duration) (string, error) {
	if _, ok := e.tenants[tenant]; !ok {
		return "", fmt.Errorf("unknown tenant %q", tenant)
	}
	return Enroll(ctx, e.o.Redis, e.o.KeyPrefix, Enrollment{Tenant: tenant, Name: name, Role: role}, ttl)
}

// Enroll stores a one-time enrollment code (what `bot enroll` prints) without an engine.
func Enroll(ctx context.Context, rc redis.UniversalClient, prefix string, en Enrollment, ttl time.Duration) (string, error) {
	if en.Role != "approver" && en.Role != "viewer" {
		return "", fmt.Errorf("role must be approver or viewer, got %q", en.Role)
	}
	if strings.TrimSpace(en.Name) == "" || len(en.Name) > 64 {
		return "", errors.New("name must be 1 to 64 characters")
	}
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	code := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
	st := &store{rc: rc, prefix: prefix}
	if err := st.putEnrollment(ctx, code, en, ttl); err != nil {
		return "", err
	}
	return code, nil
}

// Silenced reports whether a service is silenced (no new incidents) and for how long.
func (e *Engine) Silenced(ctx context.Context, tenant, service string) (time.Duration, bool) {
	return e.st.silenced(ctx, tenant, service)
}
