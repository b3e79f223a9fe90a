package conversation

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/alertengine/alertengine/conversation/approval"
	"github.com/alertengine/alertengine/ledger"
)

// Command is a parsed command line.
type Command struct {
	Name string // lower case, without slash or @bot
	Args []string
}

// commandNames are the commands the bot knows (README, "In the chat"), plus the ones its
// buttons send.
var commandNames = []string{"start", "help", "status", "incidents", "replay", "ack", "silence", "commits", "details", "reject", "reissue", "join", "approve"}

func knownCommand(n string) bool {
	for _, c := range commandNames {
		if c == n {
			return true
		}
	}
	return false
}

// MaxCommandLen bounds a command line.
const MaxCommandLen = 512

// ParseCommand parses "/name[@bot] args…". ok is false when text is not a command.
func ParseCommand(text string) (Command, bool) {
	text = strings.TrimSpace(text)
	if !strings.HasPrefix(text, "/") || len(text) > MaxCommandLen || !utf8.ValidString(text) {
		return Command{}, false
	}
	f := strings.Fields(text[1:])
	if len(f) == 0 {
		return Command{}, false
	}
	name, _, _ := strings.Cut(f[0], "@")
	name = strings.ToLower(name)
	if name == "" {
		return Command{}, false
	}
	return Command{Name: name, Args: f[1:]}, true
}

// replyThread is where an answer to in goes: the same topic, replying to the message.
func replyThread(in Inbound) Thread {
	root := in.MessageID
	if root == "" {
		root = in.ReplyTo
	}
	return Thread{Chat: in.Chat, Topic: in.Topic, Root: root}
}

const notLinked = "This chat is not linked to a tenant. Ask an admin for an enrollment code (`bot enroll`) and send /start CODE (on WhatsApp: JOIN CODE)."

