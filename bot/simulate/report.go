package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// Line is one step of the timeline.
type Line struct {
	// At is the virtual time since the start.
	At    time.Duration `json:"-"`
	Stage string        `json:"stage"`
	Actor string        `json:"actor"`
	Text  string        `json:"text"`
}

// MarshalJSON writes At as H:MM:SS.
func (l Line) MarshalJSON() ([]byte, error) {
	type line Line
	return json.Marshal(struct {
		At string `json:"at"`
		line
	}{clockText(l.At), line(l)})
}

// round shows a duration to the second (sub-second parts are the executor's backoff
// jitter and say nothing about governance).
func round(d time.Duration) string { return d.Round(time.Second).String() }

func clockText(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d:%02d", int(d.Hours()), int(d.Minutes())%60, int(d.Seconds())%60)
}

func (w *world) line(stage, actor, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.lines = append(w.lines, Line{At: w.now.Sub(w.sc.Start), Stage: stage, Actor: actor, Text: text})
}

// Incident is one incident's story in the summary.
type Incident struct {
	ID      string `json:"id"`
	Service string `json:"service"`
	Stage   string `json:"stage"`
	// Times since the start; empty when it did not happen.
	DetectedAt string `json:"detected_at"`
	DecidedAt  string `json:"decided_at,omitempty"`
	DecidedBy  string `json:"decided_by,omitempty"`
	// PartialBy is the first of two approvers of a high-risk action, when only one came.
	PartialBy   string `json:"partial_by,omitempty"`
	RecoveredAt string `json:"recovered_at,omitempty"`
	// Durations: from the service's first scripted change to detection, from detection to
	// the first human decision, and from detection to recovery.
	ToDetect  string `json:"to_detect,omitempty"`
	ToDecide  string `json:"to_decide,omitempty"`
	ToRecover string `json:"to_recover,omitempty"`

	toDetect, toDecide, toRecover time.Duration
	decided, recovered            bool
}

// Refusal is a press that did not authorize.
type Refusal struct {
	At       string `json:"at"`
	Incident string `json:"incident"`
	Who      string `json:"who"`
	Why      string `json:"why"`
}

// Summary is what the incident process did.
type Summary struct {
	Incidents      []Incident `json:"incidents"`
	Escalations    int        `json:"escalations"`
	Expired        int        `json:"expired"`
	Rejected       int        `json:"rejected"`
	Authorized     int        `json:"authorized"`
	Executed       int        `json:"executed"`
	WebhookCalls   int        `json:"webhook_calls"`
	WebhookFailed  int        `json:"webhook_failed"`
	Redriven       int        `json:"redriven"`
	DeadLetters    int        `json:"dead_letters"`
	Suppressed     int        `json:"suppressed"`
	Undecided      []string   `json:"undecided"`
	RefusedPresses []Refusal  `json:"refused_presses"`
	// ExecutedWithoutApproval lists executions the ledger shows without an engineer's
	// approval before them; the property is that it is always empty.
	ExecutedWithoutApproval []string `json:"executed_without_approval"`
	LedgerEntries           uint64   `json:"ledger_entries"`
	// Judged and Skipped count the detector's evaluations and the settled readings not
	// judged again.
	Judged  int `json:"judged"`
	Skipped int `json:"skipped"`
	// Agents are the scenario's AI agents: what they asked and what the gate let run.
	Agents []AgentStats `json:"agents,omitempty"`
}

// Check is one expectation and whether it held.
type Check struct {
	Expect string `json:"expect"`
	Line   int    `json:"line"`
	OK     bool   `json:"ok"`
	Got    string `json:"got"`
}

// Result is a run's outcome.
type Result struct {
	Scenario string   `json:"scenario"`
	Seed     uint64   `json:"seed"`
	Tenant   string   `json:"tenant"`
	Duration string   `json:"duration"`
	Timeline []Line   `json:"timeline"`
	Summary  Summary  `json:"summary"`
	Checks   []Check  `json:"expectations"`
	Broken   []string `json:"broken"`
	ledger   []byte
}

