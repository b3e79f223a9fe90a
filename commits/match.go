package commits

import (
	"path"
	"strings"
)

// Match reports whether the slash-separated file name matches pattern. Segments are
// matched with path.Match ("*", "?", "[a-z]" within one segment); a "**" segment matches
// zero or more whole segments, and a trailing one one or more (what is inside a
// directory, not the directory itself). A pattern without a slash matches the file's base name at
// any depth ("*.sql" is "**/*.sql"). A malformed pattern matches nothing.
func Match(pattern, name string) bool {
	if pattern == "" || name == "" {
		return false
	}
	name = strings.TrimPrefix(name, "/")
	if !strings.Contains(pattern, "/") {
		ok, err := path.Match(pattern, path.Base(name))
		return err == nil && ok
	}
	return matchSegments(strings.Split(strings.TrimPrefix(pattern, "/"), "/"), strings.Split(name, "/"))
}

// ValidPattern reports whether pattern is well formed.
func ValidPattern(pattern string) bool {
	if pattern == "" {
		return false
	}
	for _, seg := range strings.Split(pattern, "/") {
		if _, err := path.Match(seg, ""); err != nil {
			return false
		}
	}
	return true
}

func matchSegments(pat, name []string) bool {
	// ok[j] is whether pat[i:] matches name[j:], computed from the last pattern segment
	// back: O(len(pat)·len(name)) whatever the number of "**".
	ok := make([]bool, len(name)+1)
	ok[len(name)] = true
	next := make([]bool, len(name)+1)
	for i := len(pat) - 1; i >= 0; i-- {
		next, ok = ok, next
		if pat[i] == "**" && i == len(pat)-1 {
			// A trailing "**" matches what is inside a directory: one or more segments.
			for j := range ok {
				ok[j] = j < len(name)
			}
			continue
		}
		if pat[i] == "**" {
			ok[len(name)] = next[len(name)]
			for j := len(name) - 1; j >= 0; j-- {
				ok[j] = next[j] || ok[j+1]
			}
			continue
		}
		ok[len(name)] = false
		for j := len(name) - 1; j >= 0; j-- {
			m, err := path.Match(pat[i], name[j])
			ok[j] = err == nil && m && next[j+1]
		}
	}
	return ok[0]
}
