package channel

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func lookupOf(m map[string]string) Lookup {
	return func(name string) (string, bool) { v, ok := m[name]; return v, ok }
}

func TestSecretReadsTheVariableOrItsFile(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "token")
	if err := os.WriteFile(file, []byte("xoxb-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		env     map[string]string
		want    string
		wantErr string
	}{
		{env: map[string]string{}, want: ""},
		{env: map[string]string{"TOK": "xoxb-plain"}, want: "xoxb-plain"},
		{env: map[string]string{"TOK_FILE": file}, want: "xoxb-from-file"},
		{env: map[string]string{"TOK": "a", "TOK_FILE": file}, wantErr: "both TOK and TOK_FILE"},
		{env: map[string]string{"TOK_FILE": filepath.Join(dir, "missing")}, wantErr: "cannot read"},
		{env: map[string]string{"TOK_FILE": empty}, wantErr: "is empty"},
	}
	for i, c := range cases {
		got, err := Secret(lookupOf(c.env), "TOK")
		if c.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Errorf("case %d: err %v, want %q", i, err, c.wantErr)
			}
			continue
		}
		if err != nil || got.Reveal() != c.want {
			t.Errorf("case %d: %q, %v; want %q", i, got.Reveal(), err, c.want)
		}
		if c.want != "" && strings.Contains(fmt.Sprint(got), c.want) {
			t.Errorf("case %d: the secret prints as %q", i, fmt.Sprint(got))
		}
	}
	if got := Lookup(nil).Get("TOK"); got != "" {
		t.Errorf("nil Lookup read %q", got)
	}
}
