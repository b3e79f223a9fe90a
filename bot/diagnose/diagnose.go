package diagnose

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/bot/pipeline"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/council"
	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// ReadingSource is what the proposer needs of the detector (*detector.Detector).
type ReadingSource interface {
	History(ctx context.Context, tenant, service string, since time.Time) ([]detector.Reading, error)
}

// ProposerOptions configure the council's adapter.
type ProposerOptions struct {
	Council *council.Council
	// Readings gives the detector's recent readings (optional).
	Readings ReadingSource
	// Commits gives the commits correlated with the service (optional: none until the
	// commit store is wired).
	Commits conversation.CommitSource
	// Hints are words per tenant from its configuration (see council.Snapshot.Hints).
	Hints  map[string][]string
	Logger *slog.Logger
}

// Proposer asks the diagnostic council and turns its verdict into the one
// proposal shape the cards, /details and the approvals know.
type Proposer struct{ o ProposerOptions }

// NewProposer returns the adapter.
func NewProposer(o ProposerOptions) (*Proposer, error) {
	if o.Council == nil {
		return nil, errors.New("council proposer: council is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Proposer{o: o}, nil
}

// readingsWindow is how far back the snapshot's readings go.
const readingsWindow = 10 * time.Minute

// maxDiagnosisData bounds the validated JSON a diagnosis entry keeps.
const maxDiagnosisData = 4096

// Propose implements pipeline.Proposer.
func (c *Proposer) Propose(ctx context.Context, t conversation.Tenant, in ledger.Incident, hist []ledger.Entry) (pipeline.Proposition, error) {
	s := snapshotOf(t, in, hist)
	s.Hints = c.o.Hints[t.ID]
	if c.o.Readings != nil {
		rs, err := c.o.Readings.History(ctx, t.ID, in.Service, in.OpenedAt.Add(-readingsWindow))
		if err != nil {
			c.o.Logger.Warn("council snapshot: readings", "incident", in.ID, "err", err)
		}
		for _, r := range rs {
			if r.At.After(in.OpenedAt) {
				break
			}
			s.Readings = append(s.Readings, council.Reading{At: r.At, Score: r.Score, P95Ms: r.P95Ms, ErrorRate: r.ErrorRate, Requests: r.SampleSize})
		}
	}
	if c.o.Commits != nil {
		// The same window the card shows: the hour before detection, nothing after it.
		cs, err := c.o.Commits.RecentCommits(ctx, t.ID, in.Service, in.OpenedAt.Add(-conversation.CommitWindow))
		if err != nil {
			c.o.Logger.Warn("council snapshot: commits", "incident", in.ID, "err", err)
		}
		for _, cm := range cs {
			if cm.At.After(in.OpenedAt) {
				continue
			}
			if cm.Kind == "deploy" {
				s.Deploys = append(s.Deploys, council.Deploy{At: cm.At, Environment: cm.Where, SHA: cm.SHA})
				continue
			}
			s.Commits = append(s.Commits, council.Commit{SHA: cm.SHA, Message: cm.Message, Author: cm.Author, At: cm.At,
				Additions: cm.Additions, Deletions: cm.Deletions, Risky: cm.Risky})
		}
	}
	v, err := c.o.Council.Diagnose(ctx, s)
	if err != nil {
		return pipeline.Proposition{}, fmt.Errorf("diagnose %s: %w", in.ID, err)
	}
	return proposition(t, in, v, len(v.Lenses) > 1), nil
}

// proposition maps a verdict onto the proposal and its ledger entries.
func proposition(t conversation.Tenant, in ledger.Incident, v council.Verdict, labelled bool) pipeline.Proposition {
	var pr pipeline.Proposition
	var down []string
	for _, r := range v.Lenses {
		if r.Failed != "" {
			pr.Diagnoses = append(pr.Diagnoses, lensEntry(t, in, r.Label, r.Failed, r.FailedOutcome, "", nil, ""))
		}
		pr.Diagnoses = append(pr.Diagnoses, lensEntry(t, in, r.Label, r.Lens, r.Outcome, r.SHA256, r.Diagnosis, r.Failed))
		if !r.OK() {
			name, o := r.Lens, r.Outcome
			if r.Failed != "" {
				name, o = r.Failed, r.FailedOutcome
			}
			down = append(down, fmt.Sprintf("lens %s (%s) %s", r.Label, name, outcomeText(o)))
		}
	}
	p := conversation.Proposal{Agree: v.Agree, Gated: v.Gated, Unavailable: down}
	if v.Failsafe {
		p.Theories = []conversation.Theory{{Lens: "policy", Action: v.Action,
			Summary: fmt.Sprintf("no AI diagnosis available (%s); %s is the tenant's default recovery", strings.Join(down, "; "), v.Action)}}
		p.Unavailable = nil
		p.Offers = []conversation.Offer{{Action: v.Action}}
		pr.Proposal, pr.Action = p, v.Action
		pr.Actor = ledger.Actor{Kind: ledger.ActorPolicy, ID: "council-failsafe"}
		pr.Reason = "fail safe: no lens gave a valid diagnosis; policy default action " + v.Action
		return pr
	}
	for _, r := range v.Valid() {
		d := r.Diagnosis
		th := conversation.Theory{Lens: r.Lens, Summary: string(d.Category) + ": " + d.Cause, Action: offerFor(v, r.Label, d), Confidence: d.Confidence}
		if labelled {
			th.Label = r.Label
		}
		if r.Failed != "" {
			th.Lens = r.Lens + ", for " + r.Failed
		}
		if len(d.Checks) > 0 {
			th.Check = d.Checks[0]
		}
		th.Evidence = d.Evidence
		p.Theories = append(p.Theories, th)
	}
	for _, o := range v.Offers {
		p.Offers = append(p.Offers, conversation.Offer{Action: o.Action, Theory: o.Label})
	}
	if len(v.Valid()) < 2 {
		// One theory: its offer needs no theory label.
		for i := range p.Offers {
			p.Offers[i].Theory = ""
		}
	}
	pr.Proposal, pr.Action, pr.Confidence = p, v.Action, v.Confidence
	switch {
	case v.Gated:
		pr.Actor = ledger.Actor{Kind: ledger.ActorPolicy, ID: "council-gate"}
		pr.Reason = fmt.Sprintf("confidence %.0f%% below the %.0f%% gate: policy default action %s", v.Confidence*100, v.Gate*100, v.Action)
	case !v.Agree && len(p.Offers) == 1:
		pr.Actor = ledger.Actor{Kind: ledger.ActorAI, ID: "council"}
		pr.Reason = fmt.Sprintf("the lenses disagree on the cause but both lead to %s: %s", p.Offers[0].Action, dissentText(p))
	case !v.Agree:
		pr.Actor = ledger.Actor{Kind: ledger.ActorAI, ID: "council"}
		pr.Reason = fmt.Sprintf("the lenses disagree: %s", dissentText(p))
	default:
		pr.Actor = ledger.Actor{Kind: ledger.ActorAI, ID: "council"}
		pr.Reason = fmt.Sprintf("%s (%s)", p.Theories[0].Summary, p.Theories[0].Lens)
	}
	return pr
}

func offerFor(v council.Verdict, label string, d *council.Diagnosis) string {
	for _, o := range v.Offers {
		if o.Label == label {
			return o.Action
		}
	}
	if d.SuggestedAction != council.NoAction {
		return d.SuggestedAction
	}
	return v.Action
}

func dissentText(p conversation.Proposal) string {
	var parts []string
	for _, th := range p.Theories {
		parts = append(parts, fmt.Sprintf("%s %s → %s", th.Label, th.Summary, th.Action))
	}
	return strings.Join(parts, " | ")
}

func outcomeText(o council.Outcome) string {
	switch o {
	case council.Timeout:
		return "timed out"
	case council.Invalid:
		return "gave an invalid reply"
	case council.HTTPError:
		return "was unreachable"
	case council.NoEvidence:
		return "had no numbers to reason from"
	}
	return "failed: " + string(o)
}

// lensEntry is one lens's diagnosis entry: what it said (validated JSON, bounded) and
// the SHA-256 of its raw reply, or why it was discarded.
func lensEntry(t conversation.Tenant, in ledger.Incident, label, name string, o council.Outcome, sum string, d *council.Diagnosis, standsInFor string) ledger.Entry {
	e := ledger.Entry{Tenant: t.ID, Incident: in.ID, Event: ledger.Diagnosis, Actor: ledger.Actor{Kind: ledger.ActorAI, ID: name},
		PolicyVersion: t.PolicyVersion, Data: map[string]string{"lens": label, "outcome": string(o)}}
	if sum != "" {
		e.Data["reply_sha256"] = sum
	}
	if standsInFor != "" {
		e.Data["stands_in_for"] = standsInFor
	}
	if d == nil {
		e.Reason = fmt.Sprintf("lens %s (%s) %s: discarded", label, name, outcomeText(o))
		return e
	}
	js := d.JSON()
	if len(js) > maxDiagnosisData {
		sum := sha256.Sum256([]byte(js))
		js = `{"truncated":true,"sha256":"` + hex.EncodeToString(sum[:]) + `"}`
	}
	e.Data["diagnosis"] = js
	e.Data["category"] = string(d.Category)
	e.Confidence = d.Confidence
	e.Reason = fmt.Sprintf("lens %s: %s: %s", label, d.Category, firstLineOf(d.Cause, 200))
	return e
}

func firstLineOf(s string, n int) string {
	s, _, _ = strings.Cut(s, "\n")
	return clipText(s, n)
}

func clipText(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n-1]) + "…"
	}
	return s
}

