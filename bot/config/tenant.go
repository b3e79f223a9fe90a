package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/goccy/go-yaml/ast"

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
	idLine    int
	tokenLine int
	chatsLine int
}

func (d *decoder) tenant(n ast.Node, p string, line int) (Tenant, tenantMeta) {
	var t Tenant
	o := d.object(n, p, line, tenantKeys)
	if !o.present {
		if !o.bad {
			d.addf(line, p, "empty tenant; it needs at least an id and a service")
		}
		return t, tenantMeta{}
	}
	m := tenantMeta{idLine: o.lineOf("id")}

	id := d.field(o, "id")
	switch {
	case id.set && !tenantIDPattern.MatchString(id.text):
		d.addf(id.line, o.sub("id"), "tenant id %s must be 1 to 32 characters of a-z, 0-9 and -", id.quoted())
	case id.set:
		t.ID = id.text
	case !id.bad:
		d.addf(o.line, o.sub("id"), "is required")
	}

	t.Services = d.services(o)
	t.Chats = d.chats(o)
	m.chatsLine = o.lineOf("chats")
	t.People = d.people(o)
	t.Recovery = d.recovery(o, t.People)
	t.Policy = d.policy(o)

	am := d.object(o.entries["alertmanager"].value, o.sub("alertmanager"), o.lineOf("alertmanager"), alertmanagerKeys)
	if am.present {
		tok := d.field(am, "token")
		m.tokenLine = tok.line
		switch {
		case tok.set && tok.text != "":
			t.Alertmanager.Token = Secret(tok.text)
		case !tok.bad:
			d.addf(tok.line, am.sub("token"), "is required when alertmanager is set (the bearer token this tenant's Alertmanager sends)")
		}
		if n, s := d.integer(am, "max_alerts"); s.set {
			if n < 1 || n > 100_000 {
				d.addf(s.line, am.sub("max_alerts"), "must be from 1 to 100000, got %d", n)
			} else {
				t.Alertmanager.MaxAlerts = int(n)
			}
		}
		if v, s := d.duration(am, "expire_after"); s.set {
			if v < time.Minute {
				d.addf(s.line, am.sub("expire_after"), "must be at least 1m, got %s", s.text)
			} else {
				t.Alertmanager.ExpireAfter = v
			}
		}
	}

	t.Limits.IncidentsPerHour = DefaultIncidentsPerHour
	lim := d.object(o.entries["limits"].value, o.sub("limits"), o.lineOf("limits"), limitKeys)
	if n, s := d.integer(lim, "incidents_per_hour"); s.set {
		if n < 1 || n > 1_000_000 {
			d.addf(s.line, lim.sub("incidents_per_hour"), "must be at least 1, got %d", n)
		} else {
			t.Limits.IncidentsPerHour = int(n)
		}
	}
	return t, m
}

