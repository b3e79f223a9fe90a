package alertmanager

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// ParseAlertmanager decodes and checks a webhook body: one JSON object of version "4",
// status firing or resolved on the group and on every alert, every alert with labels and
// startsAt. Members this package does not know are ignored (Alertmanager adds some over
// time). An alert without a fingerprint gets one computed from its labels. At most
// detector.DefaultMaxAlerts alerts are kept; the others are counted in TruncatedAlerts, as if
// Alertmanager's own max_alerts had cut them.
func ParseAlertmanager(body []byte) (AlertmanagerPayload, error) {
	p, _, err := decodeAlertmanager(bytes.NewReader(body), detector.DefaultMaxAlerts, "4")
	return p, err
}

// decodeAlertmanager reads a webhook body as a stream: the alerts are decoded and checked
// one at a time, so memory is bounded by maxAlerts kept alerts plus the largest single
// value, never by the body. Alerts past maxAlerts are read, checked as JSON, and counted
// in dropped (and added to TruncatedAlerts). Alertmanager writes "alerts" before
// "groupKey" and "truncatedAlerts", so the whole object is read before any alert is acted on.
func decodeAlertmanager(r io.Reader, maxAlerts int, versions ...string) (p AlertmanagerPayload, dropped int, err error) {
	src := &readErr{r: r}
	bad := func(format string, args ...any) (AlertmanagerPayload, int, error) {
		if src.err != nil {
			// Not the sender's JSON: the body could not be read (too large, hung up).
			return AlertmanagerPayload{}, 0, fmt.Errorf("read the body: %w", src.err)
		}
		// The reason quotes the sender: clipped, as it is logged and sent back. The group
		// key, when read already, names the group in the refusal's log line.
		return AlertmanagerPayload{GroupKey: p.GroupKey}, 0, fmt.Errorf("%w: %s", ErrBadPayload, ledger.ClipText(fmt.Sprintf(format, args...)))
	}
	dec := json.NewDecoder(src)
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		if err != nil && !errors.Is(err, io.EOF) {
			return bad("%s", err)
		}
		return bad("the body is not a JSON object")
	}
	var top struct {
		Version           *string            `json:"version"`
		GroupKey          *string            `json:"groupKey"`
		TruncatedAlerts   *int               `json:"truncatedAlerts"`
		Status            *string            `json:"status"`
		Receiver          *string            `json:"receiver"`
		GroupLabels       *map[string]string `json:"groupLabels"`
		CommonLabels      *map[string]string `json:"commonLabels"`
		CommonAnnotations *map[string]string `json:"commonAnnotations"`
		ExternalURL       *string            `json:"externalURL"`
		Title             *string            `json:"title"`
		State             *string            `json:"state"`
		Message           *string            `json:"message"`
		OrgID             *int64             `json:"orgId"`
	}
	fields := map[string]any{
		"version": &top.Version, "groupKey": &top.GroupKey, "truncatedAlerts": &top.TruncatedAlerts, "status": &top.Status,
		"receiver": &top.Receiver, "groupLabels": &top.GroupLabels, "commonLabels": &top.CommonLabels,
		"commonAnnotations": &top.CommonAnnotations, "externalURL": &top.ExternalURL,
		"title": &top.Title, "state": &top.State, "message": &top.Message, "orgId": &top.OrgID,
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return bad("%s", err)
		}
		key, _ := t.(string)
		if key == "alerts" {
			p.Alerts, dropped, err = decodeAlerts(dec, maxAlerts)
			if err != nil {
				if src.err != nil {
					return bad("")
				}
				return AlertmanagerPayload{}, 0, err
			}
			continue
		}
		dst, known := fields[key]
		if !known {
			var skip json.RawMessage
			dst = &skip
		}
		if err := dec.Decode(dst); err != nil {
			return bad("%s: %s", ledger.Clip(key, 40), err)
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return bad("%s", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return bad("trailing data after the JSON object")
	}
	deref := func(s *string) string {
		if s == nil {
			return ""
		}
		return *s
	}
	p.Version, p.GroupKey, p.Status, p.Receiver, p.ExternalURL = deref(top.Version), deref(top.GroupKey), deref(top.Status), deref(top.Receiver), deref(top.ExternalURL)
	p.Title, p.State, p.Message = deref(top.Title), deref(top.State), deref(top.Message)
	if top.OrgID != nil {
		p.OrgID = *top.OrgID
	}
	if top.TruncatedAlerts != nil {
		p.TruncatedAlerts = *top.TruncatedAlerts
	}
	for dst, m := range map[*map[string]string]*map[string]string{&p.GroupLabels: top.GroupLabels, &p.CommonLabels: top.CommonLabels, &p.CommonAnnotations: top.CommonAnnotations} {
		if m != nil {
			*dst = *m
		}
	}
	if !slices.Contains(versions, p.Version) {
		return bad("version %q, want %s", ledger.Clip(p.Version, 40), `"`+strings.Join(versions, `" or "`)+`"`)
	}
	if p.Status != "firing" && p.Status != "resolved" {
		return bad("status %q, want firing or resolved", ledger.Clip(p.Status, 40))
	}
	if p.TruncatedAlerts < 0 {
		return bad("truncatedAlerts %d is negative", p.TruncatedAlerts)
	}
	p.TruncatedAlerts += dropped
	return p, dropped, nil
}

// decodeAlerts reads the "alerts" array (or null) from dec, keeping and checking the first
// max alerts and counting the others.
func decodeAlerts(dec *json.Decoder, max int) ([]AlertmanagerAlert, int, error) {
	bad := func(format string, args ...any) ([]AlertmanagerAlert, int, error) {
		return nil, 0, fmt.Errorf("%w: %s", ErrBadPayload, ledger.ClipText(fmt.Sprintf(format, args...)))
	}
	t, err := dec.Token()
	switch {
	case err != nil:
		return bad("alerts: %s", err)
	case t == nil:
		return nil, 0, nil
	case t != json.Delim('['):
		return bad("alerts is not an array")
	}
	alerts := []AlertmanagerAlert{}
	dropped := 0
	for i := 0; dec.More(); i++ {
		if len(alerts) >= max {
			var skip json.RawMessage
			if err := dec.Decode(&skip); err != nil {
				return bad("alerts[%d]: %s", i, err)
			}
			dropped++
			continue
		}
		var a AlertmanagerAlert
		if err := dec.Decode(&a); err != nil {
			return bad("alerts[%d]: %s", i, err)
		}
		if err := checkAlert(i, &a); err != nil {
			return nil, 0, err
		}
		alerts = append(alerts, a)
	}
	if _, err := dec.Token(); err != nil { // the closing bracket
		return bad("alerts: %s", err)
	}
	return alerts, dropped, nil
}

// checkAlert refuses an alert without status, labels or startsAt and bounds its
// fingerprint.
func checkAlert(i int, a *AlertmanagerAlert) error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadPayload, ledger.ClipText(fmt.Sprintf(format, args...)))
	}
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
	return nil
}

// readErr remembers the first error of the body's reader other than io.EOF, so that a
// body cut by its size limit is told apart from malformed JSON.
type readErr struct {
	r   io.Reader
	err error
}

func (e *readErr) Read(b []byte) (int, error) {
	n, err := e.r.Read(b)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}
