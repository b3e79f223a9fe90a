package conversation_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/conversation"
)

// memCommits is an in-memory commit store: every commit of every service, filtered by
// time as the real one is.
type memCommits map[string][]conversation.Commit // service → commits, newest first

func (m memCommits) RecentCommits(ctx context.Context, tenant, service string, since time.Time) ([]conversation.Commit, error) {
	var out []conversation.Commit
	for _, c := range m[service] {
		if !c.At.Before(since) {
			out = append(out, c)
		}
	}
	return out, nil
}

// withCommits rebuilds the world's engine with a commit source.
func (w *world) withCommits(src conversation.CommitSource, edit func(*conversation.Tenant)) {
	w.t.Helper()
	if edit != nil {
		edit(&w.tenants[0])
	}
	clock := func() time.Time { return w.now }
	var err error
	w.eng, err = conversation.New(conversation.Options{Ledger: w.led, Approvals: w.ap, Redis: w.rc, KeyPrefix: w.prefix, Clock: clock,
		Transports: []conversation.Transport{w.tg}, Tenants: w.tenants, Commits: src})
	if err != nil {
		w.t.Fatal(err)
	}
}

func TestCardShowsTheCorrelatedCommits(t *testing.T) {
	w := newWorld(t, false)
	detected := w.now
	w.withCommits(memCommits{"checkout": {
		{SHA: "f00dfeed00000000000000000000000000000000", Message: "Hotfix after the incident", Author: "rudo", At: detected.Add(time.Minute), Risky: "touched database/query files"},
		{SHA: "b7e4d2c1a0f9e8d7c6b5a4f3e2d1c0b9a8f7e6d5", Message: "Bump checkout page copy", Author: "john", At: detected.Add(-3 * time.Minute)},
		{SHA: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Message: "Fix checkout query isolation level\n\nlong body", Author: "john", Person: "tendai",
			At: detected.Add(-10 * time.Minute), Stats: true, Additions: 12, Deletions: 3, Risky: "touched database/query files"},
		{SHA: "0ld0000000000000000000000000000000000000", Message: "Too old", Author: "john", At: detected.Add(-61 * time.Minute), Risky: "touched config files"},
	}}, nil)
	w.open()
	text := w.card().Msg.Text()
	for _, want := range []string{`Recent deploy: 3 min ago b7e4d2c "Bump checkout page copy" (john)`, "⚠️ a1b2c3d touched database/query files (john)"} {
		if !strings.Contains(text, want) {
			t.Errorf("card lacks %q:\n%s", want, text)
		}
	}
	for _, not := range []string{"Hotfix", "+0/−0", "Too old", "config files"} {
		if strings.Contains(text, not) {
			t.Errorf("card shows %q:\n%s", not, text)
		}
	}
	// Details list every correlated commit, with counts when known.
	w.handle(conversation.Inbound{Chat: conversation.Chat{Channel: conversation.Telegram, ID: group}, User: vimbai, Text: "/details " + w.incident})
	d, ok := w.tg.find(group, "Commit a1b2c3d")
	if !ok || !strings.Contains(d.Msg.Text(), `Commit a1b2c3d "Fix checkout query isolation level" by john, +12/−3 ⚠️ touched database/query files`) {
		t.Fatalf("details: %v %q", ok, d.Msg.Text())
	}
}

func TestSuspectAuthorCannotApproveUnlessThePolicySaysSo(t *testing.T) {
	for _, mayApprove := range []bool{false, true} {
		t.Run(map[bool]string{false: "refused", true: "policy off"}[mayApprove], func(t *testing.T) {
			w := newWorld(t, false)
			w.withCommits(memCommits{"checkout": {{SHA: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Message: "Fix checkout query isolation level",
				Author: "john", Person: "tendai", At: w.now.Add(-5 * time.Minute), Risky: "touched database/query files"}}},
				func(t *conversation.Tenant) { t.SuspectsMayApprove = mayApprove })
			w.open()
			card := w.card()
			r := w.handle(conversation.Inbound{Chat: conversation.Chat{Channel: conversation.Telegram, ID: group}, User: tendai,
				Data: card.Msg.Buttons[0][0].Data, ReplyTo: card.ID})
			if mayApprove {
				if !strings.HasPrefix(r.Toast, "Approved.") {
					t.Fatalf("with refuse_suspect_approval off: %q", r.Toast)
				}
				return
			}
			if !strings.Contains(r.Toast, "You authored a suspect commit") {
				t.Fatalf("suspect's press: %q", r.Toast)
			}
		})
	}
}

