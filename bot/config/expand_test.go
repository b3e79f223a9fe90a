package config

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret")
	if err := os.WriteFile(secretFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lookup := mapLookup(map[string]string{
		"A": "alpha", "B": "beta", "EMPTY": "",
		"F_FILE": secretFile,
		"BOTH":   "inline", "BOTH_FILE": secretFile,
		"G": "", "G_FILE": secretFile,
		"MISSING_FILE": filepath.Join(dir, "nope"),
		"NESTED":       "${A}",
	})
	tests := []struct {
		in       string
		want     string
		vars     []string
		problems []string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "alpha", vars: []string{"A"}},
		{in: "x-${A}-${B}-y", want: "x-alpha-beta-y", vars: []string{"A", "B"}},
		{in: "$$", want: "$"},
		{in: "$${A}", want: "${A}"},
		{in: "cost: 5$ or $5", want: "cost: 5$ or $5"},
		{in: "trailing $", want: "trailing $"},
		{in: "${EMPTY}", want: "", vars: []string{"EMPTY"}},
		{in: "${NESTED}", want: "${A}", vars: []string{"NESTED"}}, // substituted text is not expanded again
		{in: "${F}", want: "from-file", vars: []string{"F"}},
		{in: "${G}", want: "from-file", vars: []string{"G"}}, // empty NAME, NAME_FILE set: the file
		{in: "${UNDEFINED}", problems: []string{"${UNDEFINED}: environment variable UNDEFINED is not set"}},
		{in: "${A}${X}${Y}", problems: []string{
			"${X}: environment variable X is not set",
			"${Y}: environment variable Y is not set",
		}},
		{in: "${BOTH}", problems: []string{"${BOTH}: both BOTH and BOTH_FILE are set; set only one"}},
		{in: "${MISSING}", problems: []string{`${MISSING}: MISSING_FILE: cannot read "` + filepath.Join(dir, "nope") + `": no such file or directory`}},
		{in: "${}", problems: []string{"${}: invalid variable name (want letters, digits and _; write $$ for a literal $)"}},
		{in: "${A-B}", problems: []string{"${A-B}: invalid variable name (want letters, digits and _; write $$ for a literal $)"}},
		{in: "${A", problems: []string{`unterminated "${" (write $$ for a literal $)`}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			x := expand(tt.in, lookup)
			if len(tt.problems) > 0 {
				if d := cmp.Diff(tt.problems, x.problems); d != "" {
					t.Errorf("problems (-want +got):\n%s", d)
				}
				return
			}
			if len(x.problems) > 0 {
				t.Fatalf("unexpected problems: %v", x.problems)
			}
			if x.value != tt.want {
				t.Errorf("value: got %q, want %q", x.value, tt.want)
			}
			if d := cmp.Diff(tt.vars, x.vars); d != "" {
				t.Errorf("vars (-want +got):\n%s", d)
			}
		})
	}
}

func TestParseExpansion(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "am-token")
	if err := os.WriteFile(secretFile, []byte("token-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	lookup := mapLookup(map[string]string{
		"TENANT":      "acme",
		"SCORE":       "42",
		"TTL":         "2m",
		"HOOK":        "https://acme.example/recover",
		"SECRET":      "value with: yaml\n- [characters]",
		"AM_FILE":     secretFile,
		"COMMENTED":   "", // a ${VAR} in a comment is never expanded, defined or not
		"PRIVATE_NET": "true",
		"REPO":        "acme/checkout",
	})
	src := `# ${NOT_DEFINED_BUT_IN_A_COMMENT}
tenants:
  - id: ${TENANT}
    services:
      - name: checkout
        repos: ["${REPO}"]
        health_url: http://checkout:8000/health?cost=$$5
    people: [{name: a, role: approver, telegram: 1}]
    recovery:
      url: ${HOOK}
      secret: ${SECRET}
      allow_private_network: ${PRIVATE_NET}
      actions: [{name: restart, risk: low}]
    policy:
      min_score_to_alert: ${SCORE}
      approval_ttl: ${TTL}
    alertmanager:
      token: ${AM}
`
	f, err := parseT("alertengine.yaml", []byte(src), lookup, demoEnv(t))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	tn := f.Tenants[0]
	got := []any{tn.ID, tn.Services[0].Repos, tn.Recovery.URL, tn.Recovery.Secret.Reveal(), tn.Recovery.AllowPrivateNetwork,
		tn.Policy.MinScoreToAlert, tn.Policy.ApprovalTTL, tn.Alertmanager.Token.Reveal()}
	want := []any{"acme", []string{"acme/checkout"}, "https://acme.example/recover", "value with: yaml\n- [characters]", true,
		42, 2 * time.Minute, "token-from-file"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	// $$ is a literal $ and survives into a URL (a query here, which health URLs may have).
	if !strings.Contains(tn.Services[0].HealthURL, "cost=$5") {
		t.Errorf("health_url: got %q", tn.Services[0].HealthURL)
	}
}

