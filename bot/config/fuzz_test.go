package config

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// FuzzParse: arbitrary bytes never panic or hang Parse; bad input is a *Problems whose every
// line starts with the file name, and good input yields at least one tenant with a valid id.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"testdata/alertengine.yaml", "testdata/invalid.yaml"} {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		"tenants: []",
		"tenants:\n  - id: acme\n    services: [{name: a}]\n",
		"tenants:\n  - id: ${A}\n    services: [{name: \"${B}\"}]\n",
		"x-a: &a {name: a}\ntenants:\n  - id: acme\n    services: [*a, *a]\n    policy: {<<: *a}\n",
		"tenants: [{id: acme, services: [{name: a}], recovery: {url: 'https://x', secret: $$, actions: [{name: r, risk: low}]}}]",
		"a: *b\n",
		"tenants:\n  - !!str id: acme\n",
		"? [a]\n: b\n",
		"tenants:\n\t- id: acme\n",
		"---\n...\n---\n",
		"tenants:\n  - id: acme\n    services: [{name: a}]\n    chats: {telegram: [-1], whatsapp: [\"+263771234567\"]}\n    people: [{name: a, role: approver, ids: {telegram: 1, whatsapp: \"+263771234568\"}}]\n",
		"tenants:\n  - id: acme\n    services: [{name: a}]\n    chats: {slack: [x]}\n    people: [{name: a, role: approver, ids: {telegram: 1}, telegram: 2}]\n",
		"x-a: &a [1, 2]\nx-b: &b [*a, *a, *a]\nx-c: &c [*b, *b, *b]\ntenants: [*c]\n",
		"tenants: [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]\n",
		"x-m0: &m0 {id: a}\nx-m1: &m1 {<<: *m0}\ntenants: [{<<: *m1, services: [{name: a}]}]\n",
	} {
		f.Add([]byte(s))
	}
	lookup := mapLookup(map[string]string{"A": "acme", "B": "checkout"})
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := parseT("fuzz.yaml", data, lookup, Env{})
		if err == nil {
			if file == nil || len(file.Tenants) == 0 {
				t.Fatalf("no error but no tenant: %#v", file)
			}
			chats := map[Chat]bool{}
			for _, tn := range file.Tenants {
				if !tenantIDPattern.MatchString(tn.ID) || len(tn.Services) == 0 {
					t.Fatalf("no error but invalid tenant %#v", tn)
				}
				for _, c := range tn.Chats {
					if chats[c] || channelByName(testChannels(), c.Channel) == nil || c.ID == "" {
						t.Fatalf("chat %v accepted twice, on no channel or empty", c)
					}
					chats[c] = true
				}
				ids := map[string]bool{}
				for _, p := range tn.People {
					if p.Role == RoleApprover && len(p.IDs) == 0 {
						t.Fatalf("approver %q accepted without an id", p.Name)
					}
					for ch, id := range p.IDs {
						if ids[ch+":"+id] || channelByName(testChannels(), ch) == nil || id == "" {
							t.Fatalf("person id %s:%s accepted twice, on no channel or empty", ch, id)
						}
						ids[ch+":"+id] = true
					}
				}
				for _, s := range tn.Services {
					if s.AllowPrivateNetwork && s.HealthURL == "" {
						t.Fatalf("allow_private_network accepted on push-mode service %q", s.Name)
					}
				}
				_ = tn.PolicyVersion()
			}
			return
		}
		if file != nil {
			t.Fatal("an error and a file")
		}
		var ps *Problems
		if !errors.As(err, &ps) || !errors.Is(err, ErrInvalid) || len(ps.List) == 0 {
			t.Fatalf("want *Problems wrapping ErrInvalid, got %T %v", err, err)
		}
		for _, line := range ps.Lines() {
			if !strings.HasPrefix(line, "fuzz.yaml") {
				t.Fatalf("problem line without the file name: %q", line)
			}
		}
	})
}
