package simulate

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/config/yamldoc"
)

// Bounds that keep a hostile or mistaken scenario from running for ever.
const (
	maxDuration = 7 * 24 * time.Hour
	minStep     = time.Second
	maxServices = 500
	maxItems    = 10000
	// maxChanges bounds one service's script; maxReadings the readings a run may take.
	maxChanges  = 1000
	maxReadings = 20_000_000
)

// Scenario is a parsed, validated scenario file.
type Scenario struct {
	// Name is the scenario's name (default: the file name without extension).
	Name string
	// Seed drives what is random in the simulation: people's reply jitter, metric noise,
	// the executor's backoff jitter, approval references and the simulated keys.
	Seed uint64
	// Start is the virtual time the simulation starts at.
	Start time.Time
	// Duration is how much virtual time is simulated.
	Duration time.Duration
	// Step is how often each service is measured (the poll interval, LOOP_INTERVAL_S).
	Step time.Duration
	// Tenants is the tenants file under test; Tenant the tenant simulated.
	Tenants *config.File
	Tenant  string
	// TenantsFrom names where the tenants came from (the scenario itself or a path).
	TenantsFrom string

	Services []ServiceScript
	Commits  []CommitScript
	Webhook  WebhookScript
	// LLM scripts the council's LLM lenses; nil: the offline rule lenses.
	LLM    *LLMScript
	People []PersonScript
	// Agents are AI agents of the tenant asking for approvals through the gate.
	Agents []AgentScript
	Expect []Expectation
}

// ServiceScript is one service's metrics over time.
type ServiceScript struct {
	Name string
	// Normal is the healthy reading the service starts with and returns to.
	Normal Reading
	// Noise is the ± fraction of seeded jitter on p95 and error rate (0: none).
	Noise float64
	// Script are the changes, in time order.
	Script []Change
	line   int
}

// Reading is what one measurement of a service reports.
type Reading struct {
	P95Ms     float64
	ErrorRate float64
	Requests  uint64
}

// Change is one scripted change of a service's metrics. Fields left unset keep their
// value.
type Change struct {
	At time.Duration
	// For, when set, ends the change after this long (back to what was before).
	For time.Duration
	// Ramp, when set, moves linearly from the previous values over this long.
	Ramp time.Duration
	// Flap, when set, alternates between the new and the previous values every Flap.
	Flap time.Duration
	// Recover returns the service to its normal reading.
	Recover bool
	// Set values; nil: unchanged.
	P95Ms     *float64
	ErrorRate *float64
	Requests  *uint64
}

// CommitScript is a commit pushed to the service's repository at a time. It enters the
// bot as GitHub's push delivery would: parsed by the commit package, stored, correlated
// with the service and judged by the tenant's risky_paths.
type CommitScript struct {
	At      time.Duration
	Service string
	// Repo is the service's first repository in the tenants file.
	Repo    string
	SHA     string
	Message string
	// Author is the GitHub login of the author (a person's github key maps it to them).
	Author string
	// Files are the files the commit touched.
	Files []string
}

// Webhook modes after the scripted failures.
const (
	WebhookOK      = "ok"
	WebhookError   = "error"
	WebhookTimeout = "timeout"
)

// WebhookScript is how the tenant's recovery webhook behaves.
type WebhookScript struct {
	// FailFirst calls answer Status (5xx) before Mode applies.
	FailFirst int
	// Mode is ok, error (always Status) or timeout (never answers in time).
	Mode string
	// Status is the failing status (default 503).
	Status int
	// Fixes: an executed recovery clears the fault of the incident's service.
	Fixes bool
}

// Person reactions.
const (
	DoApprove = "approve"
	DoReject  = "reject"
	DoIgnore  = "ignore"
)

// What a person reacts to.
const (
	OnAny        = "any"
	OnCard       = "card"
	OnEscalation = "escalation"
)

