package conversation

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// Commit is a change correlated with an incident.
type Commit struct {
	SHA     string
	Message string
	Author  string // GitHub login or name
	Person  string // the config person it maps to, if any
	At      time.Time
	// Kind is "commit" (or ""), "deploy" (a deployment of SHA) or "tag".
	Kind string
	// Where is the branch, environment or tag; By who pushed, deployed or tagged.
	Where, By string
	// Ref is the git ref a deployment deploys; State a deployment's state (created,
	// success).
	Ref, State string
	// Stats says Additions and Deletions are known (they come from the GitHub API).
	Stats     bool
	Additions int
	Deletions int
	// Risky names why the commit is suspect ("touched database/query files"), "" if not.
	Risky string
	URL   string
}

// ServiceStatus is a service's latest evaluation.
type ServiceStatus struct {
	Service    string
	Score      float64
	Status     string // healthy | degraded | critical | unknown
	P95Ms      float64
	ErrorRate  float64
	Trend      string
	SampleSize uint64
	At         time.Time
	// Source is what measured the service ("push" for the Go SDK's stream, "pull" for
	// its health_url, "otlp" for OpenTelemetry metrics); At is when.
	Source string
}

// facts are the incident's numbers as the DETECTED entry recorded them.
type facts struct {
	score, p95, errRate float64
	haveScore           bool
	trend               string
	// unreachable is why a polled service could not be measured (its score of 0 and
	// error rate of 0 are then no measurement); alertSeverity the severity label of the
	// Alertmanager alert that opened the incident.
	unreachable, alertSeverity string
	// links are the alert's links to look at (Grafana's dashboard, panel and silence,
	// PagerDuty's links), "Name: URL", http(s) only.
	links []string
}

// maxCardLinks bounds the links a card shows; maxLinkRunes one link's length.
const (
	maxCardLinks = 4
	maxLinkRunes = 300
)

// alertLinks are the links of a detection entry worth a look from the card, in order.
func alertLinks(data map[string]string) []string {
	var out []string
	add := func(name, u string) {
		u = strings.TrimSpace(u)
		if len(out) >= maxCardLinks || (!strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://")) || strings.ContainsAny(u, " \n\r\t") {
			return
		}
		out = append(out, name+": "+ledger.Clip(u, maxLinkRunes))
	}
	add("Dashboard", data["dashboard_url"])
	add("Panel", data["panel_url"])
	add("Silence", data["silence_url"])
	for i := 1; i <= maxCardLinks; i++ {
		n := strconv.Itoa(i)
		name := firstLine(data["link_"+n+"_text"], 40)
		if name == "" {
			name = "Link"
		}
		add(name, data["link_"+n+"_url"])
	}
	return out
}

func detectionFacts(h []ledger.Entry) facts {
	var f facts
	for _, e := range h {
		if e.Event != ledger.Detect {
			continue
		}
		ev := ledger.EvidenceOf(e)
		f.score, f.haveScore = ev.Score, ev.Judged
		f.p95, f.errRate, f.trend, f.unreachable = ev.P95Ms, ev.ErrorRate, ev.Trend, ev.Unreachable
		if !ev.Judged {
			// An alert's severity as its sender wrote it (Alertmanager, PagerDuty, Grafana).
			f.alertSeverity = strings.ToLower(strings.TrimSpace(ev.Severity))
			f.links = alertLinks(e.Data)
		}
	}
	return f
}

// FormatMs renders a latency for people: "850 ms", "2.8 s".
func FormatMs(ms float64) string {
	if ms >= 1000 {
		return strconv.FormatFloat(ms/1000, 'f', 1, 64) + " s"
	}
	return strconv.FormatFloat(ms, 'f', 0, 64) + " ms"
}

func pct(r float64) string {
	if r > 0 && r < 0.01 {
		return strconv.FormatFloat(r*100, 'f', 1, 64) + "%"
	}
	return strconv.FormatFloat(r*100, 'f', 0, 64) + "%"
}

func ago(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return fmt.Sprintf("%d min ago", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d h ago", int(d.Hours()))
	}
	return fmt.Sprintf("%d days ago", int(d.Hours()/24))
}

