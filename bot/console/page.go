package console

import (
	_ "embed"
	"html/template"
	"strings"

	"github.com/alertengine/alertengine/conversation"
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
	Messages              []messageView
}

type healthView struct {
	Service, Status, Score, P95, Errors, Trend, At string
	Samples                                        uint64
	Known, Controls, Faulty                        bool
}

type pageView struct {
	Nonce, Token, Intro string
	People              []Person
	Health              healthView
	Threads             []threadView
	Lobby               []messageView
}

type auditView struct {
	Nonce, Incident, Service, Stage, Verdict string
	Verified                                 bool
	Lines                                    []string
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
	v := messageView{ID: m.ID, Thread: m.Thread, From: m.From, At: m.At.UTC().Format("15:04:05"), Edited: m.Edited, Image: len(m.PNG) > 0, Alt: m.Alt}
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

func threadOf(first message, rest []messageView) threadView {
	return threadView{Root: first.ID, Title: first.Title, Incident: incidentOf(first.Title), Messages: append([]messageView{view(first)}, rest...)}
}

// pageOf groups the messages into threads (in the order they opened) and the lobby.
func pageOf(msgs []message) (threads []threadView, lobby []messageView) {
	index := map[string]int{}
	for _, m := range msgs {
		switch {
		case m.Thread == "":
			lobby = append(lobby, view(m))
		case m.Thread == m.ID:
			index[m.ID] = len(threads)
			threads = append(threads, threadOf(m, nil))
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
