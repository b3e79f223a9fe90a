package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alertengine/alertengine/bot/config/yamldoc"
)

// Agent is an AI agent allowed to ask the tenant's approvers for decisions through the
// agent API and MCP server (tenants[].agents[]). Only the SHA-256 of its token is kept.
type Agent struct {
	Name string
	// TokenSHA256 is the lowercase hex SHA-256 of the agent's API token.
	TokenSHA256 string
	// Actions are recovery actions of the tenant the agent may request; External are
	// actions the agent runs itself once approved.
	Actions, External []string
	// RatePerMinute bounds the agent's requests (rate, default 30/min).
	RatePerMinute int
}

// DefaultAgentRate is an agent's requests per minute when rate is not set.
const DefaultAgentRate = 30

var (
	agentKeys        = []string{"name", "token", "token_sha256", "actions", "external_actions", "rate"}
	agentNamePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,47}$`)
	sha256Pattern    = regexp.MustCompile(`^[0-9a-f]{64}$`)
	ratePattern      = regexp.MustCompile(`^([0-9]{1,7})\s*/\s*(s|min|h)$`)
	agentList        = yamldoc.NamedList{
		Keys: agentKeys, Noun: "agent", Empty: "empty agent; give name, token and actions",
		Valid: agentNamePattern.MatchString,
		Invalid: func(q string) string {
			return fmt.Sprintf("agent name %s must start with a-z or 0-9 and have at most 48 characters of a-z, 0-9, '.', '_' and '-'", q)
		},
	}
)

// agents reads `agents: [{name, token | token_sha256, actions, external_actions, rate}]`.
func (d *decoder) agents(o yamldoc.Object, t *Tenant, m *tenantMeta) []Agent {
	items, _, _ := d.ListAt(o, "agents")
	list, _ := d.Named(items, agentList)
	var out []Agent
	for _, item := range list {
		ao := item.Object
		a := Agent{Name: item.Name, RatePerMinute: DefaultAgentRate}
		ok := true
		for _, p := range t.People {
			if strings.EqualFold(p.Name, a.Name) {
				d.Addf(ao.Line, ao.Sub("name"), "agent %s has the name of a person of this tenant; an agent never approves, so it needs a name of its own", a.Name)
				ok = false
			}
		}
		tok, sum := d.Value(ao, "token"), d.Value(ao, "token_sha256")
		switch {
		case tok.Bad || sum.Bad:
			ok = false
		case tok.Set && sum.Set:
			d.Addf(sum.Line, ao.Sub("token_sha256"), "give token or token_sha256, not both")
			ok = false
		case tok.Set && utf8.RuneCountInString(tok.Text) < minIntakeSecret:
			d.Addf(tok.Line, ao.Sub("token"), "must be at least %d characters", minIntakeSecret)
			ok = false
		case tok.Set:
			s := sha256.Sum256([]byte(tok.Text))
			a.TokenSHA256 = hex.EncodeToString(s[:])
		case sum.Set && !sha256Pattern.MatchString(sum.Text):
			d.Addf(sum.Line, ao.Sub("token_sha256"), "must be 64 lowercase hex digits (sha256sum of the token)")
			ok = false
		case sum.Set:
			a.TokenSHA256 = sum.Text
		default:
			d.Addf(ao.Line, ao.Sub("token"), "is required: the agent's API token (token: ${VAR}) or its SHA-256 (token_sha256)")
			ok = false
		}
		if a.TokenSHA256 != "" {
			line := max(tok.Line, sum.Line)
			m.secrets = append(m.secrets, intakeSecret{key: "agent:" + a.TokenSHA256, path: ao.Sub("token"), line: line})
		}
		recovery := map[string]bool{}
		for _, ac := range t.Recovery.Actions {
			recovery[ac.Name] = true
		}
		acts, _ := d.Values(ao, "actions")
		for j, v := range acts {
			p := fmt.Sprintf("%s[%d]", ao.Sub("actions"), j)
			switch {
			case !recovery[v.Text]:
				d.Addf(v.Line, p, "%s is not a recovery action of this tenant (list the actions the agent runs itself under external_actions)", v.Quoted())
				ok = false
			case slices.Contains(a.Actions, v.Text):
				d.Addf(v.Line, p, "%s is listed twice", v.Quoted())
			default:
				a.Actions = append(a.Actions, v.Text)
			}
		}
		ext, _ := d.Values(ao, "external_actions")
		for j, v := range ext {
			p := fmt.Sprintf("%s[%d]", ao.Sub("external_actions"), j)
			switch {
			case !actionNamePattern.MatchString(v.Text):
				d.Addf(v.Line, p, "action name %s must start with a-z or 0-9 and have at most 64 characters of a-z, 0-9, '.', '_' and '-'", v.Quoted())
				ok = false
			case recovery[v.Text]:
				d.Addf(v.Line, p, "%s is a recovery action of this tenant; list it under actions", v.Quoted())
				ok = false
			case slices.Contains(a.External, v.Text):
				d.Addf(v.Line, p, "%s is listed twice", v.Quoted())
			default:
				a.External = append(a.External, v.Text)
			}
		}
		if len(acts) == 0 && len(ext) == 0 {
			d.Addf(ao.Line, ao.Sub("actions"), "agent %s may request nothing: list actions or external_actions", a.Name)
			ok = false
		}
		if r := d.Value(ao, "rate"); r.Set {
			n, err := parseRate(r.Text)
			if err != nil {
				d.Addf(r.Line, ao.Sub("rate"), "%v, got %s", err, r.Quoted())
				ok = false
			}
			a.RatePerMinute = n
		}
		if ok {
			out = append(out, a)
		}
	}
	return out
}

// parseRate reads "30/min", "2/s" or "600/h" as requests per minute.
func parseRate(s string) (int, error) {
	m := ratePattern.FindStringSubmatch(strings.TrimSpace(s))
	if m == nil {
		return 0, fmt.Errorf("must be N/s, N/min or N/h")
	}
	n, _ := strconv.Atoi(m[1])
	switch m[2] {
	case "s":
		n *= 60
	case "h":
		n = (n + 59) / 60
	}
	if n < 1 {
		return 0, fmt.Errorf("must be at least 1/h")
	}
	return n, nil
}
