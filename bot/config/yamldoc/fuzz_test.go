package yamldoc

import (
	"testing"
	"time"

	"github.com/goccy/go-yaml/ast"
)

// FuzzRead: whatever the bytes, parsing and reading every node with every reader neither
// panics nor runs away (the visit budget holds), every problem names the file, and a value
// the readers take is within MaxString.
func FuzzRead(f *testing.F) {
	for _, s := range []string{
		"a: 1\n",
		"x-a: &a {b: [1, 2, {c: d}]}\nv: *a\nw: {<<: [*a, *a]}\n",
		"a: *nowhere\n",
		"- [a, {b: c}]\n- ~\n",
		"a: [[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]\n",
		"x-a: &a [1, 1, 1]\nx-b: &b [*a, *a, *a]\nv: [*b, *b]\n",
		"? [a]\n: b\n",
		"a: !!str 5\nb: \"x\\ty\"\nc: |\n  text\n",
		"a: 1\n---\nb: 2\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		doc := Parse("fuzz.yaml", data)
		r := doc.Reader(nil)
		walk(t, r, doc.Body, "", 1, 0)
		if doc.visits > MaxVisits+1 {
			t.Fatalf("%d visits, past the budget", doc.visits)
		}
		for _, p := range doc.Problems() {
			if p.File != "fuzz.yaml" || p.Message == "" {
				t.Fatalf("problem without file or message: %+v", p)
			}
		}
	})
}

// walk reads n as a mapping with the keys it has, a list, and every scalar, with each
// typed reader.
func walk(t *testing.T, r *Reader, n ast.Node, path string, line, depth int) {
	if depth > 20 {
		return
	}
	o := r.ObjectOf(n, path, line, Keys{Extensions: true, Names: keysOf(n)})
	for key := range o.entries {
		s := r.Value(o, key)
		if len(s.Text) > MaxString {
			t.Fatalf("value of %d bytes taken", len(s.Text))
		}
		_, _ = r.Integer(o, key)
		_, _ = r.NumberIn(o, key, -1, 1)
		_, _ = r.Bool(o, key)
		_, _ = r.DurationIn(o, key, 0, time.Hour)
		_ = r.OneOf(o, key, []string{"a"})
		_, _ = r.Values(o, key)
		walk(t, r, o.entries[key].value, o.Sub(key), o.LineOf(key), depth+1)
	}
	items, _ := r.List(n, path, line)
	for _, it := range items {
		walk(t, r, it.Node, it.Path, it.Line, depth+1)
	}
}

func keysOf(n ast.Node) []string {
	m, ok := n.(*ast.MappingNode)
	if !ok {
		return nil
	}
	var keys []string
	for _, mv := range m.Values {
		if k, ok := keyText(mv.Key); ok {
			keys = append(keys, k)
		}
	}
	return keys
}
