package config

import (
	"errors"
	"fmt"
	"sort"
	"strings"
)

// ErrInvalid is wrapped by every [*Problems]: errors.Is(err, ErrInvalid) tells a configuration
// error (exit 2) from any other failure.
var ErrInvalid = errors.New("invalid configuration")

// Problem is one thing wrong with the configuration.
type Problem struct {
	// File is the config file name as given to Load or Parse; empty for environment problems.
	File string
	// Line is the 1-based line in File, 0 when there is none (environment, empty file).
	Line int
	// Path is the environment variable (ALERT_SECRET) or the key path
	// (tenants[0].people[1].role).
	Path string
	// Message says what is wrong. It never contains a secret value.
	Message string

	err error // underlying error, if any (for errors.Is)
}

// String renders the problem as one line: "FILE:LINE: PATH: MESSAGE" for the config file,
// "VARIABLE: MESSAGE" for the environment.
func (p Problem) String() string {
	var b strings.Builder
	if p.File != "" {
		b.WriteString(p.File)
		if p.Line > 0 {
			fmt.Fprintf(&b, ":%d", p.Line)
		}
		b.WriteString(": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path)
		b.WriteString(": ")
	}
	b.WriteString(p.Message)
	return b.String()
}

// Problems is the error returned by [LoadEnv], [Load] and [Parse]: every problem found, not just
// the first. Error returns one line per problem.
type Problems struct {
	List []Problem
}

// Error implements error: one line per problem.
func (ps *Problems) Error() string { return strings.Join(ps.Lines(), "\n") }

// Lines returns one line per problem, in the order they should be shown.
func (ps *Problems) Lines() []string {
	lines := make([]string, len(ps.List))
	for i, p := range ps.List {
		lines[i] = p.String()
	}
	return lines
}

// Unwrap returns ErrInvalid and any underlying errors (such as fs.ErrNotExist for a missing
// file), for errors.Is and errors.As.
func (ps *Problems) Unwrap() []error {
	errs := []error{ErrInvalid}
	for _, p := range ps.List {
		if p.err != nil {
			errs = append(errs, p.err)
		}
	}
	return errs
}

// add records a problem.
func (ps *Problems) add(p Problem) { ps.List = append(ps.List, p) }

// err returns ps as an error, or nil when there is no problem. File problems are ordered by
// line (stable, so problems on one line keep the order they were found in).
func (ps *Problems) err() error {
	if len(ps.List) == 0 {
		return nil
	}
	sort.SliceStable(ps.List, func(i, j int) bool { return ps.List[i].Line < ps.List[j].Line })
	// A problem inside an anchor is found once per alias; show it once.
	seen := map[string]bool{}
	list := ps.List[:0]
	for _, p := range ps.List {
		if s := p.String(); !seen[s] {
			seen[s] = true
			list = append(list, p)
		}
	}
	ps.List = list
	return ps
}
