// Package yamldoc reads a hand-written YAML file the way the bot's users need it read: every
// problem at once, each with its file, line and key path, rather than the first error of a
// decoder. It walks goccy/go-yaml's syntax tree: a [Doc] is one parsed document, a [Reader]
// reads objects, lists and scalars out of it, reporting unknown keys (with one "did you
// mean"), wrong shapes and unparsable values as [Problem]s.
//
// The tenants file and the simulation scenarios are read through it, so they share one YAML
// dialect (anchors, aliases and merge keys work everywhere), one set of error texts and one
// set of limits on hostile input ([MaxFileSize], [MaxVisits], [MaxDepth], [MaxString]).
package yamldoc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

// Limits on hostile input, the same for every file read through this package.
const (
	// MaxFileSize bounds a file: 4 MiB.
	MaxFileSize = 4 << 20
	// MaxVisits bounds the work of reading a document, so that nested aliases ("billion
	// laughs") cannot make a read run for ever: a document whose aliases expand to more
	// values is refused before it is walked.
	MaxVisits = 1_000_000
	// MaxDepth bounds nesting: of flow collections ([ ], { }) in the source, which the
	// parser handles in time quadratic in their depth, and of merge keys (<<) in a mapping.
	MaxDepth = 100
	// MaxString bounds one value, in bytes, after expansion.
	MaxString = 64 << 10
)

// Problem is one thing wrong with a file.
type Problem struct {
	// File is the file name as given to Parse.
	File string
	// Line is 1-based; 0 when there is none (an empty file).
	Line int
	// Path is the key path (tenants[0].people[1].role); empty for the document as a whole.
	Path string
	// Message says what is wrong. It never echoes a value that came from an expansion.
	Message string
}

// ReadFile reads path, refusing a file larger than [MaxFileSize]. what names the file in
// the errors ("the config file", "the scenario").
func ReadFile(path, what string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", what, pathErr(err))
	}
	defer f.Close() // read-only: a close error loses nothing
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read %s: %w", what, pathErr(err))
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("%s is larger than %d MiB", what, MaxFileSize>>20)
	}
	return data, nil
}

// pathErr drops the path from an *os.PathError: the problem line names the file already.
func pathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Doc is one YAML document being read, and the problems found in it so far.
type Doc struct {
	// File names the document in problems.
	File string
	// Body is the document's content; nil when it has none or could not be parsed (see
	// Blank and Problems).
	Body ast.Node
	// Blank is true when the data was only white space.
	Blank bool

	problems []Problem
	aliases  map[*ast.AliasNode]ast.Node
	visits   int
}

// Parse parses data as one YAML document. A syntax error, a second document, nesting deeper
// than [MaxDepth] and aliases expanding to more than [MaxVisits] values are reported on the
// Doc, whose Body is then nil; so is a document without content, without a problem.
func Parse(file string, data []byte) *Doc {
	d := &Doc{File: file, aliases: map[*ast.AliasNode]ast.Node{}}
	if len(bytes.TrimSpace(data)) == 0 {
		d.Blank = true
		return d
	}
	if line, depth := flowDepth(data); depth > MaxDepth {
		d.Addf(line, "", "invalid YAML: brackets nested more than %d deep", MaxDepth)
		return d
	}
	f, err := parse(data)
	if err != nil {
		d.syntaxError(data, err)
		return d
	}
	var body ast.Node
	for _, dn := range f.Docs {
		if dn == nil || dn.Body == nil {
			continue
		}
		if body != nil {
			d.Addf(nodeLine(dn.Body, 0), "", "more than one YAML document (---); put everything in one")
			return d
		}
		body = dn.Body
	}
	if body == nil {
		return d
	}
	var total int
	if !d.collectAliases(body, map[string]ast.Node{}, map[ast.Node]int{}, &total) {
		return d
	}
	d.Body = body
	return d
}

// parse parses data, turning a parser panic on hostile input into an error.
func parse(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("the parser failed (%v)", r)
		}
	}()
	return parser.ParseBytes(data, 0)
}

