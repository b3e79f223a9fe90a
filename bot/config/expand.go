package config

import (
	"fmt"
	"regexp"
	"strings"
)

var varNamePattern = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// expansion is the result of expanding one YAML value.
type expansion struct {
	value string
	// vars are the variables substituted, in order; a value built from any is not echoed in
	// problems (it may be a secret).
	vars []string
	// problems say what could not be expanded.
	problems []string
}

// expand replaces ${NAME} with the value of the environment variable NAME or, when NAME is
// unset, with the content of the file named by NAME_FILE; "$$" is a literal "$". Any other "$"
// is kept as is. The substituted text is never re-parsed as YAML or expanded again.
func expand(s string, lookup func(string) (string, bool)) expansion {
	if !strings.Contains(s, "$") {
		return expansion{value: s}
	}
	var (
		x expansion
		b strings.Builder
	)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			b.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			b.WriteByte('$')
			i++
		case '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				x.problems = append(x.problems, `unterminated "${" (write $$ for a literal $)`)
				b.WriteString(s[i:])
				i = len(s)
				continue
			}
			name := s[i+2 : i+2+end]
			i += 2 + end
			if !varNamePattern.MatchString(name) {
				x.problems = append(x.problems, fmt.Sprintf("${%s}: invalid variable name (want letters, digits and _; write $$ for a literal $)", name))
				continue
			}
			v, err := lookupVar(name, lookup)
			if err != "" {
				x.problems = append(x.problems, err)
				continue
			}
			x.vars = append(x.vars, name)
			b.WriteString(v)
		default:
			b.WriteByte(c)
		}
	}
	x.value = b.String()
	return x
}

// lookupVar returns NAME, or the content of NAME_FILE, or a problem naming the variable. A
// variable set to the empty string is defined (its value is empty) unless NAME_FILE is set.
func lookupVar(name string, lookup func(string) (string, bool)) (string, string) {
	v, ok := lookup(name)
	file, fileOK := lookup(name + "_FILE")
	fileOK = fileOK && file != ""
	switch {
	case ok && v != "" && fileOK:
		return "", fmt.Sprintf("${%s}: both %s and %s_FILE are set; set only one", name, name, name)
	case fileOK:
		s, err := ReadSecretFile(file)
		if err != nil {
			return "", fmt.Sprintf("${%s}: %s_FILE: %v", name, name, err)
		}
		return s, ""
	case ok:
		return v, ""
	}
	return "", fmt.Sprintf("${%s}: environment variable %s is not set", name, name)
}
