package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/ast"
	"github.com/goccy/go-yaml/parser"
)

const (
	// maxFileSize bounds the tenants file.
	maxFileSize = 4 << 20
	// maxVisits bounds the work of decoding, so that nested aliases ("billion laughs")
	// cannot make Parse run for ever.
	maxVisits = 1_000_000
)

// Keys allowed in each mapping of the file. At the top level, keys starting with "x-" are
// also allowed and ignored: they hold anchors (&name) that tenants refer to (*name).
var (
	rootKeys         = []string{"tenants"}
	tenantKeys       = []string{"id", "services", "chats", "people", "recovery", "policy", "alertmanager", "limits"}
	serviceKeys      = []string{"name", "health_url", "poll_interval", "allow_private_network", "repos"}
	chatKeys         = []string{"telegram", "whatsapp"}
	personKeys       = []string{"name", "role", "telegram", "whatsapp", "phone", "github"}
	recoveryKeys     = []string{"url", "secret", "actions", "allow_private_network", "default_action", "timeout"}
	actionKeys       = []string{"name", "risk"}
	policyKeys       = []string{"min_score_to_alert", "approval_ttl", "escalate_after", "risky_paths", "refuse_suspect_approval"}
	alertmanagerKeys = []string{"token", "max_alerts", "expire_after"}
	limitKeys        = []string{"incidents_per_hour"}
)

// Load reads the tenants file at path and parses it with [Parse]. A file that cannot be read
// is reported as a [*Problems] too (wrapping the underlying error, e.g. fs.ErrNotExist).
func Load(path string, lookup func(string) (string, bool), env Env) (*File, error) {
	data, err := readConfigFile(path)
	if err != nil {
		ps := &Problems{}
		ps.add(Problem{File: path, Message: err.Error(), err: err})
		return nil, ps
	}
	return Parse(path, data, lookup, env)
}

func readConfigFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read the config file: %w", pathErr(err))
	}
	defer f.Close() // read-only: a close error loses nothing
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read the config file: %w", pathErr(err))
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("the config file is larger than %d MiB", maxFileSize>>20)
	}
	return data, nil
}

