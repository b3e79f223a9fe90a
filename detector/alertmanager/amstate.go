package alertmanager

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// The state of a service's Alertmanager alerts is one Redis hash (keys.alertmanager):
// field "incident" is the incident they hold; every other field is "GROUP|FINGERPRINT"
// (GROUP: 16 hex digits of the group key's hash) with the value "SEENMS:STARTSAT" — when
// a notification last listed the alert firing (unix ms) and the alert's startsAt.
//
// amStateScript applies one notification (or, with an empty group, only the expiry) to
// the hash KEYS[1], atomically, so that replicas handling the same notification agree on
// what is new. ARGV: now (ms), cutoff (ms: fields last seen before it expire), group,
// full ("1": the notification lists every alert of its group, so this group's alerts it
// does not list are resolved), ttl (ms), nf, then nf pairs (fingerprint, startsAt) of
// firing alerts, then the fingerprints of resolved alerts. A resolved alert is forgotten
// from every group. An entry whose value this script did not write (an older version's)
// is adopted as seen now.
//
// It returns {firing left, incident or "", forgotten (resolved or absent), expired,
// fingerprints that are firing anew...}: anew is not firing with this startsAt in any
// group before.
var amStateScript = redis.NewScript(`
local now = ARGV[1]
local cutoff = tonumber(ARGV[2])
local g = ARGV[3]
local full = ARGV[4] == '1'
local ttl = ARGV[5]
local nf = tonumber(ARGV[6])
local firing = {}
local order = {}
local i = 7
for k = 1, nf do
  local fp = ARGV[i]
  if firing[fp] == nil then order[#order + 1] = fp end
  firing[fp] = ARGV[i + 1]
  i = i + 2
end
local resolved = {}
for k = i, #ARGV do resolved[ARGV[k]] = true end
local prefix = g .. '|'
local known = {}
local gone, expired = 0, 0
local all = redis.call('HGETALL', KEYS[1])
for k = 1, #all, 2 do
  local f, v = all[k], all[k + 1]
  if f ~= 'incident' then
    local sep = string.find(f, '|', 1, true)
    local fp = f
    if sep then fp = string.sub(f, sep + 1) end
    local seen, starts = string.match(v, '^(%d+):(.*)$')
    if seen == nil then
      seen, starts = now, v
      redis.call('HSET', KEYS[1], f, now .. ':' .. v)
    end
    if tonumber(seen) < cutoff then
      redis.call('HDEL', KEYS[1], f)
      expired = expired + 1
    elseif resolved[fp] or (full and g ~= '' and sep and string.sub(f, 1, #prefix) == prefix and firing[fp] == nil) then
      redis.call('HDEL', KEYS[1], f)
      gone = gone + 1
    else
      if known[fp] == nil then known[fp] = {} end
      known[fp][starts] = true
    end
  end
end
local out = {0, '', gone, expired}
for _, fp in ipairs(order) do
  local starts = firing[fp]
  if resolved[fp] == nil then
    if known[fp] == nil or not known[fp][starts] then out[#out + 1] = fp end
    redis.call('HSET', KEYS[1], prefix .. fp, now .. ':' .. starts)
  end
end
local inc = redis.call('HGET', KEYS[1], 'incident')
local n = redis.call('HLEN', KEYS[1])
if inc then n = n - 1 else inc = '' end
if n > 0 or inc ~= '' then redis.call('PEXPIRE', KEYS[1], ttl) end
out[1] = n
out[2] = inc
return out
`)

// amService is what one notification says about one service.
type amService struct {
	name     string
	firing   []int // indexes into the payload's alerts
	resolved []int
}

// amState is what amStateScript found for one service.
type amState struct {
	firing   int64  // alerts still firing, in any group
	incident string // the incident they hold ("" none)
	gone     int64  // alerts forgotten: resolved, or absent from their group's notification
	expired  int64  // alerts forgotten because no notification re-sent them in time
	anew     []string
}

// groupID names a group in the state's fields: its key's hash, 16 hex digits.
func groupID(groupKey string) string {
	sum := sha256.Sum256([]byte(groupKey))
	return hex.EncodeToString(sum[:8])
}

// amStateTTL is how long a service's state outlives its last write: longer than any
// expiry, so only the expiry forgets a firing alert.
func amStateTTL(t *detector.Tenant) time.Duration {
	return max(7*24*time.Hour, 2*t.AlertmanagerExpireAfter)
}

