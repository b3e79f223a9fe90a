package detector

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
)

// ErrBadPayload wraps every reason an Alertmanager body is refused.
var ErrBadPayload = errors.New("malformed Alertmanager payload")

// amStateTTL forgets the firing alerts of a service that hears nothing for a week.
const amStateTTL = 7 * 24 * time.Hour

// maxReasonRunes bounds the alert text copied into a ledger reason.
const maxReasonRunes = ledger.MaxTextRunes

// AlertmanagerPayload is the body Prometheus Alertmanager's webhook receiver posts
// (version "4").
type AlertmanagerPayload struct {
	Version           string              `json:"version"`
	GroupKey          string              `json:"groupKey"`
	TruncatedAlerts   int                 `json:"truncatedAlerts"`
	Status            string              `json:"status"`
	Receiver          string              `json:"receiver"`
	GroupLabels       map[string]string   `json:"groupLabels"`
	CommonLabels      map[string]string   `json:"commonLabels"`
	CommonAnnotations map[string]string   `json:"commonAnnotations"`
	ExternalURL       string              `json:"externalURL"`
	Alerts            []AlertmanagerAlert `json:"alerts"`
}

// AlertmanagerAlert is one alert of a payload.
type AlertmanagerAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// ParseAlertmanager decodes and checks a webhook body: one JSON object of version "4",
// status firing or resolved on the group and on every alert, every alert with labels and
// startsAt. Members this package does not know are ignored (Alertmanager adds some over
// time). An alert without a fingerprint gets one computed from its labels.
func ParseAlertmanager(body []byte) (AlertmanagerPayload, error) {
	var p AlertmanagerPayload
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&p); err != nil {
		return AlertmanagerPayload{}, fmt.Errorf("%w: %s", ErrBadPayload, ledger.ClipText(err.Error()))
	}
	if _, err := dec.Token(); err != io.EOF {
		return AlertmanagerPayload{}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadPayload)
	}
	// The reason quotes the sender: clipped, as it is logged and sent back.
	bad := func(format string, args ...any) (AlertmanagerPayload, error) {
		return AlertmanagerPayload{}, fmt.Errorf("%w: %s", ErrBadPayload, ledger.ClipText(fmt.Sprintf(format, args...)))
	}
	if p.Version != "4" {
		return bad("version %q, want \"4\"", ledger.Clip(p.Version, 40))
	}
	if p.Status != "firing" && p.Status != "resolved" {
		return bad("status %q, want firing or resolved", ledger.Clip(p.Status, 40))
	}
	for i := range p.Alerts {
		a := &p.Alerts[i]
		if a.Status != "firing" && a.Status != "resolved" {
			return bad("alerts[%d].status %q, want firing or resolved", i, ledger.Clip(a.Status, 40))
		}
		if len(a.Labels) == 0 {
			return bad("alerts[%d] has no labels", i)
		}
		if a.StartsAt.IsZero() {
			return bad("alerts[%d] has no startsAt", i)
		}
		switch {
		case a.Fingerprint == "":
			a.Fingerprint = labelFingerprint(a.Labels)
		case len(a.Fingerprint) > maxFingerprintBytes || !printable(a.Fingerprint):
			// Alertmanager's are 16 hex digits; a longer or odd one is kept as its hash, so
			// that it stays distinct and bounded (it names a Redis hash field).
			sum := sha256.Sum256([]byte(a.Fingerprint))
			a.Fingerprint = "sha256:" + hex.EncodeToString(sum[:16])
		}
	}
	return p, nil
}

// maxFingerprintBytes bounds a fingerprint kept as sent.
const maxFingerprintBytes = 64

// printable: valid UTF-8 without control characters.
func printable(s string) bool { return utf8.ValidString(s) && !containsControl(s) }

