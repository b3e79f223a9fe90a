package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

const (
	pdKey        = "pd-routing-key-checkout-0123456789"
	grafanaToken = "grafana-token-acme-0123456789"
	// hookKey is the outbound webhook's signing key; its secret is whsec_ + base64.
	hookKey = "0123456789abcdef0123456789abcdef"
)

// outboundReceiver records signed outbound webhook deliveries, checking each signature
// the way the Standard Webhooks specification says a receiver does.
type outboundReceiver struct {
	srv   *httptest.Server
	mu    sync.Mutex
	types []string
	bad   int
}

func newOutboundReceiver(t *testing.T) *outboundReceiver {
	r := &outboundReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		id, ts := req.Header.Get("webhook-id"), req.Header.Get("webhook-timestamp")
		mac := hmac.New(sha256.New, []byte(hookKey))
		mac.Write([]byte(id + "." + ts + "." + string(body)))
		want := "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
		var ev struct{ Type string }
		r.mu.Lock()
		defer r.mu.Unlock()
		if req.Header.Get("webhook-signature") != want || json.Unmarshal(body, &ev) != nil {
			r.bad++
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.types = append(r.types, ev.Type)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *outboundReceiver) got() ([]string, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.types...), r.bad
}

func postJSON(t *testing.T, url, auth, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestNewIntakesAndOutboundWebhookEndToEnd: on the real wiring, a tenants file with a
// PagerDuty routing key, a Grafana token and an outbound webhook mounts those intakes: a
// PagerDuty trigger opens an incident whose card reaches chat, its resolve (same
// dedup_key) closes it; a Grafana firing notification opens one on another service; an
// unknown routing key is refused as PagerDuty refuses it; and the outbound webhook
// receives the incidents' events, each signed.
func TestNewIntakesAndOutboundWebhookEndToEnd(t *testing.T) {
	t.Parallel()
	recv := newOutboundReceiver(t)
	extra := fmt.Sprintf(`    pagerduty: [{service: checkout, routing_key: %q}]
    grafana: {token: %q}
    outbound_webhooks:
      - {name: router, url: %q, secret: %q, allow_private_network: true, events: [incident.opened, incident.resolved]}
`, pdKey, grafanaToken, recv.srv.URL+"/events", "whsec_"+base64.StdEncoding.EncodeToString([]byte(hookKey)))
	h := newHarnessWith(t, "", extra)
	b := h.start(false)

	if code, body := postJSON(t, b.base+"/v2/enqueue", "", `{"routing_key":"not-a-key-of-anyone-0000","event_action":"trigger","payload":{"summary":"x","source":"y","severity":"error"}}`); code != http.StatusBadRequest || !strings.Contains(body, `"invalid event"`) {
		t.Fatalf("unknown routing key: HTTP %d %s", code, body)
	}
	trigger := fmt.Sprintf(`{"routing_key":%q,"event_action":"trigger","dedup_key":"checkout-5xx","payload":{"summary":"checkout 5xx above 5%%","source":"prometheus-1","severity":"critical","component":"checkout"}}`, pdKey)
	if code, body := postJSON(t, b.base+"/v2/enqueue", "", trigger); code != http.StatusAccepted || !strings.Contains(body, `"dedup_key":"checkout-5xx"`) {
		t.Fatalf("trigger: HTTP %d %s", code, body)
	}
	card := h.card(t)
	inc := incidentCode(t, card)
	if !strings.Contains(card.Text+card.Caption, "checkout") {
		t.Fatalf("card %q is not about checkout", card.Text+card.Caption)
	}
	resolve := fmt.Sprintf(`{"routing_key":%q,"event_action":"resolve","dedup_key":"checkout-5xx"}`, pdKey)
	if code, body := postJSON(t, b.base+"/v2/enqueue", "", resolve); code != http.StatusAccepted {
		t.Fatalf("resolve: HTTP %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	for h.stage(t, inc) != ledger.Recovered && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if st := h.stage(t, inc); st != ledger.Recovered {
		t.Fatalf("after the resolve, %s is %s", inc, st)
	}

	grafanaFiring := `{"receiver":"alertengine","status":"firing","orgId":1,"version":"1","groupKey":"{}:{alertname=\"PaymentsErrors\"}","truncatedAlerts":0,
"title":"[FIRING:1] PaymentsErrors","state":"alerting","message":"Value: B=0.2","externalURL":"https://grafana.example/",
"groupLabels":{"alertname":"PaymentsErrors"},"commonLabels":{"alertname":"PaymentsErrors"},"commonAnnotations":{},
"alerts":[{"status":"firing","labels":{"alertname":"PaymentsErrors","service":"payments","severity":"critical"},"annotations":{"summary":"payments errors"},
"startsAt":"2026-03-01T12:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"https://grafana.example/alerting/x/view","fingerprint":"feedface",
"dashboardURL":"https://grafana.example/d/payments","panelURL":"https://grafana.example/d/payments?viewPanel=2","silenceURL":"https://grafana.example/alerting/silence/new","values":{"B":0.2}}]}`
	if code, body := postJSON(t, b.base+"/grafana/webhook", "Bearer wrong-token-0000000000000", grafanaFiring); code != http.StatusUnauthorized {
		t.Fatalf("grafana with a wrong token: HTTP %d %s", code, body)
	}
	if code, body := postJSON(t, b.base+"/grafana/webhook", "Bearer "+grafanaToken, grafanaFiring); code != http.StatusOK {
		t.Fatalf("grafana firing: HTTP %d %s", code, body)
	}
	if _, err := h.tg.WaitForMessage(ctxT(t, 30*time.Second), groupID, hasText("payments")); err != nil {
		t.Fatalf("no card for the Grafana alert: %v", err)
	}

	deadline = time.Now().Add(30 * time.Second)
	for {
		types, bad := recv.got()
		opened, resolved := 0, 0
		for _, ty := range types {
			switch ty {
			case "incident.opened":
				opened++
			case "incident.resolved":
				resolved++
			default:
				t.Fatalf("received %q, which the webhook's events filter leaves out", ty)
			}
		}
		if bad > 0 {
			t.Fatalf("%d deliveries whose signature did not verify", bad)
		}
		if opened == 2 && resolved == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbound webhook received %v; want two incident.opened and one incident.resolved", types)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
