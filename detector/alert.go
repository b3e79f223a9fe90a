package detector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
)

// AlertState is what an alert from outside says.
type AlertState string

// Alert states.
const (
	// AlertFiring: the alert fires (anew). It opens an incident, or records one update on the
	// service's open one.
	AlertFiring AlertState = "firing"
	// AlertResolved: the alert that held AlertEvent.Incident resolved, and the source holds no
	// other firing alert for the service: the incident closes by its stage.
	AlertResolved AlertState = "resolved"
	// AlertAcknowledged: someone outside (an on-call tool, a person in it) acknowledged the
	// alert that holds AlertEvent.Incident. It is recorded on the incident, which stays
	// open.
	AlertAcknowledged AlertState = "acknowledged"
)

// AlertEvent is one alert from an intake that decides for itself (Alertmanager,
// PagerDuty's Events API, Grafana): the detector does not judge it, it records it.
type AlertEvent struct {
	Source          Source
	Tenant, Service string
	State           AlertState
	// Key is the sender's identity of the alert (a fingerprint, a dedup key), for the
	// logs.
	Key string
	// Incident is the incident the source holds for the alert (AlertResolved, AlertAcknowledged).
	Incident string
	// Reason is the ledger reason: of the DETECTED entry (AlertFiring), of the close
	// (AlertResolved), of the acknowledgement.
	Reason string
	// Update is the reason of the update recorded when the service already has an open
	// incident (AlertFiring); "" uses Reason.
	Update string
	// Note, when set, is told in the incident's thread (Event.Note): what joined the open
	// incident (AlertFiring on an open incident), why it closed (AlertResolved).
	Note string
	// Data is recorded on the entry ("source" is set to Source).
	Data map[string]string
	// By is who acknowledged (AlertAcknowledged): an actor from outside the bot, such as
	// {system, "pagerduty"}. Zero: {system, Source}.
	By ledger.Actor
	// At is when the alert was received; zero: the detector's clock.
	At time.Time
}

// Outcomes of Alert.
const (
	OutcomeOpened       = "opened"
	OutcomeUpdated      = "updated"
	OutcomeSuppressed   = "suppressed"
	OutcomeRecovered    = "recovered"
	OutcomeResolved     = "resolved"
	OutcomePending      = "pending"     // healthy, but the incident's action is executing: closed by Settle
	OutcomeNoIncident   = "no_incident" // nothing to close or acknowledge (already closed)
	OutcomeAcknowledged = "acknowledged"
)

// AlertResult is what Alert did.
type AlertResult struct {
	// Outcome is one of the Outcome constants.
	Outcome string
	// Incident is the incident opened, updated, closed or acknowledged.
	Incident string
	// Owned (AlertFiring): the incident was opened by this source, so the source's resolve
	// closes it. An incident opened by the metrics (or another source) is closed by them.
	Owned bool
}

// Alert records an alert from outside: a firing alert opens an incident for the service
// (within the tenant's incidents-per-hour limit, suppressed and reported once otherwise)
// or records one update on its open incident — an open incident whose approval expired
// is closed first, so the new alert reaches chat with a card of its own —; a resolved
// alert closes the incident it held by its stage (RECOVERED before authorization,
// RESOLVED after the action, pending while the action executes: Settle closes it then);
// an acknowledgement is recorded on the open incident with the outside actor. Every
// decision is emitted (Options.OnEvent) after its entry is durable.
func (d *Detector) Alert(ctx context.Context, ev AlertEvent) (AlertResult, error) {
	t, ok := d.tenants[ev.Tenant]
	if !ok || !t.watches(ev.Service) {
		return AlertResult{}, fmt.Errorf("alert %s/%s: unknown tenant or service", ev.Tenant, ev.Service)
	}
	if ev.At.IsZero() {
		ev.At = d.opts.Clock()
	}
	data := make(map[string]string, len(ev.Data)+1)
	for k, v := range ev.Data {
		if v != "" {
			data[k] = v
		}
	}
	data["source"] = string(ev.Source)
	ev.Data = data
	switch ev.State {
	case AlertFiring:
		return d.alertFiring(ctx, t, ev)
	case AlertResolved:
		return d.alertResolved(ctx, t, ev)
	case AlertAcknowledged:
		return d.alertAcknowledged(ctx, t, ev)
	}
	return AlertResult{}, fmt.Errorf("alert %s/%s: unknown state %q", ev.Tenant, ev.Service, ev.State)
}

func (d *Detector) alertEvent(kind Kind, t *Tenant, ev AlertEvent, incident, reason string) Event {
	return Event{Kind: kind, Source: ev.Source, Tenant: t.ID, Service: ev.Service, Incident: incident, At: ev.At,
		Reason: reason, PolicyVersion: t.PolicyVersion}
}

