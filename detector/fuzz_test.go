package detector

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/alertengine/alertengine/ledger"
)

// boundedErr: an error quoting outside input stays short whatever the input.
func boundedErr(t *testing.T, err error, sentinel error) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("error %v does not wrap %v", err, sentinel)
	}
	if n := utf8.RuneCountInString(err.Error()); n > len(sentinel.Error())+2+ledger.MaxTextRunes {
		t.Fatalf("an error of %d runes: %.200s…", n, err)
	}
}

// healthDoc encodes h as the /health/alerts document ParseHealth reads.
func healthDoc(h Health) []byte {
	doc := map[string]any{
		"status": h.Status,
		"metrics": map[string]any{"overall_p95_ms": h.P95Ms, "error_rate": h.ErrorRate, "sample_size": h.SampleSize,
			"anomaly_score": h.AnomalyScore},
		"alerts": make([]struct{}, h.Alerts),
	}
	if h.Score != nil || h.Trend != "" {
		hs := map[string]any{"trend": h.Trend}
		if h.Score != nil {
			hs["score"] = *h.Score
		}
		doc["health_score"] = hs
	}
	if !h.Timestamp.IsZero() {
		doc["timestamp"] = h.Timestamp.Format(time.RFC3339Nano)
	}
	b, _ := json.Marshal(doc)
	return b
}

// FuzzParseHealth: no body makes ParseHealth panic; a refused body is ErrBadHealth with a
// bounded reason; an accepted one holds only sane numbers and short text, and re-encoded
// it parses to the same Health.
func FuzzParseHealth(f *testing.F) {
	f.Add([]byte(goHealth(23, 2800, 0.19, 410)))
	f.Add([]byte(pythonHealth(30, 2500, 0.01, 300)))
	f.Add([]byte(`{"status":"ok","metrics":{"overall_p95_ms":80,"error_rate":0,"sample_size":12}}`))
	f.Add([]byte(`{"metrics":{"overall_p95_ms":1e308,"error_rate":0,"sample_size":400}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		h, err := ParseHealth(body)
		if err != nil {
			boundedErr(t, err, ErrBadHealth)
			return
		}
		switch {
		case h.P95Ms < 0 || h.P95Ms > MaxP95Ms || math.IsNaN(h.P95Ms):
			t.Fatalf("accepted p95 %v", h.P95Ms)
		case !(h.ErrorRate >= 0 && h.ErrorRate <= 1):
			t.Fatalf("accepted error rate %v", h.ErrorRate)
		case h.SampleSize > MaxCount, !(h.AnomalyScore >= 0 && h.AnomalyScore <= MaxCount):
			t.Fatalf("accepted sample size %d, anomaly %v", h.SampleSize, h.AnomalyScore)
		case h.Score != nil && !(*h.Score >= 0 && *h.Score <= 100):
			t.Fatalf("accepted score %v", *h.Score)
		case utf8.RuneCountInString(h.Trend) > 40 || !utf8.ValidString(h.Trend) || strings.ContainsAny(h.Trend, "\n\r\x00"):
			t.Fatalf("accepted trend %q", h.Trend)
		}
		again, err := ParseHealth(healthDoc(h))
		if err != nil {
			t.Fatalf("re-encoded %+v refused: %v", h, err)
		}
		same := again.Status == h.Status && again.P95Ms == h.P95Ms && again.ErrorRate == h.ErrorRate &&
			again.SampleSize == h.SampleSize && again.AnomalyScore == h.AnomalyScore && again.Trend == h.Trend &&
			again.Alerts == h.Alerts && again.Timestamp.Equal(h.Timestamp) && (again.Score == nil) == (h.Score == nil) &&
			(h.Score == nil || *again.Score == *h.Score)
		if !same {
			t.Fatalf("round trip changed it: %+v → %+v", h, again)
		}
	})
}

// FuzzAlertmanagerHandler posts arbitrary bodies to the authenticated webhook: a refused
// body (400/413) leaves the ledger and Redis as they were; an accepted one answers one
// result per alert and records only bounded text.
func FuzzAlertmanagerHandler(f *testing.F) {
	f.Add([]byte(amPayload("firing", amAlert{status: "firing", name: "HighLatency", service: "checkout", fp: "aaaa"})))
	f.Add([]byte(amPayload("firing", amAlert{status: "firing", name: "Noise", service: "billing", fp: "bbbb"})))
	f.Add([]byte(amPayload("resolved", amAlert{status: "resolved", name: "HighLatency", service: "checkout", fp: "aaaa"})))
	f.Add([]byte(`{"version":"5","status":"firing","alerts":[]}`))
	h := newHarness(f)
	d := h.replica("r1", amTenants(), func(o *Options) { o.MaxBodyBytes = 64 << 10 })
	handler := d.AlertmanagerHandler()
	ctx := context.Background()
	state := func(t *testing.T) (int, int) {
		es, err := h.store.Range(ctx, "acme", 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := h.rdb.Keys(ctx, h.prefix+"*").Result()
		if err != nil {
			t.Fatal(err)
		}
		return len(es), len(keys)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		entriesBefore, keysBefore := state(t)
		req := httptest.NewRequest(http.MethodPost, "/alertmanager/webhook", strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer acme-secret-token")
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		switch rec.Code {
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			if e, k := state(t); e != entriesBefore || k != keysBefore {
				t.Fatalf("a refused body (%d) changed the state: %d→%d entries, %d→%d keys", rec.Code, entriesBefore, e, keysBefore, k)
			}
			if rec.Body.Len() > 2<<10 {
				t.Fatalf("a %d-byte refusal", rec.Body.Len())
			}
			return
		case http.StatusOK:
		default:
			t.Fatalf("HTTP %d: %.300s", rec.Code, rec.Body.String())
		}
		p, err := ParseAlertmanager(body)
		if err != nil {
			t.Fatalf("accepted what ParseAlertmanager refuses: %v", err)
		}
		var res AlertmanagerResult
		if err := json.Unmarshal(rec.Body.Bytes(), &res); err != nil || len(res.Results) != len(p.Alerts) {
			t.Fatalf("answer %v with %d results for %d alerts", err, len(res.Results), len(p.Alerts))
		}
		for _, r := range res.Results {
			if utf8.RuneCountInString(r.Service) > ledger.MaxTextRunes {
				t.Fatalf("a result service of %d runes", utf8.RuneCountInString(r.Service))
			}
		}
		es, err := h.store.Range(ctx, "acme", uint64(entriesBefore)+1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if utf8.RuneCountInString(e.Reason) > ledger.MaxTextRunes {
				t.Fatalf("an entry reason of %d runes", utf8.RuneCountInString(e.Reason))
			}
			for k, v := range e.Data {
				if utf8.RuneCountInString(v) > ledger.MaxTextRunes {
					t.Fatalf("entry data %s of %d runes", k, utf8.RuneCountInString(v))
				}
			}
		}
	})
}