func (d *decoder) services(o object) []Service {
	p := o.sub("services")
	e, ok := o.entries["services"]
	if !ok {
		d.addf(o.line, p, "is required: list at least one service")
		return nil
	}
	items, bad := d.list(e.value, p, e.line)
	if len(items) == 0 && !bad {
		d.addf(e.line, p, "no service defined; list at least one")
	}
	var out []Service
	seen := map[string]string{}
	repoOf := map[string]string{} // lower-case owner/name → the service path mapping it
	for i, item := range items {
		sp := fmt.Sprintf("%s[%d]", p, i)
		so := d.object(item, sp, nodeLine(item, e.line), serviceKeys)
		if !so.present {
			if !so.bad {
				d.addf(so.line, sp, "empty service; it needs at least a name")
			}
			continue
		}
		var s Service
		name := d.field(so, "name")
		switch {
		case name.set && !serviceNamePattern.MatchString(name.text):
			d.addf(name.line, so.sub("name"), "service name %s must start with a-z or 0-9 and have at most 63 characters of a-z, 0-9, '.', '_' and '-'", name.quoted())
		case name.set:
			s.Name = name.text
			if first, dup := seen[s.Name]; dup {
				d.addf(name.line, so.sub("name"), "duplicate service %q (also %s)", s.Name, first)
			}
			seen[s.Name] = sp
		case !name.bad:
			d.addf(so.line, so.sub("name"), "is required")
		}
		u := d.field(so, "health_url")
		if u.set {
			if msg := checkHTTPURL(u.text); msg != "" {
				d.addf(u.line, so.sub("health_url"), "%s", msg)
			} else {
				s.HealthURL = u.text
			}
		}
		if allow, a := d.boolean(so, "allow_private_network"); a.set {
			if allow && !u.set && !u.bad {
				d.addf(a.line, so.sub("allow_private_network"), "applies only to a polled service: set health_url too (push-mode services are never polled)")
			}
			s.AllowPrivateNetwork = allow
		}
		if v, pi := d.duration(so, "poll_interval"); pi.set {
			switch {
			case !u.set && !u.bad:
				d.addf(pi.line, so.sub("poll_interval"), "applies only to a polled service: set health_url too (push-mode services are never polled)")
			case v < MinPollInterval || v%time.Second != 0:
				d.addf(pi.line, so.sub("poll_interval"), "must be whole seconds, at least 1s, got %s", pi.quoted())
			default:
				s.PollInterval = v
			}
		}
		if kind := nonPublicHost(s.HealthURL); kind != "" && !s.AllowPrivateNetwork {
			d.addf(u.line, so.sub("health_url"), "the host is a %s address: the health poller refuses it unless allow_private_network: true", kind)
		}
		repos, _ := d.scalars(so, "repos")
		for j, r := range repos {
			if !repoPattern.MatchString(r.text) || strings.HasSuffix(r.text, "/.") || strings.HasSuffix(r.text, "/..") {
				d.addf(r.line, fmt.Sprintf("%s[%d]", so.sub("repos"), j), "repository %s must be owner/name (e.g. acme/checkout)", r.quoted())
				continue
			}
			rp := fmt.Sprintf("%s[%d]", so.sub("repos"), j)
			if first, dup := repoOf[strings.ToLower(r.text)]; dup {
				d.addf(r.line, rp, "repository %s is also mapped by %s; a repository belongs to one service of a tenant", r.quoted(), first)
				continue
			}
			repoOf[strings.ToLower(r.text)] = rp
			s.Repos = append(s.Repos, r.text)
		}
		out = append(out, s)
	}
	return out
}

func (d *decoder) chats(o object) Chats {
	var c Chats
	co := d.object(o.entries["chats"].value, o.sub("chats"), o.lineOf("chats"), chatKeys)
	tg, _ := d.scalars(co, "telegram")
	seenTG := map[int64]bool{}
	for i, s := range tg {
		ip := fmt.Sprintf("%s[%d]", co.sub("telegram"), i)
		id, err := strconv.ParseInt(s.text, 10, 64)
		if err != nil || id == 0 {
			d.addf(s.line, ip, "want a numeric Telegram chat id (groups are negative, e.g. -1001234567890), got %s", s.quoted())
			continue
		}
		if seenTG[id] {
			d.addf(s.line, ip, "chat %d is listed twice", id)
			continue
		}
		seenTG[id] = true
		c.Telegram = append(c.Telegram, id)
	}
	wa, _ := d.scalars(co, "whatsapp")
	seenWA := map[string]bool{}
	for i, s := range wa {
		ip := fmt.Sprintf("%s[%d]", co.sub("whatsapp"), i)
		n, ok := normalizeWhatsApp(s.text)
		if !ok {
			d.addf(s.line, ip, "want an E.164 number like \"+263771234567\", got %s", s.quoted())
			continue
		}
		if seenWA[n] {
			d.addf(s.line, ip, "number %s is listed twice", n)
			continue
		}
		seenWA[n] = true
		c.WhatsApp = append(c.WhatsApp, n)
	}
	if d.env.Mode == Serve {
		if len(c.Telegram) > 0 && !d.env.TelegramEnabled() {
			d.addf(co.lineOf("telegram"), co.sub("telegram"), "Telegram chats are listed but TELEGRAM_BOT_TOKEN is not set")
		}
		if len(c.WhatsApp) > 0 && !d.env.WhatsAppEnabled() {
			d.addf(co.lineOf("whatsapp"), co.sub("whatsapp"), "WhatsApp chats are listed but WhatsApp is not configured (TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN, TWILIO_WHATSAPP_FROM)")
		}
	}
	return c
}

