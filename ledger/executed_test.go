package ledger_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// TestExecutedFileKeepsKeysAcrossProcesses: a key marked executed is found by a later
// process reading the same file, per tenant; a damaged file is an error naming it, never
// "not executed", and is not overwritten.
func TestExecutedFileKeepsKeysAcrossProcesses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	path := ledger.ExecutedPath(filepath.Join(t.TempDir(), "checkpoints.json"))
	if !strings.HasSuffix(path, "checkpoints.executed.json") {
		t.Fatalf("executed keys kept at %s, want beside the checkpoint file", path)
	}
	f, err := ledger.NewExecutedFile(path)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 7, 58, 0, 0, time.UTC)
	if err := f.MarkExecuted(ctx, "acme", "ae1-k1", at); err != nil {
		t.Fatal(err)
	}
	later, _ := ledger.NewExecutedFile(path)
	if got, ok, err := later.Executed(ctx, "acme", "ae1-k1"); err != nil || !ok || !got.Equal(at) {
		t.Fatalf("Executed(acme, k1) = %v, %v, %v; want it found, at %v", got, ok, err, at)
	}
	if _, ok, err := later.Executed(ctx, "globex", "ae1-k1"); err != nil || ok {
		t.Fatalf("another tenant's key: %v, %v; want not executed", ok, err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("file mode: %v, %v; want 0600", st, err)
	}

	if err := os.WriteFile(path, []byte(`{"version":1,"tenants":{"acme":`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := later.Executed(ctx, "acme", "ae1-k1"); !errors.Is(err, ledger.ErrSink) || ok || !strings.Contains(err.Error(), path) {
		t.Fatalf("damaged file: %v, %v; want an error naming it", ok, err)
	}
	if err := later.MarkExecuted(ctx, "acme", "ae1-k2", at); err == nil {
		t.Fatal("a damaged file was overwritten")
	}
}
