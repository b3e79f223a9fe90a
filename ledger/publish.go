package ledger

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// Publishing cosigned checkpoints. Beside the JSON marks, serve publishes each tenant's
// tree head as a checkpoint note — cosigned by the witnesses it requires — to the same
// places: a directory beside the checkpoint file (<dir>/notes/<tenant>.note) and the
// auditor's HTTP service (PUT/GET BASE/TENANT/note, text/plain). A monitor
// (`bot verify --follow`) reads them back.

// NoteSink keeps each tenant's latest published checkpoint note.
type NoteSink interface {
	PublishNote(ctx context.Context, tenant string, msg []byte) error
	// LatestNote returns the tenant's note, nil when none was published.
	LatestNote(ctx context.Context, tenant string) ([]byte, error)
}

// maxNote bounds a published note read back.
const maxNote = 64 << 10

// NoteDir keeps notes as files <Dir>/<tenant>.note, each replaced atomically.
type NoteDir struct{ Dir string }

// NoteDirFor is the note directory beside a checkpoint file.
func NoteDirFor(checkpointFile string) NoteDir {
	return NoteDir{Dir: filepath.Join(filepath.Dir(checkpointFile), "notes")}
}

func (d NoteDir) path(tenant string) (string, error) {
	if !ValidTenant(tenant) {
		return "", fmt.Errorf("%w: tenant %q", ErrSink, tenant)
	}
	return filepath.Join(d.Dir, tenant+".note"), nil
}

// PublishNote implements NoteSink.
func (d NoteDir) PublishNote(_ context.Context, tenant string, msg []byte) error {
	p, err := d.path(tenant)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(d.Dir, 0o700); err != nil {
		return fmt.Errorf("%w: create directory %s: %v", ErrSink, d.Dir, pathErr(err))
	}
	return writeAtomic(p, msg)
}

// LatestNote implements NoteSink.
func (d NoteDir) LatestNote(_ context.Context, tenant string) ([]byte, error) {
	p, err := d.path(tenant)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSink, pathErr(err))
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxNote+1))
	if err != nil || len(b) > maxNote {
		return nil, fmt.Errorf("%w: %s is unreadable or longer than a checkpoint note", ErrSink, p)
	}
	return b, nil
}

// PublishNote implements NoteSink: PUT BASE/TENANT/note.
func (h *HTTPSink) PublishNote(ctx context.Context, tenant string, msg []byte) error {
	resp, err := h.doPath(ctx, http.MethodPut, tenant, "/note", "text/plain; charset=utf-8", msg)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%w: PUT %s/note: HTTP %d", ErrSink, tenant, resp.StatusCode)
	}
	return nil
}

