package ledger_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// extend appends one honest entry to the drill log.
func (d *drillLog) extend() {
	d.t.Helper()
	es, _ := d.s.Range(d.ctx, "acme", 1, 0)
	last := es[len(es)-1]
	e := ev("acme", d.inc, ledger.Question)
	e.Seq, e.PrevHash, e.At, e.From, e.To = last.Seq+1, last.Hash, last.At.Add(time.Second), ledger.Resolved, ledger.Resolved
	e.Hash, _ = e.ComputeHash()
	if _, err := d.s.Append(d.ctx, "acme", ledger.Tail{Seq: last.Seq, Hash: last.Hash}, []ledger.Entry{e}); err != nil {
		d.t.Fatal(err)
	}
}

func (d *drillLog) signed() []byte {
	d.t.Helper()
	msg, _, err := d.ls.SignHead(d.ctx, d.s, "acme")
	if err != nil {
		d.t.Fatal(err)
	}
	return msg
}

// httpWitness serves a witness keeping its state in state; it returns its URL.
func httpWitness(t *testing.T, logKey note.Verifier, state string) (*ledger.Witness, string) {
	t.Helper()
	w, err := ledger.NewWitness("witness.example", witnessKey, []note.Verifier{logKey}, state, func() time.Time { return drillT0 })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(w.Handler())
	t.Cleanup(srv.Close)
	return w, srv.URL + "/w1"
}

