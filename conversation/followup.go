package conversation

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// MaxQuestionLen bounds what a question stores in the ledger.
const MaxQuestionLen = 2000

// Bounds of follow-up questions, per incident and hour: a person of the tenant may ask
// MaxQuestionsPerHour, anyone else in the chat MaxStrangerQuestionsPerHour; the bot says
// at most MaxRepliesPerThreadPerHour things in reply to questions in one thread (answers
// and "slow down" notices), then one notice that it pauses, then nothing until the hour
// has passed. Questions over a bound are neither answered nor recorded; they are counted
// (Options.OnThrottled).
const (
	MaxQuestionsPerHour         = 30
	MaxStrangerQuestionsPerHour = 5
	MaxRepliesPerThreadPerHour  = 60
)

// hourly counts one more event under key in a window of an hour from the first.
func (e *Engine) hourly(ctx context.Context, key string) (int64, error) {
	pipe := e.o.Redis.TxPipeline()
	n := pipe.Incr(ctx, key)
	pipe.ExpireNX(ctx, key, time.Hour)
	if _, err := pipe.Exec(ctx); err != nil {
		return 0, err
	}
	return n.Val(), nil
}

// threadBudget takes one of the thread's replies of the hour; false when they are spent.
// The first refusal posts the thread's one pause notice. When the count cannot be kept
// the reply is allowed.
func (e *Engine) threadBudget(ctx context.Context, in Inbound, tenant, incident string) bool {
	n, err := e.hourly(ctx, e.o.KeyPrefix+"conv:{"+tenant+"}:replies:"+incident)
	switch {
	case err != nil:
		e.o.Logger.Warn("count thread replies", "incident", incident, "err", err)
		return true
	case n <= MaxRepliesPerThreadPerHour:
		return true
	case n == MaxRepliesPerThreadPerHour+1:
		_, _ = e.say(ctx, in, tenant, incident, text1(fmt.Sprintf("Slow down: %s has had %d replies in the last hour. I pause answering questions here for now; /replay %s shows everything recorded.", incident, MaxRepliesPerThreadPerHour, incident)))
	}
	return false
}

// throttled counts a question over a bound.
func (e *Engine) throttled(tenant, bound string) {
	if e.o.OnThrottled != nil {
		e.o.OnThrottled(tenant, bound)
	}
}

// followUp takes free text. In an incident's thread (forum topic or reply chain) — or,
// on a platform without threads, from someone with a recent incident — it is a
// question: recorded, answered from the incident's own data, the answer recorded and
// posted in the thread.
func (e *Engine) followUp(ctx context.Context, in Inbound, text string) (Reply, error) {
	tenant, incident, ok := e.st.lookupRoute(ctx, in)
	if !e.caps(in.Chat.Channel).Threads {
		tenant, incident, ok = e.unthreaded(ctx, in, text, tenant, incident, ok)
	}
	if !ok {
		if in.Direct {
			if t, others := e.tenantFor(ctx, in); t == nil && len(others) == 0 {
				e.refuseStranger(in)
				return e.say(ctx, in, "", "", text1(notLinked))
			}
			return e.say(ctx, in, "", "", text1("Ask about an incident by replying in its thread, or try /help."))
		}
		return Reply{}, nil // people talking among themselves
	}
	t, known := e.tenants[tenant]
	if !known {
		return Reply{}, nil
	}
	name, _ := e.who(ctx, t, in.User)
	asker := actorOf(name, in.User)
	// Questions are recorded for ever: one person cannot flood an incident's ledger, and
	// nobody can make the bot talk without bound in a thread.
	limit := MaxQuestionsPerHour
	if name == "" {
		limit = MaxStrangerQuestionsPerHour // not a person of the tenant
	}
	key := e.o.KeyPrefix + "conv:{" + tenant + "}:asked:" + incident + ":" + string(in.User.Channel) + ":" + in.User.ID
	n, err := e.hourly(ctx, key)
	if err != nil {
		return Reply{}, fmt.Errorf("count questions: %w", err)
	}
	if n > int64(limit) {
		e.throttled(tenant, "sender")
		if n > int64(limit)+1 || !e.threadBudget(ctx, in, tenant, incident) {
			return Reply{}, nil
		}
		return e.say(ctx, in, tenant, incident, text1(fmt.Sprintf("Slow down: you have asked %d questions about %s in the last hour; I will answer again later. /replay %s shows everything recorded.", limit, incident, incident)))
	}
	if !e.threadBudget(ctx, in, tenant, incident) {
		e.throttled(tenant, "thread")
		return Reply{}, nil
	}
	if r := []rune(text); len(r) > MaxQuestionLen {
		text = string(r[:MaxQuestionLen]) + "…"
	}
	if _, err := e.o.Ledger.Record(ctx, ledger.Entry{Tenant: tenant, Incident: incident, Event: ledger.Question, Actor: asker,
		PolicyVersion: t.PolicyVersion, Reason: "question", Data: map[string]string{"text": text}}); err != nil {
		return Reply{}, fmt.Errorf("record question: %w", err)
	}
	e.st.setLast(ctx, in.User, tenant, incident)
	inc, hist, err := e.o.Ledger.Incident(ctx, tenant, incident)
	if err != nil {
		return Reply{}, err
	}
	q := Question{Tenant: tenant, Incident: inc, History: hist, Text: text, Asker: asker.ID,
		Commits: e.commits(ctx, tenant, inc.Service, inc.OpenedAt)}
	if e.o.Status != nil {
		if st, err := e.o.Status.ServiceStatus(ctx, tenant, inc.Service); err == nil {
			q.Status = &st
		}
	}
	answerer := e.o.Answerer
	if asksWhoApproved(text) {
		// Who approved what is the audit's to say, word for word from the ledger; a model
		// could blur a voided first approval into an approval of what ran.
		answerer = FactsAnswerer{}
	}
	answer, by, err := answerer.Answer(ctx, q)
	if err != nil || strings.TrimSpace(answer) == "" {
		e.o.Logger.Warn("answerer failed; answering from facts", "incident", incident, "err", err)
		answer, by, _ = FactsAnswerer{}.Answer(ctx, q)
	}
	if _, err := e.o.Ledger.Record(ctx, ledger.Entry{Tenant: tenant, Incident: incident, Event: ledger.Answer, Actor: by,
		PolicyVersion: t.PolicyVersion, Reason: "answer", Data: map[string]string{"text": answer, "question": firstLine(text, 200)}}); err != nil {
		return Reply{}, fmt.Errorf("record answer: %w", err)
	}
	return e.say(ctx, in, tenant, incident, Message{Blocks: paragraphs(answer)})
}

