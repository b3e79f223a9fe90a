package alertmanager

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

	"github.com/alertengine/alertengine/detector"
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
	// Grafana's webhook contact point adds these (and sends version "1").
	OrgID   int64  `json:"orgId,omitempty"`
	Title   string `json:"title,omitempty"`
	State   string `json:"state,omitempty"`
	Message string `json:"message,omitempty"`
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
	// Grafana adds links to the alert's dashboard, panel and a silence, and the values of
	// its query.
	DashboardURL string          `json:"dashboardURL"`
	PanelURL     string          `json:"panelURL"`
	SilenceURL   string          `json:"silenceURL"`
	ValueString  string          `json:"valueString"`
	Values       json.RawMessage `json:"values"`
}

// maxFingerprintBytes bounds a fingerprint kept as sent.
const maxFingerprintBytes = 64

// printable: valid UTF-8 without control characters.
func printable(s string) bool {
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return false
		}
	}
	return utf8.ValidString(s)
}

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
func (am *Receiver) Handler() http.Handler {
	digests := make([][32]byte, len(am.tenants))
	for i, t := range am.tenants {
		digests[i] = sha256.Sum256([]byte(am.f.Token(t)))
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", http.MethodPost)
			writeError(w, http.StatusMethodNotAllowed, "use POST")
			return
		}
		t := am.authenticate(r, digests)
		if t == nil {
			am.refuse(RefusedUnauthorized, "", "", r.ContentLength, "missing or wrong bearer token", "remote", r.RemoteAddr)
			w.Header().Set("WWW-Authenticate", `Bearer realm="alertengine"`)
			writeError(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		limit := am.amBodyLimit(t)
		tooLarge := func() {
			msg := fmt.Sprintf("body over %d bytes (at most %d alerts); set max_alerts in Alertmanager's webhook_config so that it truncates the group", limit, t.AlertmanagerMaxAlerts)
			am.refuse(RefusedTooLarge, t.ID, "", r.ContentLength, msg, "limit_bytes", limit)
			writeError(w, http.StatusRequestEntityTooLarge, msg)
		}
		if r.ContentLength > limit {
			tooLarge()
			return
		}
		p, dropped, err := decodeAlertmanager(http.MaxBytesReader(w, r.Body, limit), t.AlertmanagerMaxAlerts, am.f.Versions...)
		var big *http.MaxBytesError
		switch {
		case errors.As(err, &big):
			tooLarge()
			return
		case errors.Is(err, ErrBadPayload):
			am.refuse(RefusedMalformed, t.ID, p.GroupKey, r.ContentLength, err.Error())
			writeError(w, http.StatusBadRequest, err.Error())
			return
		case err != nil:
			am.refuse(RefusedUnreadable, t.ID, "", r.ContentLength, "could not read the body", "err", err)
			writeError(w, http.StatusBadRequest, "could not read the body")
			return
		}
		if dropped > 0 {
			am.stats.overMax.Add(1)
			am.log.Warn("alertmanager group over max_alerts: the alerts past it are treated as truncated", "tenant", t.ID,
				"group", ledger.Clip(p.GroupKey, 100), "alerts", len(p.Alerts)+dropped, "max_alerts", t.AlertmanagerMaxAlerts)
		}
		// Once accepted, a delivery is processed to the end even if Alertmanager hangs up:
		// every call below has its own timeout.
		res, err := am.processAlertmanager(context.WithoutCancel(r.Context()), t, p)
		code := http.StatusOK
		if err != nil {
			am.log.Error("alertmanager webhook: alerts not recorded", "tenant", t.ID, "group", ledger.Clip(p.GroupKey, 100), "err", err)
			code = http.StatusInternalServerError
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		_ = json.NewEncoder(w).Encode(res)
	})
}

// refuse counts and logs a refused request: one WARN line with the group key (when it
// was read) and the declared size (-1: not declared).
func (am *Receiver) refuse(reason, tenant, group string, size int64, msg string, args ...any) {
	am.stats.refused.Add(1)
	for i, r := range RefusedReasons {
		if r == reason {
			am.stats.refusedBy[i].Add(1)
		}
	}
	if group == "" {
		group = "unknown"
	}
	attrs := append([]any{"reason", reason, "tenant", tenant, "group", ledger.Clip(group, 100), "bytes", size, "why", ledger.ClipText(msg)}, args...)
	am.log.Warn("alertmanager webhook refused", attrs...)
}

// amBodyLimit is the largest body the tenant's Alertmanager may send: Options.MaxBodyBytes
// when set, else BytesPerAlert for each of its max alerts (at least 1 MiB).
func (am *Receiver) amBodyLimit(t *detector.Tenant) int64 {
	if am.o.MaxBodyBytes > 0 {
		return am.o.MaxBodyBytes
	}
	return max(1<<20, int64(t.AlertmanagerMaxAlerts)*BytesPerAlert)
}

// MaxBody is the largest body any tenant's Alertmanager may send: the route's own limit,
// which the HTTP server must not cut below.
func (am *Receiver) MaxBody() int64 {
	var n int64
	for i := range am.tenants {
		n = max(n, am.amBodyLimit(&am.tenants[i]))
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
func (am *Receiver) authenticate(r *http.Request, digests [][32]byte) *detector.Tenant {
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
	for i, t := range am.tenants {
		eq := subtle.ConstantTimeCompare(got[:], digests[i][:])
		if eq == 1 && am.f.Token(t) != "" {
			match = i
		}
	}
	if match < 0 {
		return nil
	}
	return &am.tenants[match]
}

// alertReason: "alertmanager: HighLatency firing: p95 over 2 s on checkout".
func alertReason(prefix, status string, p AlertmanagerPayload, a AlertmanagerAlert) string {
	name := a.Labels["alertname"]
	if name == "" {
		name = "alert " + a.Fingerprint
	}
	text := firstNonEmpty(a.Annotations["summary"], p.CommonAnnotations["summary"], a.Annotations["description"], p.CommonAnnotations["description"])
	reason := prefix + name + " " + status
	if text != "" {
		reason += ": " + text
	}
	return ledger.Clip(reason, maxReasonRunes)
}

func alertData(p AlertmanagerPayload, a AlertmanagerAlert) map[string]string {
	m := map[string]string{
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
	for k, v := range map[string]string{"dashboard_url": a.DashboardURL, "panel_url": a.PanelURL, "silence_url": a.SilenceURL,
		"value_string": a.ValueString} {
		if v != "" {
			m[k] = v
		}
	}
	if len(a.Values) > 0 && string(a.Values) != "null" {
		m["values"] = string(a.Values)
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
