package ledger

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Tail is the end of a tenant's chain: the last sequence number, its hash, and the number
// of the last incident code the chain handed out. The tail of an empty chain is
// {0, GenesisHash, 0}.
type Tail struct {
	Seq  uint64
	Hash string
	// LastCode is the number of the last incident opened on the chain (INC-(LastCode) in
	// hex), the tenant's incident counter: the store advances it in the same atomic append
	// as the entry that opens the incident, and the next incident opens past it. A store
	// that keeps a code base (BaseStore) reports the base when it is higher (a chain
	// restarted after a loss, whose counter came back with the lost chain), so every
	// writer numbers past the lost codes. A store whose chain was written by an older
	// version, which numbered incidents by seq, reports the chain's code base plus its seq
	// (past every code that version handed out).
	LastCode uint64
}

// Same reports whether t and o are the same end of a chain (seq and hash): what a
// compare-and-append compares. LastCode follows from the chain.
func (t Tail) Same(o Tail) bool { return t.Seq == o.Seq && t.Hash == o.Hash }

// Errors of stores.
var (
	// ErrConflict: the chain tail moved since the caller read it; read it again and retry.
	ErrConflict = errors.New("ledger tail moved")
	// ErrStageConflict: the incident is no longer in the stage the entry starts from.
	ErrStageConflict = errors.New("incident stage moved")
	// ErrServiceOpen: the service already has an open incident.
	ErrServiceOpen = errors.New("service already has an open incident")
	// ErrCodeUsed: an entry opens an incident whose code is not past the tenant's incident
	// counter (Tail.LastCode): codes are handed out once, in increasing order.
	ErrCodeUsed = errors.New("incident code not past the last one handed out")
)

// ConflictError is ErrConflict carrying the tail the store saw, to retry on without
// reading it again.
type ConflictError struct{ Tail Tail }

func (e *ConflictError) Error() string { return ErrConflict.Error() }
func (e *ConflictError) Unwrap() error { return ErrConflict }

// StageConflictError says which stage the incident is really in.
type StageConflictError struct {
	Incident string
	Want     Stage
	Current  Stage
}

func (e *StageConflictError) Error() string {
	return fmt.Sprintf("%s is %s, not %s", e.Incident, stageName(e.Current), stageName(e.Want))
}
func (e *StageConflictError) Unwrap() error { return ErrStageConflict }

// ServiceOpenError names the incident that holds the service.
type ServiceOpenError struct {
	Service  string
	Incident string
}

func (e *ServiceOpenError) Error() string {
	return fmt.Sprintf("service %s already has open incident %s", e.Service, e.Incident)
}
func (e *ServiceOpenError) Unwrap() error { return ErrServiceOpen }

// Store keeps tenants' chains. Implementations must make Append atomic: either a prefix of
// the batch is appended exactly as given, or nothing.
type Store interface {
	// Append appends entries (already chained on tail: consecutive seqs from tail.Seq+1,
	// each prev_hash the previous hash, except a loss marker's, see LossMarker) if tail is
	// still the chain's tail (its seq and hash). A loss marker (incident "") is in no
	// incident's index. Each entry's From must equal its incident's current stage at that
	// point of the batch (None: the incident must not exist, and its service, if any, must
	// have no open incident). An entry that opens an incident (From None) must carry a
	// code past the tenant's incident counter (Tail.LastCode, the code base included),
	// which it advances to its code, in the same atomic step.
	// It returns how many entries were appended and, when fewer than all, why the next
	// one was not: ErrConflict (then n is 0), a *StageConflictError, a *ServiceOpenError or
	// an error wrapping ErrCodeUsed.
	Append(ctx context.Context, tenant string, tail Tail, entries []Entry) (int, error)
	// Tail returns the tenant's chain tail.
	Tail(ctx context.Context, tenant string) (Tail, error)
	// Range returns up to limit entries with seq ≥ from, in order.
	Range(ctx context.Context, tenant string, from uint64, limit int) ([]Entry, error)
	// Stage returns an incident's current stage (None if it does not exist).
	Stage(ctx context.Context, tenant, incident string) (Stage, error)
	// History returns an incident's entries in order.
	History(ctx context.Context, tenant, incident string) ([]Entry, error)
	// Incidents returns a tenant's incident ids, oldest first.
	Incidents(ctx context.Context, tenant string) ([]string, error)
	// OpenIncident returns the open incident of a service, or "".
	OpenIncident(ctx context.Context, tenant, service string) (string, error)
	// SaveCheckpoint keeps a signed checkpoint; Checkpoint returns the latest one (nil if none).
	SaveCheckpoint(ctx context.Context, cp Checkpoint) error
	Checkpoint(ctx context.Context, tenant string) (*Checkpoint, error)
	// Ping checks that the store can be written.
	Ping(ctx context.Context) error
}

