package simulate

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPrintTellsBrokenExpectations: bot simulate's output is the result (JSON here), each
// broken expectation a line on stderr, and the verdict whether all held; the ledger's
// export lands in the file named, and a file that cannot be written names --ledger.
func TestPrintTellsBrokenExpectations(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	r := &Result{Scenario: "s", Broken: []string{"dead_letters == 0", "approved >= 1"}, ledger: []byte("{}\n")}
	var out, notes bytes.Buffer
	held, err := r.Print(&out, &notes, PrintOptions{JSON: true, Ledger: filepath.Join(dir, "l.jsonl")})
	if err != nil || held {
		t.Fatalf("held %v, err %v: want a broken verdict", held, err)
	}
	var back Result
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back.Scenario != "s" {
		t.Fatalf("stdout is not the result as JSON: %v %q", err, out.String())
	}
	if want := "bot simulate: expectation broken: dead_letters == 0\nbot simulate: expectation broken: approved >= 1\n"; notes.String() != want {
		t.Fatalf("stderr %q, want %q", notes.String(), want)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "l.jsonl")); err != nil || string(b) != "{}\n" {
		t.Fatalf("ledger file: %q %v", b, err)
	}
	r.Broken = nil
	held, err = r.Print(&out, &notes, PrintOptions{Ledger: filepath.Join(dir, "missing", "l.jsonl")})
	if err == nil || !strings.HasPrefix(err.Error(), "--ledger: ") || held {
		t.Fatalf("unwritable ledger: held %v, %v", held, err)
	}
}
