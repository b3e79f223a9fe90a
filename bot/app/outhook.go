package app

import (
	"fmt"

	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/bot/outhook"
)

// buildOutbound builds the signed outbound webhook sender when a tenant lists
// outbound_webhooks (nil otherwise). A bad secret or event name stops start-up, naming
// the tenant and the webhook, never the secret.
func (a *App) buildOutbound() error {
	tenants := outboundTenants(a.o.File)
	if len(tenants) == 0 {
		return nil
	}
	s, err := outhook.New(outhook.Options{Store: a.store, Redis: a.o.Redis, Prefix: a.o.KeyPrefix, Tenants: tenants, Logger: a.o.Logger,
		Registerer: a.o.Registry})
	if err != nil {
		return fmt.Errorf("outbound_webhooks: %w", err)
	}
	a.outbound = s
	return nil
}

func outboundTenants(f *config.File) []outhook.Tenant {
	var out []outhook.Tenant
	for _, t := range f.Tenants {
		if len(t.OutboundWebhooks) == 0 {
			continue
		}
		ot := outhook.Tenant{ID: t.ID}
		for _, w := range t.OutboundWebhooks {
			ot.Targets = append(ot.Targets, outhook.Target{Name: w.Name, URL: w.URL, Secret: w.Secret.Reveal(), Events: w.Events,
				AllowPrivateNetwork: w.AllowPrivateNetwork, Timeout: w.Timeout})
		}
		out = append(out, ot)
	}
	return out
}
