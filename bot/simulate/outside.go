package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/channel"
	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
)

// appended puts every entry appended to the ledger on the timeline.
func (w *world) appended(_ string, entries []ledger.Entry) {
	for _, e := range entries {
		stage := strings.ToUpper(string(e.Event))
		if e.Event.IsStageEvent() {
			stage = string(e.To)
		}
		text := e.Incident
		if e.Service != "" {
			text += " " + e.Service
		}
		if e.Action != "" {
			text += " [" + e.Action + "]"
		}
		if e.Reason != "" {
			text += ": " + e.Reason
		}
		w.line(stage, actorName(e.Actor), text)
	}
}

func actorName(a ledger.Actor) string {
	s := string(a.Kind) + "/" + a.ID
	if a.Channel != "" {
		s += "@" + a.Channel
	}
	return s
}

// transport is a simulated chat platform: it keeps what the bot says, puts it on the
// timeline, and tells the scripted people about approval requests.
type transport struct {
	w    *world
	spec channel.Spec
	n    map[string]int // message ids per chat
}

func (t *transport) Channel() conversation.Channel { return t.spec.Name }

// Routes: people reach the simulated platform through the world, not over HTTP.
func (t *transport) Routes(conversation.Handler) []channel.Route { return nil }

// Run: the world drives the bot; the platform has nothing to run.
func (t *transport) Run(context.Context, conversation.Handler) error { return nil }

// Check: the simulated platform always accepts the bot.
func (t *transport) Check(context.Context) error { return nil }

// Capabilities are the real platform's (Telegram and Slack have buttons, presses come
// back as data, and threads; WhatsApp has neither, so the engine writes typed
// alternatives, one-time reply codes, that the simulated people type back), except that
// images are left out of the simulation.
func (t *transport) Capabilities() conversation.Capabilities {
	c := t.spec.Capabilities
	c.Media = false
	return c
}

func (t *transport) nextID(c conversation.Chat) string {
	if t.n == nil {
		t.n = map[string]int{}
	}
	t.n[c.ID]++
	return strconv.Itoa(t.n[c.ID])
}

func (t *transport) OpenThread(ctx context.Context, chat conversation.Chat, title string, msg conversation.Message) (conversation.Thread, conversation.MessageRef, error) {
	id := t.nextID(chat)
	ref := conversation.MessageRef{Chat: chat, ID: id}
	t.said(ref, "opens thread "+strconv.Quote(title)+": ", msg)
	return conversation.Thread{Chat: chat, Root: id}, ref, nil
}

func (t *transport) Post(ctx context.Context, th conversation.Thread, msg conversation.Message) (conversation.MessageRef, error) {
	ref := conversation.MessageRef{Chat: th.Chat, ID: t.nextID(th.Chat)}
	t.said(ref, "", msg)
	return ref, nil
}

func (t *transport) Edit(ctx context.Context, ref conversation.MessageRef, msg conversation.Message) error {
	t.said(ref, "edits #"+ref.ID+": ", msg)
	for _, byChat := range t.w.asked {
		if a, ok := byChat[ref.Chat]; ok && a.ref == ref {
			a.buttons = t.choices(msg)
			byChat[ref.Chat] = a
		}
	}
	return nil
}

// typed marks a choice made by typing a reply (WhatsApp) rather than pressing a button.
const typed = "typed:"

// approvalButtons are a message's approve and reject choices: its buttons, and the typed
// alternatives the engine writes for a platform without buttons ("Reply APPROVE 7F3-K9 —
// Approve restart_workers", "Reply REJECT INC-7 — Reject"), as the command typed back.
func approvalButtons(m conversation.Message) []conversation.Button {
	var out []conversation.Button
	for _, row := range m.Buttons {
		for _, b := range row {
			if strings.HasPrefix(b.Data, "ap:") || strings.HasPrefix(b.Data, "/reject ") {
				out = append(out, b)
			}
		}
	}
	for _, bl := range m.Blocks {
		cmd, label, ok := strings.Cut(strings.TrimPrefix(bl.Text, "Reply "), " — ")
		if !ok || !strings.HasPrefix(bl.Text, "Reply ") {
			continue
		}
		name, args, _ := strings.Cut(cmd, " ")
		switch name {
		case "APPROVE":
			out = append(out, conversation.Button{Label: label, Data: typed + "/approve " + args})
		case "REJECT":
			out = append(out, conversation.Button{Label: label, Data: typed + "/reject " + args})
		}
	}
	return out
}

