package yamldoc

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func lines(d *Doc) []string {
	var out []string
	for _, p := range d.Problems() {
		out = append(out, fmt.Sprintf("%d: %s: %s", p.Line, p.Path, p.Message))
	}
	return out
}

// TestReaders: each reader takes what it should and says what it wanted otherwise, with
// the key path and line of the value.
func TestReaders(t *testing.T) {
	doc := Parse("f.yaml", []byte(`x-d: &d 90s
a:
  n: +42
  bad_n: 4.5
  f: 0.25
  b: TRUE
  d: *d
  bare: 300
  one: blue
  list: [x, ~, y]
  z: 1
`))
	r := doc.Reader(nil)
	root := r.Root([]string{"a"})
	a := r.Field(root, "a", []string{"n", "bad_n", "f", "b", "d", "bare", "one", "list", "missing"})
	n, _ := r.Integer(a, "n")
	_, _ = r.Integer(a, "bad_n")
	f, _ := r.NumberIn(a, "f", 0, 1)
	b, _ := r.Bool(a, "b")
	d, _ := r.Duration(a, "d")
	_, _ = r.DurationIn(a, "bare", 0, time.Hour)
	_ = r.OneOf(a, "one", []string{"red", "green"})
	vals, present := r.Values(a, "list")
	missing := r.Value(a, "missing")
	got := []any{n, f, b, d, len(vals), present, missing.Set, missing.Bad}
	if diff := cmp.Diff([]any{int64(42), 0.25, true, 90 * time.Second, 2, true, false, false}, got); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	want := []string{
		`4: a.bad_n: want a whole number, got "4.5"`,
		`8: a.bare: want a duration like 5m or 180s, got "300" (add a unit: s, m or h)`,
		`9: a.one: want one of red, green, got "blue"`,
		`10: a.list[1]: empty item`,
		`11: a.z: unknown key; did you mean "n"?`,
	}
	if diff := cmp.Diff(want, lines(doc)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
}

// TestExpansionIsNotEchoed: a value built from an expansion is never quoted in a problem.
func TestExpansionIsNotEchoed(t *testing.T) {
	doc := Parse("f.yaml", []byte("n: ${SECRET}\n"))
	r := doc.Reader(func(s string) Expansion {
		return Expansion{Value: "hunter2", Vars: []string{"SECRET"}}
	})
	_, _ = r.Integer(r.Root([]string{"n"}), "n")
	want := []string{"1: n: want a whole number, got the value of ${SECRET}"}
	if diff := cmp.Diff(want, lines(doc)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// TestHostileInput: nesting, long values and merge chains are bounded with a problem, and
// brackets that open no collection (quoted, in comments, inside a plain value) do not count.
func TestHostileInput(t *testing.T) {
	deep := "a: " + strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1) + "\n"
	if got := lines(Parse("f.yaml", []byte(deep))); len(got) != 1 || got[0] != "1: : invalid YAML: brackets nested more than 100 deep" {
		t.Errorf("deep flow nesting: %q", got)
	}
	for _, ok := range []string{
		`a: "` + strings.Repeat("[", 200) + `"`,
		`a: '` + strings.Repeat("{", 200) + `'`,
		"# " + strings.Repeat("[", 200) + "\na: 1",
		"a: x" + strings.Repeat("[", 200),
		"a: [" + strings.Repeat("[", MaxDepth-1) + strings.Repeat("]", MaxDepth) + "\n",
	} {
		if d := Parse("f.yaml", []byte(ok)); d.Failed() {
			t.Errorf("%.40q: %q", ok, lines(d))
		}
	}

	long := Parse("f.yaml", []byte("a: "+strings.Repeat("x", MaxString+1)+"\n"))
	r := long.Reader(nil)
	if s := r.Value(r.Root([]string{"a"}), "a"); s.Set || !s.Bad {
		t.Errorf("a value over MaxString was taken: %v", s.Set)
	}
	if got := lines(long); len(got) != 1 || got[0] != "1: a: the value is longer than 65536 bytes" {
		t.Errorf("long value: %q", got)
	}

	var chain strings.Builder
	chain.WriteString("x-m0: &m0 {a: 1}\n")
	for i := 1; i <= MaxDepth+1; i++ {
		fmt.Fprintf(&chain, "x-m%d: &m%d {<<: *m%d}\n", i, i, i-1)
	}
	fmt.Fprintf(&chain, "v: *m%d\n", MaxDepth+1)
	doc := Parse("f.yaml", []byte(chain.String()))
	r = doc.Reader(nil)
	r.Field(r.Root([]string{"v"}), "v", []string{"a"})
	if got := lines(doc); len(got) != 1 || !strings.Contains(got[0], "merges (<<) nested more than 100 deep") {
		t.Errorf("merge chain: %q", got)
	}
}

// TestParseProblems: a document is one document, and a parser panic or syntax error is a
// problem with its line.
func TestParseProblems(t *testing.T) {
	for in, want := range map[string]string{
		"a: 1\n---\nb: 2\n": "3: : more than one YAML document (---); put everything in one",
		"a: [1, 2\n":        "1: : invalid YAML: sequence end token ']' not found",
	} {
		if got := lines(Parse("f.yaml", []byte(in))); len(got) != 1 || got[0] != want {
			t.Errorf("%q: got %q, want %q", in, got, want)
		}
	}
	if d := Parse("f.yaml", []byte(" \n\t\n")); !d.Blank || d.Body != nil || d.Failed() {
		t.Errorf("blank: %+v", d)
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"services", "people", "policy"}
	for word, want := range map[string]string{
		"servics":  `; did you mean "services"?`,
		"Poeple":   `; did you mean "people"?`,
		"colour":   " (allowed: services, people, policy)",
		"services": `; did you mean "services"?`,
	} {
		if got := Suggest(word, keys); got != want {
			t.Errorf("Suggest(%q) = %q, want %q", word, got, want)
		}
	}
}

// bomb is nine levels of anchors, each a list of ten aliases of the one before: 10^9
// values once expanded.
func bomb() []byte {
	var b strings.Builder
	b.WriteString("x-a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n")
	for i := 1; i <= 9; i++ {
		fmt.Fprintf(&b, "x-a%d: &a%d [%s]\n", i, i, strings.TrimSuffix(strings.Repeat(fmt.Sprintf("*a%d, ", i-1), 10), ", "))
	}
	b.WriteString("v: *a9\n")
	return []byte(b.String())
}

// BenchmarkAliasBomb: refusing a billion-laughs document.
func BenchmarkAliasBomb(b *testing.B) {
	data := bomb()
	for b.Loop() {
		if d := Parse("bomb.yaml", data); d.Body != nil || !d.Failed() {
			b.Fatal("the bomb was not refused")
		}
	}
}

// BenchmarkDeepBrackets: refusing 1 MiB of nested brackets (goccy alone takes minutes).
func BenchmarkDeepBrackets(b *testing.B) {
	data := []byte("a: " + strings.Repeat("[", 1<<20))
	for b.Loop() {
		if d := Parse("deep.yaml", data); !d.Failed() {
			b.Fatal("the nesting was not refused")
		}
	}
}