func (d *Detector) alertFiring(ctx context.Context, t *Tenant, ev AlertEvent) (AlertResult, error) {
	svc, now := ev.Service, ev.At
	lctx, lcancel := d.ledgerCtx(ctx)
	open, err := d.ledger.Store().OpenIncident(lctx, t.ID, svc)
	lcancel()
	if err != nil {
		return AlertResult{}, fmt.Errorf("open incident of %s: %w", svc, err)
	}
	if open != "" {
		if open, err = d.supersedeExpired(ctx, t, ev, open); err != nil {
			return AlertResult{}, err
		}
	}
	var res AlertResult
	var kind Kind
	switch {
	case open != "":
		upd := ev.Update
		if upd == "" {
			upd = ev.Reason
		}
		if _, err := d.record(ctx, t, ledger.Entry{Event: ledger.Update, Incident: open, Service: svc, Reason: upd, Data: ev.Data}, now); err != nil {
			return AlertResult{}, fmt.Errorf("update %s: %w", open, err)
		}
		d.stats.updated.Add(1)
		res, kind = AlertResult{Outcome: OutcomeUpdated, Incident: open}, Updated
	default:
		o, err := d.open(ctx, t, svc, now, ev.Reason, ev.Data)
		if err != nil {
			return AlertResult{}, err
		}
		switch {
		case o.suppressed:
			d.suppressed(ctx, t, svc, ev.Reason, d.alertEvent(Suppressed, t, ev, "", ev.Reason))
			return AlertResult{Outcome: OutcomeSuppressed}, nil
		case o.existing != "":
			res, kind = AlertResult{Outcome: OutcomeUpdated, Incident: o.existing}, Updated
		default:
			res, kind = AlertResult{Outcome: OutcomeOpened, Incident: o.opened, Owned: true}, Opened
		}
	}
	e := d.alertEvent(kind, t, ev, res.Incident, ev.Reason)
	if kind == Updated {
		e.Note = ledger.ClipText(ev.Note)
	}
	d.emit(ctx, e)
	if !res.Owned {
		src, err := d.openedBy(ctx, t, res.Incident)
		if err != nil {
			return AlertResult{}, err
		}
		res.Owned = src == ev.Source
	}
	return res, nil
}

// supersedeExpired closes the service's open incident when its approval expired
// (EXPIRED): nobody acted on it, and a new alert must reach chat as a new incident, not
// as an update of a thread nobody reads. It returns the incident still open ("" once
// closed).
func (d *Detector) supersedeExpired(ctx context.Context, t *Tenant, ev AlertEvent, open string) (string, error) {
	lctx, cancel := d.ledgerCtx(ctx)
	stage, err := d.ledger.Store().Stage(lctx, t.ID, open)
	cancel()
	if err != nil {
		return "", fmt.Errorf("stage of %s: %w", open, err)
	}
	if stage != ledger.Expired {
		return open, nil
	}
	note := fmt.Sprintf("its approval had expired and a new %s alert fired; it continues in a new incident", sourceTitle(ev.Source))
	why := "superseded: " + note + ": " + ev.Reason
	_, err = d.record(ctx, t, ledger.Entry{Event: ledger.Recover, Incident: open, Service: ev.Service, Reason: why,
		Data: map[string]string{"source": string(ev.Source), "superseded": "true"}}, ev.At)
	var te *ledger.TransitionError
	switch {
	case errors.As(err, &te):
		// Moved meanwhile (a fresh approval, or closed): read it again.
		d.stats.stageRaces.Add(1)
		lctx, cancel := d.ledgerCtx(ctx)
		defer cancel()
		st, serr := d.ledger.Store().Stage(lctx, t.ID, open)
		if serr != nil {
			return "", fmt.Errorf("stage of %s: %w", open, serr)
		}
		if st.Open() {
			return open, nil
		}
		return "", nil
	case err != nil:
		return "", fmt.Errorf("close expired %s: %w", open, err)
	}
	d.stats.recovered.Add(1)
	d.log.Info("expired incident superseded by a new alert", "tenant", t.ID, "service", ev.Service, "incident", open, "source", ev.Source)
	e := d.alertEvent(Recovered, t, ev, open, why)
	e.Note = note
	d.emit(ctx, e)
	return "", nil
}

// sourceTitle is a source as people write it.
func sourceTitle(s Source) string {
	switch s {
	case SourceAlertmanager:
		return "Alertmanager"
	case "pagerduty":
		return "PagerDuty"
	case "grafana":
		return "Grafana"
	}
	return string(s)
}