// choices are what a person can do with a message on this platform: press its buttons
// where there are buttons, else type its reply codes.
func (t *transport) choices(m conversation.Message) []conversation.Button {
	bs := approvalButtons(m)
	if t.Capabilities().Buttons {
		return slices.DeleteFunc(bs, func(b conversation.Button) bool { return strings.HasPrefix(b.Data, typed) })
	}
	return slices.DeleteFunc(bs, func(b conversation.Button) bool { return !strings.HasPrefix(b.Data, typed) })
}

func isApprove(b conversation.Button) bool {
	return strings.HasPrefix(b.Data, "ap:") || strings.HasPrefix(b.Data, typed+"/approve ")
}

func isReject(b conversation.Button) bool {
	return strings.HasPrefix(strings.TrimPrefix(b.Data, typed), "/reject ")
}

func (t *transport) said(ref conversation.MessageRef, prefix string, msg conversation.Message) {
	w := t.w
	text := strings.ReplaceAll(msg.Text(), "\n", " / ")
	var labels []string
	for _, row := range msg.Buttons {
		for _, b := range row {
			labels = append(labels, "["+b.Label+"]")
		}
	}
	if len(labels) > 0 {
		text += " " + strings.Join(labels, " ")
	}
	w.line("chat", "bot→"+string(ref.Chat.Channel)+":"+ref.Chat.ID, prefix+text)
	if prefix != "" && strings.HasPrefix(prefix, "edits") {
		return
	}
	bs := t.choices(msg)
	incident := ""
	for _, b := range bs {
		if after, ok := strings.CutPrefix(strings.TrimPrefix(b.Data, typed), "/reject "); ok {
			incident = after
		}
	}
	if incident == "" || !hasApprove(bs) {
		return
	}
	dm := !w.isGroupChat(ref.Chat)
	if w.asked[incident] == nil {
		w.asked[incident] = map[conversation.Chat]asked{}
	}
	w.asked[incident][ref.Chat] = asked{ref: ref, buttons: bs, dm: dm}
	if !dm {
		// The engine stored the approval's deadlines; its Tick runs when they fall due.
		now := w.clock()
		if e := w.tenant.Policy.EscalateAfter; e > 0 && e < w.tenant.Policy.ApprovalTTL {
			w.at(now.Add(e), w.deadlines)
		}
		w.at(now.Add(w.tenant.Policy.ApprovalTTL), w.deadlines)
	}
	w.notifyPeople(incident, ref.Chat, dm)
}

func hasApprove(bs []conversation.Button) bool {
	for _, b := range bs {
		if isApprove(b) {
			return true
		}
	}
	return false
}

func (w *world) isGroupChat(c conversation.Chat) bool {
	return slices.Contains(w.tenant.ChatsOn(string(c.Channel)), c.ID)
}

// notifyPeople schedules the reaction of everyone who sees an approval request in chat.
func (w *world) notifyPeople(incident string, chat conversation.Chat, dm bool) {
	for _, p := range w.people {
		if p.reacted[incident] || p.Unreachable || string(chat.Channel) != p.Channel {
			continue
		}
		switch {
		case dm && chat.ID != p.userID:
			continue
		case dm && p.On == OnCard, !dm && p.On == OnEscalation:
			continue
		}
		p.reacted[incident] = true
		delay := p.After
		if p.Jitter > 0 {
			delay += time.Duration((2*p.rng.Float64() - 1) * float64(p.Jitter))
			delay = delay.Round(time.Second)
		}
		at := w.available(p, w.clock().Add(max(delay, 0)))
		w.at(at, func(ctx context.Context) { w.react(ctx, p, incident, chat) })
	}
}

