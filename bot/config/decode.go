package config

import (
	"fmt"

	"github.com/alertengine/alertengine/bot/config/yamldoc"
)

// maxFileSize bounds the tenants file.
const maxFileSize = yamldoc.MaxFileSize

// Keys allowed in each mapping of the file. At the top level, keys starting with "x-" are
// also allowed and ignored: they hold anchors (&name) that tenants refer to (*name).
var (
	rootKeys         = []string{"tenants"}
	tenantKeys       = []string{"id", "services", "chats", "people", "recovery", "policy", "alertmanager", "pagerduty", "grafana", "otlp", "outbound_webhooks", "limits", "agents"}
	serviceKeys      = []string{"name", "health_url", "poll_interval", "allow_private_network", "repos", "source"}
	personKeys       = []string{"name", "role", "ids", "telegram", "whatsapp", "phone", "github"}
	recoveryKeys     = []string{"url", "secret", "actions", "allow_private_network", "default_action", "timeout"}
	actionKeys       = []string{"name", "risk"}
	policyKeys       = []string{"min_score_to_alert", "approval_ttl", "escalate_after", "risky_paths", "refuse_suspect_approval"}
	alertmanagerKeys = []string{"token", "max_alerts", "expire_after"}
	tokenKeys        = []string{"token"}
	pagerdutyKeys    = []string{"service", "routing_key"}
	outhookKeys      = []string{"name", "url", "secret", "events", "allow_private_network", "timeout"}
	limitKeys        = []string{"incidents_per_hour"}
)

// Load reads the tenants file at path and parses it with [Parse]. A file that cannot be read
// is reported as a [*Problems] too (wrapping the underlying error, e.g. fs.ErrNotExist).
func Load(path string, lookup func(string) (string, bool), env Env, channels ...ChatChannel) (*File, error) {
	data, err := yamldoc.ReadFile(path, "the config file")
	if err != nil {
		ps := &Problems{}
		ps.add(Problem{File: path, Message: err.Error(), err: err})
		return nil, ps
	}
	return Parse(path, data, lookup, env, channels...)
}

// Parse parses, expands, defaults and validates a tenants file. name is used in problem lines.
// ${VAR} is looked up through lookup (or read from the file named by VAR_FILE); env supplies
// defaults (POLICY_MIN_SCORE_TO_ALERT) and, in serve mode, is checked against the chats the
// file uses. channels are the chat platforms whose chats and person ids the file may list
// (none given: the file may list no chat and no person id). All problems are collected; the error is a [*Problems]
// wrapping [ErrInvalid].
func Parse(name string, data []byte, lookup func(string) (string, bool), env Env, channels ...ChatChannel) (*File, error) {
	doc := yamldoc.Parse(name, data)
	d := newDecoder(doc, lookup, env, channels)
	var f *File
	switch {
	case doc.Body != nil:
		f = d.tenants(d.Root(rootKeys))
	case doc.Blank:
		d.Addf(0, "tenants", "the file is empty; at least one tenant is required")
	case !doc.Failed():
		d.Addf(0, "tenants", "the file has no content; at least one tenant is required")
	}
	if err := DocProblems(doc); err != nil {
		return nil, err
	}
	return f, nil
}

// TenantsIn reads the tenants of a file that holds more than tenants, such as a governance
// simulation scenario: root is the file's top level, read by the caller, and the tenants
// are under its `tenants` key, read in the same YAML dialect and with the same problems as
// [Parse]'s (added to doc). The result is nil when the tenants have problems.
func TenantsIn(doc *yamldoc.Doc, root yamldoc.Object, lookup func(string) (string, bool), env Env, channels ...ChatChannel) *File {
	before := doc.NumProblems()
	f := newDecoder(doc, lookup, env, channels).tenants(root)
	if doc.NumProblems() > before {
		return nil
	}
	return f
}