func (d *decoder) people(o object) []Person {
	p := o.sub("people")
	e := o.entries["people"]
	items, _ := d.list(e.value, p, o.lineOf("people"))
	var out []Person
	names := map[string]string{}
	telegram := map[int64]string{}
	whatsapp := map[string]string{}
	logins := map[string]string{}
	for i, item := range items {
		pp := fmt.Sprintf("%s[%d]", p, i)
		po := d.object(item, pp, nodeLine(item, e.line), personKeys)
		if !po.present {
			if !po.bad {
				d.addf(po.line, pp, "empty person; give at least name and role")
			}
			continue
		}
		var person Person
		name := d.field(po, "name")
		switch {
		case name.set && !validPersonName(name.text):
			d.addf(name.line, po.sub("name"), "name %s must be 1 to 64 printable characters without leading or trailing spaces", name.quoted())
		case name.set:
			person.Name = name.text
			key := strings.ToLower(name.text)
			if first, dup := names[key]; dup {
				d.addf(name.line, po.sub("name"), "duplicate person %q (also %s)", name.text, first)
			}
			names[key] = pp
		case !name.bad:
			d.addf(po.line, po.sub("name"), "is required")
		}

		role := d.field(po, "role")
		switch {
		case role.set && (role.text == string(RoleApprover) || role.text == string(RoleViewer)):
			person.Role = Role(role.text)
		case role.set:
			d.addf(role.line, po.sub("role"), "role %s must be approver or viewer", role.quoted())
		case !role.bad:
			d.addf(po.line, po.sub("role"), "is required (approver or viewer)")
		}

		id, tg := d.integer(po, "telegram")
		if s := tg; s.set {
			switch {
			case id <= 0:
				d.addf(s.line, po.sub("telegram"), "want the person's numeric Telegram user id (a positive number), got %d", id)
			case telegram[id] != "":
				d.addf(s.line, po.sub("telegram"), "Telegram user %d is also %s", id, telegram[id])
			default:
				person.Telegram = id
				telegram[id] = pp
			}
		}
		wa := d.field(po, "whatsapp")
		if s := wa; s.set {
			n, ok := normalizeWhatsApp(s.text)
			switch {
			case !ok:
				d.addf(s.line, po.sub("whatsapp"), "want an E.164 number like \"+263771234567\", got %s", s.quoted())
			case whatsapp[n] != "":
				d.addf(s.line, po.sub("whatsapp"), "WhatsApp number %s is also %s", n, whatsapp[n])
			default:
				person.WhatsApp = n
				whatsapp[n] = pp
			}
		}
		if s := d.field(po, "phone"); s.set {
			if !e164Pattern.MatchString(s.text) {
				d.addf(s.line, po.sub("phone"), "want an E.164 number like \"+263771234567\", got %s", s.quoted())
			} else {
				person.Phone = s.text
			}
		}
		if s := d.field(po, "github"); s.set {
			l := strings.TrimPrefix(s.text, "@")
			switch {
			case !githubLoginPattern.MatchString(l):
				d.addf(s.line, po.sub("github"), "want a GitHub login (1 to 39 characters of a-z, 0-9 and single hyphens), got %s", s.quoted())
			case logins[strings.ToLower(l)] != "":
				d.addf(s.line, po.sub("github"), "GitHub login %s is also %s", l, logins[strings.ToLower(l)])
			default:
				person.GitHub = l
				logins[strings.ToLower(l)] = pp
			}
		}
		if person.Role == RoleApprover && person.Telegram == 0 && person.WhatsApp == "" &&
			!tg.set && !tg.bad && !wa.set && !wa.bad {
			d.addf(po.line, pp, "approver %q has no chat identity (set telegram or whatsapp)", person.Name)
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

func (d *decoder) recovery(o object, people []Person) Recovery {
	var r Recovery
	ro := d.object(o.entries["recovery"].value, o.sub("recovery"), o.lineOf("recovery"), recoveryKeys)
	if !ro.present {
		return r
	}
	u := d.field(ro, "url")
	switch {
	case u.set:
		if msg := checkHTTPURL(u.text); msg != "" {
			d.addf(u.line, ro.sub("url"), "%s", msg)
		} else {
			r.URL = u.text
		}
	case !u.bad:
		d.addf(ro.line, ro.sub("url"), "is required (the tenant's recovery webhook)")
	}
	sec := d.field(ro, "secret")
	switch {
	case sec.set && sec.text != "":
		r.Secret = Secret(sec.text)
	case !sec.bad:
		d.addf(sec.line, ro.sub("secret"), "is required (the HMAC key the webhook verifies; e.g. secret: ${ACME_RECOVERY_SECRET})")
	}
	r.AllowPrivateNetwork, _ = d.boolean(ro, "allow_private_network")
	if v, s := d.duration(ro, "timeout"); s.set {
		if v < MinRecoveryTimeout || v > MaxRecoveryTimeout {
			d.addf(s.line, ro.sub("timeout"), "must be from 1s to 5m (one webhook call, the receiver's work included), got %s", s.quoted())
		} else {
			r.Timeout = v
		}
	}

	ap := ro.sub("actions")
	e, ok := ro.entries["actions"]
	if !ok {
		d.addf(ro.line, ap, "is required: list the actions the webhook can do")
	}
	items, bad := d.list(e.value, ap, e.line)
	if ok && len(items) == 0 && !bad {
		d.addf(e.line, ap, "no action defined; list at least one")
	}
	approvers := 0
	for _, p := range people {
		if p.Role == RoleApprover {
			approvers++
		}
	}
	seen := map[string]string{}
	for i, item := range items {
		ip := fmt.Sprintf("%s[%d]", ap, i)
		ao := d.object(item, ip, nodeLine(item, e.line), actionKeys)
		if !ao.present {
			if !ao.bad {
				d.addf(ao.line, ip, "empty action; give name and risk")
			}
			continue
		}
		var a Action
		name := d.field(ao, "name")
		switch {
		case name.set && !actionNamePattern.MatchString(name.text):
			d.addf(name.line, ao.sub("name"), "action name %s must start with a-z or 0-9 and have at most 64 characters of a-z, 0-9, '.', '_' and '-'", name.quoted())
		case name.set:
			a.Name = name.text
			if first, dup := seen[a.Name]; dup {
				d.addf(name.line, ao.sub("name"), "duplicate action %q (also %s)", a.Name, first)
			}
			seen[a.Name] = ip
		case !name.bad:
			d.addf(ao.line, ao.sub("name"), "is required")
		}
		risk := d.field(ao, "risk")
		switch {
		case risk.set && (risk.text == string(RiskLow) || risk.text == string(RiskHigh)):
			a.Risk = Risk(risk.text)
		case risk.set:
			d.addf(risk.line, ao.sub("risk"), "risk %s must be low or high", risk.quoted())
		case !risk.bad:
			d.addf(ao.line, ao.sub("risk"), "is required (low or high)")
		}
		r.Actions = append(r.Actions, a)
	}
	if len(r.Actions) > 0 && approvers == 0 {
		d.addf(o.lineOf("people"), o.sub("people"), "no approver: recovery actions could never be approved (give someone role: approver)")
	}

	if def := d.field(ro, "default_action"); def.set {
		if _, ok := seen[def.text]; !ok {
			d.addf(def.line, ro.sub("default_action"), "action %s is not defined in %s", def.quoted(), ap)
		} else {
			r.DefaultAction = def.text
		}
	} else if !def.bad {
		for _, a := range r.Actions {
			if a.Risk == RiskLow {
				r.DefaultAction = a.Name
				break
			}
		}
	}
	return r
}

func (d *decoder) policy(o object) Policy {
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
	po := d.object(o.entries["policy"].value, o.sub("policy"), o.lineOf("policy"), policyKeys)
	if n, s := d.integer(po, "min_score_to_alert"); s.set {
		if n < 0 || n > 100 {
			d.addf(s.line, po.sub("min_score_to_alert"), "must be from 0 to 100, got %d", n)
		} else {
			p.MinScoreToAlert = int(n)
		}
	}
	if v, s := d.duration(po, "approval_ttl"); s.set {
		if v <= 0 {
			d.addf(s.line, po.sub("approval_ttl"), "must be greater than 0, got %s", s.quoted())
		} else {
			p.ApprovalTTL = v
		}
	}
	if v, s := d.duration(po, "escalate_after"); s.set {
		if v <= 0 {
			d.addf(s.line, po.sub("escalate_after"), "must be greater than 0, got %s", s.quoted())
		} else {
			p.EscalateAfter = v
		}
	}
	if v, s := d.boolean(po, "refuse_suspect_approval"); s.set {
		p.RefuseSuspectApproval = v
	}
	if paths, present := d.scalars(po, "risky_paths"); present {
		p.RiskyPaths = []string{}
		for i, s := range paths {
			if _, err := path.Match(s.text, ""); err != nil || strings.TrimSpace(s.text) == "" {
				d.addf(s.line, fmt.Sprintf("%s[%d]", po.sub("risky_paths"), i), "malformed pattern %s", s.quoted())
				continue
			}
			p.RiskyPaths = append(p.RiskyPaths, s.text)
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