// Parse parses, expands, defaults and validates a tenants file. name is used in problem lines.
// ${VAR} is looked up through lookup (or read from the file named by VAR_FILE); env supplies
// defaults (POLICY_MIN_SCORE_TO_ALERT) and, in serve mode, is checked against the chats the
// file uses. All problems are collected; the error is a [*Problems] wrapping [ErrInvalid].
func Parse(name string, data []byte, lookup func(string) (string, bool), env Env) (*File, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	d := &decoder{file: name, lookup: lookup, env: env, aliases: map[*ast.AliasNode]ast.Node{}}
	f := d.parse(data)
	if err := d.ps.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// decoder walks the YAML AST into typed values, collecting problems with their line and key
// path. It decodes by hand rather than through yaml.Unmarshal so that every value is expanded
// and checked with its own path and line, and so that unknown keys, types and aliases are
// reported the same way as rule violations.
type decoder struct {
	file    string
	lookup  func(string) (string, bool)
	env     Env
	ps      Problems
	aliases map[*ast.AliasNode]ast.Node
	visits  int
	// others are top-level keys besides tenants that the caller decodes (ParseWithin).
	others []string
}

func (d *decoder) addf(line int, path, format string, args ...any) {
	d.ps.add(Problem{File: d.file, Line: line, Path: path, Message: fmt.Sprintf(format, args...)})
}

// tick counts work; false once the budget is spent (reported once).
func (d *decoder) tick(line int, path string) bool {
	d.visits++
	if d.visits == maxVisits+1 {
		d.addf(line, path, "the document expands to more than %d values (aliases nested too deep?)", maxVisits)
	}
	return d.visits <= maxVisits
}

func (d *decoder) parse(data []byte) *File {
	if len(bytes.TrimSpace(data)) == 0 {
		d.addf(0, "tenants", "the file is empty; at least one tenant is required")
		return nil
	}
	doc, err := parseYAML(data)
	if err != nil {
		d.syntaxError(data, err)
		return nil
	}
	var body ast.Node
	for _, dn := range doc.Docs {
		if dn == nil || dn.Body == nil {
			continue
		}
		if body != nil {
			d.addf(nodeLine(dn.Body, 0), "", "more than one YAML document (---); put all tenants in one")
			return nil
		}
		body = dn.Body
	}
	if body == nil {
		d.addf(0, "tenants", "the file has no content; at least one tenant is required")
		return nil
	}
	d.collectAliases(body, map[string]ast.Node{})

	root := d.object(body, "", 1, append(slices.Clone(rootKeys), d.others...))
	if !root.present {
		if !root.bad {
			d.addf(1, "tenants", "is required: list at least one tenant")
		}
		return nil
	}
	f := &File{Name: d.file}
	e, ok := root.entries["tenants"]
	if !ok {
		d.addf(root.line, "tenants", "is required: list at least one tenant")
		return f
	}
	items, bad := d.list(e.value, "tenants", e.line)
	if len(items) == 0 {
		if !bad {
			d.addf(e.line, "tenants", "no tenant defined; list at least one")
		}
		return f
	}
	ids := map[string]string{}
	tokens := map[Secret]string{}
	chats := map[string]string{} // "telegram:ID" or "whatsapp:+…" → the tenant path that lists it
	for i, item := range items {
		path := fmt.Sprintf("tenants[%d]", i)
		t, m := d.tenant(item, path, nodeLine(item, e.line))
		if t.ID != "" {
			if first, dup := ids[t.ID]; dup {
				d.addf(m.idLine, path+".id", "duplicate tenant id %q (also %s)", t.ID, first)
			} else {
				ids[t.ID] = path
			}
		}
		if tok := t.Alertmanager.Token; tok.IsSet() {
			if first, dup := tokens[tok]; dup {
				d.addf(m.tokenLine, path+".alertmanager.token", "same token as %s.alertmanager.token; each tenant needs its own", first)
			} else {
				tokens[tok] = path
			}
		}
		// A chat belongs to one tenant: the bot tells which tenant a message is about
		// from the chat it came from.
		var listed []string
		for _, id := range t.Chats.Telegram {
			listed = append(listed, fmt.Sprintf("telegram:%d", id))
		}
		for _, n := range t.Chats.WhatsApp {
			listed = append(listed, "whatsapp:"+n)
		}
		for _, c := range listed {
			if first, dup := chats[c]; dup {
				d.addf(m.chatsLine, path+".chats", "chat %s is also listed by %s; a chat belongs to one tenant", c, first)
			} else {
				chats[c] = path
			}
		}
		f.Tenants = append(f.Tenants, t)
	}
	return f
}

// parseYAML parses data, turning a parser panic on hostile input into an error.
func parseYAML(data []byte) (f *ast.File, err error) {
	defer func() {
		if r := recover(); r != nil {
			f, err = nil, fmt.Errorf("unparseable YAML (%v)", r)
		}
	}()
	return parser.ParseBytes(data, 0)
}

func (d *decoder) syntaxError(data []byte, err error) {
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
	d.addf(line, "", "invalid YAML: %s%s", msg, hint)
}

// collectAliases maps every alias to the anchor it refers to: the closest one defined before
// it in document order, as YAML specifies. An anchor is registered after its own content, so
// an alias can never refer to a node that contains it.
func (d *decoder) collectAliases(n ast.Node, anchors map[string]ast.Node) {
	switch v := n.(type) {
	case *ast.AnchorNode:
		d.collectAliases(v.Value, anchors)
		anchors[scalarText(v.Name)] = v.Value
	case *ast.AliasNode:
		if target, ok := anchors[scalarText(v.Value)]; ok {
			d.aliases[v] = target
		}
	case *ast.TagNode:
		d.collectAliases(v.Value, anchors)
	case *ast.MappingNode:
		for _, mv := range v.Values {
			d.collectAliases(mv, anchors)
		}
	case *ast.MappingValueNode:
		d.collectAliases(v.Key, anchors)
		d.collectAliases(v.Value, anchors)
	case *ast.MappingKeyNode:
		d.collectAliases(v.Value, anchors)
	case *ast.SequenceNode:
		for _, item := range v.Values {
			d.collectAliases(item, anchors)
		}
	}
}

// resolve follows anchors, aliases and tags to the node they stand for. It returns nil for
// null or absent; ok is false when a problem was reported.
func (d *decoder) resolve(n ast.Node, path string, line int) (ast.Node, bool) {
	for n != nil {
		line = nodeLine(n, line)
		if !d.tick(line, path) {
			return nil, false
		}
		switch v := n.(type) {
		case *ast.AnchorNode:
			n = v.Value
		case *ast.TagNode:
			n = v.Value
		case *ast.AliasNode:
			target, ok := d.aliases[v]
			if !ok {
				d.addf(line, path, "alias *%s refers to no anchor (&%s) defined before it", scalarText(v.Value), scalarText(v.Value))
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

// object is a decoded mapping: its entries by key, explicit keys first, then merged (<<) ones.
type object struct {
	path    string
	line    int
	present bool // a mapping was given
	bad     bool // something other than a mapping was given (reported)
	entries map[string]entry
}

type entry struct {
	line  int
	value ast.Node
}

func (o object) sub(key string) string { return joinPath(o.path, key) }

// lineOf returns the line of key, or of the mapping when key is absent.
func (o object) lineOf(key string) int {
	if e, ok := o.entries[key]; ok {
		return e.line
	}
	return o.line
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func (d *decoder) object(n ast.Node, path string, line int, keys []string) object {
	o := object{path: path, line: line, entries: map[string]entry{}}
	n, ok := d.resolve(n, path, line)
	if !ok {
		o.bad = true
		return o
	}
	if n == nil {
		return o
	}
	m, isMap := n.(*ast.MappingNode)
	if !isMap {
		d.addf(nodeLine(n, line), displayPath(path), "want a mapping (key: value), got %s", kind(n))
		o.bad = true
		return o
	}
	o.present = true
	o.line = nodeLine(m, line)
	d.fill(&o, m, keys, false)
	return o
}

// fill adds m's entries to o. Explicit keys win over merged ones, earlier merges over later.
func (d *decoder) fill(o *object, m *ast.MappingNode, keys []string, merged bool) {
	var merges []*ast.MappingValueNode
	for _, mv := range m.Values {
		if mv == nil || mv.Key == nil {
			continue
		}
		kline := nodeLine(mv.Key, o.line)
		if !d.tick(kline, o.path) {
			return
		}
		if mv.Key.IsMergeKey() {
			merges = append(merges, mv)
			continue
		}
		key, ok := keyText(mv.Key)
		if !ok {
			d.addf(kline, displayPath(o.path), "keys must be plain strings")
			continue
		}
		if !slices.Contains(keys, key) && (o.path != "" || !strings.HasPrefix(key, "x-")) {
			d.addf(kline, o.sub(key), "unknown key%s", suggest(key, keys))
			continue
		}
		if _, seen := o.entries[key]; seen {
			if !merged {
				d.addf(kline, o.sub(key), "key given twice")
			}
			continue
		}
		o.entries[key] = entry{line: kline, value: mv.Value}
	}
	for _, mv := range merges {
		line := nodeLine(mv.Key, o.line)
		path := o.sub("<<")
		n, ok := d.resolve(mv.Value, path, line)
		if !ok || n == nil {
			continue
		}
		switch v := n.(type) {
		case *ast.MappingNode:
			d.fill(o, v, keys, true)
		case *ast.SequenceNode:
			for _, item := range v.Values {
				in, ok := d.resolve(item, path, line)
				if m, isMap := in.(*ast.MappingNode); ok && isMap {
					d.fill(o, m, keys, true)
				} else if ok {
					d.addf(nodeLine(item, line), path, "merge (<<) wants mappings, got %s", kind(in))
				}
			}
		default:
			d.addf(line, path, "merge (<<) wants a mapping or a list of mappings, got %s", kind(n))
		}
	}
}

// list returns the items of a sequence; bad is true when something else was given (reported).
func (d *decoder) list(n ast.Node, path string, line int) (items []ast.Node, bad bool) {
	n, ok := d.resolve(n, path, line)
	if !ok {
		return nil, true
	}
	if n == nil {
		return nil, false
	}
	s, isSeq := n.(*ast.SequenceNode)
	if !isSeq {
		d.addf(nodeLine(n, line), path, "want a list, got %s", kind(n))
		return nil, true
	}
	return s.Values, false
}

// scalar is one expanded value.
type scalar struct {
	set  bool // given and not null
	bad  bool // given but unusable (reported)
	text string
	line int
	vars []string // variables expanded into text
}

// quoted shows the value in a problem, unless it came from the environment (it may be a
// secret), in which case only the variables are named.
func (s scalar) quoted() string {
	if len(s.vars) == 0 {
		return strconv.Quote(s.text)
	}
	names := make([]string, len(s.vars))
	for i, v := range s.vars {
		names[i] = "${" + v + "}"
	}
	return "the value of " + strings.Join(names, " and ")
}

// field returns the expanded scalar under key.
func (d *decoder) field(o object, key string) scalar {
	e, ok := o.entries[key]
	if !ok {
		return scalar{line: o.line}
	}
	return d.scalarNode(e.value, o.sub(key), e.line)
}

func (d *decoder) scalarNode(n ast.Node, path string, line int) scalar {
	s := scalar{line: line}
	n, ok := d.resolve(n, path, line)
	if !ok {
		s.bad = true
		return s
	}
	if n == nil {
		return s
	}
	s.line = nodeLine(n, line)
	switch n.(type) {
	case *ast.MappingNode, *ast.SequenceNode:
		d.addf(s.line, path, "want a single value, got %s", kind(n))
		s.bad = true
		return s
	}
	text, ok := nodeText(n)
	if !ok {
		d.addf(s.line, path, "want a single value, got %s", kind(n))
		s.bad = true
		return s
	}
	x := expand(text, d.lookup)
	for _, p := range x.problems {
		d.addf(s.line, path, "%s", p)
	}
	if len(x.problems) > 0 {
		s.bad = true
		return s
	}
	s.set, s.text, s.vars = true, x.value, x.vars
	return s
}

func (d *decoder) integer(o object, key string) (int64, scalar) {
	s := d.field(o, key)
	if !s.set {
		return 0, s
	}
	n, err := strconv.ParseInt(strings.TrimPrefix(s.text, "+"), 10, 64)
	if err != nil {
		d.addf(s.line, o.sub(key), "want a whole number, got %s", s.quoted())
		s.set, s.bad = false, true
	}
	return n, s
}

func (d *decoder) boolean(o object, key string) (bool, scalar) {
	s := d.field(o, key)
	if !s.set {
		return false, s
	}
	switch strings.ToLower(s.text) {
	case "true":
		return true, s
	case "false":
		return false, s
	}
	d.addf(s.line, o.sub(key), "want true or false, got %s", s.quoted())
	s.set, s.bad = false, true
	return false, s
}

func (d *decoder) duration(o object, key string) (time.Duration, scalar) {
	s := d.field(o, key)
	if !s.set {
		return 0, s
	}
	v, err := time.ParseDuration(s.text)
	if err != nil {
		hint := ""
		if _, nerr := strconv.Atoi(s.text); nerr == nil {
			hint = " (add a unit: s, m or h)"
		}
		d.addf(s.line, o.sub(key), "want a duration like 5m or 180s, got %s%s", s.quoted(), hint)
		s.set, s.bad = false, true
	}
	return v, s
}

// scalars returns the expanded items of the list under key; present reports whether the key
// was given (even as an empty list).
func (d *decoder) scalars(o object, key string) (items []scalar, present bool) {
	e, ok := o.entries[key]
	if !ok {
		return nil, false
	}
	path := o.sub(key)
	nodes, bad := d.list(e.value, path, e.line)
	if bad {
		return nil, true
	}
	for i, n := range nodes {
		s := d.scalarNode(n, fmt.Sprintf("%s[%d]", path, i), nodeLine(n, e.line))
		if s.set {
			items = append(items, s)
		} else if !s.bad {
			d.addf(s.line, fmt.Sprintf("%s[%d]", path, i), "empty item")
		}
	}
	return items, true
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

func kind(n ast.Node) string {
	switch n.(type) {
	case *ast.MappingNode:
		return "a mapping"
	case *ast.SequenceNode:
		return "a list"
	case nil:
		return "nothing"
	}
	return "a single value"
}

func displayPath(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// suggest returns `; did you mean "x"?` for the allowed key closest to key, if close.
func suggest(key string, keys []string) string {
	best, bestDist := "", 3
	for _, k := range keys {
		if dist := editDistance(strings.ToLower(key), k); dist < bestDist {
			best, bestDist = k, dist
		}
	}
	if best == "" {
		return fmt.Sprintf(" (allowed: %s)", strings.Join(keys, ", "))
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
