package outhook

import (
	"testing"
	"time"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"7":                             7 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"999999999":                     24 * time.Hour,
		"Sun, 06 Dec 2026 12:00:30 GMT": 30 * time.Second,
		"Sun, 06 Dec 2026 11:00:00 GMT": 0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("Retry-After %q: %v, want %v", in, got, want)
		}
	}
}

// The wait doubles from MinBackoff with ±25% jitter, never exceeds MaxBackoff, and honours
// Retry-After up to MaxBackoff.
func TestBackoff(t *testing.T) {
	s := &Sender{opts: Options{MinBackoff: time.Second, MaxBackoff: time.Minute}}
	for attempt, base := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 10: time.Minute, 60: time.Minute} {
		for range 50 {
			d := s.backoff(attempt, 0)
			if d < base*3/4 || d > min(base*5/4, time.Minute) {
				t.Fatalf("attempt %d: %v outside %v ±25%%", attempt, d, base)
			}
		}
	}
	if d := s.backoff(1, 30*time.Second); d < 30*time.Second {
		t.Errorf("Retry-After 30s: waited %v", d)
	}
	if d := s.backoff(1, time.Hour); d != time.Minute {
		t.Errorf("Retry-After 1h: waited %v, want MaxBackoff", d)
	}
}