// WriteLedger writes the simulated ledger export (JSONL entries and a signed checkpoint,
// what `bot verify --file` checks).
func (r *Result) WriteLedger(w io.Writer) error {
	_, err := w.Write(r.ledger)
	return err
}

func (w *world) result(ctx context.Context) (*Result, error) {
	res := &Result{Scenario: w.sc.Name, Seed: w.seed, Tenant: w.tenant.ID, Duration: w.sc.Duration.String()}
	var buf bytes.Buffer
	rep, err := ledger.ExportJSONL(ctx, w.store, w.tenant.ID, w.sign, w.clock(), &buf)
	if err != nil {
		return nil, fmt.Errorf("export the simulated ledger: %w", err)
	}
	res.ledger = buf.Bytes()
	entries, err := w.store.Range(ctx, w.tenant.ID, 1, int(rep.Entries)+1)
	if err != nil {
		return nil, err
	}
	s := summarize(entries, w.sc.Start, w.firstFault)
	s.LedgerEntries = rep.Entries
	w.agentSummary(entries, &s)
	s.Judged, s.Skipped = w.stats.judged, w.stats.skipped
	w.mu.Lock()
	s.WebhookCalls = w.webhook.calls
	res.Timeline = canonical(w.lines)
	w.mu.Unlock()
	dls, err := w.exec.DeadLetters(ctx, w.tenant.ID)
	if err != nil {
		return nil, err
	}
	s.DeadLetters = len(dls)
	s.Suppressed = int(w.det.Stats().Suppressed)
	res.Summary = s
	res.Checks = check(w.sc.Expect, s)
	res.Broken = []string{}
	for _, c := range res.Checks {
		if !c.OK {
			res.Broken = append(res.Broken, c.Expect)
		}
	}
	return res, nil
}

// canonical returns the timeline with the one order Go leaves open fixed: the same message
// sent to several people at once (an escalation's direct messages, sent in map order) is
// listed by recipient.
func canonical(lines []Line) []Line {
	out := append([]Line(nil), lines...)
	for i := 0; i < len(out); {
		j := i + 1
		for j < len(out) && out[j].At == out[i].At && out[j].Stage == "chat" && out[i].Stage == "chat" && out[j].Text == out[i].Text {
			j++
		}
		sort.SliceStable(out[i:j], func(a, b int) bool { return out[i+a].Actor < out[i+b].Actor })
		i = j
	}
	return out
}

// firstFault returns when a service's script first changes (what detection is timed from).
func (w *world) firstFault(service string) (time.Duration, bool) {
	for _, s := range w.sc.Services {
		if s.Name == service && len(s.Script) > 0 {
			return s.Script[0].At, true
		}
	}
	return 0, false
}