// DocProblems returns the problems of doc as a [*Problems], or nil when there are none, so
// that a caller reading a file of its own (a simulation scenario) reports like the tenants
// file.
func DocProblems(doc *yamldoc.Doc) error {
	list := doc.Problems()
	if len(list) == 0 {
		return nil
	}
	ps := &Problems{}
	for _, p := range list {
		ps.add(Problem{File: p.File, Line: p.Line, Path: p.Path, Message: p.Message})
	}
	return ps
}

// decoder reads the tenants file through a [yamldoc.Reader], expanding ${VAR} in every
// value, and checks each value with its own path and line.
type decoder struct {
	*yamldoc.Reader
	env      Env
	channels []ChatChannel
}

func newDecoder(doc *yamldoc.Doc, lookup func(string) (string, bool), env Env, channels []ChatChannel) *decoder {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	expand := func(s string) yamldoc.Expansion {
		x := expand(s, lookup)
		return yamldoc.Expansion{Value: x.value, Vars: x.vars, Problems: x.problems}
	}
	return &decoder{Reader: doc.Reader(expand), env: env, channels: channels}
}

// tenants reads the tenants key of the top level and checks what spans tenants.
func (d *decoder) tenants(root yamldoc.Object) *File {
	if !root.Present {
		if !root.Bad {
			d.Addf(1, "tenants", "is required: list at least one tenant")
		}
		return nil
	}
	f := &File{Name: d.Doc().File}
	items, present, bad := d.ListAt(root, "tenants")
	if !present {
		d.Addf(root.Line, "tenants", "is required: list at least one tenant")
		return f
	}
	if len(items) == 0 {
		if !bad {
			d.Addf(root.LineOf("tenants"), "tenants", "no tenant defined; list at least one")
		}
		return f
	}
	list, _ := d.Named(items, yamldoc.NamedList{
		NameKey: "id", Keys: tenantKeys, Noun: "tenant id",
		Empty: "empty tenant; it needs at least an id and a service",
		Valid: tenantIDPattern.MatchString,
		Invalid: func(q string) string {
			return fmt.Sprintf("tenant id %s must be 1 to 32 characters of a-z, 0-9 and -", q)
		},
	})
	tokens := map[Secret]string{}
	chats := map[string]string{} // "telegram:ID" → the tenant path that lists it
	// The intakes' secrets tell the tenant (and for PagerDuty the service) an event is
	// for, so each is one tenant's own.
	intakeSecrets := map[string]string{} // "otlp:TOKEN" → the path that has it
	for _, item := range list {
		t, m := d.tenant(item)
		for _, sec := range m.secrets {
			if first, dup := intakeSecrets[sec.key]; dup {
				d.Addf(sec.line, sec.path, "same secret as %s; each needs its own", first)
			} else {
				intakeSecrets[sec.key] = sec.path
			}
		}
		if tok := t.Alertmanager.Token; tok.IsSet() {
			if first, dup := tokens[tok]; dup {
				d.Addf(m.tokenLine, item.Path+".alertmanager.token", "same token as %s.alertmanager.token; each tenant needs its own", first)
			} else {
				tokens[tok] = item.Path
			}
		}
		// A chat belongs to one tenant: the bot tells which tenant a message is about
		// from the chat it came from.
		for _, c := range t.Chats {
			key := c.Channel + ":" + c.ID
			if first, dup := chats[key]; dup {
				d.Addf(m.chatsLine, item.Path+".chats", "chat %s is also listed by %s; a chat belongs to one tenant", key, first)
			} else {
				chats[key] = item.Path
			}
		}
		f.Tenants = append(f.Tenants, t)
	}
	return f
}

// Problemf returns a [*Problems] holding one problem, for a caller that validates a file
// of its own next to the tenants (a simulation scenario), so that its errors read and
// unwrap (errors.Is(err, ErrInvalid)) like the tenants file's.
func Problemf(file string, line int, path, message string) *Problems {
	return &Problems{List: []Problem{{File: file, Line: line, Path: path, Message: message}}}
}
