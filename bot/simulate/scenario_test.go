package simulate

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/alertengine/alertengine/bot/config"
)

// TestScenarioIsOneYAMLDialect: anchors, aliases and merge keys work in the scenario's own
// keys as they do in its tenants, and a mistake reads the same in both halves of the file.
func TestScenarioIsOneYAMLDialect(t *testing.T) {
	src := `x-spike: &spike {at: 5m, error_rate: 0.5}
x-person: &slow {after: 3m, jitter: 30s}
duration: 30m
tenants:
  - id: acme
    services: [{name: api}, {name: web}]
    chats: {telegram: [-100]}
    people: [{name: tendai, role: approver, ids: {telegram: 1}}]
services:
  - {name: api, script: [*spike]}
  - name: web
    script: [{<<: *spike, at: 7m}]
people:
  - {<<: *slow, name: tendai}
`
	sc, err := Parse("alias.yaml", []byte(src), ".")
	if err != nil {
		t.Fatal(err)
	}
	got := []any{sc.Services[0].Script[0].At, *sc.Services[0].Script[0].ErrorRate, sc.Services[1].Script[0].At,
		*sc.Services[1].Script[0].ErrorRate, sc.People[0].After, sc.People[0].Jitter, sc.People[0].Channel}
	want := []any{5 * time.Minute, 0.5, 7 * time.Minute, 0.5, 3 * time.Minute, 30 * time.Second, "telegram"}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("(-want +got):\n%s", d)
	}

	bad := `duration: 30m
tenants:
  - id: acme
    servics: [{name: api}]
services:
  - nmae: api
    script: *nowhere
`
	_, err = Parse("bad.yaml", []byte(bad), ".")
	lines := strings.Split(err.Error(), "\n")
	for _, w := range []string{
		`bad.yaml:4: tenants[0].servics: unknown key; did you mean "services"?`,
		`bad.yaml:6: services[0].nmae: unknown key; did you mean "name"?`,
		`bad.yaml:7: services[0].script: alias *nowhere refers to no anchor (&nowhere) defined before it`,
	} {
		if !slices.Contains(lines, w) {
			t.Errorf("missing %q in\n%s", w, err)
		}
	}

	// A syntax error reads as the tenants file's does.
	_, err = Parse("syntax.yaml", []byte("duration: 30m\nservices: [{name: a}\n"), ".")
	if err == nil || !strings.HasPrefix(err.Error(), "syntax.yaml:2: invalid YAML: ") {
		t.Errorf("syntax error: got %v", err)
	}
}

// TestScenarioAliasBomb: nested aliases in the scenario's own keys are refused before they
// are expanded, as in the tenants file.
func TestScenarioAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-a0: &a0 [1m, 1m, 1m, 1m, 1m, 1m, 1m, 1m, 1m, 1m]\n")
	for i := 1; i <= 9; i++ {
		prev := strings.TrimSuffix(strings.Repeat("*a"+string(rune('0'+i-1))+", ", 10), ", ")
		b.WriteString("x-a" + string(rune('0'+i)) + ": &a" + string(rune('0'+i)) + " [" + prev + "]\n")
	}
	b.WriteString("duration: 30m\nservices: *a9\n")
	_, err := Parse("bomb.yaml", []byte(b.String()), ".")
	if err == nil || !strings.Contains(err.Error(), "the document expands to more than 1000000 values") {
		t.Fatalf("want the expansion limit, got %v", err)
	}
}

// FuzzParseScenario: whatever the bytes, Parse neither panics nor runs away, and refuses
// with FILE:LINE problems (errors.Is config.ErrInvalid) or returns a scenario with a
// duration and services.
func FuzzParseScenario(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join(fixtures, "*.yaml"))
	for _, p := range paths {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(brokenScenario))
	f.Add([]byte("x-a: &a {at: 1m, p95_ms: 900}\nduration: 1h\nservices: [{name: a, script: [*a, {<<: *a, at: 2m}]}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		sc, err := Parse("fuzz.yaml", data, t.TempDir())
		if err == nil {
			if sc == nil || sc.Duration <= 0 || len(sc.Services) == 0 || sc.Tenants == nil {
				t.Fatalf("no error but an incomplete scenario: %+v", sc)
			}
			return
		}
		if sc != nil || !errors.Is(err, config.ErrInvalid) {
			t.Fatalf("want only a config.ErrInvalid problem list, got %v (%T)", err, err)
		}
		for _, l := range strings.Split(err.Error(), "\n") {
			if !strings.HasPrefix(l, "fuzz.yaml") && !strings.Contains(l, ": ") {
				t.Fatalf("problem line without a file: %q", l)
			}
		}
	})
}