// summarize reads the story of every incident from the ledger.
func summarize(entries []ledger.Entry, start time.Time, fault func(string) (time.Duration, bool)) Summary {
	s := Summary{Undecided: []string{}, RefusedPresses: []Refusal{}, ExecutedWithoutApproval: []string{}, Incidents: []Incident{}}
	byID := map[string]*Incident{}
	var order []string
	approved := map[string]bool{}
	opened := map[string]time.Time{}
	for _, e := range entries {
		in := byID[e.Incident]
		if in == nil {
			in = &Incident{ID: e.Incident, Service: e.Service}
			byID[e.Incident] = in
			order = append(order, e.Incident)
		}
		if e.Event.IsStageEvent() {
			in.Stage = string(e.To)
		}
		el := e.At.Sub(start)
		human := e.Actor.Kind == ledger.ActorEngineer
		switch e.Event {
		case ledger.Detect:
			opened[e.Incident] = e.At
			in.DetectedAt = clockText(el)
			if f, ok := fault(e.Service); ok && el >= f {
				in.toDetect = el - f
				in.ToDetect = round(in.toDetect)
			}
		case ledger.PartialApprove:
			if in.PartialBy == "" {
				in.PartialBy = e.Actor.ID
			}
		case ledger.Authorize, ledger.Reject:
			if e.Event == ledger.Authorize {
				s.Authorized++
				if human {
					approved[e.Incident] = true
				}
			}
			if e.Event == ledger.Reject {
				s.Rejected++
			}
			if human && !in.decided {
				in.decided = true
				in.DecidedAt, in.DecidedBy = clockText(el), e.Actor.ID
				in.toDecide = e.At.Sub(opened[e.Incident])
				in.ToDecide = round(in.toDecide)
			}
		case ledger.Execute:
			s.Executed++
			if !approved[e.Incident] {
				s.ExecutedWithoutApproval = append(s.ExecutedWithoutApproval, e.Incident)
			}
		case ledger.Resolve, ledger.Recover:
			if !in.recovered {
				in.recovered = true
				in.RecoveredAt = clockText(el)
				in.toRecover = e.At.Sub(opened[e.Incident])
				in.ToRecover = round(in.toRecover)
			}
		case ledger.Escalation:
			s.Escalations++
		case ledger.WebhookFail:
			s.WebhookFailed++
		case ledger.Redrive:
			s.Redriven++
		case ledger.Expire:
			s.Expired++
		case ledger.RefusedPress:
			s.RefusedPresses = append(s.RefusedPresses, Refusal{At: clockText(el), Incident: e.Incident, Who: e.Actor.ID, Why: e.Reason})
		}
	}
	for _, id := range order {
		in := byID[id]
		if in.DetectedAt == "" {
			continue // entries of something that was never an incident
		}
		if !in.decided {
			s.Undecided = append(s.Undecided, id)
		}
		s.Incidents = append(s.Incidents, *in)
	}
	return s
}

// check evaluates the expectations against the summary.
func check(exps []Expectation, s Summary) []Check {
	out := make([]Check, 0, len(exps))
	count := map[string]int{
		"incidents": len(s.Incidents), "escalations": s.Escalations, "expired": s.Expired, "rejected": s.Rejected,
		"refused_presses": len(s.RefusedPresses), "dlq": s.DeadLetters, "executed": s.Executed, "suppressed": s.Suppressed,
		"undecided": len(s.Undecided), "authorized": s.Authorized, "webhook_failed": s.WebhookFailed, "redriven": s.Redriven,
	}
	agentCounters(s, count)
	for _, e := range exps {
		c := Check{Expect: e.Key + ": " + e.Text, Line: e.Line}
		switch {
		case e.Key == "no_execution_without":
			c.OK = len(s.ExecutedWithoutApproval) == 0
			c.Got = "every execution had an engineer's approval"
			if !c.OK {
				c.Got = "executed without approval: " + strings.Join(s.ExecutedWithoutApproval, ", ")
			}
		case e.D > 0:
			c.OK, c.Got = within(e.Key, e.D, s)
		default:
			n := count[e.Key]
			c.Got = fmt.Sprint(n)
			switch e.Op {
			case "==":
				c.OK = n == e.N
			case "<=":
				c.OK = n <= e.N
			case ">=":
				c.OK = n >= e.N
			case "<":
				c.OK = n < e.N
			case ">":
				c.OK = n > e.N
			}
		}
		out = append(out, c)
	}
	return out
}

// within checks that every incident did the thing within d.
func within(key string, d time.Duration, s Summary) (bool, string) {
	var worst time.Duration
	var late []string
	for _, in := range s.Incidents {
		var got time.Duration
		var done bool
		switch key {
		case "detected_within":
			got, done = in.toDetect, in.ToDetect != ""
		case "decided_within":
			got, done = in.toDecide, in.decided
		case "recovered_within":
			got, done = in.toRecover, in.recovered
		}
		switch {
		case !done:
			late = append(late, in.ID+" never")
		case got > d:
			late = append(late, fmt.Sprintf("%s after %s", in.ID, round(got)))
		}
		worst = max(worst, got)
	}
	if len(late) > 0 {
		return false, strings.Join(late, "; ")
	}
	if len(s.Incidents) == 0 {
		return true, "no incident"
	}
	return true, "slowest " + round(worst)
}

