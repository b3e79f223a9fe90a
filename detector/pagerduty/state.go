package pagerduty

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// The alerts of a service are one Redis hash (key "pd" beside the detector's): field
// FIELD (16 hex digits of the dedup_key's SHA-256, so a field is bounded whatever the
// sender's key) → "INCIDENT FLAGS", FLAGS holding "o" when this alert's trigger opened the
// incident (its resolve may close it), "j" when it joined an incident something else
// opened (it never closes it), and "a" once acknowledged.

// field names a dedup_key in the hash.
func field(dedup string) string {
	sum := sha256.Sum256([]byte(dedup))
	return hex.EncodeToString(sum[:8])
}

func (r *Receiver) stateKey(k *routingKey) string { return r.d.ServiceKey(k.tenant, k.service, "pd") }

// resolveScript forgets field ARGV[1] of KEYS[1] and returns {its value or "", how many
// other fields hold the same incident}.
var resolveScript = redis.NewScript(`
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return {'', 0} end
redis.call('HDEL', KEYS[1], ARGV[1])
local inc = string.match(v, '^(%S+)')
local n = 0
for _, w in ipairs(redis.call('HVALS', KEYS[1])) do
  if string.match(w, '^(%S+)') == inc then n = n + 1 end
end
return {v, n}
`)

// handle records an accepted event.
func (r *Receiver) handle(ctx context.Context, k *routingKey, ev Event) error {
	switch ev.EventAction {
	case Trigger:
		return r.trigger(ctx, k, ev)
	case Acknowledge:
		return r.acknowledge(ctx, k, ev)
	}
	return r.resolve(ctx, k, ev)
}

func (r *Receiver) get(ctx context.Context, k *routingKey, f string) (incident, flags string, err error) {
	rctx, cancel := r.d.RedisContext(ctx)
	defer cancel()
	v, err := r.rdb.HGet(rctx, r.stateKey(k), f).Result()
	if errors.Is(err, redis.Nil) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("read alert state: %w", err)
	}
	incident, flags, _ = strings.Cut(v, " ")
	return incident, flags, nil
}

func (r *Receiver) set(ctx context.Context, k *routingKey, f, incident, flags string) error {
	rctx, cancel := r.d.RedisContext(ctx)
	defer cancel()
	if err := r.rdb.HSet(rctx, r.stateKey(k), f, incident+" "+flags).Err(); err != nil {
		return fmt.Errorf("remember alert: %w", err)
	}
	return nil
}

func (r *Receiver) trigger(ctx context.Context, k *routingKey, ev Event) error {
	f := field(ev.DedupKey)
	inc, _, err := r.get(ctx, k, f)
	if err != nil {
		return err
	}
	if inc != "" {
		stage, err := r.d.Stage(ctx, k.tenant, inc)
		if err != nil {
			return err
		}
		if stage.Open() {
			// PagerDuty adds a log entry to the open alert; here the incident already says it.
			r.stats.duplicates.Add(1)
			return nil
		}
	}
	p := ev.Payload
	summary := ledger.Clip(strings.TrimSpace(p.Summary), 300)
	reason := ledger.ClipText("pagerduty: " + summary)
	res, err := r.d.Alert(ctx, detector.AlertEvent{Source: Source, Tenant: k.tenant, Service: k.service, State: detector.AlertFiring,
		Key: ev.DedupKey, Reason: reason, Update: ledger.ClipText("pagerduty: alert joined: " + summary),
		Note: ledger.ClipText("PagerDuty: " + summary), Data: triggerData(ev)})
	if err != nil {
		return err
	}
	if res.Outcome == detector.OutcomeSuppressed {
		return nil // nothing remembered: a later trigger tries again
	}
	flags := "j"
	if res.Owned {
		flags = "o"
	}
	return r.set(ctx, k, f, res.Incident, flags)
}

