package conversation

import (
	"slices"
	"time"
)

// Person is someone of a tenant's config.
type Person struct {
	Name     string
	Approver bool
	// IDs are the person's chat identities by channel (Telegram user id, WhatsApp number).
	IDs map[Channel]string
	// Phone is the number called for voice escalation (+E164), empty for none.
	Phone string
}

// Action is a recovery the tenant's webhook can run.
type Action struct {
	Name     string
	HighRisk bool
}

// Tenant is what the conversation needs of a tenant's config.
type Tenant struct {
	ID            string
	Chats         []Chat
	People        []Person
	Actions       []Action
	DefaultAction string
	Services      []string
	ApprovalTTL   time.Duration
	EscalateAfter time.Duration
	PolicyVersion string
	// SuspectsMayApprove switches separation of duties off: the authors of an incident's
	// risky commits may approve its recovery.
	SuspectsMayApprove bool
}

// Action returns the named action.
func (t *Tenant) Action(name string) (Action, bool) {
	for _, a := range t.Actions {
		if a.Name == name {
			return a, true
		}
	}
	return Action{}, false
}

// hasChat reports whether chat is one of the tenant's incident chats.
func (t *Tenant) hasChat(c Chat) bool {
	for _, x := range t.Chats {
		if x == c {
			return true
		}
	}
	return false
}

// personByID finds the configured person with chat identity u.
func (t *Tenant) personByID(u User) (Person, bool) {
	for _, p := range t.People {
		if id, ok := p.IDs[u.Channel]; ok && id == u.ID {
			return p, true
		}
	}
	return Person{}, false
}

func (t *Tenant) person(name string) (Person, bool) {
	for _, p := range t.People {
		if p.Name == name {
			return p, true
		}
	}
	return Person{}, false
}

func (t *Tenant) hasService(s string) bool {
	for _, x := range t.Services {
		if x == s {
			return true
		}
	}
	return false
}

// channels are the distinct channels of the tenant's incident chats.
func (t *Tenant) channels() []Channel {
	var out []Channel
	for _, c := range t.Chats {
		if !slices.Contains(out, c.Channel) {
			out = append(out, c.Channel)
		}
	}
	return out
}

// channelName is a channel as people write it: its transport's Capabilities.Name, else
// the channel's own name.
func (e *Engine) channelName(c Channel) string {
	if t, err := e.transport(c); err == nil {
		if n := t.Capabilities().Name; n != "" {
			return n
		}
	}
	return string(c)
}