func severity(f facts) string {
	switch {
	case f.unreachable != "":
		return "unreachable"
	case f.alertSeverity == "critical":
		return "critical"
	}
	if f.haveScore && f.score < 40 {
		return "critical"
	}
	return "degraded"
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

func firstLine(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	s = strings.TrimSpace(s)
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// commitWho is "john, +12/−3", without the counts when they are not known.
func commitWho(c Commit) string {
	if !c.Stats {
		return c.Author
	}
	return fmt.Sprintf("%s, +%d/−%d", c.Author, c.Additions, c.Deletions)
}

// measuredLine is the card's "Health 23/100 · P95 2.8 s · errors 19% · trend degrading",
// or the incident's reason when the entry recorded no numbers (an Alertmanager alert).
func measuredLine(f facts, reason string) Block {
	var line []string
	if f.haveScore {
		line = append(line, fmt.Sprintf("Health %.0f/100", f.score))
	}
	if f.p95 > 0 {
		line = append(line, "P95 "+FormatMs(f.p95))
	}
	if f.haveScore || f.errRate > 0 {
		line = append(line, "errors "+pct(f.errRate))
	}
	if f.trend != "" {
		line = append(line, "trend "+f.trend)
	}
	if len(line) == 0 {
		return Block{Plain, reason}
	}
	return Block{Plain, strings.Join(line, " · ")}
}

// cardInput is everything an incident card shows.
type cardInput struct {
	in       ledger.Incident
	hist     []ledger.Entry
	proposal *Proposal
	commits  []Commit
	refs     []string // approval references, one per proposal offer
	// highRisk reports whether an offered action is high-risk (nil: none is).
	highRisk func(action string) bool
	now      time.Time
}

// IncidentCard renders the first message of an incident thread: what is wrong, the
// diagnosis (agreement, dissent or below the gate), the correlated deploy, the offered
// actions as buttons, and the promise that nothing runs without approval.
func incidentCard(c cardInput) Message {
	f := detectionFacts(c.hist)
	var b []Block
	req, fromAgent := agentRequest(c.hist)
	if fromAgent {
		b = append(b, agentRequestBlocks(c.in, req)...)
	} else {
		b = append(b, Block{Title, fmt.Sprintf("🚨 %s %s — %s", c.in.Service, severity(f), c.in.ID)})
	}
	switch {
	case fromAgent:
	case f.unreachable != "":
		// Health 0/100 and 0% errors would be no measurement: say why there is none.
		b = append(b, Block{Plain, "Unreachable: " + firstLine(f.unreachable, ledger.MaxTextRunes)})
	default:
		b = append(b, measuredLine(f, c.in.Reason))
	}
	if !fromAgent && len(f.links) > 0 {
		b = append(b, Block{Muted, strings.Join(f.links, " · ")})
	}
	p := c.proposal
	switch {
	case p == nil && c.in.Stage == ledger.Detected:
		b = append(b, Block{Muted, "No recovery action is proposed yet."})
	case p == nil, fromAgent:
	case p.Dissent():
		b = append(b, Block{Bold, "The lenses disagree:"})
		for _, t := range p.Theories {
			txt := fmt.Sprintf("%s (%s, %.0f%%): %s → %s", t.Label, t.Lens, t.Confidence*100, t.Summary, t.Action)
			if t.Check != "" {
				txt += " — check: " + t.Check
			}
			b = append(b, Block{Plain, txt})
		}
	case len(p.Theories) > 1:
		b = append(b, Block{Plain, fmt.Sprintf("Both lenses agree (%.0f%%): %s", p.Confidence()*100, p.Theories[0].Summary)})
	case len(p.Theories) == 1 && p.Theories[0].Lens == "policy":
		b = append(b, Block{Plain, "Policy proposal: " + p.Theories[0].Summary})
	case len(p.Theories) == 1:
		t := p.Theories[0]
		b = append(b, Block{Plain, fmt.Sprintf("Diagnosis (%s, %.0f%%): %s", t.Lens, t.Confidence*100, t.Summary)})
	}
	if p != nil {
		for _, u := range p.Unavailable {
			b = append(b, Block{Muted, "Unavailable: " + u + "."})
		}
	}
	if p != nil && p.Gated {
		b = append(b, Block{Warning, fmt.Sprintf("⚠️ Confidence %.0f%% is below the %.0f%% gate: only the policy's default action is offered.", p.Confidence()*100, ConfidenceGate*100)})
	}
	if len(c.commits) > 0 {
		cm := c.commits[0]
		line := fmt.Sprintf("Recent deploy: %s %s %q (%s)", ago(c.now.Sub(cm.At)), short(cm.SHA), firstLine(cm.Message, 80), commitWho(cm))
		if cm.Kind == "deploy" || cm.Kind == "tag" {
			line = "Recent deploy: " + ago(c.now.Sub(cm.At)) + " " + changeText(cm, 80)
		}
		b = append(b, Block{Plain, line})
		for _, r := range c.commits {
			if r.Risky == "" {
				continue
			}
			if r.SHA == cm.SHA {
				b = append(b, Block{Warning, "⚠️ " + r.Risky})
			} else {
				b = append(b, Block{Warning, fmt.Sprintf("⚠️ %s %s (%s)", short(r.SHA), r.Risky, r.Author)})
			}
			break
		}
	}
	var row []Button
	if p != nil && len(c.refs) == len(p.Offers) && len(p.Offers) > 0 {
		switch {
		case p.Dissent() && !p.Gated && len(p.Offers) > 1:
			b = append(b, Block{Plain, "Approving one theory voids the other."})
		case p.Dissent() && !p.Gated:
			b = append(b, Block{Plain, "Both theories lead to the same action: " + p.Offers[0].Action})
		default:
			b = append(b, Block{Plain, "Suggested: " + p.Offers[0].Action})
		}
		for i, o := range p.Offers {
			label := "Approve " + o.Action
			if o.Theory != "" && p.Dissent() && len(p.Offers) > 1 {
				label = "Trust " + o.Theory + ": " + o.Action
			}
			row = append(row, approveButton(label, c.refs[i], o.Action, c.highRisk != nil && c.highRisk(o.Action)))
		}
		row = append(row, Button{Label: "Reject", Data: "/reject " + c.in.ID})
	}
	row = append(row, Button{Label: "Details", Data: "/details " + c.in.ID})
	for _, v := range c.in.Voided() {
		b = append(b, Block{Muted, voidedLine(v)})
	}
	b = append(b, Block{Muted, "Nothing runs without your approval."})
	return Message{Blocks: b, Buttons: rows(row)}
}

// voidedLine says that a first approval of another option was voided and by whom.
func voidedLine(v ledger.PartialApproval) string {
	return fmt.Sprintf("⊘ Voided: %s's approval of %s (1 of 2) at %s; %s approved %s instead.", v.By, v.Action, hhmm(v.At), v.VoidedBy, v.VoidedFor)
}

// rows splits buttons into rows of at most MaxButtonsPerRow.
func rows(bs []Button) [][]Button {
	var out [][]Button
	for len(bs) > MaxButtonsPerRow {
		out = append(out, bs[:MaxButtonsPerRow])
		bs = bs[MaxButtonsPerRow:]
	}
	if len(bs) > 0 {
		out = append(out, bs)
	}
	return out
}

// Evidence is the hash of what a person saw: the card's text and buttons.
func Evidence(m Message) string {
	h := sha256.New()
	h.Write([]byte(m.Text()))
	for _, r := range m.Buttons {
		for _, bt := range r {
			h.Write([]byte("\x00" + bt.Label + "\x00" + bt.Data))
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// approveButton is the button of one offered action; a high-risk action's asks for a
// confirmation where the platform can ask.
func approveButton(label, ref, action string, highRisk bool) Button {
	b := Button{Label: label, Data: ref}
	if highRisk {
		b.Confirm = action + " is a high-risk action. It runs as soon as every approval it needs is given."
	}
	return b
}

// decided returns the card with its buttons removed and a closing line (none when line
// is empty).
func decided(card Message, line string) Message {
	out := Message{Blocks: append([]Block(nil), card.Blocks...)}
	if line != "" {
		out.Blocks = append(out.Blocks, Block{Bold, line})
	}
	return out
}

// Headline keeps a card's first line true once its incident is closed: "🚨 checkout
// degraded — INC-1" becomes "✅ checkout healthy again — INC-1 · RESOLVED" (or
// RECOVERED); closed any other way it keeps what it was about, marked with the stage:
// "⏹ checkout degraded — INC-1 · REJECTED". The card of an open incident, and one whose
// first line is not an incident's headline (an agent's request), is left as it is.
func Headline(blocks []Block, s ledger.Stage) []Block {
	return headline(blocks, s, s == ledger.Resolved || s == ledger.Recovered)
}

// headline is Headline where healthy says whether the incident closed healthy: a
// RECOVERED incident the detector closed without knowing it healthy (its alerts expired,
// a newer incident superseded it) is not.
func headline(blocks []Block, s ledger.Stage, healthy bool) []Block {
	if !s.Terminal() || len(blocks) == 0 || blocks[0].Style != Title || !strings.HasPrefix(blocks[0].Text, "🚨 ") {
		return blocks
	}
	head, id, ok := strings.Cut(strings.TrimPrefix(blocks[0].Text, "🚨 "), " — ")
	if !ok {
		return blocks
	}
	service, _, _ := strings.Cut(head, " ")
	text := fmt.Sprintf("✅ %s healthy again — %s · %s", service, id, s)
	if !healthy {
		text = fmt.Sprintf("⏹ %s — %s · %s", head, id, s)
	}
	return append([]Block{{Title, text}}, blocks[1:]...)
}

func hhmm(t time.Time) string { return t.UTC().Format("15:04 UTC") }

// consoleHelp is /help in the web console: it has no enrollment (its people are picked
// on the page) and its text box speaks to the lobby or to the thread chosen under "To".
func consoleHelp() Message {
	return Message{Blocks: []Block{
		{Title, "AlertEngine commands"},
		{Plain, "Type them in the box at the bottom. \"To\" chooses where they go: the lobby or an incident thread."},
		{Code, "/status [service]"}, {Plain, "health of your services"},
		{Code, "/incidents"}, {Plain, "open incidents"},
		{Code, "/replay INC-1"}, {Plain, "an incident's timeline from the audit ledger"},
		{Code, "/ack INC-1"}, {Plain, "acknowledge (stops escalation)"},
		{Code, "/silence SERVICE 30m"}, {Plain, "no new incidents for a service for a while"},
		{Code, "/commits [service]"}, {Plain, "recent commits"},
		{Muted, "With an incident thread chosen under \"To\", ask anything: \"why?\", \"what changed?\", \"show p95\", \"who approved?\". Pick who you are under \"You are\" before pressing a button."},
	}}
}

// helpFor is the help in the syntax people type: "/status" on Telegram and the console,
// bare words ("STATUS", "JOIN CODE") where commands are words (WhatsApp).
func helpFor(words bool) Message {
	cmd := func(slash, word string) Block {
		if words {
			return Block{Code, word}
		}
		return Block{Code, slash}
	}
	start := cmd("/start CODE", "JOIN CODE")
	m := Message{Blocks: []Block{
		{Title, "AlertEngine commands"},
		cmd("/status [service]", "STATUS [service]"), {Plain, "health of your services"},
		cmd("/incidents", "INCIDENTS"), {Plain, "open incidents"},
		cmd("/replay INC-7F3", "REPLAY INC-7F3"), {Plain, "an incident's timeline from the audit ledger"},
		cmd("/ack INC-7F3", "ACK INC-7F3"), {Plain, "acknowledge (stops escalation)"},
		cmd("/silence SERVICE 30m", "SILENCE SERVICE 30m"), {Plain, "no new incidents for a service for a while"},
		cmd("/commits [service]", "COMMITS [service]"), {Plain, "recent commits"},
		start, {Plain, "link this chat identity with an enrollment code from `bot enroll`"},
		{Muted, "In an incident thread, ask anything: \"why?\", \"what changed?\", \"show p95\", \"who approved?\""},
	}}
	if words {
		m.Blocks[len(m.Blocks)-1] = Block{Muted, "Type the words without a slash (any case). Anything else is a question about your most recent incident (or the one you reply to, or name: INC-7F3): \"why?\", \"what changed?\", \"show p95\", \"who approved?\""}
	}
	return m
}

// agentRequest returns the detect entry's data of an incident that is an AI agent's
// approval request (opened through the agent API).
func agentRequest(h []ledger.Entry) (map[string]string, bool) {
	if len(h) == 0 || h[0].Event != ledger.Detect || h[0].Data["agent"] == "" || h[0].Data["approval_id"] == "" {
		return nil, false
	}
	return h[0].Data, true
}

// agentRequestBlocks say who asks and what, the agent's words quoted as data: they are
// shown, never read as instructions, and the buttons come from the proposal alone.
func agentRequestBlocks(in ledger.Incident, d map[string]string) []Block {
	runs := "The recovery webhook runs it once approved."
	if d["runs"] == "agent" {
		runs = "The agent runs it itself once approved, once, with a signed receipt."
	}
	b := []Block{
		{Title, fmt.Sprintf("🤖 Agent %s asks to run %s — %s", d["agent"], in.Action, in.ID)},
		{Muted, "What follows is the agent's own text, shown as data:"},
		{Plain, "Summary: " + firstLine(d["summary"], 500)},
	}
	if p := d["params"]; p != "" && p != "null" {
		b = append(b, Block{Code, firstLine(p, 300)})
	}
	if r := d["about"]; r != "" {
		b = append(b, Block{Plain, "About incident " + firstLine(r, 20)})
	}
	return append(b, Block{Muted, runs})
}