// snapshotOf builds the council's snapshot from the incident's ledger: the DETECTED
// entry's numbers, the thread's questions and answers, and the tenant's actions.
func snapshotOf(t conversation.Tenant, in ledger.Incident, hist []ledger.Entry) council.Snapshot {
	s := council.Snapshot{Tenant: t.ID, Service: in.Service, Incident: in.ID, Reason: in.Reason, At: in.OpenedAt, DefaultAction: t.DefaultAction}
	if d, ok := pipeline.ProposedAction(t); ok && s.DefaultAction == "" {
		s.DefaultAction = d.Name
	}
	for _, a := range t.Actions {
		s.Actions = append(s.Actions, council.Action{Name: a.Name, HighRisk: a.HighRisk})
	}
	for _, e := range hist {
		switch e.Event {
		case ledger.Detect:
			ev := ledger.EvidenceOf(e)
			s.Score, s.P95Ms, s.ErrorRate = max(ev.Score, 0), ev.P95Ms, ev.ErrorRate
			s.BaselineP95Ms, s.Requests, s.Trend = ev.BaselineP95Ms, float64(ev.SampleSize), ev.Trend
		case ledger.Question:
			s.Thread = append(s.Thread, council.Turn{Role: "user", Who: e.Actor.ID, Text: e.Data["text"], At: e.At})
		case ledger.Answer:
			s.Thread = append(s.Thread, council.Turn{Role: "assistant", Who: e.Actor.ID, Text: e.Data["text"], At: e.At})
		}
	}
	return s
}