// incidentInText finds an incident id ("INC-7F3") in free text.
var incidentInText = regexp.MustCompile(`(?i)\bINC-[0-9A-F]{1,16}\b`)

// unthreaded picks the incident free text is about on a platform without threads: an
// incident id in the text wins, then the message it replies to (routed, ok), then the
// incident the person last asked about if it is still open, then their tenant's most
// recent open incident.
func (e *Engine) unthreaded(ctx context.Context, in Inbound, text, tenant, incident string, routed bool) (string, string, bool) {
	t, _ := e.tenantFor(ctx, in)
	if t != nil {
		for _, m := range incidentInText.FindAllString(text, 3) {
			id := strings.ToUpper(m)
			if _, _, err := e.o.Ledger.Incident(ctx, t.ID, id); err == nil {
				return t.ID, id, true
			}
		}
	}
	if routed {
		return tenant, incident, true
	}
	if tn, inc, ok := e.st.last(ctx, in.User); ok {
		if st, err := e.o.Ledger.Store().Stage(ctx, tn, inc); err == nil && st.Open() {
			return tn, inc, true
		}
	}
	if t == nil {
		return "", "", false
	}
	ids, err := e.o.Ledger.Store().Incidents(ctx, t.ID)
	if err != nil {
		return "", "", false
	}
	for i := len(ids) - 1; i >= 0 && i >= len(ids)-50; i-- {
		if st, err := e.o.Ledger.Store().Stage(ctx, t.ID, ids[i]); err == nil && st.Open() {
			return t.ID, ids[i], true
		}
	}
	return "", "", false
}

func paragraphs(s string) []Block {
	var out []Block
	for _, p := range strings.Split(s, "\n") {
		if p = strings.TrimRight(p, " "); p != "" {
			out = append(out, Block{Plain, p})
		}
	}
	return out
}

// FactsAnswerer answers follow-up questions deterministically from the incident's own
// data: the ledger, the detection numbers, the diagnosis, the commits and the current
// status. It is the offline answerer and the fallback when an LLM fails.
type FactsAnswerer struct{}