// applyState runs amStateScript for each named service in one pipeline (one round trip,
// however many services; a cluster client splits it by node).
func (am *Receiver) applyState(ctx context.Context, t *detector.Tenant, group string, full bool, p *AlertmanagerPayload,
	svcs map[string]*amService, names []string, now time.Time) (map[string]amState, error) {
	args := make([][]any, len(names))
	for i, name := range names {
		a := []any{now.UnixMilli(), now.Add(-t.AlertmanagerExpireAfter).UnixMilli(), group, boolArg(full), amStateTTL(t).Milliseconds()}
		s := svcs[name]
		if s == nil {
			a = append(a, 0)
		} else {
			a = append(a, len(s.firing))
			for _, j := range s.firing {
				a = append(a, p.Alerts[j].Fingerprint, strconv.FormatInt(p.Alerts[j].StartsAt.UnixNano(), 10))
			}
			for _, j := range s.resolved {
				a = append(a, p.Alerts[j].Fingerprint)
			}
		}
		args[i] = a
	}
	run := func() ([]*redis.Cmd, error) {
		rctx, cancel := am.redisCtx(ctx)
		defer cancel()
		pipe := am.rdb.Pipeline()
		cmds := make([]*redis.Cmd, len(names))
		for i, name := range names {
			cmds[i] = amStateScript.EvalSha(rctx, pipe, []string{am.key(t.ID, name)}, args[i]...)
		}
		_, err := pipe.Exec(rctx)
		return cmds, err
	}
	cmds, err := run()
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		rctx, cancel := am.redisCtx(ctx)
		lerr := amStateScript.Load(rctx, am.rdb).Err()
		cancel()
		if lerr != nil {
			return nil, fmt.Errorf("load the alert state script: %w", lerr)
		}
		cmds, err = run()
	}
	if err != nil {
		return nil, fmt.Errorf("apply alert state: %w", err)
	}
	out := make(map[string]amState, len(names))
	for i, name := range names {
		v, err := cmds[i].Slice()
		if err != nil || len(v) < 4 {
			return nil, fmt.Errorf("apply alert state of %s: %w", name, err)
		}
		st := amState{}
		st.firing, _ = v[0].(int64)
		st.incident, _ = v[1].(string)
		st.gone, _ = v[2].(int64)
		st.expired, _ = v[3].(int64)
		for _, x := range v[4:] {
			if fp, ok := x.(string); ok {
				st.anew = append(st.anew, fp)
			}
		}
		am.stats.expired.Add(uint64(st.expired))
		out[name] = st
	}
	return out, nil
}