func post(t *testing.T, url, body string) (int, string, string) {
	t.Helper()
	resp, err := http.Post(url+"/add-checkpoint", "text/plain", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

func addBody(old string, proof []tlog.Hash, msg []byte) string {
	s := "old " + old + "\n"
	for _, h := range proof {
		s += tlogB64(h) + "\n"
	}
	return s + "\n" + string(msg)
}

// TestHTTPWitness: the C2SP tlog-witness protocol end to end. The log learns the
// witness's size from its 409, proves from it, and gets a cosignature that the Go
// toolchain's note verifier accepts; the witness answers a fork with 409, a proof that
// does not check with 422, an unknown key with 403, a malformed body with 400 — and a
// witness restarted on the same state file still refuses the fork.
func TestHTTPWitness(t *testing.T) {
	t.Parallel()
	d := newDrillLog(t)
	state := filepath.Join(t.TempDir(), "w.json")
	w, url := httpWitness(t, d.key, state)
	wv, _ := ledger.ParseVerifier(w.VerifierKey())
	c, err := ledger.NewWitnessClient(url, w.VerifierKey(), nil)
	if err != nil {
		t.Fatal(err)
	}
	ws := &ledger.Witnesses{Clients: []*ledger.WitnessClient{c}, Quorum: 1}
	cos, err := ws.Cosign(d.ctx, d.s, "acme", d.signed())
	if err != nil {
		t.Fatal(err)
	}
	// Interop: golang.org/x/mod's verifier, given both keys, accepts both signatures.
	n, err := note.Open(cos, note.VerifierList(d.key, wv))
	if err != nil || len(n.Sigs) != 2 {
		t.Fatalf("x/mod note.Open of the cosigned checkpoint: %v (%d signatures)", err, len(n.Sigs))
	}
	d.extend()
	if _, err := ws.Cosign(d.ctx, d.s, "acme", d.signed()); err != nil {
		t.Fatalf("consistent extension: %v", err)
	}
	// A log that restarted and forgot the witness's size: 409 tells it, then it proves.
	d.extend()
	fresh := &ledger.Witnesses{Clients: []*ledger.WitnessClient{c}, Quorum: 1}
	if _, err := fresh.Cosign(d.ctx, d.s, "acme", d.signed()); err != nil {
		t.Fatalf("after the log restarted: %v", err)
	}
	code, ctype, body := post(t, url, addBody("0", nil, d.signed()))
	if code != http.StatusConflict || ctype != "text/x.tlog.size" || body != "14\n" {
		t.Fatalf("stale old size: %d %q %q", code, ctype, body)
	}
	// The fork: 14 entries, another root, signed with the (stolen) ledger key.
	fork := rewritten(t, d, 0)
	forkNote := fork.signed()
	if code, _, body := post(t, url, addBody("14", nil, forkNote)); code != http.StatusConflict || !strings.Contains(body, "fork") {
		t.Fatalf("fork: %d %q", code, body)
	}
	// A larger forged tree with its own (self-consistent) proof from 14: 422.
	fork.extend()
	proof, _ := ledger.ConsistencyProof(d.ctx, fork.s, "acme", 14, 15)
	if code, _, body := post(t, url, addBody("14", proof, fork.signed())); code != http.StatusUnprocessableEntity || !strings.Contains(body, "history rewritten") {
		t.Fatalf("rewritten history: %d %q", code, body)
	}
	other, _ := logSigner(t, witnessKey)
	foreign, _, _ := other.SignHead(d.ctx, d.s, "acme")
	if code, _, _ := post(t, url, addBody("0", nil, foreign)); code != http.StatusForbidden {
		t.Fatalf("unknown log key: %d", code)
	}
	for _, bad := range []string{"old -1\n\n" + string(d.signed()), "old 01\n\n" + string(d.signed()), "nonsense", "old 3\nnot base64!\n\n" + string(d.signed())} {
		if code, _, _ := post(t, url, bad); code != http.StatusBadRequest {
			t.Fatalf("%q: %d", bad, code)
		}
	}
	// Restarted on its state file, the witness still refuses the fork and still cosigns
	// the honest tree it last cosigned.
	_, url2 := httpWitness(t, d.key, state)
	if code, _, body := post(t, url2, addBody("14", nil, forkNote)); code != http.StatusConflict || !strings.Contains(body, "fork") {
		t.Fatalf("fork after restart: %d %q", code, body)
	}
	if code, _, body := post(t, url2, addBody("14", nil, d.signed())); code != http.StatusOK || !strings.HasPrefix(body, "— witness.example ") {
		t.Fatalf("honest after restart: %d %q", code, body)
	}
}

// TestWitnessQuorum: the log requires N cosignatures; a witness that is down counts
// against it and is named.
func TestWitnessQuorum(t *testing.T) {
	t.Parallel()
	d := newDrillLog(t)
	w, url := httpWitness(t, d.key, filepath.Join(t.TempDir(), "w.json"))
	up, _ := ledger.NewWitnessClient(url, w.VerifierKey(), nil)
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	down, _ := ledger.NewWitnessClient(dead.URL, w.VerifierKey(), nil)
	ws := &ledger.Witnesses{Clients: []*ledger.WitnessClient{up, down}, Quorum: 2}
	cos, err := ws.Cosign(d.ctx, d.s, "acme", d.signed())
	if !errors.Is(err, ledger.ErrQuorum) || !strings.Contains(err.Error(), "1 of 2 required") {
		t.Fatalf("quorum of 2 with one down: %v", err)
	}
	if bytes.Count(cos, []byte("— witness.example ")) != 1 {
		t.Fatalf("the cosignature it did get is kept: %s", cos)
	}
	ws.Quorum = 1
	if _, err := ws.Cosign(d.ctx, d.s, "acme", d.signed()); err != nil {
		t.Fatalf("quorum of 1: %v", err)
	}
}

// TestPublisher: serve's publication. A checkpoint short of the witness quorum is not
// published; once the witness answers it is, cosigned, and opens with the witness pinned.
func TestPublisher(t *testing.T) {
	t.Parallel()
	d := newDrillLog(t)
	w, url := httpWitness(t, d.key, filepath.Join(t.TempDir(), "w.json"))
	wv, _ := ledger.ParseVerifier(w.VerifierKey())
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	down, _ := ledger.NewWitnessClient(dead.URL, w.VerifierKey(), nil)
	sink := ledger.NoteDir{Dir: filepath.Join(t.TempDir(), "notes")}
	p := &ledger.Publisher{Store: d.s, Signer: d.ls, Witnesses: &ledger.Witnesses{Clients: []*ledger.WitnessClient{down}, Quorum: 1}, Sink: sink}
	if err := p.Publish(d.ctx, "acme"); !errors.Is(err, ledger.ErrQuorum) {
		t.Fatalf("publish without the quorum: %v", err)
	}
	if msg, err := sink.LatestNote(d.ctx, "acme"); msg != nil || err != nil {
		t.Fatalf("published short of the quorum: %q %v", msg, err)
	}
	up, _ := ledger.NewWitnessClient(url, w.VerifierKey(), nil)
	p.Witnesses.Clients = []*ledger.WitnessClient{up}
	if err := p.Publish(d.ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	msg, err := sink.LatestNote(d.ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	cp, err := ledger.OpenCheckpointNote(msg, nil, d.key, wv)
	if err != nil || cp.Tree.N != 12 {
		t.Fatalf("published note: %v %+v", err, cp)
	}
}

// monitored is a drill log whose honest checkpoints a witness cosigns and a publisher
// publishes, and a monitor of it pinning the ledger key and the witness.
func monitored(t *testing.T) (*drillLog, *ledger.Publisher, *ledger.Monitor, ledger.NoteDir) {
	t.Helper()
	d := newDrillLog(t)
	w, url := httpWitness(t, d.key, filepath.Join(t.TempDir(), "w.json"))
	wv, _ := ledger.ParseVerifier(w.VerifierKey())
	c, _ := ledger.NewWitnessClient(url, w.VerifierKey(), nil)
	sink := ledger.NoteDir{Dir: filepath.Join(t.TempDir(), "notes")}
	p := &ledger.Publisher{Store: d.s, Signer: d.ls, Witnesses: &ledger.Witnesses{Clients: []*ledger.WitnessClient{c}, Quorum: 1}, Sink: sink}
	if err := p.Publish(d.ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	return d, p, &ledger.Monitor{Tenant: "acme", Store: d.s, Notes: sink, Log: d.key, Witnesses: []note.Verifier{wv}}, sink
}

func wantFork(t *testing.T, err error, what string) {
	t.Helper()
	var fe *ledger.ForkError
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), what) {
		t.Fatalf("got %v; want a fork error %q", err, what)
	}
}

// TestMonitor: `bot verify --follow`'s checks. Growth passes; each failure is named.
func TestMonitor(t *testing.T) {
	t.Parallel()
	t.Run("honest growth", func(t *testing.T) {
		d, p, m, _ := monitored(t)
		if tr, err := m.Check(d.ctx); err != nil || tr.N != 12 {
			t.Fatalf("%v %v", tr, err)
		}
		d.extend()
		if tr, err := m.Check(d.ctx); err != nil || tr.N != 12 {
			t.Fatalf("store ahead of the published note: %v %v", tr, err)
		}
		p.Publish(d.ctx, "acme")
		if tr, err := m.Check(d.ctx); err != nil || tr.N != 13 {
			t.Fatalf("after publishing: %v %v", tr, err)
		}
	})
	t.Run("missing witness cosignature", func(t *testing.T) {
		d, _, m, sink := monitored(t)
		d.extend()
		sink.PublishNote(d.ctx, "acme", d.signed()) // signed by the ledger key alone
		_, err := m.Check(d.ctx)
		if !errors.Is(err, ledger.ErrBadNote) || !strings.Contains(err.Error(), "no signature by witness.example") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("truncation", func(t *testing.T) {
		d, _, m, _ := monitored(t)
		m.Check(d.ctx)
		es, _ := d.s.Range(d.ctx, "acme", 1, 0)
		m.Store = rebuild(t, es[:9])
		wantFork(t, mustFail(m.Check(d.ctx)), "truncated: 12 entries were signed before, 9 now")
	})
	t.Run("fork", func(t *testing.T) {
		d := newDrillLog(t)
		m := &ledger.Monitor{Tenant: "acme", Store: d.s} // the store's own head, no notes
		m.Check(d.ctx)
		m.Store = rewritten(t, d, 0).s
		wantFork(t, mustFail(m.Check(d.ctx)), "fork: two checkpoints of the same size with different roots")
	})
	t.Run("history rewritten and re-signed with the stolen key", func(t *testing.T) {
		d, _, m, sink := monitored(t)
		m.Check(d.ctx)
		forged := rewritten(t, d, 3)
		sink.PublishNote(d.ctx, "acme", forged.signed())
		m.Store = forged.s
		_, err := m.Check(d.ctx)
		if !strings.Contains(fmtErr(err), "no signature by witness.example") {
			t.Fatalf("witness pinned: %v", err)
		}
		m.Witnesses = nil // even pinning only the (stolen) ledger key, the monitor remembers
		wantFork(t, mustFail(m.Check(d.ctx)), "history rewritten")
	})
	t.Run("follow logs at ERROR and stops", func(t *testing.T) {
		d, _, m, _ := monitored(t)
		var logs bytes.Buffer
		tick := make(chan time.Time)
		done := make(chan error)
		oks := make(chan tlog.Tree, 4)
		go func() {
			done <- m.Follow(context.Background(), tick, slog.New(slog.NewTextHandler(&logs, nil)), func(tr tlog.Tree) { oks <- tr })
		}()
		<-oks
		es, _ := d.s.Range(d.ctx, "acme", 1, 0)
		m.Store = rebuild(t, es[:11]) // before the tick: the goroutine waits on it
		tick <- drillT0
		wantFork(t, <-done, "truncated")
		if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "truncated") {
			t.Fatalf("log: %s", logs.String())
		}
	})
}

func mustFail(_ tlog.Tree, err error) error { return err }

func fmtErr(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// TestHTTPNoteSink: notes published to the auditor's HTTP service read back; none is nil.
func TestHTTPNoteSink(t *testing.T) {
	t.Parallel()
	d := newDrillLog(t)
	srv := ledgertest.NewSinkServer(t, "tok")
	h, err := ledger.NewHTTPSink(srv.URL, "tok", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if msg, err := h.LatestNote(d.ctx, "acme"); msg != nil || err != nil {
		t.Fatalf("before publishing: %q %v", msg, err)
	}
	both := ledger.NoteSinks{h, ledger.NoteDir{Dir: t.TempDir()}}
	if err := both.PublishNote(d.ctx, "acme", d.signed()); err != nil {
		t.Fatal(err)
	}
	d.extend()
	h.PublishNote(d.ctx, "acme", d.signed())
	msg, err := both.LatestNote(d.ctx, "acme")
	if err != nil || !bytes.Equal(msg, d.signed()) {
		t.Fatalf("latest of both: %q %v", msg, err)
	}
	bad, _ := ledger.NewHTTPSink(srv.URL, "wrong", nil, nil)
	if _, err := bad.LatestNote(d.ctx, "acme"); !errors.Is(err, ledger.ErrSink) || !strings.Contains(err.Error(), "401") {
		t.Fatalf("wrong token: %v", err)
	}
}

// TestNewPublisherConfig: serve's witness configuration is refused when it cannot work.
func TestNewPublisherConfig(t *testing.T) {
	t.Parallel()
	s := ledger.NewMemStore()
	wkey, _ := ledger.CosignatureVerifierKey("w1.example", witnessKey.Public().(ed25519.PublicKey))
	ls, _ := logSigner(t, testKey)
	ok := ledger.WitnessConfig{URLs: []string{"https://w1.example"}, Keys: []string{wkey}, Quorum: 1, CheckpointFile: filepath.Join(t.TempDir(), "cp.json")}
	if p, err := ledger.NewPublisher(ledger.WitnessConfig{}, s, testKey, nil); p != nil || err != nil {
		t.Fatalf("no witness: %v %v", p, err)
	}
	if p, err := ledger.NewPublisher(ok, s, testKey, nil); p == nil || err != nil {
		t.Fatalf("configured: %v", err)
	}
	for name, c := range map[string]func(*ledger.WitnessConfig) ledger.WitnessConfig{
		"no sink":     func(c *ledger.WitnessConfig) ledger.WitnessConfig { c.CheckpointFile = ""; return *c },
		"a log's key": func(c *ledger.WitnessConfig) ledger.WitnessConfig { c.Keys = []string{ls.Verifier}; return *c },
		"key id of another name": func(c *ledger.WitnessConfig) ledger.WitnessConfig {
			c.Keys = []string{"w2.example+" + wkey[len("w1.example+"):]}
			return *c
		},
		"missing key": func(c *ledger.WitnessConfig) ledger.WitnessConfig { c.Keys = nil; return *c },
		"URL with userinfo": func(c *ledger.WitnessConfig) ledger.WitnessConfig {
			c.URLs = []string{"https://u:p@w1.example"}
			return *c
		},
	} {
		cc := ok
		if p, err := ledger.NewPublisher(c(&cc), s, testKey, nil); p != nil || err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := ledger.NewPublisher(ok, s, nil, nil); err == nil || !strings.Contains(err.Error(), "LEDGER_SIGNING_KEY") {
		t.Fatalf("no ledger key: %v", err)
	}
}