// AnswererOptions configure the LLM follow-up answerer.
type AnswererOptions struct {
	Answerer *council.Answerer
	// Redis keeps each incident's recent turns (bounded) under KeyPrefix.
	Redis     redis.UniversalClient
	KeyPrefix string
	Tenants   []conversation.Tenant
	Logger    *slog.Logger
}

// Answerer answers follow-up questions with the LLM, from the incident's
// snapshot, its ledger and the thread's earlier turns. Its answer is only text: the
// conversation posts it and records it as an answer entry; nothing else follows from it.
type Answerer struct {
	o       AnswererOptions
	tenants map[string]conversation.Tenant
}

// Turns kept per incident, and for how long.
const (
	keptTurns = 20
	turnsTTL  = 7 * 24 * time.Hour
)

// NewAnswerer returns the answerer.
func NewAnswerer(o AnswererOptions) (*Answerer, error) {
	if o.Answerer == nil || o.Redis == nil {
		return nil, errors.New("council answerer: answerer and redis are required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &Answerer{o: o, tenants: map[string]conversation.Tenant{}}
	for _, t := range o.Tenants {
		a.tenants[t.ID] = t
	}
	return a, nil
}

func (a *Answerer) key(tenant, incident string) string {
	return a.o.KeyPrefix + "council:{" + tenant + "}:turns:" + incident
}

// Answer implements conversation.Answerer.
func (a *Answerer) Answer(ctx context.Context, q conversation.Question) (string, ledger.Actor, error) {
	by := ledger.Actor{Kind: ledger.ActorAI, ID: a.o.Answerer.Name()}
	t, ok := a.tenants[q.Tenant]
	if !ok {
		return "", by, fmt.Errorf("unknown tenant %q", q.Tenant)
	}
	s := snapshotOf(t, q.Incident, q.History)
	s.Thread = nil // the turns below are the thread
	for _, c := range q.Commits {
		s.Commits = append(s.Commits, council.Commit{SHA: c.SHA, Message: c.Message, Author: c.Author, At: c.At, Additions: c.Additions, Deletions: c.Deletions, Risky: c.Risky})
	}
	if q.Status != nil {
		s.Readings = append(s.Readings, council.Reading{At: q.Status.At, Score: q.Status.Score, P95Ms: q.Status.P95Ms, ErrorRate: q.Status.ErrorRate, Requests: q.Status.SampleSize})
	}
	key := a.key(q.Tenant, q.Incident.ID)
	var turns []council.Turn
	raw, err := a.o.Redis.LRange(ctx, key, -council.MaxTurns, -1).Result()
	if err != nil {
		a.o.Logger.Warn("council answerer: read turns", "incident", q.Incident.ID, "err", err)
	}
	for _, r := range raw {
		role, text, ok := strings.Cut(r, "\x00")
		if ok && (role == "user" || role == "assistant") {
			turns = append(turns, council.Turn{Role: role, Text: text})
		}
	}
	var lines []string
	for _, e := range q.History {
		if e.Event == ledger.Question || e.Event == ledger.Answer {
			continue // the turns carry the conversation
		}
		l := fmt.Sprintf("%s %s %s:%s %s", e.At.UTC().Format("15:04:05"), e.Event, e.Actor.Kind, e.Actor.ID, e.Reason)
		if e.To != e.From {
			l += " → " + string(e.To)
		}
		lines = append(lines, l)
	}
	text, err := a.o.Answerer.Answer(ctx, council.Question{Snapshot: s, Ledger: lines, Turns: turns, Text: q.Text, Asker: q.Asker})
	if err != nil {
		return "", by, err
	}
	pipe := a.o.Redis.TxPipeline()
	pipe.RPush(ctx, key, "user\x00"+clipText(q.Text, 500), "assistant\x00"+text)
	pipe.LTrim(ctx, key, -keptTurns, -1)
	pipe.Expire(ctx, key, turnsTTL)
	if _, err := pipe.Exec(ctx); err != nil {
		a.o.Logger.Warn("council answerer: keep turns", "incident", q.Incident.ID, "err", err)
	}
	return text, by, nil
}

// HintsOf derives a tenant's council hints from its risky paths: "database" when they
// name migrations, SQL, queries or a db folder.
func HintsOf(riskyPaths []string) []string {
	for _, p := range riskyPaths {
		l := strings.ToLower(p)
		if strings.Contains(l, "migration") || strings.Contains(l, "sql") || strings.Contains(l, "query") || strings.Contains(l, "/db/") {
			return []string{"database"}
		}
	}
	return nil
}