func TestAnchorsAndMerge(t *testing.T) {
	src := `tenants:
  - id: acme
    services: [{name: a}]
    policy: &strict
      min_score_to_alert: 80
      approval_ttl: 2m
  - id: beta
    services: [{name: a}]
    policy:
      <<: *strict
      approval_ttl: 10m
  - id: gamma
    services: [{name: a}]
    policy: *strict
`
	f, err := parseT("alertengine.yaml", []byte(src), nil, demoEnv(t))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	var got [][2]any
	for _, tn := range f.Tenants {
		got = append(got, [2]any{tn.Policy.MinScoreToAlert, tn.Policy.ApprovalTTL})
	}
	want := [][2]any{{80, 2 * time.Minute}, {80, 10 * time.Minute}, {80, 2 * time.Minute}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}
	if f.Tenants[0].PolicyVersion() != f.Tenants[2].PolicyVersion() || f.Tenants[0].PolicyVersion() == f.Tenants[1].PolicyVersion() {
		t.Error("PolicyVersion: aliased policies must match, overridden ones must differ")
	}
}

func TestExtensionKeysHoldAnchors(t *testing.T) {
	src := `x-policy: &strict {min_score_to_alert: 85}
x-anything: [1, 2, {free: form}]
tenants:
  - id: acme
    services: [{name: a}]
    policy: *strict
`
	f, err := parseT("alertengine.yaml", []byte(src), nil, demoEnv(t))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if got := f.Tenants[0].Policy.MinScoreToAlert; got != 85 {
		t.Errorf("min_score_to_alert: got %d, want 85", got)
	}
}

func TestAliasBombs(t *testing.T) {
	// Anchors that refer to anchors ten times over would expand to 10^9 values; decoding stops
	// at a fixed budget with a problem instead of running for ever.
	chain := func(level func(i int, prev string) string) string {
		var b strings.Builder
		for i := 1; i <= 9; i++ {
			b.WriteString(level(i, fmt.Sprintf("*m%d", i-1)))
		}
		return b.String()
	}
	tenPrev := func(prev string) string { return strings.TrimSuffix(strings.Repeat(prev+", ", 10), ", ") }
	tests := []struct {
		name, src string
	}{
		{"merge keys", "x-m0: &m0 {approval_ttl: 5m}\n" + chain(func(i int, prev string) string {
			return fmt.Sprintf("x-m%d: &m%d {<<: [%s]}\n", i, i, tenPrev(prev))
		}) + "tenants:\n  - id: acme\n    services: [{name: a}]\n    policy: *m9\n"},
		{"nested lists", "x-m0: &m0 {name: a, repos: [a/b, a/b, a/b, a/b, a/b, a/b, a/b, a/b, a/b, a/b]}\n" +
			"x-s: &s [" + strings.TrimSuffix(strings.Repeat(tenPrev("*m0")+", ", 10), ", ") + "]\n" +
			"x-t: &t {id: acme, services: *s}\n" +
			"tenants: [" + strings.TrimSuffix(strings.Repeat(tenPrev("*t")+", ", 200), ", ") + "]\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseT("bomb.yaml", []byte(tt.src), nil, demoEnv(t))
			lines := problemLines(t, err)
			if !slices.ContainsFunc(lines, func(l string) bool {
				return strings.Contains(l, "the document expands to more than 1000000 values")
			}) {
				t.Errorf("want the expansion limit among the problems, got:\n%s", strings.Join(lines, "\n"))
			}
		})
	}
}
