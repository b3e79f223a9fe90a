package poll

import (
	"encoding/json"
	"errors"
	"math"
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