// labelFingerprint identifies an alert by its sorted labels.
func labelFingerprint(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	h := sha256.New()
	for _, k := range names {
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// AlertmanagerResult answers a webhook delivery.
type AlertmanagerResult struct {
	Tenant  string        `json:"tenant"`
	Results []AlertResult `json:"results"`
	// UnknownServices lists the services named by alerts that the tenant does not watch;
	// those alerts were accepted and ignored.
	UnknownServices []string `json:"unknown_services,omitempty"`
}

// AlertResult is what became of one alert.
type AlertResult struct {
	Fingerprint string `json:"fingerprint"`
	Service     string `json:"service,omitempty"`
	Status      string `json:"status"`
	// Outcome: opened, updated, recovered, resolved, duplicate, unknown_service,
	// suppressed, still_firing (other alerts of the service fire), no_incident, pending
	// (healthy but its action is executing) or error.
	Outcome  string `json:"outcome"`
	Incident string `json:"incident,omitempty"`
	Error    string `json:"error,omitempty"`
}

// AlertmanagerHandler serves POST /alertmanager/webhook. The caller authenticates with
// "Authorization: Bearer TOKEN", compared in constant time with every tenant's token;
// missing or wrong: 401 and nothing happens. A body over MaxBodyBytes: 413. A body that
// is not a version 4 payload: 400 naming the problem. Otherwise every alert is mapped to a
// service by its "service" label, else "job": firing opens an incident (or records an
// update on the open one), resolved closes the incident the tenant's Alertmanager holds
// once none of its alerts for that service still fires. A delivery repeated with the same
// groupKey, fingerprint, status and startsAt is processed once. 200 with an
// AlertmanagerResult; 500 if an alert could not be recorded (Alertmanager retries, and
// the alerts already processed are then duplicates).
func (d *Detector) AlertmanagerHandler() http.Handler {
	digests := make([][32]byte, len(d.opts.Tenants))
	for i, t := range d.opts.Tenants {
		digests[i] = sha256.Sum256([]byte(t.AlertmanagerToken))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		t := d.authenticate(r, digests)
		if t == nil {
			d.stats.amRefused.Add(1)
			d.log.Warn("alertmanager webhook refused: missing or wrong bearer token", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="alertengine"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		if r.ContentLength > d.opts.MaxBodyBytes {
			d.stats.amRefused.Add(1)
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", d.opts.MaxBodyBytes))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, d.opts.MaxBodyBytes))
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			d.stats.amRefused.Add(1)
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body over %d bytes", d.opts.MaxBodyBytes))
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, "could not read the body")
			return
		}
		p, err := ParseAlertmanager(body)
		if err != nil {
			d.stats.amRefused.Add(1)
			d.log.Warn("alertmanager webhook refused", "tenant", t.ID, "err", err)
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		// Once accepted, a delivery is processed to the end even if Alertmanager hangs up:
		// every call below has its own timeout.
		res, err := d.processAlertmanager(context.WithoutCancel(r.Context()), t, p)
		code := http.StatusOK
		if err != nil {
			d.log.Error("alertmanager webhook: alerts not recorded", "tenant", t.ID, "err", err)
			code = http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(res)
	})
}

func writeError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"error": msg})
}

// authenticate returns the tenant whose Alertmanager token the request carries, checking
// every tenant in constant time.
func (d *Detector) authenticate(r *http.Request, digests [][32]byte) *Tenant {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return nil
	}
	token = strings.TrimSpace(token)
	if token == "" {
		return nil
	}
	got := sha256.Sum256([]byte(token))
	match := -1
	for i, t := range d.opts.Tenants {
		eq := subtle.ConstantTimeCompare(got[:], digests[i][:])
		if eq == 1 && t.AlertmanagerToken != "" {
			match = i
		}
	}
	if match < 0 {
		return nil
	}
	return &d.opts.Tenants[match]
}

