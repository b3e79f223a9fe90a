package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// Mark is what a checkpoint sink keeps for a tenant, outside the store: the latest signed
// checkpoint of its chain and, when chains were lost, the last signed checkpoint of each
// lost one (oldest first). Every checkpoint in it is signed, so a forged mark is refused.
type Mark struct {
	Checkpoint Checkpoint   `json:"checkpoint"`
	Lost       []Checkpoint `json:"lost,omitempty"`
	// Accepted are operators' signed acceptances of the lost chains (Ledger.AcceptLoss).
	Accepted []Acceptance `json:"accepted,omitempty"`
}

// maxLost bounds the lost chains a mark remembers; the oldest are forgotten first.
const maxLost = 64

// CheckpointSink keeps tenants' marks somewhere the store's loss does not reach: a file
// on another disk, a service an auditor runs.
type CheckpointSink interface {
	// Load returns the tenant's mark, nil if the sink has none. A mark that does not
	// verify is an error wrapping ErrBadCheckpoint.
	Load(ctx context.Context, tenant string) (*Mark, error)
	// Save keeps m for its tenant, durably, before returning. A mark of an earlier chain
	// than the one kept (smaller base) is ignored.
	Save(ctx context.Context, m Mark) error
}

// ErrSink is the cause of every failure to read or write a checkpoint sink.
var ErrSink = errors.New("checkpoint sink")

// verifyMark checks every signature of m and that it belongs to tenant.
func verifyMark(m *Mark, tenant string, trusted ed25519.PublicKey) error {
	all := append([]Checkpoint{m.Checkpoint}, m.Lost...)
	for i := range all {
		cp := &all[i]
		if cp.Tenant != tenant {
			return fmt.Errorf("%w: a checkpoint of tenant %q is filed under %q", ErrBadCheckpoint, cp.Tenant, tenant)
		}
		if _, err := cp.Verify(trusted); err != nil {
			return err
		}
	}
	for i := range m.Accepted {
		if m.Accepted[i].Tenant != tenant {
			return fmt.Errorf("%w: a loss acceptance of tenant %q is filed under %q", ErrBadCheckpoint, m.Accepted[i].Tenant, tenant)
		}
		if err := m.Accepted[i].verify(trusted); err != nil {
			return err
		}
	}
	return nil
}

// FileSink keeps every tenant's mark in one JSON file, replaced atomically (a temporary
// file in the same directory, fsync'd, renamed over the old one, then the directory
// fsync'd), so a crash leaves either the old file or the new one. It is safe for
// concurrent use within a process; several processes should each have their own file, or
// share a CheckpointSink that serialises writers.
type FileSink struct {
	path    string
	trusted ed25519.PublicKey
	mu      sync.Mutex
}

// maxSinkFile bounds the checkpoint file read.
const maxSinkFile = 16 << 20

// sinkFile is the file's shape.
type sinkFile struct {
	Version int              `json:"version"`
	Tenants map[string]*Mark `json:"tenants"`
}

// NewFileSink returns a sink at path whose checkpoints must be signed by trusted (nil:
// their embedded key, which proves nothing against a forger; serve always pins).
func NewFileSink(path string, trusted ed25519.PublicKey) (*FileSink, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no file path", ErrSink)
	}
	if trusted != nil && len(trusted) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: trusted key is not an Ed25519 public key", ErrSink)
	}
	return &FileSink{path: path, trusted: trusted}, nil
}

// Path is the file the sink keeps.
func (f *FileSink) Path() string { return f.path }

// Probe checks that the file's directory exists (creating it, mode 0700, if need be), is
// writable, and that an existing file is readable and sound: what `serve` checks before
// listening.
func (f *FileSink) Probe(ctx context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	dir := filepath.Dir(f.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%w: create directory %s: %v", ErrSink, dir, pathErr(err))
	}
	tmp, err := os.CreateTemp(dir, ".checkpoints-probe-*")
	if err != nil {
		return fmt.Errorf("%w: directory %s is not writable: %v", ErrSink, dir, pathErr(err))
	}
	tmp.Close()
	os.Remove(tmp.Name())
	sf, err := f.read()
	if err != nil {
		return err
	}
	for tenant, m := range sf.Tenants {
		if err := verifyMark(m, tenant, f.trusted); err != nil {
			return fmt.Errorf("%w: %s: tenant %s: %w", ErrSink, f.path, tenant, err)
		}
	}
	return nil
}

