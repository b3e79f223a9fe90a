package audit_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/ledger/audit"
)

func TestCheckpointFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	def := filepath.Join(dir, "checkpoints.json")
	if got := audit.CheckpointFile("", "", def); got != "" {
		t.Fatalf("default missing: %q", got)
	}
	os.WriteFile(def, []byte("{}"), 0o600)
	for _, c := range [][4]string{{"flag", "env", def, "flag"}, {"", "env", def, "env"}, {"", "", def, def}} {
		if got := audit.CheckpointFile(c[0], c[1], c[2]); got != c[3] {
			t.Errorf("CheckpointFile(%q, %q): %q, want %q", c[0], c[1], got, c[3])
		}
	}
}

// TestWriteFileNamesThePathGiven: a failed write leaves nothing behind and names the
// user's path, never the temporary file.
func TestWriteFileNamesThePathGiven(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	err := audit.WriteBytes(filepath.Join(dir, "nope", "out.json"), []byte("x"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "directory "+filepath.Join(dir, "nope")+" does not exist") {
		t.Fatalf("missing directory: %v", err)
	}
	if err := audit.WriteBytes(dir, []byte("x")); err == nil || !strings.Contains(err.Error(), "it is a directory") {
		t.Fatalf("a directory: %v", err)
	}
	p := filepath.Join(dir, "out.json")
	if err := audit.WriteBytes(p, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if es, _ := os.ReadDir(dir); len(es) != 1 {
		t.Fatalf("left behind: %v", es)
	}
}

// TestVerifyProofFileVerdicts: a file that cannot be read is not a verdict; one that is
// not a proof is.
func TestVerifyProofFileVerdicts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, _, err := audit.VerifyProofFile(filepath.Join(dir, "missing.json"), true, nil, nil)
	var v audit.Verdict
	if err == nil || errors.As(err, &v) {
		t.Fatalf("missing file: %v", err)
	}
	p := filepath.Join(dir, "junk.json")
	os.WriteFile(p, []byte("junk"), 0o600)
	for _, bundle := range []bool{true, false} {
		if _, _, err := audit.VerifyProofFile(p, bundle, nil, nil); !errors.As(err, &v) {
			t.Fatalf("junk (bundle %v): %v", bundle, err)
		}
	}
}
