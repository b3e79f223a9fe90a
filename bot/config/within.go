package config

import "github.com/goccy/go-yaml/ast"

// ParseWithin parses the tenants of a file that holds more than tenants, such as a
// governance simulation scenario: like [Parse], except that the top-level keys listed in
// others are allowed too and left to the caller. Problems are reported exactly as Parse
// reports them (FILE:LINE: path: problem), with the lines of the whole file.
func ParseWithin(name string, data []byte, lookup func(string) (string, bool), env Env, others []string) (*File, error) {
	if lookup == nil {
		lookup = func(string) (string, bool) { return "", false }
	}
	d := &decoder{file: name, lookup: lookup, env: env, aliases: map[*ast.AliasNode]ast.Node{}, others: others}
	f := d.parse(data)
	if err := d.ps.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// Problemf returns a [*Problems] holding one problem, for a caller that validates a file
// of its own next to the tenants (a simulation scenario), so that its errors read and
// unwrap (errors.Is(err, ErrInvalid)) like the tenants file's.
func Problemf(file string, line int, path, message string) *Problems {
	return &Problems{List: []Problem{{File: file, Line: line, Path: path, Message: message}}}
}
