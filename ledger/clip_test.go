package ledger_test

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/alertengine/alertengine/ledger"
)

func TestClip(t *testing.T) {
	tests := []struct {
		name, in, want string
		n              int
	}{
		{"short", "p95 over 2 s", "p95 over 2 s", 300},
		{"exactly n", "abcde", "abcde", 5},
		{"cut", "abcdef", "abcd…", 5},
		{"runes, not bytes", "ééééééé", "éééé…", 5},
		{"one line", "a\nb\r\x00c", "a b  c", 300},
		{"invalid UTF-8", "a\xffb", "a\uFFFDb", 300},
		{"huge invalid", strings.Repeat("\xff", 1<<20), "\uFFFD…", 5},
		{"n below one", "abc", "…", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ledger.Clip(tc.in, tc.n); got != tc.want {
				t.Errorf("Clip(%.20q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
			}
		})
	}
	big := ledger.ClipText(strings.Repeat("日本", 100_000))
	if n := utf8.RuneCountInString(big); n != ledger.MaxTextRunes || !utf8.ValidString(big) || !strings.HasSuffix(big, "…") {
		t.Errorf("ClipText of 200,000 runes: %d runes, valid %v", n, utf8.ValidString(big))
	}
}

// BenchmarkClip: clipping a hostile 200 KB health status costs what clipping 300 runes
// does (only the first n+1 runes' worth of bytes is looked at).
func BenchmarkClip(b *testing.B) {
	for _, size := range []int{64, 200_000} {
		s := strings.Repeat("A", size)
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			b.ReportAllocs()
			for range b.N {
				_ = ledger.ClipText(s)
			}
		})
	}
}
