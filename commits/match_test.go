package commits

import (
	"strings"
	"testing"
)

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"**/migrations/**", "db/migrations/0042_add_index.sql", true},
		{"**/migrations/**", "migrations/0001.sql", true},
		{"**/migrations/**", "migrations", false},
		{"**/migrations/**", "src/migrationsx/a.go", false},
		{"**/*.sql", "query.sql", true},
		{"**/*.sql", "a/b/c/query.sql", true},
		{"**/*.sql", "a/b/c/query.sql.go", false},
		{"**/db/**", "internal/db/pool.go", true},
		{"**/db/**", "internal/dbx/pool.go", false},
		{"**/*query*", "store/order_query.go", true},
		{"**/*query*", "store/order.go", false},
		{"*.sql", "deep/down/x.sql", true},
		{"go.mod", "go.mod", true},
		{"go.mod", "tools/go.mod", true},
		{"config/*.yaml", "config/app.yaml", true},
		{"config/*.yaml", "config/sub/app.yaml", false},
		{"config/**/*.yaml", "config/sub/deeper/app.yaml", true},
		{"config/**/*.yaml", "config/app.yaml", true},
		{"**", "anything/at/all", true},
		{"a/**/b/**/c", "a/b/c", true},
		{"a/**/b/**/c", "a/x/y/b/z/c", true},
		{"a/**/b/**/c", "a/x/y/z/c", false},
		{"[unclosed", "x", false},
		{"", "x", false},
		{"src/?.go", "src/a.go", true},
		{"src/?.go", "src/ab.go", false},
		{"/api/**", "api/v1/x.go", true},
	} {
		if got := Match(c.pattern, c.name); got != c.want {
			t.Errorf("Match(%q, %q) = %v, want %v", c.pattern, c.name, got, c.want)
		}
	}
}

func TestValidPattern(t *testing.T) {
	for p, want := range map[string]bool{"**/*.sql": true, "[unclosed": false, "": false, "a/[b/c": false, "**/db/**": true} {
		if ValidPattern(p) != want {
			t.Errorf("ValidPattern(%q) = %v", p, !want)
		}
	}
}

// TestMatchManyDoubleStarsIsBounded: a pattern with many "**" against a deep path answers
// (the matcher is linear in pattern × path segments, not exponential).
func TestMatchManyDoubleStarsIsBounded(t *testing.T) {
	pat := strings.Repeat("**/a/", 30) + "b"
	name := strings.Repeat("a/", 200) + "c"
	if Match(pat, name) {
		t.Fatal("matched a path that does not end in b")
	}
	if !Match(pat, strings.Repeat("a/", 200)+"b") {
		t.Fatal("did not match")
	}
}

func BenchmarkMatch(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		Match("**/migrations/**", "services/checkout/internal/db/migrations/0042_add_index.sql")
	}
}