// PersonScript is how one person of the tenant behaves.
type PersonScript struct {
	Name string
	// Channel is where they answer (telegram or whatsapp): their identity there comes from
	// the tenants file.
	Channel string
	// After is how long they take to react; Jitter the seeded ± spread on it.
	After, Jitter time.Duration
	// Does is approve, reject or ignore.
	Does string
	// Trusts is the theory approved on a dissent card (A or B; default the first offered).
	Trusts string
	// On is what they react to: card (the incident card in the group), escalation (a
	// direct re-notification) or any.
	On string
	// Unreachable people never react.
	Unreachable bool
	// Away windows: a message that reaches them inside one is answered after it ends.
	Away []Window
	// RedriveAfter, when set, re-drives a dead-lettered recovery this long after it failed
	// (`bot dlq redrive`).
	RedriveAfter time.Duration
	line         int
}

// Window is a span of virtual time from the start.
type Window struct{ From, Until time.Duration }

// Expectation is one `expect:` assertion.
type Expectation struct {
	// Key and Text are as written (decided_within: 10m).
	Key, Text string
	Line      int
	// Op and N for counters; D for durations.
	Op string
	N  int
	D  time.Duration
}

var (
	rootKeys    = []string{"name", "seed", "start", "duration", "step", "tenant", "tenants", "tenants_file", "services", "commits", "webhook", "llm", "people", "agents", "expect"}
	serviceKeys = []string{"name", "p95_ms", "error_rate", "requests", "noise", "script"}
	changeKeys  = []string{"at", "for", "ramp", "flap", "recover", "p95_ms", "error_rate", "requests"}
	commitKeys  = []string{"at", "service", "sha", "message", "author", "files"}
	webhookKeys = []string{"fail_first", "mode", "status", "fixes"}
	personKeys  = []string{"name", "channel", "after", "jitter", "does", "trusts", "on", "unreachable", "away", "redrive_after"}
	windowKeys  = []string{"from", "until"}
	// counterKeys are the expectations compared with a number; durationKeys with a duration.
	counterKeys  = []string{"incidents", "escalations", "expired", "rejected", "refused_presses", "dlq", "executed", "suppressed", "undecided", "authorized", "webhook_failed", "redriven"}
	durationKeys = []string{"detected_within", "decided_within", "recovered_within"}
	expectKeys   = append(append(append(slices.Clone(counterKeys), agentCounterKeys...), durationKeys...), "no_execution_without")
	shaPattern   = regexp.MustCompile(`^[0-9a-f]{40}$`)
	loginPattern = regexp.MustCompile(`^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$`)
	cmpPattern   = regexp.MustCompile(`^(<=|>=|==|<|>)?\s*(\d{1,9})$`)
)

// simulatedChannels are the chat platforms the simulation has people answer on: every
// platform the bot registers (platforms).
var simulatedChannels = platformNames()

// defaultStart is where virtual time begins unless the scenario says otherwise: a fixed
// instant, so runs are reproducible.
var defaultStart = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// Load reads and parses a scenario file. A tenants_file path is relative to the scenario.
func Load(path string) (*Scenario, error) {
	data, err := yamldoc.ReadFile(path, "the scenario")
	if err != nil {
		return nil, config.Problemf(path, 0, "", errText(err))
	}
	return Parse(path, data, filepath.Dir(path))
}