// processAlertmanager applies a payload's alerts in order.
func (d *Detector) processAlertmanager(ctx context.Context, t *Tenant, p AlertmanagerPayload) (AlertmanagerResult, error) {
	res := AlertmanagerResult{Tenant: t.ID, Results: []AlertResult{}}
	if p.TruncatedAlerts > 0 {
		d.log.Warn("alertmanager truncated the group", "tenant", t.ID, "group", ledger.Clip(p.GroupKey, 100), "truncated", p.TruncatedAlerts)
	}
	sum := newDeliverySummary()
	defer func() { sum.log(d.log, t.ID, len(p.Alerts), res) }()
	watched := map[string]bool{}
	for _, s := range t.Services {
		watched[s.Name] = true
	}
	unknown := map[string]bool{}
	var errs []error
	now := d.opts.Clock()
	for _, a := range p.Alerts {
		d.stats.amAlerts.Add(1)
		svc := a.Labels["service"]
		if svc == "" {
			svc = a.Labels["job"]
		}
		ar := AlertResult{Fingerprint: a.Fingerprint, Service: ledger.ClipText(svc), Status: a.Status}
		if !watched[svc] {
			d.stats.amUnknown.Add(1)
			sum.ignored("unknown_service", svc, a.Labels["alertname"])
			ar.Outcome = "unknown_service"
			svc = ar.Service
			if !unknown[svc] {
				unknown[svc] = true
				res.UnknownServices = append(res.UnknownServices, svc)
			}
			res.Results = append(res.Results, ar)
			continue
		}
		first, seenKey, err := d.firstDelivery(ctx, t, p, a)
		if err != nil {
			ar.Outcome, ar.Error = "error", "could not check for a duplicate delivery"
			errs = sum.failed(errs, err)
			res.Results = append(res.Results, ar)
			continue
		}
		if !first {
			d.stats.amDuplicates.Add(1)
			ar.Outcome = "duplicate"
			res.Results = append(res.Results, ar)
			continue
		}
		if a.Status == "firing" {
			err = d.alertFiring(ctx, t, svc, p, a, now, &ar)
		} else {
			err = d.alertResolved(ctx, t, svc, p, a, now, &ar)
		}
		if err != nil {
			// Forget the delivery so that Alertmanager's retry processes it.
			d.forgetDelivery(ctx, seenKey)
			ar.Outcome, ar.Error = "error", "could not record the alert"
			errs = sum.failed(errs, err)
		}
		res.Results = append(res.Results, ar)
	}
	if sum.errors > len(errs) {
		errs = append(errs, fmt.Errorf("and %d more alerts not recorded", sum.errors-len(errs)))
	}
	return res, errors.Join(errs...)
}

// firstDelivery marks (groupKey, fingerprint, status, startsAt) as seen for DedupTTL and
// reports whether it was new.
func (d *Detector) firstDelivery(ctx context.Context, t *Tenant, p AlertmanagerPayload, a AlertmanagerAlert) (bool, string, error) {
	h := sha256.New()
	for _, part := range []string{p.GroupKey, a.Fingerprint, a.Status, a.StartsAt.UTC().Format(time.RFC3339Nano)} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	key := d.keys.delivery(t.ID, hex.EncodeToString(h.Sum(nil)))
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	ok, err := d.rdb.SetNX(ctx, key, "1", d.opts.DedupTTL).Result()
	if err != nil {
		return false, "", fmt.Errorf("alertmanager delivery log: %w", err)
	}
	return ok, key, nil
}

func (d *Detector) forgetDelivery(ctx context.Context, key string) {
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	if err := d.rdb.Del(ctx, key).Err(); err != nil {
		d.log.Warn("forget alertmanager delivery", "err", err)
	}
}

// amIncidentField is the field of the service's Alertmanager hash holding its incident;
// the other fields are fingerprints of firing alerts (hex, so never this name).
const amIncidentField = "incident"

// fpField is the hash field of an alert's fingerprint, prefixed so that no fingerprint a
// sender chooses ("incident") can overwrite the incident field.
func fpField(fingerprint string) string { return "fp:" + fingerprint }