func boolArg(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// forgetAnew removes the fields of alerts that a failed or suppressed decision could not
// act on, so that the next notification (Alertmanager's retry, or its next repeat) finds
// them new again.
func (am *Receiver) forgetAnew(ctx context.Context, t *detector.Tenant, svc, group string, fps []string) {
	if len(fps) == 0 {
		return
	}
	fields := make([]string, len(fps))
	for i, fp := range fps {
		fields[i] = group + "|" + fp
	}
	rctx, cancel := am.redisCtx(ctx)
	defer cancel()
	if err := am.rdb.HDel(rctx, am.key(t.ID, svc), fields...).Err(); err != nil {
		am.log.Warn("forget alertmanager alerts not acted on", "tenant", t.ID, "service", svc, "err", err)
	}
}

// processAlertmanager applies a notification. It is the group's whole state: its firing
// alerts are firing, its resolved ones resolved, and — unless Alertmanager truncated it
// (truncatedAlerts > 0) — the alerts of this group it no longer lists are resolved too.
// A firing alert that no notification re-sends within the tenant's expiry is forgotten
// (ExpireAlerts). Per service, one notification records at most one ledger entry: the
// DETECTED of a new incident, or one update naming what joined the open one (with a Note
// for its thread), or the close once no alert of the service fires in any group. Alerts
// already known are repeats: nothing is recorded for them.
func (am *Receiver) processAlertmanager(ctx context.Context, t *detector.Tenant, p AlertmanagerPayload) (AlertmanagerResult, error) {
	res := AlertmanagerResult{Tenant: t.ID, Results: make([]AlertResult, len(p.Alerts))}
	if p.TruncatedAlerts > 0 {
		am.log.Warn("alertmanager truncated the group: alerts it did not list are kept until they expire", "tenant", t.ID,
			"group", ledger.Clip(p.GroupKey, 100), "alerts", len(p.Alerts), "truncated", p.TruncatedAlerts)
	}
	sum := newDeliverySummary()
	defer func() { sum.log(am.log, t.ID, p.GroupKey, len(p.Alerts), res) }()
	watched := map[string]bool{}
	for _, s := range t.Services {
		watched[s.Name] = true
	}
	unknown := map[string]bool{}
	svcs := map[string]*amService{}
	var names []string
	for i, a := range p.Alerts {
		am.stats.alerts.Add(1)
		svc := a.Labels["service"]
		if svc == "" {
			svc = a.Labels["job"]
		}
		res.Results[i] = AlertResult{Fingerprint: a.Fingerprint, Service: ledger.ClipText(svc), Status: a.Status}
		if !watched[svc] {
			am.stats.unknown.Add(1)
			sum.ignored("unknown_service", svc, a.Labels["alertname"])
			res.Results[i].Outcome = "unknown_service"
			if name := res.Results[i].Service; !unknown[name] {
				unknown[name] = true
				res.UnknownServices = append(res.UnknownServices, name)
			}
			continue
		}
		s := svcs[svc]
		if s == nil {
			s = &amService{name: svc}
			svcs[svc] = s
			names = append(names, svc)
		}
		if a.Status == "firing" {
			s.firing = append(s.firing, i)
		} else {
			s.resolved = append(s.resolved, i)
		}
	}
	full := p.TruncatedAlerts == 0
	if full {
		// This group's alerts of the other services are absent, so resolved.
		for _, s := range t.Services {
			if svcs[s.Name] == nil {
				names = append(names, s.Name)
			}
		}
	}
	if len(names) == 0 {
		return res, nil
	}
	group := groupID(p.GroupKey)
	now := am.d.Now()
	states, err := am.applyState(ctx, t, group, full, &p, svcs, names, now)
	if err != nil {
		for _, s := range svcs {
			for _, i := range append(append([]int(nil), s.firing...), s.resolved...) {
				res.Results[i].Outcome, res.Results[i].Error = "error", "could not record the alert"
				sum.errors++
			}
		}
		return res, err
	}
	var errs []error
	for _, name := range names {
		s := svcs[name]
		if s == nil {
			s = &amService{name: name}
		}
		if err := am.decide(ctx, t, &p, group, s, states[name], now, res.Results); err != nil {
			for _, i := range append(append([]int(nil), s.firing...), s.resolved...) {
				if res.Results[i].Outcome == "" {
					res.Results[i].Outcome, res.Results[i].Error = "error", "could not record the alert"
				}
			}
			errs = sum.failed(errs, err)
		}
	}
	if sum.errors > len(errs) {
		errs = append(errs, fmt.Errorf("and %d more services not recorded", sum.errors-len(errs)))
	}
	return res, errors.Join(errs...)
}

// decide records what one notification means for one service and fills the outcome of
// its alerts.
func (am *Receiver) decide(ctx context.Context, t *detector.Tenant, p *AlertmanagerPayload, group string, s *amService, st amState, now time.Time, results []AlertResult) error {
	set := func(idx []int, outcome, incident string) {
		for _, i := range idx {
			if results[i].Outcome == "" {
				results[i].Outcome, results[i].Incident = outcome, incident
			}
		}
	}
	if len(st.anew) > 0 {
		anew := map[string]bool{}
		for _, fp := range st.anew {
			anew[fp] = true
		}
		var joined, repeats []int
		for _, i := range s.firing {
			if fp := p.Alerts[i].Fingerprint; anew[fp] {
				joined = append(joined, i)
				delete(anew, fp) // a fingerprint listed twice joins once
			} else {
				repeats = append(repeats, i)
			}
		}
		outcome, incident, err := am.amFiring(ctx, t, s.name, p, joined, now)
		if err != nil || outcome == "suppressed" {
			am.forgetAnew(ctx, t, s.name, group, st.anew)
		}
		if err != nil {
			return err
		}
		set(joined, outcome, incident)
		am.stats.duplicates.Add(uint64(len(repeats)))
		set(repeats, "duplicate", incident)
		set(s.resolved, "still_firing", incident)
		return nil
	}
	am.stats.duplicates.Add(uint64(len(s.firing)))
	set(s.firing, "duplicate", st.incident)
	switch {
	case st.firing > 0 && st.incident != "":
		set(s.resolved, "still_firing", st.incident)
		return nil
	case st.firing > 0 || st.incident == "":
		set(s.resolved, "no_incident", "")
		return nil
	}
	// Nothing of the service fires any more and its alerts hold an incident: close it.
	reason, note := closeReason(am.f.Title, p, s, st, t)
	r, err := am.d.Alert(ctx, detector.AlertEvent{Source: am.f.Source, Tenant: t.ID, Service: s.name, State: detector.AlertResolved,
		Incident: st.incident, Reason: reason, Note: note, Data: closeData(p, s, st), At: now})
	if err != nil {
		return err
	}
	if r.Outcome == detector.OutcomePending {
		// The recovery is in flight (AUTHORIZED): the close waits for its outcome, and
		// the detector's Settle does it then.
		set(s.resolved, r.Outcome, st.incident)
		return nil
	}
	rctx, cancel := am.redisCtx(ctx)
	if err := am.rdb.HDel(rctx, am.key(t.ID, s.name), amIncidentField).Err(); err != nil {
		am.log.Warn("forget alertmanager incident", "tenant", t.ID, "service", s.name, "err", err)
	}
	cancel()
	set(s.resolved, r.Outcome, r.Incident)
	return nil
}

// closeReason says why the service's alerts no longer hold its incident: its last alert
// resolved, its group stopped listing them, or they expired. note is set when the thread
// must not read "healthy again": the alerts expired, their state is unknown.
func closeReason(title string, p *AlertmanagerPayload, s *amService, st amState, t *detector.Tenant) (reason, note string) {
	prefix := strings.ToLower(title) + ": "
	switch {
	case len(s.resolved) > 0:
		return alertReason(prefix, "resolved", *p, p.Alerts[s.resolved[0]]), ""
	case st.gone > 0:
		return prefix + "the group's notification no longer lists the service's alerts: resolved", ""
	}
	note = fmt.Sprintf("no %s notification re-sent its firing alerts within %s, so their state is unknown; a new alert opens a new incident", title, t.AlertmanagerExpireAfter)
	return prefix + note, note
}

func closeData(p *AlertmanagerPayload, s *amService, st amState) map[string]string {
	if len(s.resolved) > 0 {
		return alertData(*p, p.Alerts[s.resolved[0]])
	}
	m := map[string]string{}
	if st.expired > 0 {
		m["expired_alerts"] = strconv.FormatInt(st.expired, 10)
	}
	if p.GroupKey != "" {
		m["group_key"] = ledger.ClipText(p.GroupKey)
	}
	return m
}

// amFiring acts on the alerts of one service that fire anew in a notification (joined,
// at least one): a new incident (one DETECTED entry for all of them), or one update on
// the service's open incident naming what joined. An open incident whose approval
// expired (EXPIRED) is closed first, so that the new alert opens a new incident and
// reaches chat with its card.
func (am *Receiver) amFiring(ctx context.Context, t *detector.Tenant, svc string, p *AlertmanagerPayload, joined []int, now time.Time) (outcome, incident string, err error) {
	lead := leadAlert(p, joined)
	prefix := strings.ToLower(am.f.Title) + ": "
	reason := alertReason(prefix, "firing", *p, p.Alerts[lead])
	if len(joined) > 1 {
		reason = ledger.Clip(reason+" (and "+joinedText(p, joined, lead)+")", maxReasonRunes)
	}
	data := alertData(*p, p.Alerts[lead])
	data["alerts"] = strconv.Itoa(len(joined))
	note := am.f.Title + ": " + joinedText(p, joined, -1) + " joined."

	r, err := am.d.Alert(ctx, detector.AlertEvent{Source: am.f.Source, Tenant: t.ID, Service: svc, State: detector.AlertFiring,
		Key: p.Alerts[lead].Fingerprint, Reason: reason, Update: prefix + joinedText(p, joined, -1) + " joined",
		Note: note, Data: data, At: now})
	if err != nil {
		return "", "", err
	}
	if r.Outcome == detector.OutcomeSuppressed {
		return r.Outcome, "", nil
	}
	// Alertmanager's resolved closes only an incident Alertmanager opened; one the metrics
	// opened is closed when the metrics are healthy again.
	if r.Owned {
		rctx, cancel := am.redisCtx(ctx)
		err = am.rdb.HSet(rctx, am.key(t.ID, svc), amIncidentField, r.Incident).Err()
		cancel()
		if err != nil {
			return "", "", fmt.Errorf("remember alertmanager incident: %w", err)
		}
	}
	return r.Outcome, r.Incident, nil
}

// severityRank orders the severity label: the lead alert of a notification is its most
// severe one.
func severityRank(s string) int {
	switch strings.ToLower(s) {
	case "critical", "page", "error":
		return 3
	case "warning", "warn":
		return 2
	case "info", "none":
		return 0
	}
	return 1
}

// leadAlert picks the alert that speaks for the others: the most severe, the first
// among equals.
func leadAlert(p *AlertmanagerPayload, idx []int) int {
	lead := idx[0]
	for _, i := range idx[1:] {
		if severityRank(p.Alerts[i].Labels["severity"]) > severityRank(p.Alerts[lead].Labels["severity"]) {
			lead = i
		}
	}
	return lead
}

// Bounds of a joined-alerts summary.
const (
	summaryNames     = 5
	summaryInstances = 3
)

// joinedText summarises alerts: "3 new alerts: HighLatency ×2, DiskFull ×1 on 3
// instances (10.0.0.1:9100, 10.0.0.2:9100, 10.0.0.3:9100)". With skip ≥ 0 it counts the
// others than alert skip: "2 more alerts: …".
func joinedText(p *AlertmanagerPayload, idx []int, skip int) string {
	names := map[string]int{}
	instances := map[string]bool{}
	var instList []string
	n := 0
	for _, i := range idx {
		if i == skip {
			continue
		}
		n++
		a := p.Alerts[i]
		name := a.Labels["alertname"]
		if name == "" {
			name = "unnamed"
		}
		names[ledger.Clip(name, 64)]++
		inst := firstNonEmpty(a.Labels["instance"], a.Labels["pod"])
		if inst != "" && !instances[inst] {
			instances[inst] = true
			instList = append(instList, ledger.Clip(inst, 64))
		}
	}
	order := make([]string, 0, len(names))
	for k := range names {
		order = append(order, k)
	}
	sort.Slice(order, func(i, j int) bool {
		if names[order[i]] != names[order[j]] {
			return names[order[i]] > names[order[j]]
		}
		return order[i] < order[j]
	})
	var b strings.Builder
	what := "new alert"
	if skip >= 0 {
		what = "more alert"
	}
	fmt.Fprintf(&b, "%s %s", fmtCount(n), what)
	if n != 1 {
		b.WriteByte('s')
	}
	b.WriteString(": ")
	for i, k := range order {
		if i == summaryNames {
			fmt.Fprintf(&b, ", %s other alertnames", fmtCount(len(order)-summaryNames))
			break
		}
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s ×%s", k, fmtCount(names[k]))
	}
	if len(instList) > 0 {
		fmt.Fprintf(&b, " on %s instance", fmtCount(len(instList)))
		if len(instList) != 1 {
			b.WriteByte('s')
		}
		shown := instList[:min(len(instList), summaryInstances)]
		b.WriteString(" (" + strings.Join(shown, ", "))
		if len(instList) > len(shown) {
			b.WriteString(", …")
		}
		b.WriteByte(')')
	}
	return ledger.Clip(b.String(), maxReasonRunes)
}

// fmtCount writes n with thousands separators: 10,000.
func fmtCount(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// ExpireAlerts forgets, for every service of every tenant with an Alertmanager, the
// firing alerts that no notification re-sent within the tenant's expiry, and closes the
// incident they held once none fires any more: a group that stopped notifying (its
// notifications refused, or its alerts resolved with send_resolved off) cannot keep an
// incident open for ever. Run calls it every minute; replicas may run it concurrently.
func (am *Receiver) ExpireAlerts(ctx context.Context, now time.Time) error {
	var errs []error
	for i := range am.tenants {
		t := &am.tenants[i]
		if am.f.Token(*t) == "" || len(t.Services) == 0 {
			continue
		}
		names := make([]string, len(t.Services))
		for j, s := range t.Services {
			names[j] = s.Name
		}
		states, err := am.applyState(ctx, t, "", false, &AlertmanagerPayload{}, nil, names, now)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, name := range names {
			st := states[name]
			if st.firing > 0 || st.incident == "" {
				continue
			}
			if err := am.decide(ctx, t, &AlertmanagerPayload{}, "", &amService{name: name}, st, now, nil); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