func errText(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// simulatedSecret stands for every ${VAR} of the tenants file: the simulation never needs
// the production secrets.
func simulatedSecret(name string) (string, bool) {
	if strings.HasSuffix(name, "_FILE") {
		return "", false
	}
	return "simulated-" + strings.ToLower(name) + "-0123456789abcdef0123456789abcdef", true
}

// Parse parses a scenario; dir resolves a relative tenants_file. The whole file, its inline
// tenants included, is read in one YAML dialect (anchors, aliases and merge keys work
// everywhere), and every problem is reported as FILE:LINE: path: problem, like the tenants
// file's (errors.Is(err, config.ErrInvalid)).
func Parse(name string, data []byte, dir string) (*Scenario, error) {
	doc := yamldoc.Parse(name, data)
	d := &dec{Reader: doc.Reader(nil)}
	var sc *Scenario
	switch {
	case doc.Body != nil:
		sc = d.parse(dir)
	case !doc.Failed():
		d.Addf(0, "", "the scenario is empty")
	}
	if err := config.DocProblems(doc); err != nil {
		return nil, err
	}
	return sc, nil
}

// dec reads a scenario through a [yamldoc.Reader]; values are taken as written (only the
// tenants expand ${VAR}).
type dec struct {
	*yamldoc.Reader
}

// text returns the single value under key; ok false when absent, null or unusable
// (reported).
func (d *dec) text(o yamldoc.Object, key string) (string, int, bool) {
	s := d.Value(o, key)
	return s.Text, s.Line, s.Set
}

func (d *dec) duration(o yamldoc.Object, key string, min, max time.Duration) (time.Duration, bool) {
	v, s := d.DurationIn(o, key, min, max)
	return v, s.Set
}

func (d *dec) number(o yamldoc.Object, key string, min, max float64) (float64, bool) {
	v, s := d.NumberIn(o, key, min, max)
	return v, s.Set
}

func (d *dec) integer(o yamldoc.Object, key string, min, max int64) (int64, bool) {
	v, s := d.IntegerIn(o, key, min, max)
	return v, s.Set
}

func (d *dec) boolean(o yamldoc.Object, key string) (bool, bool) {
	v, s := d.Bool(o, key)
	return v, s.Set
}

func (d *dec) oneOf(o yamldoc.Object, key string, allowed []string, def string) string {
	if s := d.OneOf(o, key, allowed); s.Set {
		return s.Text
	}
	return def
}

// list returns the items under key (at most maxItems) and the key's line.
func (d *dec) list(o yamldoc.Object, key string) ([]yamldoc.Item, int) {
	items, _, _ := d.ListAt(o, key)
	if len(items) > maxItems {
		d.Addf(o.LineOf(key), o.Sub(key), "more than %d items", maxItems)
		return nil, o.LineOf(key)
	}
	return items, o.LineOf(key)
}

// object reads one item of a list as a mapping; ok false when it is not one.
func (d *dec) object(it yamldoc.Item, keys []string) (yamldoc.Object, bool) {
	o := d.Object(it.Node, it.Path, it.Line, keys)
	return o, o.Present
}

func (d *dec) parse(dir string) *Scenario {
	root := d.Root(rootKeys)
	if !root.Present {
		return nil
	}
	sc := &Scenario{Start: defaultStart, Step: 5 * time.Second, Webhook: WebhookScript{Mode: WebhookOK, Status: 503, Fixes: true}}
	file := d.Doc().File
	sc.Name = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
	if s, line, ok := d.text(root, "name"); ok {
		if len(s) == 0 || len(s) > 80 || strings.ContainsAny(s, "\r\n") {
			d.Addf(line, "name", "want one line of at most 80 characters")
		} else {
			sc.Name = s
		}
	}
	if v, ok := d.integer(root, "seed", 0, 1<<62); ok {
		sc.Seed = uint64(v)
	}
	if s, line, ok := d.text(root, "start"); ok {
		t, err := time.Parse(time.RFC3339, s)
		if err != nil {
			d.Addf(line, "start", "want an RFC 3339 time like 2026-01-05T09:00:00Z, got %q", s)
		} else {
			sc.Start = t.UTC()
		}
	}
	if v, ok := d.duration(root, "duration", time.Minute, maxDuration); ok {
		sc.Duration = v
	} else if !root.Has("duration") {
		d.Addf(root.Line, "duration", "is required (how much virtual time to simulate, e.g. 2h)")
	}
	if v, ok := d.duration(root, "step", minStep, 10*time.Minute); ok {
		sc.Step = v
	}
	d.tenants(sc, root, dir)
	d.services(sc, root)
	if sc.Duration > 0 && int64(sc.Duration/sc.Step+1)*int64(len(sc.Services)) > maxReadings {
		d.Addf(root.LineOf("duration"), "duration", "%s of %d services every %s is over %d readings; simulate less or measure less often (step)",
			sc.Duration, len(sc.Services), sc.Step, maxReadings)
	}
	d.commits(sc, root)
	d.webhook(sc, root)
	d.llm(sc, root)
	d.people(sc, root)
	d.agents(sc, root)
	d.expect(sc, root)
	return sc
}

func (d *dec) tenants(sc *Scenario, root yamldoc.Object, dir string) {
	inline := root.Has("tenants")
	path, pline, fromFile := d.text(root, "tenants_file")
	var file *config.File
	switch {
	case inline && fromFile:
		d.Addf(pline, "tenants_file", "give either tenants (inline) or tenants_file, not both")
		return
	case inline:
		if file = config.TenantsIn(d.Doc(), root, simulatedSecret, config.Env{}, tenantChannels...); file == nil {
			return
		}
		sc.TenantsFrom = "inline"
	case fromFile:
		full := path
		if !filepath.IsAbs(full) {
			full = filepath.Join(dir, path)
		}
		var err error
		file, err = config.Load(full, simulatedSecret, config.Env{}, tenantChannels...)
		var ps *config.Problems
		if errors.As(err, &ps) {
			for _, p := range ps.List {
				d.Doc().Add(yamldoc.Problem{File: p.File, Line: p.Line, Path: p.Path, Message: p.Message})
			}
			return
		}
		if err != nil {
			d.Addf(pline, "tenants_file", "%s", err.Error())
			return
		}
		sc.TenantsFrom = path
	default:
		d.Addf(root.Line, "tenants", "is required: the tenants to test, inline (tenants:) or as a path (tenants_file:)")
		return
	}
	sc.Tenants = file
	id, line, ok := d.text(root, "tenant")
	switch {
	case ok:
		if _, found := file.Tenant(id); !found {
			d.Addf(line, "tenant", "no tenant %q in the tenants", id)
			return
		}
		sc.Tenant = id
	case len(file.Tenants) == 1:
		sc.Tenant = file.Tenants[0].ID
	default:
		d.Addf(root.Line, "tenant", "is required when the tenants file has several tenants")
	}
}

func (d *dec) services(sc *Scenario, root yamldoc.Object) {
	items, line := d.list(root, "services")
	if len(items) == 0 {
		d.Addf(line, "services", "list at least one service to measure")
		return
	}
	if len(items) > maxServices {
		d.Addf(line, "services", "more than %d services", maxServices)
		return
	}
	var t *config.Tenant
	if sc.Tenants != nil {
		t, _ = sc.Tenants.Tenant(sc.Tenant)
	}
	seen := map[string]bool{}
	for _, item := range items {
		p := item.Path
		o, ok := d.object(item, serviceKeys)
		if !ok {
			continue
		}
		s := ServiceScript{Normal: Reading{P95Ms: 120, ErrorRate: 0.001, Requests: 200}, line: o.Line}
		name, nline, ok := d.text(o, "name")
		switch {
		case !ok:
			d.Addf(o.Line, p+".name", "is required")
		case seen[name]:
			d.Addf(nline, p+".name", "service %q is listed twice", name)
		case t != nil:
			if _, found := t.Service(name); !found {
				d.Addf(nline, p+".name", "tenant %s has no service %q", t.ID, name)
			}
		}
		seen[name] = true
		s.Name = name
		if v, ok := d.number(o, "p95_ms", 0, 1e7); ok {
			s.Normal.P95Ms = v
		}
		if v, ok := d.number(o, "error_rate", 0, 1); ok {
			s.Normal.ErrorRate = v
		}
		if v, ok := d.integer(o, "requests", 0, 1e9); ok {
			s.Normal.Requests = uint64(v)
		}
		if v, ok := d.number(o, "noise", 0, 0.5); ok {
			s.Noise = v
		}
		changes, cline := d.list(o, "script")
		if len(changes) > maxChanges {
			d.Addf(cline, p+".script", "more than %d changes", maxChanges)
			changes = nil
		}
		var last time.Duration = -1
		for _, c := range changes {
			cp := c.Path
			co, ok := d.object(c, changeKeys)
			if !ok {
				continue
			}
			ch := Change{}
			at, ok := d.duration(co, "at", 0, maxDuration)
			if !ok {
				if !co.Has("at") {
					d.Addf(co.Line, cp+".at", "is required")
				}
				continue
			}
			if at < last {
				d.Addf(co.LineOf("at"), cp+".at", "changes must be in time order (%s is before the previous %s)", at, last)
			}
			last, ch.At = at, at
			ch.For, _ = d.duration(co, "for", time.Second, maxDuration)
			ch.Ramp, _ = d.duration(co, "ramp", time.Second, maxDuration)
			ch.Flap, _ = d.duration(co, "flap", time.Second, maxDuration)
			ch.Recover, _ = d.boolean(co, "recover")
			if v, ok := d.number(co, "p95_ms", 0, 1e7); ok {
				ch.P95Ms = &v
			}
			if v, ok := d.number(co, "error_rate", 0, 1); ok {
				ch.ErrorRate = &v
			}
			if v, ok := d.integer(co, "requests", 0, 1e9); ok {
				n := uint64(v)
				ch.Requests = &n
			}
			if ch.Recover && (ch.P95Ms != nil || ch.ErrorRate != nil || ch.Requests != nil) {
				d.Addf(co.Line, cp, "recover: true returns to the normal reading; it takes no values")
			}
			if !ch.Recover && ch.P95Ms == nil && ch.ErrorRate == nil && ch.Requests == nil {
				d.Addf(co.Line, cp, "changes nothing: give p95_ms, error_rate, requests or recover: true")
			}
			if ch.Flap > 0 && ch.Ramp > 0 {
				d.Addf(co.Line, cp, "give ramp or flap, not both")
			}
			s.Script = append(s.Script, ch)
		}
		sc.Services = append(sc.Services, s)
	}
}

func (d *dec) person(t *config.Tenant, name string, line int, path string) (config.Person, bool) {
	if t == nil {
		return config.Person{}, false
	}
	p, ok := t.Person(name)
	if !ok {
		d.Addf(line, path, "tenant %s has no person %q", t.ID, name)
	}
	return p, ok
}

func (d *dec) commits(sc *Scenario, root yamldoc.Object) {
	items, _ := d.list(root, "commits")
	var t *config.Tenant
	if sc.Tenants != nil {
		t, _ = sc.Tenants.Tenant(sc.Tenant)
	}
	for _, item := range items {
		p := item.Path
		o, ok := d.object(item, commitKeys)
		if !ok {
			continue
		}
		var c CommitScript
		c.At, _ = d.duration(o, "at", 0, maxDuration)
		svc, sline, ok := d.text(o, "service")
		if !ok || !slices.ContainsFunc(sc.Services, func(s ServiceScript) bool { return s.Name == svc }) {
			d.Addf(sline, p+".service", "want one of the scenario's services")
		}
		c.Service = svc
		sha, shline, ok := d.text(o, "sha")
		if !ok || !shaPattern.MatchString(sha) {
			d.Addf(shline, p+".sha", "want the full commit id: 40 lowercase hex digits")
		}
		c.SHA = sha
		c.Message, _, _ = d.text(o, "message")
		if c.Message == "" {
			c.Message = "commit " + sha
		}
		if a, aline, ok := d.text(o, "author"); ok {
			if !loginPattern.MatchString(a) {
				d.Addf(aline, p+".author", "want a GitHub login, got %q", a)
			}
			c.Author = a
		} else {
			d.Addf(o.Line, p+".author", "is required: the author's GitHub login")
		}
		files, _ := d.list(o, "files")
		for _, f := range files {
			if name := d.Scalar(f.Node, f.Path, f.Line); name.Set && name.Text != "" && len(name.Text) <= 512 {
				c.Files = append(c.Files, name.Text)
			} else if !name.Bad {
				d.Addf(name.Line, f.Path, "want a file path")
			}
		}
		if len(c.Files) == 0 {
			c.Files = []string{"README.md"}
		}
		if t != nil {
			if ts, found := t.Service(svc); found {
				if len(ts.Repos) == 0 {
					d.Addf(sline, p+".service", "service %q lists no repos in the tenants file: its commits are never correlated", svc)
				} else {
					c.Repo = ts.Repos[0]
				}
			}
		}
		sc.Commits = append(sc.Commits, c)
	}
}

func (d *dec) webhook(sc *Scenario, root yamldoc.Object) {
	o := d.Field(root, "webhook", webhookKeys)
	if !o.Present {
		return
	}
	if v, ok := d.integer(o, "fail_first", 0, 1000); ok {
		sc.Webhook.FailFirst = int(v)
	}
	sc.Webhook.Mode = d.oneOf(o, "mode", []string{WebhookOK, WebhookError, WebhookTimeout}, WebhookOK)
	if v, ok := d.integer(o, "status", 400, 599); ok {
		sc.Webhook.Status = int(v)
	}
	if v, ok := d.boolean(o, "fixes"); ok {
		sc.Webhook.Fixes = v
	}
}

func (d *dec) people(sc *Scenario, root yamldoc.Object) {
	items, _ := d.list(root, "people")
	var t *config.Tenant
	if sc.Tenants != nil {
		t, _ = sc.Tenants.Tenant(sc.Tenant)
	}
	seen := map[string]bool{}
	for _, item := range items {
		p := item.Path
		o, ok := d.object(item, personKeys)
		if !ok {
			continue
		}
		ps := PersonScript{After: 2 * time.Minute, Does: DoApprove, On: OnAny, line: o.Line}
		name, nline, ok := d.text(o, "name")
		if !ok {
			d.Addf(o.Line, p+".name", "is required")
			continue
		}
		if seen[name] {
			d.Addf(nline, p+".name", "person %q is scripted twice", name)
		}
		seen[name] = true
		ps.Name = name
		cp, known := d.person(t, name, nline, p+".name")
		ps.Channel = d.oneOf(o, "channel", simulatedChannels, "")
		if known && ps.Channel == "" {
			// The first channel they have an id on; else the first channel (reported).
			ps.Channel = simulatedChannels[0]
			if i := slices.IndexFunc(simulatedChannels, func(ch string) bool { return cp.IDs[ch] != "" }); i >= 0 {
				ps.Channel = simulatedChannels[i]
			}
		}
		if known && cp.IDs[ps.Channel] == "" {
			d.Addf(o.LineOf("channel"), p+".channel", "%s has no %s identity in the tenants file", name, ps.Channel)
		}
		if v, ok := d.duration(o, "after", 0, maxDuration); ok {
			ps.After = v
		}
		if v, ok := d.duration(o, "jitter", 0, maxDuration); ok {
			ps.Jitter = v
		}
		ps.Does = d.oneOf(o, "does", []string{DoApprove, DoReject, DoIgnore}, DoApprove)
		ps.Trusts = d.oneOf(o, "trusts", []string{"A", "B"}, "")
		ps.On = d.oneOf(o, "on", []string{OnAny, OnCard, OnEscalation}, OnAny)
		ps.Unreachable, _ = d.boolean(o, "unreachable")
		ps.RedriveAfter, _ = d.duration(o, "redrive_after", time.Second, maxDuration)
		windows, _ := d.list(o, "away")
		for _, w := range windows {
			wp := w.Path
			wo, ok := d.object(w, windowKeys)
			if !ok {
				continue
			}
			from, _ := d.duration(wo, "from", 0, maxDuration)
			until, ok := d.duration(wo, "until", 0, maxDuration)
			if !ok || until <= from {
				d.Addf(wo.Line, wp+".until", "is required and must be after from")
				continue
			}
			ps.Away = append(ps.Away, Window{From: from, Until: until})
		}
		sc.People = append(sc.People, ps)
	}
}

func (d *dec) expect(sc *Scenario, root yamldoc.Object) {
	o := d.Field(root, "expect", expectKeys)
	if !o.Present {
		return
	}
	for _, key := range expectKeys {
		if !o.Has(key) {
			continue
		}
		s, line, ok := d.text(o, key)
		if !ok {
			continue
		}
		e := Expectation{Key: key, Text: s, Line: line}
		switch {
		case key == "no_execution_without":
			if s != "approval" {
				d.Addf(line, "expect."+key, "the only value is approval, got %q", s)
				continue
			}
		case slices.Contains(durationKeys, key):
			v, err := time.ParseDuration(s)
			if err != nil || v <= 0 {
				d.Addf(line, "expect."+key, "want a positive duration like 10m, got %q", s)
				continue
			}
			e.D = v
		default:
			m := cmpPattern.FindStringSubmatch(strings.TrimSpace(s))
			if m == nil {
				d.Addf(line, "expect."+key, "want a count, optionally compared: 2, == 2, <= 2, >= 1, < 3, > 0; got %q", s)
				continue
			}
			e.Op = m[1]
			if e.Op == "" {
				e.Op = "=="
			}
			e.N, _ = strconv.Atoi(m[2])
		}
		sc.Expect = append(sc.Expect, e)
	}
	sort.SliceStable(sc.Expect, func(i, j int) bool { return sc.Expect[i].Line < sc.Expect[j].Line })
}
