package config

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// slack is a channel registered by a caller, with id rules of its own.
var slack = ChatChannel{
	Name: "slack", Title: "Slack", Setting: "SLACK_BOT_TOKEN is not set",
	Enabled: func(Env) bool { return false },
	Chat: func(s string) (string, error) {
		if !strings.HasPrefix(s, "C") {
			return "", errors.New("want a Slack channel id like C0123456789")
		}
		return s, nil
	},
	Person: func(s string) (string, error) {
		if !strings.HasPrefix(s, "U") {
			return "", errors.New("want a Slack member id like U0123456789")
		}
		return s, nil
	},
}

// TestIDsByChannel: a person's ids: {<channel>: id} and the older telegram:/whatsapp: keys
// give the same person; chats keep the order of the channels, then of the file.
func TestIDsByChannel(t *testing.T) {
	src := `tenants:
  - id: acme
    services: [{name: a}]
    chats: {whatsapp: ["+263771234567"], telegram: [-200, "-0100"]}
    people:
      - {name: new, role: approver, ids: {telegram: 11, whatsapp: "whatsapp:+263770000001"}}
      - {name: old, role: approver, telegram: 12, whatsapp: "+263770000002"}
      - {name: mixed, role: viewer, ids: {whatsapp: "+263770000003"}, telegram: "+13"}
`
	f, err := parseT("alertengine.yaml", []byte(src), nil, demoEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	tn := f.Tenants[0]
	wantChats := []Chat{{"telegram", "-200"}, {"telegram", "-100"}, {"whatsapp", "+263771234567"}}
	if d := cmp.Diff(wantChats, tn.Chats); d != "" {
		t.Errorf("chats (-want +got):\n%s", d)
	}
	var ids []map[string]string
	for _, p := range tn.People {
		ids = append(ids, p.IDs)
	}
	want := []map[string]string{
		{"telegram": "11", "whatsapp": "+263770000001"},
		{"telegram": "12", "whatsapp": "+263770000002"},
		{"telegram": "13", "whatsapp": "+263770000003"},
	}
	if d := cmp.Diff(want, ids); d != "" {
		t.Errorf("ids (-want +got):\n%s", d)
	}
	if p, ok := tn.PersonByID("whatsapp", "+263770000002"); !ok || p.Name != "old" {
		t.Errorf("PersonByID: %v %v", p.Name, ok)
	}
}

// TestRegisteredChannels: the channels a caller registers are the only keys of chats: and
// ids:, each id is checked by its channel, and serve refuses chats on a channel the
// environment does not enable, in the channel's words.
func TestRegisteredChannels(t *testing.T) {
	serve, err := LoadEnv(mapLookup(serveBase), Serve)
	if err != nil {
		t.Fatal(err)
	}
	channels := append(testChannels(), slack)
	src := `tenants:
  - id: acme
    services: [{name: a}]
    chats:
      slack: [C1, general, C1]
      telegrm: [-100]
    people:
      - {name: a, role: approver, ids: {slack: U1, whatsap: "+263770000001"}}
      - {name: b, role: approver, ids: {slack: U1}}
      - {name: c, role: approver, ids: {slack: bob}}
      - {name: d, role: approver, ids: {telegram: 5}, telegram: 5}
      - {name: e, role: approver, ids: {}}
`
	_, err = parseT("alertengine.yaml", []byte(src), nil, serve, channels...)
	want := []string{
		`alertengine.yaml:5: tenants[0].chats.slack[1]: want a Slack channel id like C0123456789, got "general"`,
		"alertengine.yaml:5: tenants[0].chats.slack[2]: chat C1 is listed twice",
		"alertengine.yaml:5: tenants[0].chats.slack: Slack chats are listed but SLACK_BOT_TOKEN is not set",
		`alertengine.yaml:6: tenants[0].chats.telegrm: unknown channel; did you mean "telegram"?`,
		`alertengine.yaml:8: tenants[0].people[0].ids.whatsap: unknown channel; did you mean "whatsapp"?`,
		"alertengine.yaml:9: tenants[0].people[1].ids.slack: Slack user U1 is also tenants[0].people[0]",
		`alertengine.yaml:10: tenants[0].people[2].ids.slack: want a Slack member id like U0123456789, got "bob"`,
		"alertengine.yaml:11: tenants[0].people[3].telegram: also given as tenants[0].people[3].ids.telegram; give it once",
		`alertengine.yaml:12: tenants[0].people[4]: approver "e" has no chat identity (set ids: {telegram: …} or {whatsapp: …} or {slack: …})`,
	}
	if d := cmp.Diff(want, problemLines(t, err)); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}

	// Without whatsapp registered, its old person key names no channel.
	_, err = parseT("alertengine.yaml", []byte(`tenants:
  - id: acme
    services: [{name: a}]
    people: [{name: a, role: viewer, whatsapp: "+263770000001"}]
`), nil, demoEnv(t), testChannels()[0], slack)
	want = []string{"alertengine.yaml:4: tenants[0].people[0].whatsapp: no channel whatsapp is registered (registered: telegram, slack)"}
	if d := cmp.Diff(want, problemLines(t, err)); d != "" {
		t.Errorf("problems (-want +got):\n%s", d)
	}
}

// TestNoChannelsRegistered: this package knows no platform's ids; a caller that registers
// none gets every chat and person id refused as an unknown channel, not a built-in rule.
func TestNoChannelsRegistered(t *testing.T) {
	_, err := Parse("alertengine.yaml", []byte(`tenants:
  - id: acme
    services: [{name: a}]
    chats: {telegram: [-100]}
    people: [{name: tendai, role: viewer, ids: {telegram: 1}}]
`), nil, demoEnv(t))
	for _, want := range []string{"tenants[0].chats.telegram: unknown channel (none is allowed)", "tenants[0].people[0].ids.telegram: unknown channel"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want a problem at %s, got %v", want, err)
		}
	}
}