// WriteText writes the timeline (unless summaryOnly) and the summary for people.
func (r *Result) WriteText(w io.Writer, summaryOnly bool) error {
	var b strings.Builder
	fmt.Fprintf(&b, "scenario %s · tenant %s · seed %d · %s simulated\n", r.Scenario, r.Tenant, r.Seed, r.Duration)
	if !summaryOnly {
		b.WriteString("\ntimeline\n")
		for _, l := range r.Timeline {
			fmt.Fprintf(&b, "  %8s  %-15s %-28s %s\n", clockText(l.At), l.Stage, l.Actor, l.Text)
		}
	}
	r.writeSummary(&b)
	_, err := io.WriteString(w, b.String())
	return err
}

func (r *Result) writeSummary(b *strings.Builder) {
	s := r.Summary
	b.WriteString("\nsummary\n")
	fmt.Fprintf(b, "  incidents: %d\n", len(s.Incidents))
	for _, in := range s.Incidents {
		fmt.Fprintf(b, "    %s %s: %s · detected %s", in.ID, in.Service, in.Stage, in.DetectedAt)
		if in.ToDetect != "" {
			fmt.Fprintf(b, " (%s after the fault)", in.ToDetect)
		}
		if in.decided {
			fmt.Fprintf(b, " · decided by %s after %s", in.DecidedBy, in.ToDecide)
		} else {
			b.WriteString(" · never decided")
			if in.PartialBy != "" {
				fmt.Fprintf(b, " (1 of 2 approvals, by %s)", in.PartialBy)
			}
		}
		if in.recovered {
			fmt.Fprintf(b, " · recovered after %s", in.ToRecover)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(b, "  escalations: %d\n", s.Escalations)
	fmt.Fprintf(b, "  expired approvals: %d\n", s.Expired)
	fmt.Fprintf(b, "  rejected: %d · authorized: %d · executed: %d\n", s.Rejected, s.Authorized, s.Executed)
	fmt.Fprintf(b, "  webhook calls: %d · failed executions: %d · re-driven: %d · dead letters left: %d\n", s.WebhookCalls, s.WebhookFailed, s.Redriven, s.DeadLetters)
	fmt.Fprintf(b, "  suppressed detections (incidents-per-hour limit): %d\n", s.Suppressed)
	fmt.Fprintf(b, "  refused presses: %d\n", len(s.RefusedPresses))
	for _, rp := range s.RefusedPresses {
		fmt.Fprintf(b, "    %s %s by %s: %s\n", rp.At, rp.Incident, rp.Who, rp.Why)
	}
	if len(s.Undecided) > 0 {
		fmt.Fprintf(b, "  never decided: %s\n", strings.Join(s.Undecided, ", "))
	} else {
		b.WriteString("  never decided: none\n")
	}
	writeAgents(b, s)
	if len(s.ExecutedWithoutApproval) == 0 {
		b.WriteString("  no EXECUTED without an engineer's approval: holds\n")
	} else {
		fmt.Fprintf(b, "  no EXECUTED without an engineer's approval: BROKEN by %s\n", strings.Join(s.ExecutedWithoutApproval, ", "))
	}
	fmt.Fprintf(b, "  ledger: %d entries · detector: %d readings judged, %d settled readings skipped\n", s.LedgerEntries, s.Judged, s.Skipped)
	if len(r.Checks) > 0 {
		b.WriteString("\nexpectations\n")
		sort.SliceStable(r.Checks, func(i, j int) bool { return r.Checks[i].Line < r.Checks[j].Line })
		for _, c := range r.Checks {
			mark := "ok    "
			if !c.OK {
				mark = "BROKEN"
			}
			fmt.Fprintf(b, "  %s %s (got %s)\n", mark, c.Expect, c.Got)
		}
	}
}

// WriteJSON writes the whole result as one JSON document.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