// BaseStore is implemented by stores that keep a chain's code base (see Checkpoint.Base)
// beside the chain, so every writer of a restarted chain numbers incidents alike.
type BaseStore interface {
	// Base returns the chain's code base (0 if none was claimed).
	Base(ctx context.Context, tenant string) (uint64, error)
	// ClaimBase sets the chain's code base to base if it is still old (0: none set), and
	// returns the one that holds: of several writers restarting the same chain, the first
	// wins and the others adopt its base.
	ClaimBase(ctx context.Context, tenant string, old, base uint64) (uint64, error)
}

// codeUsedError says an entry's incident code is not past the counter last.
func codeUsedError(incident string, last uint64) error {
	return fmt.Errorf("%w: %s opens an incident, but the tenant's codes already reached %s", ErrCodeUsed, incident, IncidentID(last))
}

// MemStore is an in-memory Store for tests, simulations and single-process tools.
type MemStore struct {
	mu      sync.Mutex
	tenants map[string]*memTenant
}

type memTenant struct {
	entries    []Entry
	stage      map[string]Stage
	service    map[string]string // incident → service
	open       map[string]string // service → incident
	order      []string          // incidents, oldest first
	byIncident map[string][]int
	checkpoint *Checkpoint
	base       *uint64 // nil: none set
	lastCode   uint64  // the incident counter (Tail.LastCode)
	merkle     memTree // the Merkle tree over entries (merkle_mem.go)
}

// NewMemStore returns an empty in-memory store.
func NewMemStore() *MemStore { return &MemStore{tenants: map[string]*memTenant{}} }

func (m *MemStore) tenant(t string) *memTenant {
	mt := m.tenants[t]
	if mt == nil {
		mt = &memTenant{stage: map[string]Stage{}, service: map[string]string{}, open: map[string]string{}, byIncident: map[string][]int{}}
		m.tenants[t] = mt
	}
	return mt
}

func (mt *memTenant) tail() Tail {
	code := mt.lastCode
	if mt.base != nil {
		code = max(code, *mt.base)
	}
	if len(mt.entries) == 0 {
		return Tail{0, GenesisHash, code}
	}
	last := mt.entries[len(mt.entries)-1]
	return Tail{last.Seq, last.Hash, code}
}

// Append implements Store.
func (m *MemStore) Append(ctx context.Context, tenant string, tail Tail, entries []Entry) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.tenant(tenant)
	now := mt.tail()
	if !now.Same(tail) {
		return 0, ErrConflict
	}
	last := now.LastCode
	leaves, err := leafDatas(entries)
	if err != nil {
		return 0, err
	}
	for i := range entries {
		e := entries[i]
		if e.Incident == "" { // a loss marker: of the chain, of no incident
			mt.entries = append(mt.entries, e)
			mt.merkle.lossLeaf, mt.merkle.lossSeq = mt.merkle.leaves, e.Seq
			mt.merkle.add(e.Seq, leaves[i])
			continue
		}
		cur := mt.stage[e.Incident]
		if cur != e.From {
			return i, &StageConflictError{Incident: e.Incident, Want: e.From, Current: cur}
		}
		if e.From == None {
			if e.Service != "" {
				if o, ok := mt.open[e.Service]; ok {
					return i, &ServiceOpenError{Service: e.Service, Incident: o}
				}
			}
			code, _ := incidentCode(e.Incident)
			if code <= last {
				return i, codeUsedError(e.Incident, last)
			}
			mt.lastCode, last = code, code
			mt.order = append(mt.order, e.Incident)
			mt.service[e.Incident] = e.Service
		}
		mt.entries = append(mt.entries, e)
		mt.byIncident[e.Incident] = append(mt.byIncident[e.Incident], len(mt.entries)-1)
		mt.merkle.add(e.Seq, leaves[i])
		mt.stage[e.Incident] = e.To
		if svc := mt.service[e.Incident]; svc != "" {
			if e.From == None && e.To.Open() {
				mt.open[svc] = e.Incident
			} else if e.To.Terminal() && mt.open[svc] == e.Incident {
				delete(mt.open, svc)
			}
		}
	}
	return len(entries), nil
}