func (d *Detector) alertFiring(ctx context.Context, t *Tenant, svc string, p AlertmanagerPayload, a AlertmanagerAlert, now time.Time, ar *AlertResult) error {
	key := d.keys.alertmanager(t.ID, svc)
	rctx, cancel := d.redisCtx(ctx)
	pipe := d.rdb.Pipeline()
	pipe.HSet(rctx, key, fpField(a.Fingerprint), a.StartsAt.UTC().Format(time.RFC3339Nano))
	pipe.PExpire(rctx, key, amStateTTL)
	_, err := pipe.Exec(rctx)
	cancel()
	if err != nil {
		return fmt.Errorf("track firing alert: %w", err)
	}
	reason := alertReason("firing", p, a)
	data := alertData(p, a)

	lctx, lcancel := d.ledgerCtx(ctx)
	open, err := d.ledger.Store().OpenIncident(lctx, t.ID, svc)
	lcancel()
	if err != nil {
		return fmt.Errorf("open incident of %s: %w", svc, err)
	}
	var kind Kind
	switch {
	case open != "":
		if _, err := d.record(ctx, t, entryUpdate(open, svc, reason, data), now); err != nil {
			return fmt.Errorf("update %s: %w", open, err)
		}
		d.stats.updated.Add(1)
		ar.Outcome, ar.Incident, kind = "updated", open, Updated
	default:
		res, err := d.open(ctx, t, svc, now, reason, data)
		if err != nil {
			return err
		}
		switch {
		case res.suppressed:
			ar.Outcome = "suppressed"
			d.suppressed(ctx, t, svc, reason, d.alertEvent(Suppressed, t, svc, "", reason, now))
			return nil
		case res.existing != "":
			ar.Outcome, ar.Incident, kind = "updated", res.existing, Updated
		default:
			ar.Outcome, ar.Incident, kind = "opened", res.opened, Opened
		}
	}
	d.emit(ctx, d.alertEvent(kind, t, svc, ar.Incident, reason, now))
	// Alertmanager's resolved closes only an incident Alertmanager opened; one the metrics
	// opened is closed when the metrics are healthy again.
	owned := kind == Opened
	if !owned {
		src, err := d.openedBy(ctx, t, ar.Incident)
		if err != nil {
			return err
		}
		owned = src == SourceAlertmanager
	}
	if owned {
		rctx, cancel = d.redisCtx(ctx)
		err = d.rdb.HSet(rctx, key, amIncidentField, ar.Incident).Err()
		cancel()
		if err != nil {
			return fmt.Errorf("remember alertmanager incident: %w", err)
		}
	}
	return nil
}

// resolveScript forgets fingerprint ARGV[1] of hash KEYS[1] and returns how many alerts
// still fire and the incident the hash holds.
var resolveScript = redis.NewScript(`
redis.call('HDEL', KEYS[1], ARGV[1])
local inc = redis.call('HGET', KEYS[1], 'incident')
local n = redis.call('HLEN', KEYS[1])
if inc then n = n - 1 else inc = '' end
return {n, inc}
`)

func (d *Detector) alertResolved(ctx context.Context, t *Tenant, svc string, p AlertmanagerPayload, a AlertmanagerAlert, now time.Time, ar *AlertResult) error {
	key := d.keys.alertmanager(t.ID, svc)
	rctx, cancel := d.redisCtx(ctx)
	out, err := resolveScript.Run(rctx, d.rdb, []string{key}, fpField(a.Fingerprint)).Slice()
	cancel()
	if err != nil || len(out) != 2 {
		return fmt.Errorf("track resolved alert: %w", err)
	}
	firing, _ := out[0].(int64)
	incident, _ := out[1].(string)
	switch {
	case incident == "":
		ar.Outcome = "no_incident"
		return nil
	case firing > 0:
		ar.Outcome, ar.Incident = "still_firing", incident
		return nil
	}
	reason := alertReason("resolved", p, a)
	kind, done, err := d.closeIncident(ctx, t, svc, incident, now, reason, alertData(p, a))
	if err != nil {
		return err
	}
	ar.Incident = incident
	if !done {
		// The recovery is in flight (AUTHORIZED): the close waits for its outcome, and
		// Settle does it then.
		ar.Outcome = "pending"
		rctx, cancel := d.redisCtx(ctx)
		err := d.rdb.Set(rctx, d.keys.service(t.ID, svc, "amclose"), incident, 24*time.Hour).Err()
		cancel()
		return err
	}
	rctx, cancel = d.redisCtx(ctx)
	if err := d.rdb.HDel(rctx, key, amIncidentField).Err(); err != nil {
		d.log.Warn("forget alertmanager incident", "tenant", t.ID, "service", svc, "err", err)
	}
	cancel()
	switch kind {
	case "":
		ar.Outcome = "no_incident" // someone else closed it already
	case Resolved:
		ar.Outcome = "resolved"
	default:
		ar.Outcome = "recovered"
	}
	if kind != "" {
		d.emit(ctx, d.alertEvent(kind, t, svc, incident, reason, now))
	}
	return nil
}

