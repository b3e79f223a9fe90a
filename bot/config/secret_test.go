package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
)

func TestSecretRendering(t *testing.T) {
	const value = "hunter2-very-secret"
	s := Secret(value)
	tests := []struct {
		name, got, want string
	}{
		{"String", s.String(), "[redacted]"},
		{"GoString", s.GoString(), `config.Secret("[redacted]")`},
		{"%v", fmt.Sprintf("%v", s), "[redacted]"},
		{"%+v", fmt.Sprintf("%+v", s), "[redacted]"},
		{"%#v", fmt.Sprintf("%#v", s), `config.Secret("[redacted]")`},
		{"%s", fmt.Sprintf("%s", s), "[redacted]"},
		{"%q", fmt.Sprintf("%q", s), `"[redacted]"`},
		{"%x", fmt.Sprintf("%x", s), "[redacted]"},
		{"%X", fmt.Sprintf("%X", s), "[redacted]"},
		{"%10s", fmt.Sprintf("%10s", s), "[redacted]"},
		{"%d", fmt.Sprintf("%d", s), "[redacted]"},
		{"Sprint", fmt.Sprint(s), "[redacted]"},
		{"Errorf %w-less", fmt.Errorf("token %v rejected", s).Error(), "token [redacted] rejected"},
		{"pointer %v", fmt.Sprintf("%v", &s), "[redacted]"},
		{"slice %v", fmt.Sprintf("%v", []Secret{s}), "[[redacted]]"},
		{"map %v", fmt.Sprintf("%v", map[string]Secret{"k": s}), "map[k:[redacted]]"},
		{"struct %+v", fmt.Sprintf("%+v", struct{ Token Secret }{s}), "{Token:[redacted]}"},
		{"struct %#v", fmt.Sprintf("%#v", struct{ Token Secret }{s}), `struct { Token config.Secret }{Token:config.Secret("[redacted]")}`},
		{"empty %v", fmt.Sprintf("%v", Secret("")), ""},
		{"empty %q", fmt.Sprintf("%q", Secret("")), `""`},
		{"Reveal", s.Reveal(), value},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	if !s.IsSet() || Secret("").IsSet() {
		t.Error("IsSet: want true for a value and false for empty")
	}
}

func TestSecretMarshal(t *testing.T) {
	const value = "hunter2-very-secret"
	type wrapper struct {
		Token Secret  `json:"token" yaml:"token"`
		Ptr   *Secret `json:"ptr" yaml:"ptr"`
	}
	s := Secret(value)
	w := wrapper{Token: s, Ptr: &s}

	j, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(j), `{"token":"[redacted]","ptr":"[redacted]"}`; got != want {
		t.Errorf("json: got %s, want %s", got, want)
	}
	text, _ := s.MarshalText()
	if string(text) != "[redacted]" {
		t.Errorf("MarshalText: got %q", text)
	}
	y, err := yaml.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(y), value) || !strings.Contains(string(y), "[redacted]") {
		t.Errorf("yaml.Marshal: got %q", y)
	}
	for _, h := range []struct {
		name string
		new  func(*bytes.Buffer) slog.Handler
	}{
		{"json", func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) }},
		{"text", func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) }},
	} {
		t.Run("slog "+h.name, func(t *testing.T) {
			var buf bytes.Buffer
			slog.New(h.new(&buf)).Info("x", "token", s, "wrapper", w, "ptr", &s)
			if strings.Contains(buf.String(), value) || !strings.Contains(buf.String(), "[redacted]") {
				t.Errorf("slog %s: got %s", h.name, buf.String())
			}
		})
	}
}

func TestSecretUnmarshal(t *testing.T) {
	type wrapper struct {
		Token Secret `json:"token" yaml:"token"`
	}
	var y wrapper
	if err := yaml.Unmarshal([]byte("token: from-yaml\n"), &y); err != nil {
		t.Fatal(err)
	}
	if y.Token.Reveal() != "from-yaml" {
		t.Errorf("yaml: got %q", y.Token.Reveal())
	}
	var j wrapper
	if err := json.Unmarshal([]byte(`{"token":"from-json"}`), &j); err != nil {
		t.Fatal(err)
	}
	if j.Token.Reveal() != "from-json" {
		t.Errorf("json: got %q", j.Token.Reveal())
	}
}