func (e *Engine) command(ctx context.Context, in Inbound, text string) (Reply, error) {
	cmd, ok := ParseCommand(text)
	if !ok {
		return e.say(ctx, in, "", "", e.help(in))
	}
	if cmd.Name == "start" || cmd.Name == "join" {
		return e.start(ctx, in, cmd)
	}
	if cmd.Name == "help" || !knownCommand(cmd.Name) {
		m := e.help(in)
		if cmd.Name != "help" {
			name := "/" + cmd.Name
			if e.words(in) {
				name = strings.ToUpper(cmd.Name)
			}
			m.Blocks = append([]Block{{Plain, "I don't know " + name + "."}}, m.Blocks...)
		}
		return e.say(ctx, in, "", "", m)
	}
	t, others := e.tenantFor(ctx, in)
	if t == nil && len(others) > 1 {
		// A person of several tenants, outside any thread: the incident argument may name
		// the tenant ("beta/INC-7F3").
		if tn, _, found := strings.Cut(firstArg(cmd), "/"); found && contains(others, tn) {
			t = e.tenants[tn]
		} else {
			return e.say(ctx, in, "", "", text1(fmt.Sprintf("You belong to several tenants (%s). Use the incident's thread, or name the tenant: /%s %s/INC-…",
				strings.Join(others, ", "), cmd.Name, others[0])))
		}
	}
	if t == nil {
		e.refuseStranger(in)
		return e.say(ctx, in, "", "", text1(notLinked))
	}
	name, approver := e.who(ctx, t, in.User)
	arg := func(i int) string {
		if i < len(cmd.Args) {
			return cmd.Args[i]
		}
		return ""
	}
	switch cmd.Name {
	case "status":
		return e.say(ctx, in, t.ID, "", e.statusMessage(ctx, t, arg(0)))
	case "incidents":
		return e.say(ctx, in, t.ID, "", e.incidentsMessage(ctx, t))
	case "commits":
		return e.say(ctx, in, t.ID, "", e.commitsMessage(ctx, t, arg(0)))
	case "silence":
		return e.silence(ctx, in, t, name, approver, cmd.Args)
	case "approve":
		if !approval.ValidCode(arg(0)) {
			return e.say(ctx, in, t.ID, "", text1("Usage: APPROVE CODE, with the code from the incident message (e.g. APPROVE 7F3-K9)."))
		}
		return e.approveByCode(ctx, in, t, arg(0))
	}
	// The rest are about one incident: INC-… (or TENANT/INC-…) as argument, else the
	// thread's incident.
	incident := strings.ToUpper(arg(0))
	if approval.ValidCode(incident) {
		// "REJECT 7F3-K9": a reply code names its incident.
		if inc, ok := e.incidentOfCode(ctx, t, incident); ok {
			incident = inc
		}
	}
	if tn, inc, found := strings.Cut(arg(0), "/"); found {
		if tn != t.ID {
			return e.say(ctx, in, t.ID, "", text1(fmt.Sprintf("No incident %q in %s.", arg(0), t.ID)))
		}
		incident = strings.ToUpper(inc)
	}
	if incident == "" {
		if tn, inc, ok := e.st.lookupRoute(ctx, in); ok && tn == t.ID {
			incident = inc
		}
	}
	if incident == "" {
		// Outside any incident's thread, with no code: say how to name one.
		return e.say(ctx, in, t.ID, "", text1(fmt.Sprintf("Usage: /%s INC-7F3 (the incident's code; in an incident's thread, /%s alone is enough). /incidents lists the open ones.", cmd.Name, cmd.Name)))
	}
	in2, hist, err := e.o.Ledger.Incident(ctx, t.ID, incident)
	if err != nil {
		if errors.Is(err, ledger.ErrNoIncident) {
			return e.say(ctx, in, t.ID, "", text1(fmt.Sprintf("No incident %q in %s. Try /incidents.", incident, t.ID)))
		}
		return Reply{Toast: "Something went wrong; nothing was done."}, err
	}
	switch cmd.Name {
	case "replay":
		return e.say(ctx, in, t.ID, incident, replayMessage(in2, hist))
	case "details":
		return e.say(ctx, in, t.ID, incident, e.detailsMessage(ctx, t, in2, hist))
	case "ack":
		if _, err := e.o.Ledger.Record(ctx, ledger.Entry{Tenant: t.ID, Incident: incident, Event: ledger.Ack, Actor: actorOf(name, in.User),
			PolicyVersion: t.PolicyVersion, Reason: "acknowledged"}); err != nil {
			return e.refused(ctx, in, t.ID, incident, err)
		}
		who := name
		if who == "" {
			who = displayName(in.User)
		}
		return e.say(ctx, in, t.ID, incident, text1(fmt.Sprintf("👀 %s acknowledged %s.", who, incident)))
	case "reject":
		if !approver {
			e.auditRefusal(ctx, t, incident, name, in.User, "reject by a non-approver")
			return e.say(ctx, in, t.ID, incident, text1("You are not an approver for "+t.ID+"."))
		}
		en, err := e.o.Ledger.Record(ctx, ledger.Entry{Tenant: t.ID, Incident: incident, Event: ledger.Reject, Actor: actorOf(name, in.User),
			PolicyVersion: t.PolicyVersion, Reason: "rejected by " + name})
		if err != nil {
			return e.refused(ctx, in, t.ID, incident, err)
		}
		_ = e.closeCards(ctx, t.ID, incident, fmt.Sprintf("❌ Rejected by %s at %s; nothing was run.", name, hhmm(en.At)))
		return Reply{Toast: "Rejected. Nothing will run."}, nil
	case "reissue":
		if !approver {
			e.auditRefusal(ctx, t, incident, name, in.User, "reissue by a non-approver")
			return e.say(ctx, in, t.ID, incident, text1("You are not an approver for "+t.ID+"."))
		}
		if d, ok := agentRequest(hist); ok {
			// The agent was told its request expired (a denial): it asks again if it must.
			return e.say(ctx, in, t.ID, incident, text1("An expired request of agent "+d["agent"]+" is not reissued: the agent was told it was denied and asks again if it must."))
		}
		if _, err := e.o.Ledger.Record(ctx, ledger.Entry{Tenant: t.ID, Incident: incident, Event: ledger.Reissue, Actor: actorOf(name, in.User),
			PolicyVersion: t.PolicyVersion, Reason: "fresh approval requested by " + name}); err != nil {
			return e.refused(ctx, in, t.ID, incident, err)
		}
		if err := e.present(ctx, t.ID, incident, true); err != nil {
			return Reply{Toast: "Something went wrong; nothing was run."}, err
		}
		return Reply{Toast: "A fresh approval was posted."}, nil
	}
	return e.say(ctx, in, t.ID, "", e.help(in))
}

// words reports whether people type commands as bare words where in came from.
func (e *Engine) words(in Inbound) bool {
	tr, err := e.transport(in.Chat.Channel)
	return err == nil && tr.Capabilities().Words
}

// help is the help written for the chat in came from: the console's own, or the commands
// in the syntax people type there.
func (e *Engine) help(in Inbound) Message {
	if in.Chat.Channel == Console {
		return consoleHelp()
	}
	return helpFor(e.words(in))
}

