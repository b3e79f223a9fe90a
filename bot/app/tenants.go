package app

import (
	"github.com/alertengine/alertengine/bot/config"
	"github.com/alertengine/alertengine/commits"
	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/detector"
)

// The tenants file seen by each part of the bot. `bot serve`, `bot demo` and `bot simulate`
// all map the file through these, so a simulation judges a tenant exactly as production does.

// ConversationTenants maps the tenants file to what the conversation needs.
func ConversationTenants(f *config.File) []conversation.Tenant {
	out := make([]conversation.Tenant, 0, len(f.Tenants))
	for _, t := range f.Tenants {
		ct := conversation.Tenant{ID: t.ID, DefaultAction: t.Recovery.DefaultAction, ApprovalTTL: t.Policy.ApprovalTTL,
			EscalateAfter: t.Policy.EscalateAfter, PolicyVersion: t.PolicyVersion(), SuspectsMayApprove: !t.Policy.RefuseSuspectApproval}
		for _, c := range t.Chats {
			ct.Chats = append(ct.Chats, conversation.Chat{Channel: conversation.Channel(c.Channel), ID: c.ID})
		}
		for _, p := range t.People {
			ids := map[conversation.Channel]string{}
			for ch, id := range p.IDs {
				ids[conversation.Channel(ch)] = id
			}
			ct.People = append(ct.People, conversation.Person{Name: p.Name, Approver: p.Role == config.RoleApprover, IDs: ids, Phone: p.Phone})
		}
		for _, a := range t.Recovery.Actions {
			ct.Actions = append(ct.Actions, conversation.Action{Name: a.Name, HighRisk: a.Risk == config.RiskHigh})
		}
		for _, s := range t.Services {
			ct.Services = append(ct.Services, s.Name)
		}
		out = append(out, ct)
	}
	return out
}

// DetectorTenants maps the tenants file to the detector's policy.
func DetectorTenants(f *config.File) []detector.Tenant {
	out := make([]detector.Tenant, 0, len(f.Tenants))
	for _, t := range f.Tenants {
		dt := detector.Tenant{ID: t.ID, PolicyVersion: t.PolicyVersion(), MinScoreToAlert: float64(t.Policy.MinScoreToAlert),
			IncidentsPerHour: t.Limits.IncidentsPerHour, AlertmanagerToken: t.Alertmanager.Token.Reveal(),
			AlertmanagerMaxAlerts: t.Alertmanager.MaxAlerts, AlertmanagerExpireAfter: t.Alertmanager.ExpireAfter}
		for _, s := range t.Services {
			dt.Services = append(dt.Services, detector.Service{Name: s.Name, HealthURL: s.HealthURL, PollInterval: s.PollInterval, AllowPrivateNetwork: s.AllowPrivateNetwork,
				Source: serviceSource(s)})
		}
		out = append(out, dt)
	}
	return out
}

// CommitServices maps the tenants file to the correlator's services.
func CommitServices(f *config.File) []commits.Service {
	var out []commits.Service
	for _, t := range f.Tenants {
		for _, s := range t.Services {
			out = append(out, commits.Service{Tenant: t.ID, Name: s.Name, Repos: s.Repos, Patterns: t.Policy.RiskyPaths})
		}
	}
	return out
}

// CommitPeople maps a commit author's GitHub login to the tenant's person of that login
// ("" when none), for the commit source and separation of duties.
func CommitPeople(f *config.File) func(tenant, login string) string {
	return func(tenant, login string) string {
		if t, ok := f.Tenant(tenant); ok {
			if p, ok := t.PersonByGitHub(login); ok {
				return p.Name
			}
		}
		return ""
	}
}
