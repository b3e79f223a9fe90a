package config

import (
	"fmt"
	"log/slog"
)

// redacted is what every rendering of a non-empty [Secret] shows.
const redacted = "[redacted]"

// Secret is a string that never leaks through formatting, marshalling or logging: fmt (every
// verb, including %#v and %q), encoding/json, encoding.TextMarshaler (so YAML encoders too) and
// log/slog all render it as "[redacted]", or as empty when the secret is empty. Only
// [Secret.Reveal] returns the value.
//
// A Secret read from YAML or JSON is a plain string.
type Secret string

// Reveal returns the secret value. Call it only where the value is used (signing, an
// Authorization header), never to build a message.
func (s Secret) Reveal() string { return string(s) }

// IsSet reports whether the secret is non-empty.
func (s Secret) IsSet() bool { return s != "" }

func (s Secret) shown() string {
	if s == "" {
		return ""
	}
	return redacted
}

// String implements fmt.Stringer.
func (s Secret) String() string { return s.shown() }

// GoString implements fmt.GoStringer.
func (s Secret) GoString() string { return fmt.Sprintf("config.Secret(%q)", s.shown()) }

// Format implements fmt.Formatter so that no verb or flag prints the value.
func (s Secret) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = fmt.Fprint(f, s.GoString())
	case verb == 'q':
		_, _ = fmt.Fprintf(f, "%q", s.shown())
	default:
		_, _ = fmt.Fprint(f, s.shown())
	}
}

// MarshalJSON implements json.Marshaler.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.shown() + `"`), nil }

// MarshalText implements encoding.TextMarshaler.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.shown()), nil }

// UnmarshalText implements encoding.TextUnmarshaler: the text is the secret.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = Secret(b)
	return nil
}

// LogValue implements slog.LogValuer.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.shown()) }
