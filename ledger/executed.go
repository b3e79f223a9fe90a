package ledger

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"
)

// ExecutedFile keeps the idempotency keys of the recoveries whose webhook answered 2xx,
// per tenant, in a JSON file beside the checkpoint file: outside the store, so that a
// store rolled back to before an execution (the incident reads AUTHORIZED again, its
// outbox entry pending again) cannot have the recovery run a second time. It is replaced
// atomically like the checkpoint file, mode 0600. Each tenant keeps its newest
// MaxExecutedKeys keys. Safe for concurrent use within a process.
type ExecutedFile struct {
	path string
	mu   sync.Mutex
}

// MaxExecutedKeys bounds the keys an ExecutedFile keeps per tenant; the oldest go first.
const MaxExecutedKeys = 100000

// executedFile is the file's shape: tenant → idempotency key → when it was executed.
type executedFile struct {
	Version int                             `json:"version"`
	Tenants map[string]map[string]time.Time `json:"tenants"`
}

// ExecutedPath is where the executed keys are kept beside checkpointFile:
// /var/lib/alertengine/checkpoints.json → /var/lib/alertengine/checkpoints.executed.json.
func ExecutedPath(checkpointFile string) string {
	return strings.TrimSuffix(checkpointFile, ".json") + ".executed.json"
}

// NewExecutedFile returns the keys kept at path.
func NewExecutedFile(path string) (*ExecutedFile, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: no executed-keys file path", ErrSink)
	}
	return &ExecutedFile{path: path}, nil
}

// Path is the file kept.
func (f *ExecutedFile) Path() string { return f.path }

func (f *ExecutedFile) read() (*executedFile, error) {
	ef := &executedFile{Version: 1, Tenants: map[string]map[string]time.Time{}}
	b, err := readSinkFile(f.path)
	if err != nil {
		return nil, err
	}
	if b == nil {
		return ef, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(ef); err != nil || ef.Version != 1 {
		return nil, fmt.Errorf("%w: %s is damaged (not the executed-keys file's JSON); restore it from a backup or move it aside", ErrSink, f.path)
	}
	if ef.Tenants == nil {
		ef.Tenants = map[string]map[string]time.Time{}
	}
	return ef, nil
}

// Executed reports whether tenant's recovery with idempotency key was executed, and when.
func (f *ExecutedFile) Executed(ctx context.Context, tenant, key string) (time.Time, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ef, err := f.read()
	if err != nil {
		return time.Time{}, false, err
	}
	at, ok := ef.Tenants[tenant][key]
	return at, ok, nil
}

// MarkExecuted records that tenant's recovery with idempotency key was executed at at,
// durably before it returns.
func (f *ExecutedFile) MarkExecuted(ctx context.Context, tenant, key string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	ef, err := f.read()
	if err != nil {
		return err
	}
	keys := ef.Tenants[tenant]
	if keys == nil {
		keys = map[string]time.Time{}
		ef.Tenants[tenant] = keys
	}
	if _, ok := keys[key]; ok {
		return nil
	}
	keys[key] = at.UTC()
	if len(keys) > MaxExecutedKeys {
		all := make([]string, 0, len(keys))
		for k := range keys {
			all = append(all, k)
		}
		sort.Slice(all, func(i, j int) bool { return keys[all[i]].Before(keys[all[j]]) })
		for _, k := range all[:len(keys)-MaxExecutedKeys] {
			delete(keys, k)
		}
	}
	b, err := json.MarshalIndent(ef, "", "  ")
	if err != nil {
		return fmt.Errorf("%w: encode: %v", ErrSink, err)
	}
	return writeAtomic(f.path, append(b, '\n'))
}
