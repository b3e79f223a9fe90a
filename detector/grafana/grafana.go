// Package grafana is the detector's intake for Grafana-managed alerts' "Webhook" contact
// point: POST /grafana/webhook, registered with Intake(Options{Tokens: …}). Its body is
// Alertmanager's webhook shape (version "1", with orgId, state, title and message, and per
// alert dashboardURL, panelURL, silenceURL and values), so it is the Alertmanager intake
// with another flavor: the same code, the same group-state semantics (a notification is
// its group's whole state; alerts not re-sent within the tenant's
// alertmanager.expire_after are forgotten), the same limits (alertmanager.max_alerts) and
// the same outcomes, under its own source "grafana", its own alert state, token and
// metrics (alertengine_detector_grafana_…). The alert's links (dashboard, panel, silence,
// the rule's generatorURL) and its values are recorded on the entry, where the card finds
// them (ledger.Evidence.Links).
//
// In Grafana: Alerting → Contact points → Webhook, URL https://BOT/grafana/webhook,
// "Authorization header" credentials set to the tenant's token (scheme Bearer).
package grafana

import (
	"fmt"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/detector/alertmanager"
)

// Source is what the entries and events of this intake carry.
const Source detector.Source = "grafana"

// Path is the webhook's route.
const Path = "/grafana/webhook"

// Token is one tenant's bearer token for its Grafana's webhook contact point.
type Token struct {
	Tenant string
	// Token is at least 16 characters; compared in constant time, never logged.
	Token string
}

// Options configure the intake.
type Options struct {
	Tokens []Token
	// Receiver are the Alertmanager intake's options (the body limit, the logger).
	Receiver alertmanager.Options
}

// Flavor is Grafana's flavor of Alertmanager's webhook, for tokens by tenant.
func Flavor(tokens map[string]string) alertmanager.Flavor {
	return alertmanager.Flavor{Source: Source, Title: "Grafana", Path: Path, Versions: []string{"1"},
		Token:    func(t detector.Tenant) string { return tokens[t.ID] },
		StateKey: "grafana", Metric: "alertengine_detector_grafana_"}
}

// Intake registers the intake on a detector (detector.Options.Intakes).
func Intake(o Options) detector.NewIntake {
	return func(d *detector.Detector) (detector.Intake, error) { return New(d, o) }
}

// New checks the tokens against d's tenants and builds the intake.
func New(d *detector.Detector, o Options) (*alertmanager.Receiver, error) {
	tokens := map[string]string{}
	seen := map[string]bool{}
	for i, t := range o.Tokens {
		if _, ok := d.Tenant(t.Tenant); !ok {
			return nil, fmt.Errorf("grafana: tokens[%d]: unknown tenant %q", i, t.Tenant)
		}
		if len(t.Token) < 16 {
			return nil, fmt.Errorf("grafana: tokens[%d] (%s): token shorter than 16 characters", i, t.Tenant)
		}
		if seen[t.Token] || tokens[t.Tenant] != "" {
			return nil, fmt.Errorf("grafana: tokens[%d] (%s): a token used twice, or a tenant with two", i, t.Tenant)
		}
		seen[t.Token] = true
		tokens[t.Tenant] = t.Token
	}
	return alertmanager.NewFlavor(d, Flavor(tokens), o.Receiver)
}
