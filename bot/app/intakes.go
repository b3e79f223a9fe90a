package app

import (
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/detector/alertmanager"
	"github.com/alertengine/alertengine/detector/grafana"
	"github.com/alertengine/alertengine/detector/otlp"
	"github.com/alertengine/alertengine/detector/pagerduty"
	"github.com/alertengine/alertengine/detector/poll"
)

// intakes are the detection inputs besides the SDK's push streams, one line each. An
// intake that authenticates by a tenant's secret is mounted only when the tenants file
// gives one (its routes would refuse everything otherwise); Alertmanager's route and the
// poller are always there, as they always were.
func intakes(f *config.File) []detector.NewIntake {
	in := []detector.NewIntake{alertmanager.Intake(alertmanager.Options{}), poll.Intake(poll.Options{})}
	if keys := pagerdutyKeys(f); len(keys) > 0 {
		in = append(in, pagerduty.Intake(pagerduty.Options{Keys: keys}))
	}
	if tokens := otlpTokens(f); len(tokens) > 0 {
		in = append(in, otlp.Intake(otlp.Options{Tokens: tokens}))
	}
	if tokens := grafanaTokens(f); len(tokens) > 0 {
		in = append(in, grafana.Intake(grafana.Options{Tokens: tokens}))
	}
	return in
}

func pagerdutyKeys(f *config.File) []pagerduty.Key {
	var out []pagerduty.Key
	for _, t := range f.Tenants {
		for _, k := range t.PagerDuty {
			out = append(out, pagerduty.Key{RoutingKey: k.RoutingKey.Reveal(), Tenant: t.ID, Service: k.Service})
		}
	}
	return out
}

func otlpTokens(f *config.File) []otlp.Token {
	var out []otlp.Token
	for _, t := range f.Tenants {
		if t.OTLP.Token.IsSet() {
			out = append(out, otlp.Token{Tenant: t.ID, Token: t.OTLP.Token.Reveal()})
		}
	}
	return out
}

func grafanaTokens(f *config.File) []grafana.Token {
	var out []grafana.Token
	for _, t := range f.Tenants {
		if t.Grafana.Token.IsSet() {
			out = append(out, grafana.Token{Tenant: t.ID, Token: t.Grafana.Token.Reveal()})
		}
	}
	return out
}

// serviceSource is what measures a service, as the detector names it.
func serviceSource(s config.Service) detector.Source {
	if s.Source == config.SourceOTLP {
		return otlp.Source
	}
	return ""
}
