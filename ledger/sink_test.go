package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

var (
	sinkKey   = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))
	forgerKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{8}, 32))
)

func newSink(t *testing.T) (*ledger.FileSink, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state", "checkpoints.json")
	s, err := ledger.NewFileSink(path, sinkKey.Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Probe(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s, path
}

func markOf(key ed25519.PrivateKey, tenant string, size uint64) ledger.Mark {
	return ledger.Mark{Checkpoint: ledger.SignCheckpoint(key, tenant, size, strings.Repeat("a", 64), time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC), nil)}
}

// TestFileSinkWritesAtomically: a saved mark reads back; every save replaces the file
// whole (no temporary file left beside it, mode 0600), and tenants do not overwrite
// each other.
func TestFileSinkWritesAtomically(t *testing.T) {
	ctx := context.Background()
	s, path := newSink(t)
	if m, err := s.Load(ctx, "acme"); err != nil || m != nil {
		t.Fatalf("empty sink: %v %v", m, err)
	}
	for _, n := range []uint64{3, 89} {
		if err := s.Save(ctx, markOf(sinkKey, "acme", n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Save(ctx, markOf(sinkKey, "globex", 5)); err != nil {
		t.Fatal(err)
	}
	m, err := s.Load(ctx, "acme")
	if err != nil || m == nil || m.Checkpoint.Size != 89 {
		t.Fatalf("acme: %+v %v, want the last saved checkpoint (89)", m, err)
	}
	if g, _ := s.Load(ctx, "globex"); g == nil || g.Checkpoint.Size != 5 {
		t.Fatalf("globex: %+v", g)
	}
	ents, _ := os.ReadDir(filepath.Dir(path))
	if len(ents) != 1 || ents[0].Name() != "checkpoints.json" {
		t.Fatalf("directory holds %v, want only checkpoints.json", ents)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
	}
	// A mark of an earlier chain (smaller base) never replaces the one kept. A restarted
	// chain's mark is written by a Ledger whose store holds code base 345.
	st := ledger.NewMemStore()
	if _, err := st.ClaimBase(ctx, "acme", 0, 345); err != nil {
		t.Fatal(err)
	}
	l, err := ledger.New(ledger.Options{Store: st, Signer: sinkKey, Sink: s})
	if err != nil {
		t.Fatal(err)
	}
	e, err := l.Record(ctx, ev("acme", "", ledger.Detect))
	if err != nil {
		t.Fatal(err)
	}
	if e.Incident != "INC-15A" {
		t.Fatalf("first incident of a chain with code base 345 is %s, want INC-15A", e.Incident)
	}
	if err := s.Save(ctx, markOf(sinkKey, "acme", 100)); err != nil {
		t.Fatal(err)
	}
	if m, _ := s.Load(ctx, "acme"); m.Checkpoint.Base != 345 || m.Checkpoint.Reserved != 1+ledger.DefaultReserveBlock {
		t.Fatalf("kept %+v, want the restarted chain's mark (base 345, reserved %d)", m.Checkpoint, 1+ledger.DefaultReserveBlock)
	}
}

// TestFileSinkRefusesDamage: a damaged file, a forged signature, a checkpoint filed under
// another tenant and an altered size are clear errors, never a mark.
func TestFileSinkRefusesDamage(t *testing.T) {
	ctx := context.Background()
	good := markOf(sinkKey, "acme", 89)
	altered := good
	altered.Checkpoint.Size = 200
	cases := []struct {
		name    string
		content func() []byte
		want    string
		is      error
	}{
		{"not json", func() []byte { return []byte("{\"version\":1,\"tenants\":{\"acme\":") }, "is damaged", ledger.ErrSink},
		{"unknown member", func() []byte { return []byte(`{"version":1,"tenants":{},"extra":1}`) }, "is damaged", ledger.ErrSink},
		{"forged by another key", func() []byte { return fileOf(t, "acme", markOf(forgerKey, "acme", 1000)) }, "another key", ledger.ErrBadCheckpoint},
		{"size altered", func() []byte { return fileOf(t, "acme", altered) }, "does not verify", ledger.ErrBadCheckpoint},
		{"other tenant's", func() []byte { return fileOf(t, "acme", markOf(sinkKey, "globex", 1)) }, "filed under", ledger.ErrBadCheckpoint},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, path := newSink(t)
			if err := os.WriteFile(path, tc.content(), 0o600); err != nil {
				t.Fatal(err)
			}
			m, err := s.Load(ctx, "acme")
			if err == nil || m != nil {
				t.Fatalf("loaded %+v, want an error", m)
			}
			if !errors.Is(err, tc.is) || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q: want %v, naming the file and %q", err, tc.is, tc.want)
			}
			if err := s.Probe(ctx); err == nil {
				t.Fatal("Probe accepted the damaged file")
			}
			if err := s.Save(ctx, good); err == nil {
				t.Fatal("Save overwrote a damaged file instead of reporting it")
			}
		})
	}
	s, _ := newSink(t)
	if err := s.Save(ctx, markOf(forgerKey, "acme", 5)); !errors.Is(err, ledger.ErrBadCheckpoint) {
		t.Fatalf("saving a mark signed by another key: %v", err)
	}
}

func fileOf(t *testing.T, tenant string, m ledger.Mark) []byte {
	b, err := json.Marshal(map[string]any{"version": 1, "tenants": map[string]ledger.Mark{tenant: m}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}
