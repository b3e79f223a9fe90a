package console

import (
	_ "embed"
	"fmt"
	"html/template"
	"strings"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
)

//go:embed page.html
var pageSource string

// parseTemplates parses the page and its fragments (a constant: a failure is a
// programming error every test catches).
func parseTemplates() (*template.Template, error) {
	return template.New("console").Parse(pageSource)
}

type blockView struct{ Class, Text string }

type buttonView struct{ Label, Data, Kind string }

type messageView struct {
	ID, Thread, From, At, Alt string
	Edited, Image             bool
	Blocks                    []blockView
	Buttons                   [][]buttonView
}

type threadView struct {
	Root, Title, Incident string
	Stage, StageClass     string
	Messages              []messageView
}

type healthView struct {
	Service, Status, Score, P95, Errors, Trend, At string
	Samples                                        uint64
	Known, Controls, Faulty                        bool
}

type pageView struct {
	MaxText             int
	Nonce, Token, Intro string
	People              []Person
	Health              healthView
	Threads             []threadView
	Lobby               []messageView
}

type auditView struct {
	Nonce, Incident, Service, Stage, Verdict string
	Verified                                 bool
	Rows                                     []auditRow
}

// auditRow is one ledger entry on the audit page, one column per field.
type auditRow struct {
	Seq, At, Stage, Actor, Text, Confidence, Policy string
}

// auditRows lays the entries out as the audit table: a question or an answer shows its
// text, every other entry its reason.
func auditRows(hist []ledger.Entry) []auditRow {
	out := make([]auditRow, 0, len(hist))
	for _, e := range hist {
		r := auditRow{Seq: fmt.Sprintf("#%d", e.Seq), At: e.At.UTC().Format("2006-01-02 15:04:05"), Policy: e.PolicyVersion}
		if e.From == e.To {
			r.Stage = "· " + string(e.Event)
		} else {
			from := string(e.From)
			if e.From == ledger.None {
				from = "∅"
			}
			r.Stage = from + " → " + string(e.To)
		}
		r.Actor = string(e.Actor.Kind) + ":" + e.Actor.ID
		if e.Actor.Channel != "" {
			r.Actor += " via " + e.Actor.Channel
		}
		r.Text = e.Reason
		if t := e.Data["text"]; t != "" && (e.Event == ledger.Question || e.Event == ledger.Answer) {
			r.Text = t
		}
		if e.Action != "" && !strings.Contains(r.Text, e.Action) {
			r.Text += " [" + e.Action + "]"
		}
		if e.Confidence > 0 {
			r.Confidence = fmt.Sprintf("%.0f%%", e.Confidence*100)
		}
		out = append(out, r)
	}
	return out
}

// stageLabel is how a thread's header shows its incident's stage, and its style.
func stageLabel(s ledger.Stage) (label, class string) {
	switch s {
	case ledger.None:
		return "", ""
	case ledger.Detected:
		return "DETECTED · diagnosing", "st-open"
	case ledger.Proposed, ledger.Validated:
		return string(s) + " · awaiting approval", "st-open"
	case ledger.Authorized:
		return "AUTHORIZED · running the recovery", "st-open"
	case ledger.Executed:
		return "EXECUTED · watching health", "st-open"
	case ledger.Resolved, ledger.Recovered:
		return string(s), "st-good"
	}
	return string(s), "st-bad"
}

// ledgerNote is what the thread shows of a ledger entry the engine does not post itself:
// a refused press, and an authorization that voided first approvals (1 of 2) of another
// option (its data.voided; in is the incident folded from the ledger, which names each
// voided approval, when it was given and who approved what instead).
func ledgerNote(e ledger.Entry, in ledger.Incident) ([]conversation.Block, bool) {
	who := e.Actor.ID
	switch {
	case e.Event == ledger.RefusedPress:
		what := "a press"
		if e.Action != "" {
			what = "a press of " + e.Action
		}
		return []conversation.Block{{Style: conversation.Warning, Text: fmt.Sprintf("⛔ Refused %s by %s: %s", what, who, e.Reason)},
			{Style: conversation.Muted, Text: fmt.Sprintf("Recorded in the ledger as entry #%d (refused_press).", e.Seq)}}, true
	case e.Event == ledger.Authorize && e.Data["voided"] != "":
		var b []conversation.Block
		for _, p := range in.Voided() {
			if p.Seq < e.Seq {
				b = append(b, conversation.Block{Style: conversation.Warning, Text: "⊘ Voided: " + p.Describe()})
			}
		}
		if len(b) == 0 {
			// The fold disagrees with the entry (it should not): show what the entry says.
			b = append(b, conversation.Block{Style: conversation.Warning, Text: fmt.Sprintf("⊘ Voided: %s — %s approved %s instead", e.Data["voided"], who, e.Action)})
		}
		return append(b, conversation.Block{Style: conversation.Muted, Text: fmt.Sprintf("Recorded in the ledger with entry #%d (authorize, voided: %s).", e.Seq, e.Data["voided"])}), true
	}
	return nil, false
}

func blockClass(s conversation.Style) string {
	switch s {
	case conversation.Title:
		return "b-title"
	case conversation.Bold:
		return "b-bold"
	case conversation.Code:
		return "b-code"
	case conversation.Warning:
		return "b-warning"
	case conversation.Muted:
		return "b-muted"
	}
	return "b-plain"
}

func view(m message) messageView {
	v := messageView{ID: m.ID, Thread: m.Thread, From: m.From, At: m.At.UTC().Format("15:04:05") + " UTC", Edited: m.Edited, Image: len(m.PNG) > 0, Alt: m.Alt}
	for _, b := range m.Blocks {
		v.Blocks = append(v.Blocks, blockView{Class: blockClass(b.Style), Text: b.Text})
	}
	for _, row := range m.Buttons {
		var r []buttonView
		for _, b := range row {
			kind := ""
			switch {
			case strings.HasPrefix(b.Data, "ap:"):
				kind = "approve"
			case strings.HasPrefix(b.Data, "/reject"):
				kind = "reject"
			}
			r = append(r, buttonView{Label: b.Label, Data: b.Data, Kind: kind})
		}
		v.Buttons = append(v.Buttons, r)
	}
	return v
}

// incidentOf takes the incident id from a thread title ("INC-7F3 · checkout").
func incidentOf(title string) string {
	id, _, _ := strings.Cut(title, " ")
	return id
}

func threadOf(first message, rest []messageView, stage ledger.Stage) threadView {
	label, class := stageLabel(stage)
	return threadView{Root: first.ID, Title: first.Title, Incident: incidentOf(first.Title), Stage: label, StageClass: class,
		Messages: append([]messageView{view(first)}, rest...)}
}

// pageOf groups the messages into threads (in the order they opened) and the lobby;
// stage gives each thread's incident stage.
func pageOf(msgs []message, stage func(root string) ledger.Stage) (threads []threadView, lobby []messageView) {
	index := map[string]int{}
	for _, m := range msgs {
		switch {
		case m.Thread == "":
			lobby = append(lobby, view(m))
		case m.Thread == m.ID:
			index[m.ID] = len(threads)
			threads = append(threads, threadOf(m, nil, stage(m.ID)))
		default:
			if i, ok := index[m.Thread]; ok {
				threads[i].Messages = append(threads[i].Messages, view(m))
			}
			// A message whose thread head was dropped (MaxMessages) is dropped with it.
		}
	}
	return threads, lobby
}

func (c *Console) render(name string, data any) (string, error) {
	var b strings.Builder
	if err := c.tmpl.ExecuteTemplate(&b, name, data); err != nil {
		return "", err
	}
	return b.String(), nil
}