// Answer implements Answerer.
func (FactsAnswerer) Answer(ctx context.Context, q Question) (string, ledger.Actor, error) {
	by := ledger.Actor{Kind: ledger.ActorSystem, ID: "facts"}
	t := strings.ToLower(q.Text)
	has := func(words ...string) bool {
		for _, w := range words {
			if strings.Contains(t, w) {
				return true
			}
		}
		return false
	}
	f := detectionFacts(q.History)
	var out []string
	switch {
	case asksWhoApproved(t):
		out = append(out, whoApproved(q.Incident, q.History)...)
	case has("who deployed", "who pushed", "who released", "who shipped"):
		out = append(out, whoDeployed(q)...)
	case has("what changed", "deploy", "commit", "changed", "release"):
		if len(q.Commits) == 0 {
			out = append(out, "No commits were recorded for "+q.Incident.Service+" in the hour before the incident.")
		}
		for i, c := range q.Commits {
			if i == 5 {
				break
			}
			line := fmt.Sprintf("%s %q by %s at %s", short(c.SHA), firstLine(c.Message, 100), commitWho(c), hhmm(c.At))
			switch c.Kind {
			case "deploy":
				line = fmt.Sprintf("Deployed to %s by %s at %s: %s", c.Where, c.By, hhmm(c.At), short(c.SHA))
				if m := firstLine(c.Message, 100); m != "" {
					line += fmt.Sprintf(" %q", m)
				}
				if who := commitWho(c); who != "" && who != c.By {
					line += " (" + who + ")"
				}
				if c.State != "" && c.State != "success" {
					line += ", " + c.State
				}
			case "tag":
				line = changeText(c, 100) + " at " + hhmm(c.At)
			}
			if c.Risky != "" {
				line += " — " + c.Risky
			}
			out = append(out, line)
		}
	case has("p95", "latency", "slow", "error", "5xx", "metric", "number", "score", "health"):
		if f.unreachable != "" {
			out = append(out, "At detection: unreachable, nothing could be measured ("+f.unreachable+").")
		} else {
			out = append(out, fmt.Sprintf("At detection: health %.0f/100, P95 %s, errors %s, trend %s.", f.score, FormatMs(f.p95), pct(f.errRate), orDash(f.trend)))
		}
		if q.Status != nil && q.Status.Status != "" {
			out = append(out, fmt.Sprintf("Now: %s %.0f/100, P95 %s, errors %s, trend %s.", q.Status.Status, q.Status.Score, FormatMs(q.Status.P95Ms), pct(q.Status.ErrorRate), orDash(q.Status.Trend)))
		}
	case has("timeline", "history", "what happened", "replay", "so far"):
		for _, l := range replayMessage(q.Incident, q.History).Blocks[1:] {
			out = append(out, l.Text)
		}
	case has("why", "cause", "reason", "diagnos", "root"):
		out = append(out, "Detected because: "+q.Incident.Reason)
		if p := latestProposal(q.History); p != nil {
			for _, th := range p.Theories {
				out = append(out, theoryLine(th))
			}
		}
	default:
		out = append(out, fmt.Sprintf("%s on %s is %s. Detected: %s", q.Incident.ID, q.Incident.Service, q.Incident.Stage, q.Incident.Reason))
		out = append(out, `I answer from the incident's own data: ask "why?", "what changed?", "show p95", "timeline" or "who approved?".`)
	}
	return strings.Join(out, "\n"), by, nil
}

// whoDeployed names the deployments before the incident, else who pushed its commits.
func whoDeployed(q Question) []string {
	var out []string
	for _, c := range q.Commits {
		if c.Kind == "deploy" {
			out = append(out, fmt.Sprintf("%s deployed %s %q to %s at %s.", c.By, short(c.SHA), firstLine(c.Message, 100), c.Where, hhmm(c.At)))
		}
	}
	if len(out) > 0 {
		return out
	}
	seen := map[string]bool{}
	for _, c := range q.Commits {
		if c.Kind == "deploy" || c.By == "" || seen[c.By] {
			continue
		}
		seen[c.By] = true
		out = append(out, fmt.Sprintf("%s pushed %s %q to %s at %s.", c.By, short(c.SHA), firstLine(c.Message, 100), c.Where, hhmm(c.At)))
	}
	if len(out) == 0 {
		return []string{"No deployment or push was recorded for " + q.Incident.Service + " in the hour before the incident."}
	}
	return append([]string{"No deployment was recorded in the hour before the incident; the latest pushes:"}, out...)
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// whoApproved answers "who approved?" from the folded incident: the approvers of the
// authorized action (a high-risk action's first approver of that same option included),
// first approvals still waiting for a second, and those voided by another option's
// approval, which are never counted as approvals of what ran.
func whoApproved(in ledger.Incident, hist []ledger.Entry) []string {
	var out []string
	if len(in.ApprovedBy) > 0 {
		for _, e := range hist {
			if e.Event == ledger.Authorize && e.Approval == in.Approval {
				out = append(out, fmt.Sprintf("%s: approved by %s; authorized at %s by %s via %s (policy %s).",
					in.Action, strings.Join(in.ApprovedBy, " and "), hhmm(e.At), e.Actor.ID, orDash(e.Actor.Channel), e.PolicyVersion))
			}
		}
	}
	for _, p := range in.Partials {
		switch {
		case p.Voided():
			out = append(out, voidedLine(p))
		case p.Approval != in.Approval:
			out = append(out, fmt.Sprintf("%s approved %s (1 of 2) at %s; a second, different approver is needed.", p.By, p.Action, hhmm(p.At)))
		}
	}
	if len(out) == 0 {
		out = append(out, fmt.Sprintf("Nobody has approved anything on %s yet (stage %s).", in.ID, in.Stage))
	}
	return out
}

// asksWhoApproved reports whether a question asks about the approvals.
func asksWhoApproved(text string) bool {
	t := strings.ToLower(text)
	for _, w := range []string{"who approved", "approved", "approver", "who decided"} {
		if strings.Contains(t, w) {
			return true
		}
	}
	return false
}