func (d *Doc) syntaxError(data []byte, err error) {
	line, msg := 0, err.Error()
	var ye yaml.Error
	if errors.As(err, &ye) {
		msg = ye.GetMessage()
		if tk := ye.GetToken(); tk != nil && tk.Position != nil {
			line = tk.Position.Line
		}
	}
	msg, _, _ = strings.Cut(msg, "\n")
	hint := ""
	if lines := bytes.Split(data, []byte("\n")); line > 0 && line <= len(lines) && bytes.Contains(lines[line-1], []byte("${")) {
		hint = ` (inside [ ] or { }, quote values that contain ${VAR}: ["${VAR}"])`
	}
	d.Addf(line, "", "invalid YAML: %s%s", msg, hint)
}

// flowDepth returns the deepest nesting of flow collections in data (up to the first
// depth past MaxDepth) and the line where it is reached. It skips comments and quoted scalars and counts a bracket only where a flow
// collection can start (at the start of a token) or inside one, so text such as a[1] in a
// plain value does not count.
func flowDepth(data []byte) (maxLine, maxDepth int) {
	line, depth := 1, 0
	prev := byte('\n')
	for i := 0; i < len(data); i++ {
		c := data[i]
		tokenStart := prev == '\n' || prev == ' ' || prev == '\t' ||
			(depth > 0 && (prev == '[' || prev == '{' || prev == ',' || prev == ':'))
		switch {
		case c == '\n':
			line++
		case c == '#' && (prev == '\n' || prev == ' ' || prev == '\t'):
			for i+1 < len(data) && data[i+1] != '\n' {
				i++
			}
		case (c == '"' || c == '\'') && tokenStart:
			var lines int
			i, lines = skipQuoted(data, i)
			line += lines
		case (c == '[' || c == '{') && (tokenStart || depth > 0):
			depth++
			if depth > maxDepth {
				maxLine, maxDepth = line, depth
			}
			if depth > MaxDepth {
				return maxLine, maxDepth // refused: no need to read on
			}
		case (c == ']' || c == '}') && depth > 0:
			depth--
		}
		if i < len(data) {
			prev = data[i]
		}
	}
	return maxLine, maxDepth
}

// skipQuoted returns the index of the quote that closes the scalar opened at data[i] (or
// len(data)) and the line breaks inside it.
func skipQuoted(data []byte, i int) (end, lines int) {
	q := data[i]
	for i++; i < len(data); i++ {
		switch c := data[i]; {
		case c == '\n':
			lines++
		case c == '\\' && q == '"':
			i++
		case c == '\'' && q == '\'' && i+1 < len(data) && data[i+1] == '\'':
			i++ // '' is a quote inside single quotes
		case c == q:
			return i, lines
		}
	}
	return i, lines
}

// collectAliases maps every alias to the anchor it refers to: the closest one defined before
// it in document order, as YAML specifies. An anchor is registered after its own content, so
// an alias can never refer to a node that contains it. It also adds up how many values the
// document expands to, each alias counting as its anchor's content, and refuses the document
// when that passes MaxVisits: a billion-laughs document is refused before it is walked.
func (d *Doc) collectAliases(n ast.Node, anchors map[string]ast.Node, sizes map[ast.Node]int, total *int) bool {
	before := *total
	*total++
	switch v := n.(type) {
	case *ast.AnchorNode:
		if !d.collectAliases(v.Value, anchors, sizes, total) {
			return false
		}
		anchors[scalarText(v.Name)] = v.Value
		sizes[v.Value] = *total - before
	case *ast.AliasNode:
		if target, ok := anchors[scalarText(v.Value)]; ok {
			d.aliases[v] = target
			*total += sizes[target]
		}
	case *ast.TagNode:
		return d.collectAliases(v.Value, anchors, sizes, total)
	case *ast.MappingNode:
		for _, mv := range v.Values {
			if !d.collectAliases(mv, anchors, sizes, total) {
				return false
			}
		}
	case *ast.MappingValueNode:
		return d.collectAliases(v.Key, anchors, sizes, total) && d.collectAliases(v.Value, anchors, sizes, total)
	case *ast.MappingKeyNode:
		return d.collectAliases(v.Value, anchors, sizes, total)
	case *ast.SequenceNode:
		for _, item := range v.Values {
			if !d.collectAliases(item, anchors, sizes, total) {
				return false
			}
		}
	}
	if *total > MaxVisits {
		d.Addf(nodeLine(n, 0), "", "the document expands to more than %d values (aliases nested too deep?)", MaxVisits)
		return false
	}
	return true
}