func (d *Detector) alertResolved(ctx context.Context, t *Tenant, ev AlertEvent) (AlertResult, error) {
	if ev.Incident == "" {
		return AlertResult{Outcome: OutcomeNoIncident}, nil
	}
	kind, done, err := d.closeIncident(ctx, t, ev.Service, ev.Incident, ev.At, ev.Reason, ev.Data)
	if err != nil {
		return AlertResult{}, err
	}
	if !done {
		// The recovery is in flight (AUTHORIZED): the close waits for its outcome, and
		// Settle does it then.
		rctx, cancel := d.redisCtx(ctx)
		defer cancel()
		if err := d.rdb.Set(rctx, d.keys.service(t.ID, ev.Service, "amclose"), ev.Incident+" "+string(ev.Source), 24*time.Hour).Err(); err != nil {
			return AlertResult{}, fmt.Errorf("remember the close of %s: %w", ev.Incident, err)
		}
		return AlertResult{Outcome: OutcomePending, Incident: ev.Incident}, nil
	}
	if kind == "" {
		return AlertResult{Outcome: OutcomeNoIncident}, nil // someone else closed it already
	}
	e := d.alertEvent(kind, t, ev, ev.Incident, ev.Reason)
	e.Note = ledger.ClipText(ev.Note)
	d.emit(ctx, e)
	if kind == Resolved {
		return AlertResult{Outcome: OutcomeResolved, Incident: ev.Incident}, nil
	}
	return AlertResult{Outcome: OutcomeRecovered, Incident: ev.Incident}, nil
}

func (d *Detector) alertAcknowledged(ctx context.Context, t *Tenant, ev AlertEvent) (AlertResult, error) {
	if ev.Incident == "" {
		return AlertResult{Outcome: OutcomeNoIncident}, nil
	}
	by := ev.By
	if by.Kind == "" {
		by = ledger.Actor{Kind: ledger.ActorSystem, ID: string(ev.Source)}
	}
	e := ledger.Entry{Event: ledger.Ack, Incident: ev.Incident, Service: ev.Service, Reason: ev.Reason, Data: ev.Data}
	_, err := d.recordAs(ctx, t, e, ev.At, by)
	var te *ledger.TransitionError
	if errors.As(err, &te) {
		return AlertResult{Outcome: OutcomeNoIncident}, nil // closed meanwhile
	}
	if err != nil {
		return AlertResult{}, fmt.Errorf("acknowledge %s: %w", ev.Incident, err)
	}
	d.stats.updated.Add(1)
	e2 := d.alertEvent(Updated, t, ev, ev.Incident, ev.Reason)
	e2.Note = ledger.ClipText(firstNonEmptyText(ev.Note, ev.Reason))
	d.emit(ctx, e2)
	return AlertResult{Outcome: OutcomeAcknowledged, Incident: ev.Incident}, nil
}

func firstNonEmptyText(xs ...string) string {
	for _, x := range xs {
		if strings.TrimSpace(x) != "" {
			return strings.TrimSpace(x)
		}
	}
	return ""
}

// Settle closes an incident whose alert resolved while its recovery was in flight
// (Alert's OutcomePending). The pipeline calls it when an execution ends (executed or
// failed); it does nothing for other incidents.
func (d *Detector) Settle(ctx context.Context, tenant, incident string) error {
	t, ok := d.tenants[tenant]
	if !ok {
		return nil
	}
	lctx, cancel := d.ledgerCtx(ctx)
	in, _, err := d.ledger.Incident(lctx, tenant, incident)
	cancel()
	if err != nil {
		return err
	}
	key := d.keys.service(tenant, in.Service, "amclose")
	rctx, cancel := d.redisCtx(ctx)
	pending, err := d.rdb.Get(rctx, key).Result()
	cancel()
	if errors.Is(err, redis.Nil) {
		return nil
	}
	if err != nil {
		return err
	}
	// "INCIDENT SOURCE"; a value of an older version is the incident alone, from
	// Alertmanager.
	inc, src, found := strings.Cut(pending, " ")
	if !found {
		src = string(SourceAlertmanager)
	}
	if inc != incident {
		return nil
	}
	ev := AlertEvent{Source: Source(src), Tenant: tenant, Service: in.Service, At: d.opts.Clock(),
		Reason: strings.ToLower(sourceTitle(Source(src))) + ": the alert resolved while the recovery ran"}
	kind, done, err := d.closeIncident(ctx, t, in.Service, incident, ev.At, ev.Reason, map[string]string{"source": src})
	if err != nil || !done {
		return err
	}
	rctx, cancel = d.redisCtx(ctx)
	d.rdb.Del(rctx, key)
	cancel()
	if kind != "" {
		d.emit(ctx, d.alertEvent(kind, t, ev, incident, ev.Reason))
	}
	return nil
}
