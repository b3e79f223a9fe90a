package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

var testKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, 32))

// buildExport appends n entries to a fresh chain and exports it.
func buildExport(t testing.TB, n int) []byte {
	t.Helper()
	ctx := context.Background()
	s := ledger.NewMemStore()
	at := time.Date(2026, 11, 27, 9, 0, 0, 0, time.UTC)
	l, err := ledger.New(ledger.Options{Store: s, Clock: func() time.Time { at = at.Add(time.Millisecond); return at }})
	if err != nil {
		t.Fatal(err)
	}
	open := ev("acme", "", ledger.Detect)
	open.Service = "checkout"
	first, err := l.Record(ctx, open)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < n; i++ {
		q := ev("acme", first.Incident, ledger.Question)
		q.Reason = fmt.Sprintf("why is p95 up? (%d)", i)
		if _, err := l.Record(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	if _, err := ledger.ExportJSONL(ctx, s, "acme", testKey, at, &buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func lines(b []byte) []string { return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") }

func join(ls []string) []byte { return []byte(strings.Join(ls, "\n") + "\n") }

func TestVerifyExportNamesTheFirstBadEntry(t *testing.T) {
	const n, k = 10000, 4321
	good := buildExport(t, n)
	rep, err := ledger.VerifyExport(bytes.NewReader(good), testKey.Public().(ed25519.PublicKey))
	if err != nil || rep.Entries != n || !rep.Pinned {
		t.Fatalf("intact export: %+v, %v", rep, err)
	}
	for _, tc := range ledgertest.Tamperings(n, k) {
		t.Run(tc.Name, func(t *testing.T) {
			ls, err := tc.Apply(lines(append([]byte(nil), good...)))
			if err != nil {
				t.Fatal(err)
			}
			_, err = ledger.VerifyExport(bytes.NewReader(join(ls)), nil)
			var ve *ledger.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("tampered export verified (err %v)", err)
			}
			if ve.Entry != tc.Want {
				t.Fatalf("named %q, want entry %d", err, tc.Want)
			}
		})
	}
}

func TestVerifyExportRefusesAnotherKey(t *testing.T) {
	good := buildExport(t, 20)
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	_, err := ledger.VerifyExport(bytes.NewReader(good), other.Public().(ed25519.PublicKey))
	if err == nil {
		t.Fatal("an export signed by another key verified against the trusted one")
	}
	// The answer is about the key, not about an entry: the entries are intact.
	var ke *ledger.KeyError
	var ve *ledger.VerifyError
	if !errors.As(err, &ke) || errors.As(err, &ve) || !errors.Is(err, ledger.ErrUntrustedKey) {
		t.Fatalf("want a KeyError, got %T %v", err, err)
	}
}

func TestVerifyStoreDetectsTruncationThroughCheckpoint(t *testing.T) {
	ctx := context.Background()
	s := ledger.NewMemStore()
	l, err := ledger.New(ledger.Options{Store: s, Signer: testKey})
	if err != nil {
		t.Fatal(err)
	}
	open := ev("acme", "", ledger.Detect)
	open.Service = "checkout"
	first, _ := l.Record(ctx, open)
	for i := 0; i < 8; i++ {
		l.Record(ctx, ev("acme", first.Incident, ledger.Question))
	}
	if _, err := l.Record(ctx, ev("acme", first.Incident, ledger.Recover)); err != nil {
		t.Fatal(err)
	}
	if rep, err := ledger.VerifyStore(ctx, s, "acme", nil); err != nil || rep.Entries != 10 || rep.Checkpoint == nil || rep.Checkpoint.Size != 10 {
		t.Fatalf("intact: %+v, %v (a terminal stage must leave a checkpoint)", rep, err)
	}
	s.Tamper("acme", func(es []ledger.Entry) []ledger.Entry { return es[:7] })
	_, err = ledger.VerifyStore(ctx, s, "acme", nil)
	var ve *ledger.VerifyError
	if !errors.As(err, &ve) || ve.Entry != 8 {
		t.Fatalf("truncated to 7 of 10: %v, want entry 8 named", err)
	}
}

func FuzzDecodeEntry(f *testing.F) {
	for _, l := range lines(buildExport(f, 3)) {
		f.Add([]byte(l))
	}
	f.Add([]byte(`{"tenant":"acme"}`))
	f.Add([]byte(`{"seq":-1,"hash":"x"}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ledger.DecodeEntry(data)
		if err != nil {
			if !errors.Is(err, ledger.ErrBadEntry) {
				t.Fatalf("error %v is not ErrBadEntry", err)
			}
			return
		}
		// Whatever decodes must re-encode to something that decodes to the same entry.
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ledger.DecodeEntry(b)
		if err != nil || again.Hash != e.Hash {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzVerifyExportLine(f *testing.F) {
	ls := lines(buildExport(f, 3))
	for _, l := range ls {
		f.Add([]byte(l))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		in := join(append(append([]string{}, ls[:2]...), string(line), ls[3]))
		_, err := ledger.VerifyExport(bytes.NewReader(in), nil)
		if err != nil {
			var ve *ledger.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("error %v does not name an entry", err)
			}
		}
	})
}

// A checkpoint re-signed by a forger's own key (so not pinned) must still agree with the
// chain it covers, and a hostile size must not crash the verifier.
func TestForgedCheckpoints(t *testing.T) {
	good := lines(buildExport(t, 50))
	var hashes []string
	for _, l := range good[:50] {
		var e ledger.Entry
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatal(err)
		}
		hashes = append(hashes, e.Hash)
	}
	forger := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{9}, 32))
	for _, tc := range []struct {
		name string
		cp   ledger.Checkpoint
	}{
		{"wrong tail hash", ledger.SignCheckpoint(forger, "acme", 50, strings.Repeat("b", 64), time.Now(), hashes)},
		{"absurd size", func() ledger.Checkpoint {
			c := ledger.SignCheckpoint(forger, "acme", 50, hashes[49], time.Now(), hashes[:1])
			c.Size = 1<<60 + 1
			return c
		}()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := json.Marshal(map[string]any{"checkpoint": tc.cp})
			ls := append(append([]string{}, good[:50]...), string(b))
			_, err := ledger.VerifyExport(bytes.NewReader(join(ls)), nil)
			var ve *ledger.VerifyError
			if !errors.As(err, &ve) {
				t.Fatalf("forged checkpoint accepted: %v", err)
			}
		})
	}
}