// refused answers a command the ledger refused (an illegal transition).
func (e *Engine) refused(ctx context.Context, in Inbound, tenant, incident string, err error) (Reply, error) {
	var te *ledger.TransitionError
	if errors.As(err, &te) {
		return e.say(ctx, in, tenant, incident, text1(fmt.Sprintf("%s is %s: that is not possible now.", incident, te.From)))
	}
	return Reply{Toast: "Something went wrong; nothing was done."}, err
}

func (e *Engine) auditRefusal(ctx context.Context, t *Tenant, incident, name string, u User, why string) {
	if _, err := e.o.Ledger.Record(ctx, ledger.Entry{Tenant: t.ID, Incident: incident, Event: ledger.RefusedPress,
		Actor: actorOf(name, u), PolicyVersion: t.PolicyVersion, Reason: why}); err != nil {
		e.o.Logger.Warn("audit refusal", "incident", incident, "err", err)
	}
}

// refuseStranger audits a chat identity that belongs to no tenant (it has no ledger to
// be recorded in): a security log line, without the identity's full number or id.
func (e *Engine) refuseStranger(in Inbound) {
	id := in.User.ID
	if len(id) > 4 {
		id = "…" + id[len(id)-4:]
	}
	e.o.Logger.Warn("security: refused a chat identity linked to no tenant", "channel", in.User.Channel, "user", id)
}

