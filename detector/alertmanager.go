package detector

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
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

// amIncidentField is the field of the service's Alertmanager hash holding its incident;
// the other fields are "GROUP|FINGERPRINT" (see amStateScript), so never this name.
const amIncidentField = "incident"

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

// Reasons an Alertmanager request is refused, the label of
// alertengine_detector_alertmanager_refused_total.
const (
	RefusedUnauthorized = "unauthorized" // 401: missing or wrong bearer token
	RefusedTooLarge     = "too_large"    // 413: body over the tenant's limit
	RefusedMalformed    = "malformed"    // 400: not a version 4 payload
	RefusedUnreadable   = "unreadable"   // 400: the body could not be read (the sender hung up)
)

// RefusedReasons lists every refusal reason.
var RefusedReasons = []string{RefusedUnauthorized, RefusedTooLarge, RefusedMalformed, RefusedUnreadable}

// AlertmanagerHandler serves POST /alertmanager/webhook. The caller authenticates with
// "Authorization: Bearer TOKEN", compared in constant time with every tenant's token;
// missing or wrong: 401 and nothing happens. The body is read as a stream: a body over
// the tenant's limit (AlertmanagerMaxBody) is refused with 413; a body that is not a
// version 4 payload with 400 naming the problem; alerts past the tenant's max alerts are
// treated as truncated (as Alertmanager's own max_alerts would). Every refusal is logged
// at WARN with the group key (when known) and the size, and counted by reason.
//
// An accepted notification is the group's whole state (see processAlertmanager). 200
// with an AlertmanagerResult; 500 if something could not be recorded (Alertmanager
// retries, and what was recorded is not recorded twice).
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
			d.refuse(RefusedUnauthorized, "", "", r.ContentLength, "missing or wrong bearer token", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="alertengine"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		limit := d.amBodyLimit(t)
		tooLarge := func() {
			msg := fmt.Sprintf("body over %d bytes (at most %d alerts); set max_alerts in Alertmanager's webhook_config so that it truncates the group", limit, t.AlertmanagerMaxAlerts)
			d.refuse(RefusedTooLarge, t.ID, "", r.ContentLength, msg, "limit_bytes", limit)
			writeError(w, http.StatusRequestEntityTooLarge, msg)
		}
		if r.ContentLength > limit {
			tooLarge()
			return
		}
		p, dropped, err := decodeAlertmanager(http.MaxBytesReader(w, r.Body, limit), t.AlertmanagerMaxAlerts)
		var big *http.MaxBytesError
		switch {
		case errors.As(err, &big):
			tooLarge()
			return
		case errors.Is(err, ErrBadPayload):
			d.refuse(RefusedMalformed, t.ID, p.GroupKey, r.ContentLength, err.Error())
			writeError(w, http.StatusBadRequest, err.Error())
			return
		case err != nil:
			d.refuse(RefusedUnreadable, t.ID, "", r.ContentLength, "could not read the body", "err", err)
			writeError(w, http.StatusBadRequest, "could not read the body")
			return
		}
		if dropped > 0 {
			d.stats.amOverMax.Add(1)
			d.log.Warn("alertmanager group over max_alerts: the alerts past it are treated as truncated", "tenant", t.ID,
				"group", ledger.Clip(p.GroupKey, 100), "alerts", len(p.Alerts)+dropped, "max_alerts", t.AlertmanagerMaxAlerts)
		}
		// Once accepted, a delivery is processed to the end even if Alertmanager hangs up:
		// every call below has its own timeout.
		res, err := d.processAlertmanager(context.WithoutCancel(r.Context()), t, p)
		code := http.StatusOK
		if err != nil {
			d.log.Error("alertmanager webhook: alerts not recorded", "tenant", t.ID, "group", ledger.Clip(p.GroupKey, 100), "err", err)
			code = http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(res)
	})
}

// refuse counts and logs a refused request: one WARN line with the group key (when it
// was read) and the declared size (-1: not declared).
func (d *Detector) refuse(reason, tenant, group string, size int64, msg string, args ...any) {
	d.stats.amRefused.Add(1)
	for i, r := range RefusedReasons {
		if r == reason {
			d.stats.amRefusedBy[i].Add(1)
		}
	}
	if group == "" {
		group = "unknown"
	}
	attrs := append([]any{"reason", reason, "tenant", tenant, "group", ledger.Clip(group, 100), "bytes", size, "why", ledger.ClipText(msg)}, args...)
	d.log.Warn("alertmanager webhook refused", attrs...)
}

// amBodyLimit is the largest body the tenant's Alertmanager may send: Options.MaxBodyBytes
// when set, else AlertmanagerBytesPerAlert for each of its max alerts (at least 1 MiB).
func (d *Detector) amBodyLimit(t *Tenant) int64 {
	if d.opts.MaxBodyBytes > 0 {
		return d.opts.MaxBodyBytes
	}
	return max(1<<20, int64(t.AlertmanagerMaxAlerts)*AlertmanagerBytesPerAlert)
}

// AlertmanagerMaxBody is the largest body any tenant's Alertmanager may send: the route's
// own limit, which the HTTP server must not cut below.
func (d *Detector) AlertmanagerMaxBody() int64 {
	var n int64
	for i := range d.opts.Tenants {
		n = max(n, d.amBodyLimit(&d.opts.Tenants[i]))
	}
	return n
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