// Addf records a problem at line and path.
func (d *Doc) Addf(line int, path, format string, args ...any) {
	d.problems = append(d.problems, Problem{File: d.File, Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
}

// Add records a problem found elsewhere (in a file this one names).
func (d *Doc) Add(p Problem) { d.problems = append(d.problems, p) }

// NumProblems is how many problems were found so far.
func (d *Doc) NumProblems() int { return len(d.problems) }

// Failed reports whether a problem was found.
func (d *Doc) Failed() bool { return len(d.problems) > 0 }

// Problems returns the problems found so far, ordered by line (stable, so problems on one
// line keep the order they were found in), each shown once: a problem inside an anchor is
// found once per alias.
func (d *Doc) Problems() []Problem {
	sort.SliceStable(d.problems, func(i, j int) bool { return d.problems[i].Line < d.problems[j].Line })
	seen := map[Problem]bool{}
	list := d.problems[:0]
	for _, p := range d.problems {
		if !seen[p] {
			seen[p] = true
			list = append(list, p)
		}
	}
	d.problems = list
	return slices.Clone(list)
}

// tick counts work; false once the budget is spent (reported once). The budget is a second
// guard behind the expansion count of Parse.
func (d *Doc) tick(line int, path string) bool {
	d.visits++
	if d.visits == MaxVisits+1 {
		d.Addf(line, path, "the document expands to more than %d values (aliases nested too deep?)", MaxVisits)
	}
	return d.visits <= MaxVisits
}

// Expansion is what an [Expander] made of one value.
type Expansion struct {
	Value string
	// Vars are the variables substituted: a value built from any is never echoed in a
	// problem (it may be a secret).
	Vars []string
	// Problems say what could not be expanded; each becomes a problem of the value.
	Problems []string
}

// Expander rewrites each scalar's text after parsing (${VAR} substitution).
type Expander func(text string) Expansion

// Reader reads values out of a [Doc]. Several readers may share a Doc (and its problems and
// work budget), each with its own expansion of values.
type Reader struct {
	doc    *Doc
	expand Expander
	depth  int
}

// Reader returns a reader of d; expand may be nil (values are taken as written).
func (d *Doc) Reader(expand Expander) *Reader { return &Reader{doc: d, expand: expand} }

// Doc returns the document read.
func (r *Reader) Doc() *Doc { return r.doc }

// Addf records a problem at line and path.
func (r *Reader) Addf(line int, path, format string, args ...any) {
	r.doc.Addf(line, path, format, args...)
}

// resolve follows anchors, aliases and tags to the node they stand for. It returns nil for
// null or absent; ok is false when a problem was reported.
func (r *Reader) resolve(n ast.Node, path string, line int) (ast.Node, bool) {
	for n != nil {
		line = nodeLine(n, line)
		if !r.doc.tick(line, path) {
			return nil, false
		}
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			target, ok := r.doc.aliases[v]
			if !ok {
				r.Addf(line, path, "alias *%s refers to no anchor (&%s) defined before it", scalarText(v.Value), scalarText(v.Value))
				return nil, false
			}
			n = target
		case *ast.NullNode:
			return nil, true
		default:
			return n, true
		}
	}
	return nil, true
}

// Object is a mapping read with [Reader.Object]: its entries by key, explicit keys first,
// then merged (<<) ones.
type Object struct {
	// Path is the mapping's key path; Line its line (or its parent's when absent).
	Path string
	Line int
	// Present: a mapping was given. Bad: something else was given (reported).
	Present bool
	Bad     bool
	entries map[string]entry
}

type entry struct {
	line  int
	value ast.Node
}

// Sub is the path of key in o.
func (o Object) Sub(key string) string { return JoinPath(o.Path, key) }

// LineOf returns the line of key, or of the mapping when key is absent.
func (o Object) LineOf(key string) int {
	if e, ok := o.entries[key]; ok {
		return e.line
	}
	return o.Line
}

// Has reports whether key was given.
func (o Object) Has(key string) bool {
	_, ok := o.entries[key]
	return ok
}

// Keys are the allowed keys of a mapping. Noun names them in the unknown-key problem
// ("key", "channel"); Extensions allows and ignores keys starting with "x-", which hold
// anchors that other values refer to.
type Keys struct {
	Names      []string
	Noun       string
	Extensions bool
}

// Object reads the mapping n at path (line is where it is, or its parent's when absent)
// with the allowed keys.
func (r *Reader) Object(n ast.Node, path string, line int, keys []string) Object {
	return r.ObjectOf(n, path, line, Keys{Names: keys})
}

// Root reads the document's body as the top-level mapping: keys starting with "x-" are
// allowed there and ignored.
func (r *Reader) Root(keys []string) Object {
	return r.ObjectOf(r.doc.Body, "", 1, Keys{Names: keys, Extensions: true})
}

// Field reads the mapping under key of o.
func (r *Reader) Field(o Object, key string, keys []string) Object {
	return r.Object(o.entries[key].value, o.Sub(key), o.LineOf(key), keys)
}

// FieldOf reads the mapping under key of o, whose keys are described by keys.
func (r *Reader) FieldOf(o Object, key string, keys Keys) Object {
	return r.ObjectOf(o.entries[key].value, o.Sub(key), o.LineOf(key), keys)
}

// ObjectOf reads a mapping whose keys are described by keys.
func (r *Reader) ObjectOf(n ast.Node, path string, line int, keys Keys) Object {
	o := Object{Path: path, Line: line, entries: map[string]entry{}}
	n, ok := r.resolve(n, path, line)
	if !ok {
		o.Bad = true
		return o
	}
	if n == nil {
		return o
	}
	var values []*ast.MappingValueNode
	switch v := n.(type) {
	case *ast.MappingNode:
		values = v.Values
	case *ast.MappingValueNode: // a one-entry mapping, as some parser versions return it
		values = []*ast.MappingValueNode{v}
	default:
		r.Addf(nodeLine(n, line), DisplayPath(path), "want a mapping (key: value), got %s", Kind(n))
		o.Bad = true
		return o
	}
	o.Present = true
	o.Line = nodeLine(n, line)
	r.fill(&o, values, keys, false)
	return o
}

// fill adds a mapping's entries to o. Explicit keys win over merged ones, earlier merges
// over later.
func (r *Reader) fill(o *Object, values []*ast.MappingValueNode, keys Keys, merged bool) {
	var merges []*ast.MappingValueNode
	for _, mv := range values {
		if mv == nil || mv.Key == nil {
			continue
		}
		kline := nodeLine(mv.Key, o.Line)
		if !r.doc.tick(kline, o.Path) {
			return
		}
		if mv.Key.IsMergeKey() {
			merges = append(merges, mv)
			continue
		}
		key, ok := keyText(mv.Key)
		if !ok {
			r.Addf(kline, DisplayPath(o.Path), "keys must be plain strings")
			continue
		}
		if !slices.Contains(keys.Names, key) && !(keys.Extensions && strings.HasPrefix(key, "x-")) {
			noun := keys.Noun
			if noun == "" {
				noun = "key"
			}
			r.Addf(kline, o.Sub(key), "unknown %s%s", noun, Suggest(key, keys.Names))
			continue
		}
		if _, seen := o.entries[key]; seen {
			if !merged {
				r.Addf(kline, o.Sub(key), "key given twice")
			}
			continue
		}
		o.entries[key] = entry{line: kline, value: mv.Value}
	}
	if len(merges) == 0 {
		return
	}
	if r.depth >= MaxDepth {
		r.Addf(nodeLine(merges[0].Key, o.Line), o.Sub("<<"), "merges (<<) nested more than %d deep", MaxDepth)
		return
	}
	r.depth++
	defer func() { r.depth-- }()
	for _, mv := range merges {
		line := nodeLine(mv.Key, o.Line)
		path := o.Sub("<<")
		n, ok := r.resolve(mv.Value, path, line)
		if !ok || n == nil {
			continue
		}
		switch v := n.(type) {
		case *ast.MappingNode:
			r.fill(o, v.Values, keys, true)
		case *ast.SequenceNode:
			for _, item := range v.Values {
				in, ok := r.resolve(item, path, line)
				if m, isMap := in.(*ast.MappingNode); ok && isMap {
					r.fill(o, m.Values, keys, true)
				} else if ok {
					r.Addf(nodeLine(item, line), path, "merge (<<) wants mappings, got %s", Kind(in))
				}
			}
		default:
			r.Addf(line, path, "merge (<<) wants a mapping or a list of mappings, got %s", Kind(n))
		}
	}
}

// Item is one item of a list.
type Item struct {
	Node ast.Node
	Path string
	Line int
}

// List reads the sequence n at path; bad is true when something else was given (reported).
func (r *Reader) List(n ast.Node, path string, line int) (items []Item, bad bool) {
	n, ok := r.resolve(n, path, line)
	if !ok {
		return nil, true
	}
	if n == nil {
		return nil, false
	}
	s, isSeq := n.(*ast.SequenceNode)
	if !isSeq {
		r.Addf(nodeLine(n, line), path, "want a list, got %s", Kind(n))
		return nil, true
	}
	items = make([]Item, len(s.Values))
	for i, v := range s.Values {
		items[i] = Item{Node: v, Path: fmt.Sprintf("%s[%d]", path, i), Line: nodeLine(v, line)}
	}
	return items, false
}

// ListAt reads the sequence under key of o; present reports whether key was given.
func (r *Reader) ListAt(o Object, key string) (items []Item, present, bad bool) {
	e, ok := o.entries[key]
	if !ok {
		return nil, false, false
	}
	items, bad = r.List(e.value, o.Sub(key), e.line)
	return items, true, bad
}

// Scalar is one value, expanded.
type Scalar struct {
	// Set: given and not null. Bad: given but unusable (reported).
	Set, Bad bool
	Text     string
	Line     int
	// Vars are the variables expanded into Text.
	Vars []string
}

// Quoted shows the value in a problem, unless it came from an expansion (it may be a
// secret), in which case only the variables are named.
func (s Scalar) Quoted() string {
	if len(s.Vars) == 0 {
		return strconv.Quote(s.Text)
	}
	names := make([]string, len(s.Vars))
	for i, v := range s.Vars {
		names[i] = "${" + v + "}"
	}
	return "the value of " + strings.Join(names, " and ")
}

// Value reads the scalar under key of o.
func (r *Reader) Value(o Object, key string) Scalar {
	e, ok := o.entries[key]
	if !ok {
		return Scalar{Line: o.Line}
	}
	return r.Scalar(e.value, o.Sub(key), e.line)
}

// Scalar reads the single value n at path.
func (r *Reader) Scalar(n ast.Node, path string, line int) Scalar {
	s := Scalar{Line: line}
	n, ok := r.resolve(n, path, line)
	if !ok {
		s.Bad = true
		return s
	}
	if n == nil {
		return s
	}
	s.Line = nodeLine(n, line)
	text, ok := nodeText(n)
	if !ok {
		r.Addf(s.Line, path, "want a single value, got %s", Kind(n))
		s.Bad = true
		return s
	}
	x := Expansion{Value: text}
	if r.expand != nil {
		x = r.expand(text)
	}
	for _, p := range x.Problems {
		r.Addf(s.Line, path, "%s", p)
	}
	if len(x.Problems) > 0 {
		s.Bad = true
		return s
	}
	if len(x.Value) > MaxString {
		r.Addf(s.Line, path, "the value is longer than %d bytes", MaxString)
		s.Bad = true
		return s
	}
	s.Set, s.Text, s.Vars = true, x.Value, x.Vars
	return s
}

// Values reads the list of single values under key of o; present reports whether the key
// was given (even as an empty list). Null items are reported.
func (r *Reader) Values(o Object, key string) (values []Scalar, present bool) {
	items, present, _ := r.ListAt(o, key)
	for _, it := range items {
		s := r.Scalar(it.Node, it.Path, it.Line)
		if s.Set {
			values = append(values, s)
		} else if !s.Bad {
			r.Addf(s.Line, it.Path, "empty item")
		}
	}
	return values, present
}

// Integer reads a whole number under key of o.
func (r *Reader) Integer(o Object, key string) (int64, Scalar) {
	s := r.Value(o, key)
	if !s.Set {
		return 0, s
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(s.Text, "+"), 10, 64)
	if err != nil {
		r.Addf(s.Line, o.Sub(key), "want a whole number, got %s", s.Quoted())
		s.Set, s.Bad = false, true
	}
	return n, s
}

// IntegerIn reads a whole number from min to max under key of o.
func (r *Reader) IntegerIn(o Object, key string, min, max int64) (int64, Scalar) {
	s := r.Value(o, key)
	if !s.Set {
		return 0, s
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(s.Text, "+"), 10, 64)
	if err != nil || n < min || n > max {
		r.Addf(s.Line, o.Sub(key), "want a whole number from %d to %d, got %s", min, max, s.Quoted())
		s.Set, s.Bad = false, true
	}
	return n, s
}

// NumberIn reads a number from min to max under key of o.
func (r *Reader) NumberIn(o Object, key string, min, max float64) (float64, Scalar) {
	s := r.Value(o, key)
	if !s.Set {
		return 0, s
	}
	v, err := strconv.ParseFloat(s.Text, 64)
	if err != nil || v != v || v < min || v > max {
		r.Addf(s.Line, o.Sub(key), "want a number from %v to %v, got %s", min, max, s.Quoted())
		s.Set, s.Bad = false, true
	}
	return v, s
}

// Bool reads true or false (any case) under key of o.
func (r *Reader) Bool(o Object, key string) (bool, Scalar) {
	s := r.Value(o, key)
	if !s.Set {
		return false, s
	}
	switch strings.ToLower(s.Text) {
	case "true":
		return true, s
	case "false":
		return false, s
	}
	r.Addf(s.Line, o.Sub(key), "want true or false, got %s", s.Quoted())
	s.Set, s.Bad = false, true
	return false, s
}

// Duration reads a Go duration (5m, 180s) under key of o.
func (r *Reader) Duration(o Object, key string) (time.Duration, Scalar) {
	s := r.Value(o, key)
	if !s.Set {
		return 0, s
	}
	v, err := time.ParseDuration(s.Text)
	if err != nil {
		hint := ""
		if _, nerr := strconv.Atoi(s.Text); nerr == nil {
			hint = " (add a unit: s, m or h)"
		}
		r.Addf(s.Line, o.Sub(key), "want a duration like 5m or 180s, got %s%s", s.Quoted(), hint)
		s.Set, s.Bad = false, true
	}
	return v, s
}

// DurationIn reads a duration from min to max under key of o.
func (r *Reader) DurationIn(o Object, key string, min, max time.Duration) (time.Duration, Scalar) {
	v, s := r.Duration(o, key)
	if s.Set && (v < min || v > max) {
		r.Addf(s.Line, o.Sub(key), "%s is outside %s..%s", v, min, max)
		s.Set, s.Bad = false, true
	}
	return v, s
}

// OneOf reads one of the allowed words under key of o.
func (r *Reader) OneOf(o Object, key string, allowed []string) Scalar {
	s := r.Value(o, key)
	if s.Set && !slices.Contains(allowed, s.Text) {
		r.Addf(s.Line, o.Sub(key), "want one of %s, got %s", strings.Join(allowed, ", "), s.Quoted())
		s.Set, s.Bad = false, true
	}
	return s
}

// NamedList describes a list of mappings that each have a required, unique name (services,
// actions, people): the keys of an item, the problem of an empty item, and the rule for a
// name. A name given twice is reported as `duplicate NOUN "x" (also PATH)`.
type NamedList struct {
	// NameKey is the key of the name; "" is "name".
	NameKey string
	Keys    []string
	// Noun names an item in the duplicate problem ("service").
	Noun string
	// Empty is the problem of an item without content.
	Empty string
	// Valid checks a name; Invalid is its problem, given the quoted name.
	Valid   func(string) bool
	Invalid func(quoted string) string
	// Fold maps a name to the form compared for duplicates; nil compares as written.
	Fold func(string) string
}

// Named is one item of a [NamedList].
type Named struct {
	Object Object
	Path   string
	// Name is the item's valid name; "" when missing or invalid (reported).
	Name string
}

// Named reads the list items as a [NamedList]. first maps each folded name to the path of
// the item that has it, for checks across lists.
func (r *Reader) Named(items []Item, l NamedList) (out []Named, first map[string]string) {
	first = map[string]string{}
	for _, it := range items {
		o := r.Object(it.Node, it.Path, it.Line, l.Keys)
		if !o.Present {
			if !o.Bad {
				r.Addf(o.Line, it.Path, "%s", l.Empty)
			}
			continue
		}
		n := Named{Object: o, Path: it.Path}
		nameKey := l.NameKey
		if nameKey == "" {
			nameKey = "name"
		}
		name := r.Value(o, nameKey)
		switch {
		case name.Set && l.Valid != nil && !l.Valid(name.Text):
			r.Addf(name.Line, o.Sub(nameKey), "%s", l.Invalid(name.Quoted()))
		case name.Set:
			n.Name = name.Text
			key := name.Text
			if l.Fold != nil {
				key = l.Fold(key)
			}
			if prev, dup := first[key]; dup {
				r.Addf(name.Line, o.Sub(nameKey), "duplicate %s %q (also %s)", l.Noun, name.Text, prev)
			} else {
				first[key] = it.Path
			}
		case !name.Bad:
			r.Addf(o.Line, o.Sub(nameKey), "is required")
		}
		out = append(out, n)
	}
	return out, first
}

// nodeLine returns the line of n, or fallback when n has none.
func nodeLine(n ast.Node, fallback int) int {
	if n == nil {
		return fallback
	}
	if tk := n.GetToken(); tk != nil && tk.Position != nil && tk.Position.Line > 0 {
		return tk.Position.Line
	}
	return fallback
}

// nodeText returns the source text of a scalar: the unquoted string, or the literal token of
// a number or boolean (so +263771234567 keeps its plus sign).
func nodeText(n ast.Node) (string, bool) {
	switch v := n.(type) {
	case *ast.StringNode:
		return v.Value, true
	case *ast.LiteralNode:
		if v.Value == nil {
			return "", true
		}
		return v.Value.Value, true
	case *ast.MappingNode, *ast.MappingValueNode, *ast.SequenceNode:
		return "", false
	case ast.ScalarNode:
		if tk := v.GetToken(); tk != nil {
			return tk.Value, true
		}
	}
	return "", false
}

func scalarText(n ast.Node) string {
	if n == nil {
		return ""
	}
	if s, ok := nodeText(n); ok {
		return s
	}
	return n.String()
}

func keyText(k ast.MapKeyNode) (string, bool) {
	var n ast.Node = k
	if tag, ok := n.(*ast.TagNode); ok {
		n = tag.Value
	}
	switch n.(type) {
	case *ast.MappingNode, *ast.SequenceNode, *ast.MappingKeyNode, *ast.AliasNode, *ast.AnchorNode, nil:
		return "", false
	}
	return nodeText(n)
}

// Kind names the shape of n for a problem: "a mapping", "a list", "a single value".
func Kind(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode, *ast.MappingValueNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case nil:
		return "nothing"
	}
	return "a single value"
}

// JoinPath appends key to path.
func JoinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// DisplayPath is path as shown in a problem: the top level is "(top level)".
func DisplayPath(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// Suggest returns `; did you mean "x"?` for the allowed word closest to word (at most two
// edits away), else ` (allowed: a, b, …)`, or ` (none is allowed)` when allowed is empty.
func Suggest(word string, allowed []string) string {
	if len(allowed) == 0 {
		return " (none is allowed)"
	}
	best, bestDist := "", 3
	for _, k := range allowed {
		if dist := editDistance(strings.ToLower(word), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return fmt.Sprintf(" (allowed: %s)", strings.Join(allowed, ", "))
	}
	return fmt.Sprintf("; did you mean %q?", best)
}

func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return 99
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