// react is a person acting on an approval request: pressing Approve or Reject through
// the engine, exactly like a press in Telegram or WhatsApp, or reading and leaving it.
func (w *world) react(ctx context.Context, p *personState, incident string, chat conversation.Chat) {
	a, ok := w.asked[incident][chat]
	if !ok {
		return
	}
	if len(a.buttons) == 0 || !hasApprove(a.buttons) {
		w.line("person", p.Name, "reads "+incident+": no approval is open any more")
		return
	}
	var press conversation.Button
	switch p.Does {
	case DoIgnore:
		w.line("person", p.Name, "reads "+incident+" and does not decide")
		return
	case DoReject:
		for _, b := range a.buttons {
			if isReject(b) {
				press = b
			}
		}
	default:
		// A dissent offers theory A's action first and B's second, on the card and in the
		// escalation alike.
		var approves []conversation.Button
		for _, b := range a.buttons {
			if isApprove(b) {
				approves = append(approves, b)
			}
		}
		if len(approves) > 0 {
			press = approves[0]
			if p.Trusts == "B" && len(approves) > 1 {
				press = approves[1]
			}
		}
	}
	if press.Data == "" {
		return
	}
	user := conversation.User{Channel: conversation.Channel(p.Channel), ID: p.userID, Name: p.Name}
	in := conversation.Inbound{Chat: a.ref.Chat, User: user, Data: press.Data, ReplyTo: a.ref.ID, Direct: a.dm}
	verb := "presses [" + press.Label + "]"
	if cmd, ok := strings.CutPrefix(press.Data, typed); ok {
		// Typed in the person's own chat with the bot, as WhatsApp delivers it.
		in = conversation.Inbound{Chat: conversation.Chat{Channel: user.Channel, ID: p.userID}, User: user, Text: cmd, Direct: true}
		verb = fmt.Sprintf("types %q", strings.ToUpper(strings.TrimPrefix(cmd, "/")))
	}
	r, err := w.eng.Handle(ctx, in)
	text := fmt.Sprintf("%s on %s → %q", verb, incident, r.Toast)
	if err != nil {
		text += " (error: " + err.Error() + ")"
	}
	w.line("person", p.Name, text)
}

// push delivers a scripted commit as GitHub's push webhook would: the commit package
// parses the delivery (risky-path matching included) and stores its changes, where the
// correlator finds them for the incident card and separation of duties.
func (w *world) push(ctx context.Context, c CommitScript) error {
	type author struct {
		Name     string `json:"name"`
		Username string `json:"username"`
	}
	type commit struct {
		ID        string   `json:"id"`
		Message   string   `json:"message"`
		Timestamp string   `json:"timestamp"`
		URL       string   `json:"url"`
		Author    author   `json:"author"`
		Modified  []string `json:"modified"`
	}
	at := w.clock()
	hc := commit{ID: c.SHA, Message: c.Message, Timestamp: at.Format(time.RFC3339), URL: "https://github.com/" + c.Repo + "/commit/" + c.SHA,
		Author: author{Name: c.Author, Username: c.Author}, Modified: c.Files}
	body, err := json.Marshal(map[string]any{
		"ref": "refs/heads/main", "after": c.SHA, "commits": []commit{hc}, "head_commit": hc,
		"repository": map[string]any{"full_name": c.Repo}, "pusher": map[string]any{"name": c.Author}, "sender": map[string]any{"login": c.Author},
	})
	if err != nil {
		return err
	}
	d, err := commits.Parse("push", body, at, w.correlator.Patterns())
	if err != nil {
		return err
	}
	return w.commits.Add(ctx, d.Repo, d.Changes)
}

// webhookState counts the calls the scripted recovery webhook answered.
type webhookState struct {
	calls int
}

// webhookHandler is the tenant's recovery webhook as the scenario scripts it. The real
// executor reaches it over HTTP, signed, with its idempotency key.
func (w *world) webhookHandler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var body struct {
			Incident string `json:"incident"`
			Action   string `json:"action"`
		}
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&body)
		w.mu.Lock()
		w.webhook.calls++
		n := w.webhook.calls
		w.mu.Unlock()
		ws := w.sc.Webhook
		what := fmt.Sprintf("call %d for %s [%s]", n, body.Incident, body.Action)
		switch {
		case n <= ws.FailFirst || ws.Mode == WebhookError:
			w.line("webhook", "recovery", fmt.Sprintf("%s: answers %d", what, ws.Status))
			rw.WriteHeader(ws.Status)
		case ws.Mode == WebhookTimeout:
			w.line("webhook", "recovery", what+": never answers")
			<-r.Context().Done()
		default:
			w.line("webhook", "recovery", what+": answers 200")
			rw.WriteHeader(http.StatusOK)
		}
	})
}