func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// readSinkFile returns the content of a file kept beside the checkpoints, at most
// maxSinkFile bytes; a missing file is nil content, not an error.
func readSinkFile(path string) ([]byte, error) {
	fh, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrSink, path, pathErr(err))
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, maxSinkFile+1))
	if err != nil {
		return nil, fmt.Errorf("%w: read %s: %v", ErrSink, path, pathErr(err))
	}
	if len(b) > maxSinkFile {
		return nil, fmt.Errorf("%w: %s is larger than %d MiB", ErrSink, path, maxSinkFile>>20)
	}
	return b, nil
}

// read returns the file's content; a missing file is an empty one.
func (f *FileSink) read() (*sinkFile, error) {
	sf := &sinkFile{Version: 1, Tenants: map[string]*Mark{}}
	b, err := readSinkFile(f.path)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return sf, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(sf); err != nil {
		return nil, fmt.Errorf("%w: %s is damaged (not the checkpoint file's JSON: %v); restore it from a backup or move it aside", ErrSink, f.path, err)
	}
	if sf.Version != 1 {
		return nil, fmt.Errorf("%w: %s has version %d, want 1", ErrSink, f.path, sf.Version)
	}
	if sf.Tenants == nil {
		sf.Tenants = map[string]*Mark{}
	}
	for tenant, m := range sf.Tenants {
		if m == nil {
			return nil, fmt.Errorf("%w: %s: tenant %s has no mark", ErrSink, f.path, tenant)
		}
	}
	return sf, nil
}

// Load implements CheckpointSink.
func (f *FileSink) Load(ctx context.Context, tenant string) (*Mark, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	sf, err := f.read()
	if err != nil {
		return nil, err
	}
	m := sf.Tenants[tenant]
	if m == nil {
		return nil, nil
	}
	if err := verifyMark(m, tenant, f.trusted); err != nil {
		return nil, fmt.Errorf("%w: %s: tenant %s: %w", ErrSink, f.path, tenant, err)
	}
	return m, nil
}

// Save implements CheckpointSink.
func (f *FileSink) Save(ctx context.Context, m Mark) error {
	tenant := m.Checkpoint.Tenant
	if err := verifyMark(&m, tenant, f.trusted); err != nil {
		return fmt.Errorf("%w: refusing to save: %w", ErrSink, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	sf, err := f.read()
	if err != nil {
		return err
	}
	if cur := sf.Tenants[tenant]; cur != nil {
		// A mark that does not verify is evidence: it is reported, never overwritten.
		if err := verifyMark(cur, tenant, f.trusted); err != nil {
			return fmt.Errorf("%w: %s: tenant %s: %w", ErrSink, f.path, tenant, err)
		}
		if cur.Checkpoint.Base > m.Checkpoint.Base {
			return nil
		}
		m.Lost = mergeLost(cur.Lost, m.Lost)
		m.Accepted = mergeAccepted(cur.Accepted, m.Accepted)
	}
	sf.Tenants[tenant] = &m
	b, err := json.MarshalIndent(sf, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: encode: %v", ErrSink, err)
	}
	return writeAtomic(f.path, append(b, '\n'))
}

// mergeLost unites two lists of lost chains' checkpoints, oldest first, without repeats.
func mergeLost(a, b []Checkpoint) []Checkpoint {
	seen := map[string]bool{}
	var out []Checkpoint
	for _, cp := range append(append([]Checkpoint(nil), a...), b...) {
		if !seen[cp.Signature] {
			seen[cp.Signature] = true
			out = append(out, cp)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Base < out[j].Base })
	if len(out) > maxLost {
		out = out[len(out)-maxLost:]
	}
	return out
}

// writeAtomic replaces path with b: temporary file, fsync, rename, fsync of the directory.
func writeAtomic(path string, b []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".checkpoints-*")
	if err != nil {
		return fmt.Errorf("%w: write %s: %v", ErrSink, path, pathErr(err))
	}
	name := tmp.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(name)
		}
	}()
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: write %s: %v", ErrSink, path, pathErr(err))
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: write %s: %v", ErrSink, path, pathErr(err))
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("%w: fsync %s: %v", ErrSink, path, pathErr(err))
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("%w: write %s: %v", ErrSink, path, pathErr(err))
	}
	if err := os.Rename(name, path); err != nil {
		return fmt.Errorf("%w: replace %s: %v", ErrSink, path, pathErr(err))
	}
	ok = true
	if d, err := os.Open(dir); err == nil {
		err = d.Sync()
		d.Close()
		if err != nil {
			return fmt.Errorf("%w: fsync directory %s: %v", ErrSink, dir, pathErr(err))
		}
	}
	return nil
}
