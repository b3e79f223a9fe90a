package config

import (
	"strings"
	"testing"
)

// The detection intakes' secrets: read, checked and never shared between tenants.
func TestIntakeSecrets(t *testing.T) {
	const good = `tenants:
  - id: acme
    services: [{name: checkout}, {name: search, source: otlp}]
    pagerduty: [{service: checkout, routing_key: "R0123456789abcdef0123456789abcd"}]
    otlp: {token: "otlp-token-acme-0123456789"}
    grafana: {token: "grafana-token-acme-01234"}
`
	f, err := parseT("t.yaml", []byte(good), mapLookup(nil), demoEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	tn := f.Tenants[0]
	if len(tn.PagerDuty) != 1 || tn.PagerDuty[0].Service != "checkout" || tn.PagerDuty[0].RoutingKey.Reveal() != "R0123456789abcdef0123456789abcd" {
		t.Errorf("pagerduty %+v", tn.PagerDuty)
	}
	if tn.OTLP.Token.Reveal() != "otlp-token-acme-0123456789" || tn.Grafana.Token.Reveal() != "grafana-token-acme-01234" {
		t.Errorf("tokens %q %q", tn.OTLP.Token.Reveal(), tn.Grafana.Token.Reveal())
	}
	if tn.Services[0].Source != "" || tn.Services[1].Source != SourceOTLP {
		t.Errorf("sources %q %q", tn.Services[0].Source, tn.Services[1].Source)
	}

	for name, c := range map[string]struct{ doc, want string }{
		"unknown service": {`tenants:
  - id: acme
    services: [{name: checkout}]
    pagerduty: [{service: payments, routing_key: "R0123456789abcdef0123456789abcd"}]
`, `t.yaml:4: tenants[0].pagerduty[0].service: "payments" is not a service of this tenant`},
		"short routing key": {`tenants:
  - id: acme
    services: [{name: checkout}]
    pagerduty: [{service: checkout, routing_key: short}]
`, `t.yaml:4: tenants[0].pagerduty[0].routing_key: must be at least 16 characters`},
		"shared token": {`tenants:
  - id: acme
    services: [{name: checkout}]
    otlp: {token: "the-same-token-0123456789"}
  - id: beta
    services: [{name: pay}]
    otlp: {token: "the-same-token-0123456789"}
`, `t.yaml:7: tenants[1].otlp.token: same secret as tenants[0].otlp.token; each needs its own`},
		"otlp source without a token": {`tenants:
  - id: acme
    services: [{name: checkout, source: otlp}]
`, `tenants[0].otlp: service checkout has source: otlp; set otlp.token`},
		"otlp source and health_url": {`tenants:
  - id: acme
    services: [{name: checkout, source: otlp, health_url: "https://a.example/health"}]
    otlp: {token: "otlp-token-acme-0123456789"}
`, `tenants[0].services[0].source: a service measured from OTLP metrics is not polled`},
		"unknown source": {`tenants:
  - id: acme
    services: [{name: checkout, source: statsd}]
`, `tenants[0].services[0].source: want one of push, otlp, got "statsd"`},
		"grafana without token": {`tenants:
  - id: acme
    services: [{name: checkout}]
    grafana: {}
`, `tenants[0].grafana.token: is required when grafana is set`},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := parseT("t.yaml", []byte(c.doc), mapLookup(nil), demoEnv(t))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("got %v\nwant %q", err, c.want)
			}
			for _, secret := range []string{"R0123456789abcdef", "the-same-token", "otlp-token-acme"} {
				if strings.Contains(err.Error(), secret) {
					t.Errorf("a problem shows the secret: %v", err)
				}
			}
		})
	}
}

func TestOutboundWebhooks(t *testing.T) {
	f, err := parseT("t.yaml", []byte(`tenants:
  - id: acme
    services: [{name: checkout}]
    outbound_webhooks:
      - {name: router, url: "https://hooks.example/alertengine", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", events: [incident.opened, incident.resolved], timeout: 10s}
      - {url: "http://10.0.0.5/hook", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", allow_private_network: true}
`), mapLookup(nil), demoEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	ws := f.Tenants[0].OutboundWebhooks
	if len(ws) != 2 || ws[0].Name != "router" || ws[0].URL != "https://hooks.example/alertengine" || len(ws[0].Events) != 2 ||
		ws[0].Timeout.String() != "10s" || !ws[1].AllowPrivateNetwork || ws[1].Secret.Reveal() == "" {
		t.Fatalf("webhooks %+v", ws)
	}
	_, err = parseT("t.yaml", []byte(`tenants:
  - id: acme
    services: [{name: checkout}]
    outbound_webhooks:
      - {url: "ftp://x", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
      - {url: "https://a.example/h"}
`), mapLookup(nil), demoEnv(t))
	for _, want := range []string{"tenants[0].outbound_webhooks[0].url:", "tenants[0].outbound_webhooks[1].secret: is required"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("got %v, want %q", err, want)
		}
	}
	if err != nil && strings.Contains(err.Error(), "MfKQ9r8GKYqr") {
		t.Errorf("a problem shows the secret: %v", err)
	}
}
