package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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

// FuzzAlertmanagerHandler posts arbitrary bodies to the authenticated webhook: a refused
// body (400/413) leaves the ledger and Redis as they were; an accepted one answers one
// result per alert and records only bounded text.
func FuzzAlertmanagerHandler(f *testing.F) {
	f.Add([]byte(amPayload("firing", amAlert{status: "firing", name: "HighLatency", service: "checkout", fp: "aaaa"})))
	f.Add([]byte(amPayload("firing", amAlert{status: "firing", name: "Noise", service: "billing", fp: "bbbb"})))
	f.Add([]byte(amPayload("resolved", amAlert{status: "resolved", name: "HighLatency", service: "checkout", fp: "aaaa"})))
	f.Add([]byte(`{"version":"5","status":"firing","alerts":[]}`))
	h := newHarness(f)
	d := h.replica("r1", amTenants(), func(o *testOptions) { o.MaxBodyBytes = 64 << 10 })
	handler := rcv(d).Handler()
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