func TestWhoDeployed(t *testing.T) {
	w := newWorld(t, false)
	w.withCommits(memCommits{"checkout": {
		{Kind: "deploy", SHA: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Message: "Fix checkout query isolation level", Author: "john", By: "rudo", Where: "production", At: w.now.Add(-2 * time.Minute)},
		{SHA: "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678", Message: "Fix checkout query isolation level", Author: "john", By: "john", Where: "main", At: w.now.Add(-9 * time.Minute)},
	}}, nil)
	w.open()
	card := w.card()
	chat := conversation.Chat{Channel: conversation.Telegram, ID: group}
	w.handle(conversation.Inbound{Chat: chat, User: vimbai, Text: "who deployed?", ReplyTo: card.ID})
	if _, ok := w.tg.find(group, `rudo deployed a1b2c3d "Fix checkout query isolation level" to production at 08:58 UTC.`); !ok {
		t.Fatal("no answer naming the deployer")
	}
	w.handle(conversation.Inbound{Chat: chat, User: vimbai, Text: "what changed?", ReplyTo: card.ID})
	if _, ok := w.tg.find(group, "Deployed to production by rudo at 08:58 UTC: a1b2c3d"); !ok {
		t.Fatal("what changed? does not show the deployment")
	}
}

// TestTagsAndDeploymentsShowAsWhatTheyAre: a tag (GitHub's create event) and a deployment
// (deployment/deployment_status) are shown by name, environment, ref and state on the
// card, in /details, /commits and "what changed?", never as a commit with an empty
// message.
func TestTagsAndDeploymentsShowAsWhatTheyAre(t *testing.T) {
	w := newWorld(t, false)
	w.withCommits(memCommits{"checkout": {
		{Kind: "tag", Where: "v1.4.0", Author: "Codertocat", By: "Codertocat", At: w.now.Add(-2 * time.Minute)},
		{Kind: "deploy", SHA: "f95f852bd8fca8fcc58a9a2d6c842781e32a215e", Where: "production", Ref: "main", State: "success", Author: "rudo", By: "rudo", At: w.now.Add(-4 * time.Minute)},
	}}, nil)
	w.open()
	card := w.card()
	if !strings.Contains(card.Msg.Text(), "Recent deploy: 2 min ago tag v1.4.0 by Codertocat") {
		t.Fatalf("card:\n%s", card.Msg.Text())
	}
	chat := conversation.Chat{Channel: conversation.Telegram, ID: group}
	w.handle(conversation.Inbound{Chat: chat, User: vimbai, Text: "/details " + w.incident})
	d, ok := w.tg.find(group, "Tag v1.4.0 by Codertocat")
	if !ok || !strings.Contains(d.Msg.Text(), "Deploy of f95f852 (main) to production by rudo: success") {
		t.Fatalf("details: %v %q", ok, d.Msg.Text())
	}
	w.handle(conversation.Inbound{Chat: chat, User: vimbai, Text: "/commits"})
	c, ok := w.tg.find(group, "Recent commits")
	if !ok || !strings.Contains(c.Msg.Text(), "checkout tag v1.4.0 by Codertocat (2 min ago)") ||
		!strings.Contains(c.Msg.Text(), "checkout deploy of f95f852 (main) to production by rudo: success (4 min ago)") {
		t.Fatalf("/commits: %v %q", ok, c.Msg.Text())
	}
	w.handle(conversation.Inbound{Chat: chat, User: vimbai, Text: "what changed?", ReplyTo: card.ID})
	a, ok := w.tg.find(group, "tag v1.4.0 by Codertocat at")
	if !ok {
		t.Fatal("what changed? does not name the tag")
	}
	for _, m := range []string{card.Msg.Text(), d.Msg.Text(), c.Msg.Text(), a.Msg.Text()} {
		if strings.Contains(m, `""`) || strings.Contains(m, "Commit  ") {
			t.Errorf("an empty commit shown: %q", m)
		}
	}
}