// LatestNote implements NoteSink: GET BASE/TENANT/note.
func (h *HTTPSink) LatestNote(ctx context.Context, tenant string) ([]byte, error) {
	resp, err := h.doPath(ctx, http.MethodGet, tenant, "/note", "", nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w: GET %s/note: HTTP %d", ErrSink, tenant, resp.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxNote+1))
	if err != nil || len(b) > maxNote {
		return nil, fmt.Errorf("%w: GET %s/note: unreadable or longer than a checkpoint note", ErrSink, tenant)
	}
	return b, nil
}

// NoteSinks is several note sinks as one: PublishNote writes to each; LatestNote returns
// the note of the largest tree any of them holds.
type NoteSinks []NoteSink

// PublishNote implements NoteSink.
func (ns NoteSinks) PublishNote(ctx context.Context, tenant string, msg []byte) error {
	var errs []error
	for _, s := range ns {
		errs = append(errs, s.PublishNote(ctx, tenant, msg))
	}
	return errors.Join(errs...)
}

// LatestNote implements NoteSink. A sink's note that does not parse is an error.
func (ns NoteSinks) LatestNote(ctx context.Context, tenant string) ([]byte, error) {
	var best []byte
	var bestN int64 = -1
	for _, s := range ns {
		b, err := s.LatestNote(ctx, tenant)
		if err != nil {
			return nil, err
		}
		if b == nil {
			continue
		}
		cp, err := ParseCheckpointText(noteText(b))
		if err != nil {
			return nil, err
		}
		if cp.Tree.N > bestN {
			best, bestN = b, cp.Tree.N
		}
	}
	return best, nil
}

// Publisher signs each tenant's tree head as a checkpoint note when it grew, has the
// witnesses cosign it (Witnesses nil: none required), and publishes it to Sink. A note
// short of the witnesses' quorum is not published: the last cosigned one stays.
type Publisher struct {
	Store     TreeStore
	Signer    LogSigner
	Witnesses *Witnesses
	Sink      NoteSink
	Logger    *slog.Logger
	mu        sync.Mutex
	published map[string]int64
}

// Publish publishes tenant's tree head if it grew since the last publication.
func (p *Publisher) Publish(ctx context.Context, tenant string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	head, err := TreeHead(ctx, p.Store, tenant)
	if err != nil {
		return err
	}
	if n, ok := p.published[tenant]; ok && n == head.N || head.N == 0 {
		return nil // unchanged, or nothing to witness yet
	}
	msg, err := SignCheckpointNote(p.Signer.Signer, p.Signer.Origin, tenant, head)
	if err != nil {
		return err
	}
	if p.Witnesses != nil {
		if msg, err = p.Witnesses.Cosign(ctx, p.Store, tenant, msg); err != nil {
			return err
		}
	}
	if err := p.Sink.PublishNote(ctx, tenant, msg); err != nil {
		return err
	}
	if p.published == nil {
		p.published = map[string]int64{}
	}
	p.published[tenant] = head.N
	return nil
}

// Run publishes every tenant of tenants at once and at each tick until ctx ends; a
// failure is logged at ERROR and retried at the next tick.
func (p *Publisher) Run(ctx context.Context, tenants []string, tick <-chan time.Time) {
	for {
		for _, t := range tenants {
			if err := p.Publish(ctx, t); err != nil && ctx.Err() == nil {
				p.Logger.Error("checkpoint not published", "tenant", t, "err", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick:
		}
	}
}

// Monitor re-verifies a tenant's log over time: each Check reads the latest published
// checkpoint note (Notes nil, or none published yet: the store's own tree head), requires the signature of Log
// and of every key in Witnesses, and checks that it extends the last tree it saw, with a
// consistency proof from Store — and that the store still holds that tree.
type Monitor struct {
	Tenant    string
	Store     TreeStore
	Notes     NoteSink
	Log       note.Verifier
	Witnesses []note.Verifier
	last      *tlog.Tree
	noted     bool // a published note was seen: from now on one must be there
}

// Check verifies once and returns the tree it now trusts. A fork, a truncation or a
// rewritten history is a *ForkError; a note without a required cosignature wraps ErrBadNote.
func (m *Monitor) Check(ctx context.Context) (tlog.Tree, error) {
	head, err := TreeHead(ctx, m.Store, m.Tenant)
	if err != nil {
		return tlog.Tree{}, err
	}
	seen, origin := head, m.Tenant
	var msg []byte
	if m.Notes != nil {
		msg, err = m.Notes.LatestNote(ctx, m.Tenant)
		if err != nil {
			return tlog.Tree{}, err
		}
		if msg == nil && m.noted {
			return tlog.Tree{}, fmt.Errorf("the published checkpoint of %s is gone (it had %d entries)", m.Tenant, m.last.N)
		}
	}
	if m.Notes != nil && msg != nil { // none published yet: the store's own head meanwhile
		m.noted = true
		cp, err := OpenCheckpointNote(msg, nil, append([]note.Verifier{m.Log}, m.Witnesses...)...)
		if err != nil {
			return tlog.Tree{}, fmt.Errorf("published checkpoint of %s: %w", m.Tenant, err)
		}
		if cp.Tenant != m.Tenant {
			return tlog.Tree{}, fmt.Errorf("%w: the published checkpoint is of tenant %s", ErrBadNote, cp.Tenant)
		}
		seen, origin = cp.Tree, cp.Origin
		if err := m.extends(ctx, origin, cp.Tree, head); err != nil {
			return tlog.Tree{}, err
		}
	}
	if m.last != nil {
		if err := m.extends(ctx, origin, *m.last, seen); err != nil {
			return tlog.Tree{}, err
		}
	}
	if m.last == nil || seen.N > m.last.N {
		m.last = &seen
	}
	return *m.last, nil
}

// extends checks that tree n (the store's head, or a later published tree) extends old,
// proving it from the store.
func (m *Monitor) extends(ctx context.Context, origin string, old, n tlog.Tree) error {
	var proof []tlog.Hash
	if n.N > old.N {
		p, err := ConsistencyProof(ctx, m.Store, m.Tenant, old.N, n.N)
		if err != nil {
			return &ForkError{origin, old, n, fmt.Sprintf("the store cannot prove it: %v", err)}
		}
		proof = p
	}
	return CheckConsistency(origin, old, n, proof)
}

// Follow checks at once and at each tick until ctx ends or a check fails, which it logs
// at ERROR and returns. ok is called after each check that passed.
func (m *Monitor) Follow(ctx context.Context, tick <-chan time.Time, logger *slog.Logger, ok func(tlog.Tree)) error {
	for {
		t, err := m.Check(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			logger.Error("ledger verification failed", "tenant", m.Tenant, "err", err)
			return err
		}
		if ok != nil {
			ok(t)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick:
		}
	}
}

// WitnessConfig is how serve is told to have its checkpoints witnessed.
type WitnessConfig struct {
	URLs, Keys []string // witnesses' URL prefixes and verifier keys, in pairs
	Quorum     int      // cosignatures a note needs before it is published
	Origin     string   // LEDGER_ORIGIN ("": DefaultOrigin)
	// CheckpointFile and Sink: notes go to NoteDirFor(CheckpointFile) and to Sink when it
	// is an *HTTPSink (or Sinks holding one).
	CheckpointFile string
	Sink           CheckpointSink
}

// NewPublisher returns the publisher serve runs, nil when no witness is configured.
func NewPublisher(c WitnessConfig, store TreeStore, key ed25519.PrivateKey, logger *slog.Logger) (*Publisher, error) {
	if len(c.URLs) == 0 {
		return nil, nil
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, errors.New("witnessed checkpoints need the ledger key (LEDGER_SIGNING_KEY)")
	}
	ws := &Witnesses{Quorum: c.Quorum}
	for i, u := range c.URLs {
		if i >= len(c.Keys) {
			return nil, fmt.Errorf("witness %s: no verifier key", u)
		}
		cl, err := NewWitnessClient(u, c.Keys[i], nil)
		if err != nil {
			return nil, err
		}
		ws.Clients = append(ws.Clients, cl)
	}
	origin := c.Origin
	if origin == "" {
		origin = DefaultOrigin
	}
	s, vkey, err := NoteSigner(origin, key)
	if err != nil {
		return nil, err
	}
	var sinks NoteSinks
	if c.CheckpointFile != "" {
		sinks = append(sinks, NoteDirFor(c.CheckpointFile))
	}
	sinks = append(sinks, httpNoteSinks(c.Sink)...)
	if len(sinks) == 0 {
		return nil, errors.New("witnessed checkpoints need somewhere to be published: LEDGER_CHECKPOINT_FILE or LEDGER_CHECKPOINT_URL")
	}
	return &Publisher{Store: store, Signer: LogSigner{Origin: origin, Signer: s, Verifier: vkey}, Witnesses: ws, Sink: sinks, Logger: logger}, nil
}

func httpNoteSinks(s CheckpointSink) []NoteSink {
	switch s := s.(type) {
	case *HTTPSink:
		return []NoteSink{s}
	case Sinks:
		var out []NoteSink
		for _, x := range s {
			out = append(out, httpNoteSinks(x)...)
		}
		return out
	}
	return nil
}

// FollowNotes is where a monitor reads published notes: the directory beside
// checkpointFile when it exists, and the auditor's service at url.
func FollowNotes(checkpointFile, url, token string) NoteSinks {
	var out NoteSinks
	if checkpointFile != "" {
		if d := NoteDirFor(checkpointFile); dirExists(d.Dir) {
			out = append(out, d)
		}
	}
	if url != "" {
		if h, err := NewHTTPSink(url, token, nil, nil); err == nil {
			out = append(out, h)
		}
	}
	return out
}

func dirExists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.IsDir()
}