// triggerData is what a trigger records: the alert's identity and PD-CEF fields, its
// links and images (at most maxContexts each), custom_details as compact JSON (clipped).
func triggerData(ev Event) map[string]string {
	p := ev.Payload
	m := map[string]string{
		"dedup_key": ev.DedupKey, "severity": p.Severity, "alertname": p.Class, "host": p.Source,
		"component": p.Component, "group": p.Group, "class": p.Class, "client": ev.Client, "client_url": ev.ClientURL,
		"summary": p.Summary,
	}
	if len(p.CustomDetails) > 0 && string(p.CustomDetails) != "null" {
		m["custom_details"] = string(p.CustomDetails)
	}
	for i, l := range ev.Links {
		if i == maxContexts {
			m["links_dropped"] = strconv.Itoa(len(ev.Links) - maxContexts)
			break
		}
		n := strconv.Itoa(i + 1)
		m["link_"+n+"_url"], m["link_"+n+"_text"] = l.Href, l.Text
	}
	for i, im := range ev.Images {
		if i == maxContexts {
			break
		}
		n := strconv.Itoa(i + 1)
		m["image_"+n+"_url"], m["image_"+n+"_alt"] = im.Src, im.Alt
	}
	for k, v := range m {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = ledger.ClipText(v)
		}
	}
	return m
}

func (r *Receiver) acknowledge(ctx context.Context, k *routingKey, ev Event) error {
	f := field(ev.DedupKey)
	inc, flags, err := r.get(ctx, k, f)
	if err != nil {
		return err
	}
	if inc == "" || strings.Contains(flags, "a") {
		// PagerDuty drops an acknowledgement of an alert it does not have open.
		r.stats.duplicates.Add(1)
		r.log.Info("pagerduty acknowledge of an unknown or acknowledged alert: no effect", "tenant", k.tenant, "service", k.service,
			"dedup_key", ledger.Clip(ev.DedupKey, 80))
		return nil
	}
	who := "the sender"
	if ev.Client != "" {
		who = ledger.Clip(ev.Client, 80)
	}
	res, err := r.d.Alert(ctx, detector.AlertEvent{Source: Source, Tenant: k.tenant, Service: k.service, State: detector.AlertAcknowledged,
		Key: ev.DedupKey, Incident: inc, Reason: "pagerduty: alert acknowledged in " + who,
		Note: "PagerDuty: the alert was acknowledged in " + who + ".", By: ledger.Actor{Kind: ledger.ActorSystem, ID: string(Source)},
		Data: map[string]string{"dedup_key": ledger.ClipText(ev.DedupKey)}})
	if err != nil {
		return err
	}
	if res.Outcome == detector.OutcomeNoIncident {
		r.stats.duplicates.Add(1)
	}
	return r.set(ctx, k, f, inc, flags+"a")
}

func (r *Receiver) resolve(ctx context.Context, k *routingKey, ev Event) error {
	f := field(ev.DedupKey)
	rctx, cancel := r.d.RedisContext(ctx)
	v, err := resolveScript.Run(rctx, r.rdb, []string{r.stateKey(k)}, f).Slice()
	cancel()
	if err != nil || len(v) != 2 {
		return fmt.Errorf("forget alert: %w", err)
	}
	val, _ := v[0].(string)
	others, _ := v[1].(int64)
	inc, flags, _ := strings.Cut(val, " ")
	log := r.log.With("tenant", k.tenant, "service", k.service, "dedup_key", ledger.Clip(ev.DedupKey, 80), "incident", inc)
	switch {
	case inc == "":
		r.stats.duplicates.Add(1)
		log.Info("pagerduty resolve of an unknown dedup_key: no effect")
		return nil
	case !strings.Contains(flags, "o"):
		r.stats.duplicates.Add(1)
		log.Info("pagerduty resolve of an alert that joined an incident opened by something else: that source closes it")
		return nil
	case others > 0:
		log.Info("pagerduty resolve: other alerts of the incident still fire", "firing", others)
		return nil
	}
	_, err = r.d.Alert(ctx, detector.AlertEvent{Source: Source, Tenant: k.tenant, Service: k.service, State: detector.AlertResolved,
		Key: ev.DedupKey, Incident: inc, Reason: "pagerduty: the alert resolved",
		Data: map[string]string{"dedup_key": ledger.ClipText(ev.DedupKey)}})
	if err != nil {
		// Remembered again, so the sender's retry closes it.
		if serr := r.set(ctx, k, f, inc, flags); serr != nil {
			return errors.Join(err, serr)
		}
		return err
	}
	return nil
}
