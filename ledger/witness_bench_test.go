package ledger_test

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"golang.org/x/mod/sumdb/note"
)

// BenchmarkWitnessCosign: one checkpoint witnessed over HTTP, as serve does it each time a
// tenant's tree grew: sign the tree head, prove it from the size the witness last
// cosigned, POST add-checkpoint, the witness checks the proof, saves its state (fsync,
// rename, directory fsync) and cosigns, the log checks the cosignature.
func BenchmarkWitnessCosign(b *testing.B) {
	ctx := context.Background()
	s := ledger.NewMemStore()
	l, err := ledger.New(ledger.Options{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	ls, lv := logSigner(b, testKey)
	w, err := ledger.NewWitness("witness.example", witnessKey, []note.Verifier{lv}, filepath.Join(b.TempDir(), "w.json"), time.Now)
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	defer srv.Close()
	c, _ := ledger.NewWitnessClient(srv.URL, w.VerifierKey(), nil)
	ws := &ledger.Witnesses{Clients: []*ledger.WitnessClient{c}, Quorum: 1}
	for i := 0; i < 1000; i++ {
		if _, err := l.Record(ctx, ev("acme", "", ledger.Detect)); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if _, err := l.Record(ctx, ev("acme", "", ledger.Detect)); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		msg, _, err := ls.SignHead(ctx, s, "acme")
		if err == nil {
			_, err = ws.Cosign(ctx, s, "acme", msg)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