// Tail implements Store.
func (m *MemStore) Tail(ctx context.Context, tenant string) (Tail, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tenant(tenant).tail(), nil
}

// Range implements Store.
func (m *MemStore) Range(ctx context.Context, tenant string, from uint64, limit int) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.tenant(tenant)
	i := sort.Search(len(mt.entries), func(i int) bool { return mt.entries[i].Seq >= from })
	j := len(mt.entries)
	if limit > 0 && i+limit < j {
		j = i + limit
	}
	return append([]Entry(nil), mt.entries[i:j]...), nil
}

// Stage implements Store.
func (m *MemStore) Stage(ctx context.Context, tenant, incident string) (Stage, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tenant(tenant).stage[incident], nil
}

// History implements Store.
func (m *MemStore) History(ctx context.Context, tenant, incident string) ([]Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.tenant(tenant)
	var out []Entry
	for _, i := range mt.byIncident[incident] {
		out = append(out, mt.entries[i])
	}
	return out, nil
}

// Incidents implements Store.
func (m *MemStore) Incidents(ctx context.Context, tenant string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]string(nil), m.tenant(tenant).order...), nil
}

// OpenIncident implements Store.
func (m *MemStore) OpenIncident(ctx context.Context, tenant, service string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.tenant(tenant).open[service], nil
}

// SaveCheckpoint implements Store. Like RedisStore's, it never replaces a checkpoint of a
// later chain or a larger one of the same chain.
func (m *MemStore) SaveCheckpoint(ctx context.Context, cp Checkpoint) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.tenant(cp.Tenant)
	if cur := mt.checkpoint; cur != nil && (cur.Base > cp.Base || cur.Base == cp.Base && cur.Size > cp.Size) {
		return nil
	}
	c := cp
	mt.checkpoint = &c
	return nil
}

// Checkpoint implements Store.
func (m *MemStore) Checkpoint(ctx context.Context, tenant string) (*Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if c := m.tenant(tenant).checkpoint; c != nil {
		cp := *c
		return &cp, nil
	}
	return nil, nil
}

// Base implements BaseStore.
func (m *MemStore) Base(ctx context.Context, tenant string) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if b := m.tenant(tenant).base; b != nil {
		return *b, nil
	}
	return 0, nil
}

// ClaimBase implements BaseStore.
func (m *MemStore) ClaimBase(ctx context.Context, tenant string, old, base uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.tenant(tenant)
	cur := uint64(0)
	if mt.base != nil {
		cur = *mt.base
	}
	if cur == old {
		mt.base = &base
		return base, nil
	}
	return cur, nil
}

// Ping implements Store.
func (m *MemStore) Ping(ctx context.Context) error { return nil }

// Tamper gives tests direct access to a tenant's stored entries, to damage them.
func (m *MemStore) Tamper(tenant string, f func(entries []Entry) []Entry) {
	m.mu.Lock()
	defer m.mu.Unlock()
	mt := m.tenant(tenant)
	mt.entries = f(mt.entries)
	// The counter goes with the chain, as in a store restored from an older copy.
	mt.lastCode = 0
	for _, e := range mt.entries {
		if n, ok := incidentCode(e.Incident); ok && e.From == None && e.Incident != "" && n > mt.lastCode {
			mt.lastCode = n
		}
	}
}