// Settle closes an incident whose Alertmanager alert resolved while its recovery was in
// flight. The pipeline calls it when an execution ends (executed or failed); it does
// nothing for other incidents.
func (d *Detector) Settle(ctx context.Context, tenant, incident string) error {
	var t *Tenant
	for i := range d.opts.Tenants {
		if d.opts.Tenants[i].ID == tenant {
			t = &d.opts.Tenants[i]
		}
	}
	if t == nil {
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
	if errors.Is(err, redis.Nil) || pending != incident {
		return nil
	}
	if err != nil {
		return err
	}
	now := d.opts.Clock()
	reason := "alertmanager: the alert resolved while the recovery ran"
	kind, done, err := d.closeIncident(ctx, t, in.Service, incident, now, reason, map[string]string{"source": string(SourceAlertmanager)})
	if err != nil || !done {
		return err
	}
	rctx, cancel = d.redisCtx(ctx)
	d.rdb.Del(rctx, key)
	d.rdb.HDel(rctx, d.keys.alertmanager(tenant, in.Service), amIncidentField)
	cancel()
	if kind != "" {
		d.emit(ctx, d.alertEvent(kind, t, in.Service, incident, reason, now))
	}
	return nil
}

func (d *Detector) alertEvent(kind Kind, t *Tenant, svc, incident, reason string, at time.Time) Event {
	return Event{Kind: kind, Source: SourceAlertmanager, Tenant: t.ID, Service: svc, Incident: incident, At: at,
		Reason: reason, PolicyVersion: t.PolicyVersion}
}

// alertReason: "alertmanager: HighLatency firing: p95 over 2 s on checkout".
func alertReason(status string, p AlertmanagerPayload, a AlertmanagerAlert) string {
	name := a.Labels["alertname"]
	if name == "" {
		name = "alert " + a.Fingerprint
	}
	text := firstNonEmpty(a.Annotations["summary"], p.CommonAnnotations["summary"], a.Annotations["description"], p.CommonAnnotations["description"])
	reason := "alertmanager: " + name + " " + status
	if text != "" {
		reason += ": " + text
	}
	return ledger.Clip(reason, maxReasonRunes)
}

func alertData(p AlertmanagerPayload, a AlertmanagerAlert) map[string]string {
	m := map[string]string{
		"source":      string(SourceAlertmanager),
		"alertname":   a.Labels["alertname"],
		"severity":    a.Labels["severity"],
		"fingerprint": a.Fingerprint,
		"starts_at":   a.StartsAt.UTC().Format(time.RFC3339),
		"group_key":   p.GroupKey,
		"receiver":    p.Receiver,
	}
	if a.GeneratorURL != "" {
		m["generator_url"] = a.GeneratorURL
	}
	if p.ExternalURL != "" {
		m["external_url"] = p.ExternalURL
	}
	if !a.EndsAt.IsZero() && a.EndsAt.Year() > 1 {
		m["ends_at"] = a.EndsAt.UTC().Format(time.RFC3339)
	}
	if p.TruncatedAlerts > 0 {
		m["truncated_alerts"] = strconv.Itoa(p.TruncatedAlerts)
	}
	for k, v := range m {
		m[k] = ledger.Clip(v, maxReasonRunes)
		if v == "" {
			delete(m, k)
		}
	}
	return m
}

func firstNonEmpty(xs ...string) string {
	for _, x := range xs {
		if strings.TrimSpace(x) != "" {
			return strings.TrimSpace(x)
		}
	}
	return ""
}

func entryUpdate(incident, service, reason string, data map[string]string) ledger.Entry {
	return ledger.Entry{Event: ledger.Update, Incident: incident, Service: service, Reason: reason, Data: data}
}