func firstArg(c Command) string {
	if len(c.Args) > 0 {
		return c.Args[0]
	}
	return ""
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func text1(s string) Message { return Message{Blocks: []Block{{Plain, s}}} }

func displayName(u User) string {
	if u.Name != "" {
		return u.Name
	}
	return string(u.Channel) + ":" + u.ID
}

// say posts a reply where in happened and remembers it as part of incident (if any).
func (e *Engine) say(ctx context.Context, in Inbound, tenant, incident string, m Message) (Reply, error) {
	th := replyThread(in)
	if incident == "" {
		if tn, inc, ok := e.st.lookupRoute(ctx, in); ok && (tenant == "" || tn == tenant) {
			tenant, incident = tn, inc
		}
	}
	if _, err := e.post(ctx, tenant, incident, th, m); err != nil {
		return Reply{Toast: "Something went wrong."}, err
	}
	return Reply{Toast: "Done."}, nil
}

func (e *Engine) start(ctx context.Context, in Inbound, cmd Command) (Reply, error) {
	if len(cmd.Args) == 0 {
		m := e.help(in)
		m.Blocks = append([]Block{{Plain, "Hello! I am AlertEngine. I open a thread here when a service is in trouble, and nothing I suggest runs without an approver's tap."}}, m.Blocks...)
		return e.say(ctx, in, "", "", m)
	}
	en, err := e.st.takeEnrollment(ctx, strings.ToUpper(cmd.Args[0]))
	if errors.Is(err, ErrBadCode) {
		return e.say(ctx, in, "", "", text1("That enrollment code is unknown, used or expired. Ask for a new one (`bot enroll`)."))
	}
	if err != nil {
		return Reply{Toast: "Something went wrong."}, err
	}
	if err := e.st.link(ctx, in.User, en); err != nil {
		return Reply{Toast: "Something went wrong."}, err
	}
	e.o.Logger.Info("chat identity enrolled", "tenant", en.Tenant, "name", en.Name, "role", en.Role, "channel", in.User.Channel)
	return e.say(ctx, in, en.Tenant, "", text1(fmt.Sprintf("Linked: you are %s (%s) for %s.", en.Name, en.Role, en.Tenant)))
}

func (e *Engine) silence(ctx context.Context, in Inbound, t *Tenant, name string, approver bool, args []string) (Reply, error) {
	if len(args) != 2 {
		return e.say(ctx, in, t.ID, "", text1("Usage: /silence SERVICE DURATION, e.g. /silence checkout 30m"))
	}
	svc := args[0]
	if !t.hasService(svc) {
		return e.say(ctx, in, t.ID, "", text1(fmt.Sprintf("%s has no service %q.", t.ID, svc)))
	}
	d, err := time.ParseDuration(args[1])
	if err != nil || d <= 0 || d > 7*24*time.Hour {
		return e.say(ctx, in, t.ID, "", text1("DURATION must be like 30m or 2h, at most 168h."))
	}
	if !approver {
		return e.say(ctx, in, t.ID, "", text1("Only approvers of "+t.ID+" can silence a service."))
	}
	if err := e.st.silence(ctx, t.ID, svc, d, name); err != nil {
		return Reply{Toast: "Something went wrong."}, err
	}
	if open, _ := e.o.Ledger.Store().OpenIncident(ctx, t.ID, svc); open != "" {
		_, _ = e.o.Ledger.Record(ctx, ledger.Entry{Tenant: t.ID, Incident: open, Event: ledger.Notice, Actor: actorOf(name, in.User),
			PolicyVersion: t.PolicyVersion, Reason: fmt.Sprintf("%s silenced for %s", svc, d)})
	}
	return e.say(ctx, in, t.ID, "", text1(fmt.Sprintf("🔕 %s silenced for %s by %s: no new incidents until %s.", svc, d, name, hhmm(e.o.Clock().Add(d)))))
}

func (e *Engine) statusMessage(ctx context.Context, t *Tenant, only string) Message {
	services := t.Services
	if only != "" {
		if !t.hasService(only) {
			return text1(fmt.Sprintf("%s has no service %q. Services: %s", t.ID, only, strings.Join(t.Services, ", ")))
		}
		services = []string{only}
	}
	m := Message{Blocks: []Block{{Title, "Status — " + t.ID}}}
	for _, s := range services {
		line := s + ": "
		if e.o.Status == nil {
			line += "no health data"
		} else if st, err := e.o.Status.ServiceStatus(ctx, t.ID, s); err != nil || st.Status == "" || st.Status == "unknown" {
			line += "no health data yet"
		} else {
			line += fmt.Sprintf("%s %.0f/100 · P95 %s · errors %s · %s", st.Status, st.Score, FormatMs(st.P95Ms), pct(st.ErrorRate), st.Trend)
			if st.Source != "" && !st.At.IsZero() {
				// Where the signal comes from and how fresh it is: a stale one means
				// the service (or its exporter) stopped reporting.
				line += fmt.Sprintf(" · from %s, %s", st.Source, ago(e.o.Clock().Sub(st.At)))
			}
		}
		if open, _ := e.o.Ledger.Store().OpenIncident(ctx, t.ID, s); open != "" {
			stage, _ := e.o.Ledger.Store().Stage(ctx, t.ID, open)
			line += fmt.Sprintf(" — open incident %s (%s)", open, stage)
		}
		if d, ok := e.st.silenced(ctx, t.ID, s); ok {
			line += fmt.Sprintf(" — silenced for %s", d.Round(time.Minute))
		}
		m.Blocks = append(m.Blocks, Block{Plain, line})
	}
	return m
}

func (e *Engine) incidentsMessage(ctx context.Context, t *Tenant) Message {
	ids, err := e.o.Ledger.Store().Incidents(ctx, t.ID)
	if err != nil {
		return text1("Could not read incidents right now.")
	}
	m := Message{Blocks: []Block{{Title, "Open incidents — " + t.ID}}}
	var bs []Button
	for i := len(ids) - 1; i >= 0 && len(m.Blocks) < 21; i-- {
		st, err := e.o.Ledger.Store().Stage(ctx, t.ID, ids[i])
		if err != nil || !st.Open() {
			continue
		}
		in, _, err := e.o.Ledger.Incident(ctx, t.ID, ids[i])
		if err != nil {
			continue
		}
		m.Blocks = append(m.Blocks, Block{Plain, fmt.Sprintf("%s · %s · %s · opened %s", in.ID, in.Service, in.Stage, ago(e.o.Clock().Sub(in.OpenedAt)))})
		if len(bs) < 6 {
			bs = append(bs, Button{Label: "Replay " + in.ID, Data: "/replay " + in.ID})
		}
	}
	if len(m.Blocks) == 1 {
		m.Blocks = append(m.Blocks, Block{Plain, "None. All quiet."})
	}
	m.Buttons = rows(bs)
	return m
}

// /commits shows each service's changes of the last commitsLookback, at most commitsShown.
const (
	commitsLookback = 24 * time.Hour
	commitsShown    = 10
)

func (e *Engine) commitsMessage(ctx context.Context, t *Tenant, only string) Message {
	services := t.Services
	if only != "" {
		services = []string{only}
	}
	m := Message{Blocks: []Block{{Title, "Recent commits — " + t.ID}}}
	now := e.o.Clock()
	for _, s := range services {
		cs := e.commitsSince(ctx, t.ID, s, now.Add(-commitsLookback))
		if len(cs) > commitsShown {
			cs = cs[:commitsShown]
		}
		for _, c := range cs {
			line := fmt.Sprintf("%s %s (%s)", s, changeText(c, 80), ago(now.Sub(c.At)))
			if c.Risky != "" {
				line += " ⚠️ " + c.Risky
			}
			m.Blocks = append(m.Blocks, Block{Plain, line})
		}
	}
	if len(m.Blocks) == 1 {
		m.Blocks = append(m.Blocks, Block{Plain, "No commits recorded in the last 24 hours."})
	}
	return m
}

// replayMessage is an incident's timeline from the ledger.
func replayMessage(in ledger.Incident, hist []ledger.Entry) Message {
	m := Message{Blocks: []Block{{Title, fmt.Sprintf("Timeline of %s (%s) — now %s", in.ID, in.Service, in.Stage)}}}
	voided := map[uint64]ledger.PartialApproval{}
	for _, v := range in.Voided() {
		voided[v.Seq] = v
	}
	for _, e := range hist {
		what := string(e.Event)
		if e.From != e.To {
			what = fmt.Sprintf("%s → %s", stageLabel(e.From), e.To)
		}
		line := fmt.Sprintf("%s %s · %s", e.At.UTC().Format("15:04:05"), what, e.Actor.ID)
		switch {
		case (e.Event == ledger.Question || e.Event == ledger.Answer) && e.Data["text"] != "":
			line += " · “" + firstLine(e.Data["text"], 80) + "”"
		case e.Reason != "":
			line += " · " + firstLine(e.Reason, 160)
		}
		if e.Confidence > 0 {
			line += fmt.Sprintf(" (%.0f%%)", e.Confidence*100)
		}
		if v, ok := voided[e.Seq]; ok {
			line += fmt.Sprintf(" · VOIDED: %s approved %s instead", v.VoidedBy, v.VoidedFor)
		}
		m.Blocks = append(m.Blocks, Block{Plain, line})
	}
	m.Blocks = append(m.Blocks, Block{Muted, fmt.Sprintf("%d ledger entries; policy %s.", len(hist), in.PolicyVersion)})
	return m
}

// theoryLine describes one theory: who, how sure (a policy proposal has no confidence),
// what, and the action it leads to.
func theoryLine(th Theory) string {
	who := th.Lens
	if th.Label != "" {
		who = th.Label + " (" + th.Lens + ")"
	}
	if th.Lens == "policy" {
		return fmt.Sprintf("Policy proposal: %s → %s", th.Summary, th.Action)
	}
	return fmt.Sprintf("%s, %.0f%%: %s → %s", who, th.Confidence*100, th.Summary, th.Action)
}

func stageLabel(s ledger.Stage) string {
	if s == ledger.None {
		return "new"
	}
	return string(s)
}

func (e *Engine) detailsMessage(ctx context.Context, t *Tenant, in ledger.Incident, hist []ledger.Entry) Message {
	m := Message{Blocks: []Block{{Title, fmt.Sprintf("%s · %s · %s", in.ID, in.Service, in.Stage)}, {Plain, "Detected: " + in.Reason}}}
	if p := latestProposal(hist); p != nil {
		for _, th := range p.Theories {
			line := theoryLine(th)
			if th.Check != "" {
				line += ". Check: " + th.Check
			}
			m.Blocks = append(m.Blocks, Block{Plain, line})
			if len(th.Evidence) > 0 {
				m.Blocks = append(m.Blocks, Block{Muted, "Evidence: " + strings.Join(th.Evidence, "; ")})
			}
		}
		for _, u := range p.Unavailable {
			m.Blocks = append(m.Blocks, Block{Muted, "Unavailable: " + u + "."})
		}
	}
	for _, c := range e.commits(ctx, t.ID, in.Service, in.OpenedAt) {
		line := "Commit " + changeText(c, 100)
		if c.Kind == "deploy" || c.Kind == "tag" {
			line = strings.ToUpper(changeText(c, 100)[:1]) + changeText(c, 100)[1:]
		}
		if c.Risky != "" {
			line += " ⚠️ " + c.Risky
		}
		m.Blocks = append(m.Blocks, Block{Plain, line})
	}
	if len(in.ApprovedBy) > 0 {
		names := append([]string(nil), in.ApprovedBy...)
		sort.Strings(names)
		m.Blocks = append(m.Blocks, Block{Plain, "Approved by: " + strings.Join(names, ", ") + " (" + in.Action + ")"})
	}
	for _, v := range in.Voided() {
		m.Blocks = append(m.Blocks, Block{Plain, voidedLine(v)})
	}
	m.Blocks = append(m.Blocks, Block{Muted, "Policy " + in.PolicyVersion + ". Full audit: /replay " + in.ID})
	return m
}
