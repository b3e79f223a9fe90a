package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"strconv"
	"strings"
	"testing"

	"github.com/alertengine/alertengine/ledger"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// TestCheckpointNoteInterop: a checkpoint signed here opens with golang.org/x/mod's own
// note verifier built from the printed verifier string, has the C2SP checkpoint body, and
// the inclusion proofs of a bundle check with tlog.CheckRecord against its root.
func TestCheckpointNoteInterop(t *testing.T) {
	t.Parallel()
	d := newDrillLog(t)
	b := d.bundle()
	v, err := note.NewVerifier(b.Verifier)
	if err != nil {
		t.Fatalf("x/mod cannot read our verifier string %q: %v", b.Verifier, err)
	}
	n, err := note.Open([]byte(b.Checkpoint), note.VerifierList(v))
	if err != nil {
		t.Fatalf("x/mod note.Open: %v", err)
	}
	lines := strings.Split(n.Text, "\n")
	head, _ := ledger.TreeHead(context.Background(), d.s, "acme")
	if lines[0] != "ledger.example/acme" || lines[1] != "12" || lines[2] != base64.StdEncoding.EncodeToString(head.Hash[:]) || len(lines) != 4 {
		t.Fatalf("checkpoint body %q", n.Text)
	}
	if !strings.Contains(b.Checkpoint, "\n\n— ledger.example ") {
		t.Fatalf("no signature line: %q", b.Checkpoint)
	}
	var root tlog.Hash
	copy(root[:], mustB64(t, lines[2]))
	for _, be := range b.Entries {
		e, err := ledger.DecodeEntry(be.Entry)
		if err != nil {
			t.Fatal(err)
		}
		var p tlog.RecordProof
		for _, s := range be.Proof {
			var h tlog.Hash
			copy(h[:], mustB64(t, s))
			p = append(p, h)
		}
		lh, _ := ledger.LeafHash(e.Hash)
		if err := tlog.CheckRecord(p, 12, root, be.Leaf, lh); err != nil {
			t.Fatalf("tlog.CheckRecord seq %d: %v", e.Seq, err)
		}
	}
	// The verifier string names the same key id x/mod computes for the key.
	pub := testKey.Public().(ed25519.PublicKey)
	want, _ := note.NewEd25519VerifierKey("ledger.example", pub)
	if b.Verifier != want {
		t.Fatalf("verifier %q, x/mod says %q", b.Verifier, want)
	}
}

// TestCosignatureFormat: a witness cosignature is a C2SP tlog-cosignature line: key id of
// (name, 0x04, key), then an 8-byte timestamp and a 64-byte signature over the
// cosignature/v1 header and the checkpoint body.
func TestCosignatureFormat(t *testing.T) {
	t.Parallel()
	d := newDrillLog(t)
	w, _ := newWitness(t, d.key)
	cp := d.head()
	out, err := w.Cosign(ledger.ConsistencyBundle{Format: ledger.ConsistencyFormat, New: string(cp.Raw)})
	if err != nil {
		t.Fatal(err)
	}
	text, sigs, _ := strings.Cut(string(out), "\n\n")
	var line string
	for _, l := range strings.Split(sigs, "\n") {
		if strings.HasPrefix(l, "— witness.example ") {
			line = l
		}
	}
	raw := mustB64(t, strings.TrimPrefix(line, "— witness.example "))
	if len(raw) != 4+8+64 {
		t.Fatalf("cosignature of %d bytes", len(raw))
	}
	pub := witnessKey.Public().(ed25519.PublicKey)
	msg := "cosignature/v1\ntime " + strconv.FormatInt(drillT0.Unix(), 10) + "\n" + text + "\n"
	if !ed25519.Verify(pub, []byte(msg), raw[12:]) {
		t.Fatalf("cosignature does not verify over %q", msg)
	}
	vk, _ := ledger.CosignatureVerifierKey("witness.example", pub)
	if vk != w.VerifierKey() || !strings.HasPrefix(vk, "witness.example+") {
		t.Fatalf("verifier key %q", vk)
	}
	if !bytes.Equal(raw[4:12], binary.BigEndian.AppendUint64(nil, uint64(drillT0.Unix()))) {
		t.Fatalf("timestamp bytes %x", raw[4:12])
	}
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestParseVerifierWithPlusInKey: a witness key whose base64 holds '+' still parses (a
// random key's verifier string often does).
func TestParseVerifierWithPlusInKey(t *testing.T) {
	t.Parallel()
	found := 0
	for i := byte(0); i < 64 && found < 3; i++ {
		pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{i}, 32)).Public().(ed25519.PublicKey)
		vk, err := ledger.CosignatureVerifierKey("w.example", pub)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Count(vk, "+") < 3 {
			continue
		}
		found++
		v, err := ledger.ParseVerifier(vk)
		if err != nil || v.Name() != "w.example" {
			t.Fatalf("%q: %v", vk, err)
		}
	}
	if found == 0 {
		t.Fatal("no key with '+' in its base64 among 64: the test proves nothing")
	}
}
