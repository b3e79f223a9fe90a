package agent

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of a request's params (and of any JSON value this package canonicalizes).
const (
	// MaxDepth bounds the nesting of objects and arrays.
	MaxDepth = 16
	// MaxInteger is the largest magnitude of a number: integers only, exactly
	// representable in an IEEE double (2^53 − 1), so every JSON implementation agrees.
	MaxInteger = 1<<53 - 1
)

// ErrNotCanonical is the cause of every refusal of a value that has no canonical form.
var ErrNotCanonical = errors.New("value has no canonical form")

// Canonical returns the canonical encoding of the JSON text raw: objects with their
// members sorted by key (byte order of the UTF-8 keys, which for the keys accepted here
// is RFC 8785's UTF-16 order restricted to valid text), no insignificant whitespace,
// strings escaped as encoding/json escapes them with HTML escaping off (\" \\ \b \f \n
// \r \t, other control characters as \u00XX, U+2028 and U+2029 as \u2028 \u2029, everything
// else literal), integers in
// plain decimal. Refused: fractions and exponents (write "1.5" as a string), integers
// beyond ±(2^53−1), duplicate keys, invalid UTF-8, nesting deeper than MaxDepth.
func Canonical(raw []byte) ([]byte, error) {
	if !utf8.Valid(raw) {
		return nil, fmt.Errorf("%w: invalid UTF-8", ErrNotCanonical)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var buf bytes.Buffer
	if err := canonValue(dec, &buf, 0, "$"); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%w: trailing data", ErrNotCanonical)
	}
	return buf.Bytes(), nil
}

func canonValue(dec *json.Decoder, buf *bytes.Buffer, depth int, path string) error {
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNotCanonical, path, err)
	}
	switch t := tok.(type) {
	case json.Delim:
		if depth >= MaxDepth {
			return fmt.Errorf("%w: %s: nested deeper than %d", ErrNotCanonical, path, MaxDepth)
		}
		switch t {
		case '{':
			members := map[string][]byte{}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return fmt.Errorf("%w: %s: %v", ErrNotCanonical, path, err)
				}
				k := kt.(string)
				if _, dup := members[k]; dup {
					return fmt.Errorf("%w: %s: duplicate key %q", ErrNotCanonical, path, clip(k, 40))
				}
				var vb bytes.Buffer
				if err := canonValue(dec, &vb, depth+1, path+"."+clip(k, 40)); err != nil {
					return err
				}
				members[k] = vb.Bytes()
			}
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrNotCanonical, path, err)
			}
			keys := make([]string, 0, len(members))
			for k := range members {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			buf.WriteByte('{')
			for i, k := range keys {
				if i > 0 {
					buf.WriteByte(',')
				}
				writeString(buf, k)
				buf.WriteByte(':')
				buf.Write(members[k])
			}
			buf.WriteByte('}')
		case '[':
			buf.WriteByte('[')
			for i := 0; dec.More(); i++ {
				if i > 0 {
					buf.WriteByte(',')
				}
				if err := canonValue(dec, buf, depth+1, path+"["+strconv.Itoa(i)+"]"); err != nil {
					return err
				}
			}
			if _, err := dec.Token(); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrNotCanonical, path, err)
			}
			buf.WriteByte(']')
		}
	case string:
		writeString(buf, t)
	case json.Number:
		s := string(t)
		if strings.ContainsAny(s, ".eE") {
			return fmt.Errorf("%w: %s: number %s is not an integer (send fractions as strings)", ErrNotCanonical, path, clip(s, 40))
		}
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n > MaxInteger || n < -MaxInteger {
			return fmt.Errorf("%w: %s: integer %s beyond ±(2^53−1)", ErrNotCanonical, path, clip(s, 40))
		}
		buf.WriteString(strconv.FormatInt(n, 10)) // "-0" becomes "0"
	case bool:
		buf.WriteString(strconv.FormatBool(t))
	case nil:
		buf.WriteString("null")
	}
	return nil
}

func writeString(buf *bytes.Buffer, s string) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	buf.Write(bytes.TrimSuffix(b.Bytes(), []byte("\n")))
}

// ActionHash is the lowercase hex SHA-256 of the canonical JSON of
// {"action":action,"params":params,"tenant":tenant}; params is JSON text (empty means
// null).
func ActionHash(tenant, action string, params []byte) (string, error) {
	if len(bytes.TrimSpace(params)) == 0 {
		params = []byte("null")
	}
	p, err := Canonical(params)
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	buf.WriteString(`{"action":`)
	writeString(&buf, action)
	buf.WriteString(`,"params":`)
	buf.Write(p)
	buf.WriteString(`,"tenant":`)
	writeString(&buf, tenant)
	buf.WriteByte('}')
	sum := sha256.Sum256(buf.Bytes())
	return hex.EncodeToString(sum[:]), nil
}

// clip shortens s to at most n runes, marking the cut.
func clip(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}
