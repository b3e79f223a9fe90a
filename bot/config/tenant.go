package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/alertengine/alertengine/bot/config/yamldoc"
	"github.com/alertengine/alertengine/detector/netguard"
)

var (
	tenantIDPattern    = regexp.MustCompile(`^[a-z0-9-]{1,32}$`)
	serviceNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,62}$`)
	actionNamePattern  = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	githubLoginPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9]|-[A-Za-z0-9]){0,38}$`)
	repoPattern        = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$`)
)

// tenantMeta carries lines needed for checks across tenants.
type tenantMeta struct {
	tokenLine int
	chatsLine int
	secrets   []intakeSecret
}

// intakeSecret is a detection intake's secret as written, for the check that no two
// tenants (or services) share one.
type intakeSecret struct {
	key, path string
	line      int
}

// minIntakeSecret is the shortest token or routing key an intake accepts.
const minIntakeSecret = 16

func (d *decoder) tenant(item yamldoc.Named) (Tenant, tenantMeta) {
	o := item.Object
	t := Tenant{ID: item.Name}
	var m tenantMeta

	t.Services = d.services(o)
	t.Chats = d.chats(o)
	m.chatsLine = o.LineOf("chats")
	t.People = d.people(o)
	t.Recovery = d.recovery(o, t.People)
	t.Policy = d.policy(o)

	am := d.Field(o, "alertmanager", alertmanagerKeys)
	if am.Present {
		tok := d.Value(am, "token")
		m.tokenLine = tok.Line
		switch {
		case tok.Set && tok.Text != "":
			t.Alertmanager.Token = Secret(tok.Text)
		case !tok.Bad:
			d.Addf(tok.Line, am.Sub("token"), "is required when alertmanager is set (the bearer token this tenant's Alertmanager sends)")
		}
		if n, s := d.Integer(am, "max_alerts"); s.Set {
			if n < 1 || n > 100_000 {
				d.Addf(s.Line, am.Sub("max_alerts"), "must be from 1 to 100000, got %d", n)
			} else {
				t.Alertmanager.MaxAlerts = int(n)
			}
		}
		if v, s := d.Duration(am, "expire_after"); s.Set {
			if v < time.Minute {
				d.Addf(s.Line, am.Sub("expire_after"), "must be at least 1m, got %s", s.Text)
			} else {
				t.Alertmanager.ExpireAfter = v
			}
		}
	}

	t.OTLP.Token = d.intakeToken(o, "otlp", "the bearer token this tenant's OpenTelemetry exporters send", &m)
	t.Grafana.Token = d.intakeToken(o, "grafana", "the bearer token this tenant's Grafana contact point sends", &m)
	t.PagerDuty = d.pagerduty(o, t.Services, &m)
	for _, s := range t.Services {
		if s.Source == SourceOTLP && !t.OTLP.Token.IsSet() {
			d.Addf(o.Line, o.Sub("otlp"), "service %s has source: otlp; set otlp.token (the bearer token its exporters send)", s.Name)
		}
	}

	t.Limits.IncidentsPerHour = DefaultIncidentsPerHour
	lim := d.Field(o, "limits", limitKeys)
	if n, s := d.Integer(lim, "incidents_per_hour"); s.Set {
		if n < 1 || n > 1_000_000 {
			d.Addf(s.Line, lim.Sub("incidents_per_hour"), "must be at least 1, got %d", n)
		} else {
			t.Limits.IncidentsPerHour = int(n)
		}
	}
	return t, m
}

// A tenant's lists of named things: each item a mapping with a required, unique name.
var (
	serviceList = yamldoc.NamedList{
		Keys: serviceKeys, Noun: "service", Empty: "empty service; it needs at least a name",
		Valid: serviceNamePattern.MatchString,
		Invalid: func(q string) string {
			return fmt.Sprintf("service name %s must start with a-z or 0-9 and have at most 63 characters of a-z, 0-9, '.', '_' and '-'", q)
		},
	}
	actionList = yamldoc.NamedList{
		Keys: actionKeys, Noun: "action", Empty: "empty action; give name and risk",
		Valid: actionNamePattern.MatchString,
		Invalid: func(q string) string {
			return fmt.Sprintf("action name %s must start with a-z or 0-9 and have at most 64 characters of a-z, 0-9, '.', '_' and '-'", q)
		},
	}
	personList = yamldoc.NamedList{
		Keys: personKeys, Noun: "person", Empty: "empty person; give at least name and role",
		Valid: validPersonName, Fold: strings.ToLower,
		Invalid: func(q string) string {
			return fmt.Sprintf("name %s must be 1 to 64 printable characters without leading or trailing spaces", q)
		},
	}
)

// requiredList reads the list under key of o, which must have at least one item; what says
// what to list ("at least one service", "the actions the webhook can do").
func (d *decoder) requiredList(o yamldoc.Object, key, what, noun string) []yamldoc.Item {
	items, present, bad := d.ListAt(o, key)
	switch {
	case !present:
		d.Addf(o.Line, o.Sub(key), "is required: list %s", what)
	case len(items) == 0 && !bad:
		d.Addf(o.LineOf(key), o.Sub(key), "no %s defined; list at least one", noun)
	}
	return items
}

func (d *decoder) services(o yamldoc.Object) []Service {
	items := d.requiredList(o, "services", "at least one service", "service")
	list, _ := d.Named(items, serviceList)
	var out []Service
	repoOf := map[string]string{} // lower-case owner/name → the service path mapping it
	for _, item := range list {
		so := item.Object
		s := Service{Name: item.Name}
		u := d.Value(so, "health_url")
		if u.Set {
			if msg := checkHTTPURL(u.Text); msg != "" {
				d.Addf(u.Line, so.Sub("health_url"), "%s", msg)
			} else {
				s.HealthURL = u.Text
			}
		}
		if allow, a := d.Bool(so, "allow_private_network"); a.Set {
			if allow && !u.Set && !u.Bad {
				d.Addf(a.Line, so.Sub("allow_private_network"), "applies only to a polled service: set health_url too (push-mode services are never polled)")
			}
			s.AllowPrivateNetwork = allow
		}
		if v, pi := d.Duration(so, "poll_interval"); pi.Set {
			switch {
			case !u.Set && !u.Bad:
				d.Addf(pi.Line, so.Sub("poll_interval"), "applies only to a polled service: set health_url too (push-mode services are never polled)")
			case v < MinPollInterval || v%time.Second != 0:
				d.Addf(pi.Line, so.Sub("poll_interval"), "must be whole seconds, at least 1s, got %s", pi.Quoted())
			default:
				s.PollInterval = v
			}
		}
		if kind := nonPublicHost(s.HealthURL); kind != "" && !s.AllowPrivateNetwork {
			d.Addf(u.Line, so.Sub("health_url"), "the host is a %s address: the health poller refuses it unless allow_private_network: true", kind)
		}
		if src := d.OneOf(so, "source", []string{SourcePush, SourceOTLP}); src.Set && !src.Bad {
			if src.Text == SourceOTLP && (u.Set || u.Bad) {
				d.Addf(src.Line, so.Sub("source"), "a service measured from OTLP metrics is not polled: drop health_url or the source")
			}
			s.Source = src.Text
		}
		repos, _ := d.Values(so, "repos")
		for j, r := range repos {
			rp := fmt.Sprintf("%s[%d]", so.Sub("repos"), j)
			if !repoPattern.MatchString(r.Text) || strings.HasSuffix(r.Text, "/.") || strings.HasSuffix(r.Text, "/..") {
				d.Addf(r.Line, rp, "repository %s must be owner/name (e.g. acme/checkout)", r.Quoted())
				continue
			}
			if first, dup := repoOf[strings.ToLower(r.Text)]; dup {
				d.Addf(r.Line, rp, "repository %s is also mapped by %s; a repository belongs to one service of a tenant", r.Quoted(), first)
				continue
			}
			repoOf[strings.ToLower(r.Text)] = rp
			s.Repos = append(s.Repos, r.Text)
		}
		out = append(out, s)
	}
	return out
}

// chats reads `chats: {<channel>: [ids]}`: each id checked by its channel, in the order of
// the channels, then of the file.
func (d *decoder) chats(o yamldoc.Object) []Chat {
	var out []Chat
	co := d.FieldOf(o, "chats", yamldoc.Keys{Names: channelNames(d.channels), Noun: "channel"})
	for _, ch := range d.channels {
		values, _ := d.Values(co, ch.Name)
		seen := map[string]bool{}
		n := 0
		for i, s := range values {
			ip := fmt.Sprintf("%s[%d]", co.Sub(ch.Name), i)
			id, err := ch.chat(s.Text)
			if err != nil {
				d.Addf(s.Line, ip, "%s, got %s", err, s.Quoted())
				continue
			}
			if seen[id] {
				d.Addf(s.Line, ip, "chat %s is listed twice", id)
				continue
			}
			seen[id] = true
			out = append(out, Chat{Channel: ch.Name, ID: id})
			n++
		}
		if n > 0 && d.env.Mode == Serve && ch.Enabled != nil && !ch.Enabled(d.env) {
			d.Addf(co.LineOf(ch.Name), co.Sub(ch.Name), "%s chats are listed but %s", ch.title(), ch.Setting)
		}
	}
	return out
}

// legacyIDKeys are the person keys that held ids before `ids:`; still read as they were.
var legacyIDKeys = []string{"telegram", "whatsapp"}

func (d *decoder) people(o yamldoc.Object) []Person {
	items, _, _ := d.ListAt(o, "people")
	list, _ := d.Named(items, personList)
	var out []Person
	owner := map[string]string{} // "channel:id" → the person path that has it
	logins := map[string]string{}
	for _, item := range list {
		po := item.Object
		person := Person{Name: item.Name}
		role := d.Value(po, "role")
		switch {
		case role.Set && (role.Text == string(RoleApprover) || role.Text == string(RoleViewer)):
			person.Role = Role(role.Text)
		case role.Set:
			d.Addf(role.Line, po.Sub("role"), "role %s must be approver or viewer", role.Quoted())
		case !role.Bad:
			d.Addf(po.Line, po.Sub("role"), "is required (approver or viewer)")
		}

		// ids: {<channel>: id}, and the older telegram: and whatsapp: keys.
		given := false
		idso := d.FieldOf(po, "ids", yamldoc.Keys{Names: channelNames(d.channels), Noun: "channel"})
		type idAt struct {
			s    yamldoc.Scalar
			path string
		}
		byChannel := map[string]idAt{}
		given = idso.Bad
		for _, ch := range d.channels {
			if s := d.Value(idso, ch.Name); s.Set || s.Bad {
				given = true
				if s.Set {
					byChannel[ch.Name] = idAt{s, idso.Sub(ch.Name)}
				}
			}
		}
		for _, key := range legacyIDKeys {
			if !po.Has(key) {
				continue
			}
			s := d.Value(po, key)
			given = given || s.Set || s.Bad
			switch {
			case !s.Set:
			case channelByName(d.channels, key) == nil:
				d.Addf(s.Line, po.Sub(key), "no channel %s is registered (registered: %s)", key, strings.Join(channelNames(d.channels), ", "))
			case idso.Has(key):
				d.Addf(s.Line, po.Sub(key), "also given as %s; give it once", idso.Sub(key))
			default:
				byChannel[key] = idAt{s, po.Sub(key)}
			}
		}
		for _, ch := range d.channels {
			at, ok := byChannel[ch.Name]
			if !ok {
				continue
			}
			id, err := ch.person(at.s.Text)
			if err != nil {
				d.Addf(at.s.Line, at.path, "%s, got %s", err, at.s.Quoted())
				continue
			}
			key := ch.Name + ":" + id
			if first, dup := owner[key]; dup {
				d.Addf(at.s.Line, at.path, "%s user %s is also %s", ch.title(), id, first)
				continue
			}
			owner[key] = item.Path
			if person.IDs == nil {
				person.IDs = map[string]string{}
			}
			person.IDs[ch.Name] = id
		}

		if s := d.Value(po, "phone"); s.Set {
			if !e164Pattern.MatchString(s.Text) {
				d.Addf(s.Line, po.Sub("phone"), "want an E.164 number like \"+263771234567\", got %s", s.Quoted())
			} else {
				person.Phone = s.Text
			}
		}
		if s := d.Value(po, "github"); s.Set {
			l := strings.TrimPrefix(s.Text, "@")
			switch {
			case !githubLoginPattern.MatchString(l):
				d.Addf(s.Line, po.Sub("github"), "want a GitHub login (1 to 39 characters of a-z, 0-9 and single hyphens), got %s", s.Quoted())
			case logins[strings.ToLower(l)] != "":
				d.Addf(s.Line, po.Sub("github"), "GitHub login %s is also %s", l, logins[strings.ToLower(l)])
			default:
				person.GitHub = l
				logins[strings.ToLower(l)] = item.Path
			}
		}
		if person.Role == RoleApprover && len(person.IDs) == 0 && !given {
			d.Addf(po.Line, item.Path, "approver %q has no chat identity (set ids: {%s: …})", person.Name, strings.Join(channelNames(d.channels), ": …} or {"))
		}
		out = append(out, person)
	}
	return out
}

func validPersonName(s string) bool {
	if s == "" || len(s) > 64 || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
		return false
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return false
		}
	}
	return true
}

func (d *decoder) recovery(o yamldoc.Object, people []Person) Recovery {
	var r Recovery
	ro := d.Field(o, "recovery", recoveryKeys)
	if !ro.Present {
		return r
	}
	u := d.Value(ro, "url")
	switch {
	case u.Set:
		if msg := checkHTTPURL(u.Text); msg != "" {
			d.Addf(u.Line, ro.Sub("url"), "%s", msg)
		} else {
			r.URL = u.Text
		}
	case !u.Bad:
		d.Addf(ro.Line, ro.Sub("url"), "is required (the tenant's recovery webhook)")
	}
	sec := d.Value(ro, "secret")
	switch {
	case sec.Set && sec.Text != "":
		r.Secret = Secret(sec.Text)
	case !sec.Bad:
		d.Addf(sec.Line, ro.Sub("secret"), "is required (the HMAC key the webhook verifies; e.g. secret: ${ACME_RECOVERY_SECRET})")
	}
	r.AllowPrivateNetwork, _ = d.Bool(ro, "allow_private_network")
	if v, s := d.Duration(ro, "timeout"); s.Set {
		if v < MinRecoveryTimeout || v > MaxRecoveryTimeout {
			d.Addf(s.Line, ro.Sub("timeout"), "must be from 1s to 5m (one webhook call, the receiver's work included), got %s", s.Quoted())
		} else {
			r.Timeout = v
		}
	}

	items := d.requiredList(ro, "actions", "the actions the webhook can do", "action")
	list, defined := d.Named(items, actionList)
	for _, item := range list {
		ao := item.Object
		a := Action{Name: item.Name}
		risk := d.Value(ao, "risk")
		switch {
		case risk.Set && (risk.Text == string(RiskLow) || risk.Text == string(RiskHigh)):
			a.Risk = Risk(risk.Text)
		case risk.Set:
			d.Addf(risk.Line, ao.Sub("risk"), "risk %s must be low or high", risk.Quoted())
		case !risk.Bad:
			d.Addf(ao.Line, ao.Sub("risk"), "is required (low or high)")
		}
		r.Actions = append(r.Actions, a)
	}
	approvers := 0
	for _, p := range people {
		if p.Role == RoleApprover {
			approvers++
		}
	}
	if len(r.Actions) > 0 && approvers == 0 {
		d.Addf(o.LineOf("people"), o.Sub("people"), "no approver: recovery actions could never be approved (give someone role: approver)")
	}

	if def := d.Value(ro, "default_action"); def.Set {
		if _, ok := defined[def.Text]; !ok {
			d.Addf(def.Line, ro.Sub("default_action"), "action %s is not defined in %s", def.Quoted(), ro.Sub("actions"))
		} else {
			r.DefaultAction = def.Text
		}
	} else if !def.Bad {
		for _, a := range r.Actions {
			if a.Risk == RiskLow {
				r.DefaultAction = a.Name
				break
			}
		}
	}
	return r
}

func (d *decoder) policy(o yamldoc.Object) Policy {
	p := Policy{
		MinScoreToAlert:       DefaultPolicyMinScoreToAlert,
		ApprovalTTL:           DefaultApprovalTTL,
		EscalateAfter:         DefaultEscalateAfter,
		RiskyPaths:            DefaultRiskyPaths(),
		RefuseSuspectApproval: true,
	}
	if d.env.Mode != 0 {
		p.MinScoreToAlert = d.env.PolicyMinScoreToAlert
	}
	po := d.Field(o, "policy", policyKeys)
	if n, s := d.Integer(po, "min_score_to_alert"); s.Set {
		if n < 0 || n > 100 {
			d.Addf(s.Line, po.Sub("min_score_to_alert"), "must be from 0 to 100, got %d", n)
		} else {
			p.MinScoreToAlert = int(n)
		}
	}
	if v, s := d.Duration(po, "approval_ttl"); s.Set {
		if v <= 0 {
			d.Addf(s.Line, po.Sub("approval_ttl"), "must be greater than 0, got %s", s.Quoted())
		} else {
			p.ApprovalTTL = v
		}
	}
	if v, s := d.Duration(po, "escalate_after"); s.Set {
		if v <= 0 {
			d.Addf(s.Line, po.Sub("escalate_after"), "must be greater than 0, got %s", s.Quoted())
		} else {
			p.EscalateAfter = v
		}
	}
	if v, s := d.Bool(po, "refuse_suspect_approval"); s.Set {
		p.RefuseSuspectApproval = v
	}
	if paths, present := d.Values(po, "risky_paths"); present {
		p.RiskyPaths = []string{}
		for i, s := range paths {
			if _, err := path.Match(s.Text, ""); err != nil || strings.TrimSpace(s.Text) == "" {
				d.Addf(s.Line, fmt.Sprintf("%s[%d]", po.Sub("risky_paths"), i), "malformed pattern %s", s.Quoted())
				continue
			}
			p.RiskyPaths = append(p.RiskyPaths, s.Text)
		}
	}
	return p
}

// nonPublicHost names the kind of a health URL whose host is, as written, an address the
// poller's dial guard refuses (an IP literal, localhost), or "". A name is judged when it
// is dialled.
func nonPublicHost(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return ""
	}
	host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return "loopback"
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	return netguard.Classify(a)
}

// intakeToken reads `KEY: {token: …}`, the bearer token of a detection intake; unset when
// the key is absent.
func (d *decoder) intakeToken(o yamldoc.Object, key, what string, m *tenantMeta) Secret {
	io := d.Field(o, key, tokenKeys)
	if !io.Present {
		return ""
	}
	tok := d.Value(io, "token")
	switch {
	case tok.Bad:
		return ""
	case !tok.Set || tok.Text == "":
		d.Addf(tok.Line, io.Sub("token"), "is required when %s is set (%s)", key, what)
		return ""
	case utf8.RuneCountInString(tok.Text) < minIntakeSecret:
		d.Addf(tok.Line, io.Sub("token"), "must be at least %d characters", minIntakeSecret)
		return ""
	}
	m.secrets = append(m.secrets, intakeSecret{key: key + ":" + tok.Text, path: io.Sub("token"), line: tok.Line})
	return Secret(tok.Text)
}

// pagerduty reads `pagerduty: [{service, routing_key}]`: the PagerDuty Events API v2
// routing keys that open incidents on the tenant's services.
func (d *decoder) pagerduty(o yamldoc.Object, services []Service, m *tenantMeta) []PagerDutyKey {
	items, _, _ := d.ListAt(o, "pagerduty")
	var out []PagerDutyKey
	for _, it := range items {
		po := d.Object(it.Node, it.Path, it.Line, pagerdutyKeys)
		if !po.Present {
			continue
		}
		svc := d.Value(po, "service")
		key := d.Value(po, "routing_key")
		ok := true
		switch {
		case svc.Bad:
			ok = false
		case !svc.Set || svc.Text == "":
			d.Addf(po.Line, po.Sub("service"), "is required: the service this routing key's events are about")
			ok = false
		case !hasService(services, svc.Text):
			d.Addf(svc.Line, po.Sub("service"), "%s is not a service of this tenant", svc.Quoted())
			ok = false
		}
		switch {
		case key.Bad:
			ok = false
		case !key.Set || key.Text == "":
			d.Addf(po.Line, po.Sub("routing_key"), "is required: the integration key the sender puts in routing_key")
			ok = false
		case utf8.RuneCountInString(key.Text) < minIntakeSecret:
			d.Addf(key.Line, po.Sub("routing_key"), "must be at least %d characters", minIntakeSecret)
			ok = false
		}
		if !ok {
			continue
		}
		m.secrets = append(m.secrets, intakeSecret{key: "pagerduty:" + key.Text, path: po.Sub("routing_key"), line: key.Line})
		out = append(out, PagerDutyKey{Service: svc.Text, RoutingKey: Secret(key.Text)})
	}
	return out
}

func hasService(services []Service, name string) bool {
	for _, s := range services {
		if s.Name == name {
			return true
		}
	}
	return false
}
