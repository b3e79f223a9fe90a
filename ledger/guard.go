package ledger

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"
)

// ErrLost is the cause of every LossError: the store holds less of a tenant's chain than
// was known to exist.
var ErrLost = errors.New("the ledger lost entries")

// LossError says a tenant's chain in the store is shorter than, or differs from, what its
// last known checkpoint covered: the store lost (or had replaced) entries.
type LossError struct {
	Tenant string
	// Entries is how many entries the tenant's chain in the store has.
	Entries uint64
	// Checkpoint is the last known checkpoint of the lost chain.
	Checkpoint Checkpoint
	// Differs: the chain is long enough but its entry at Checkpoint.Size is not the one
	// the checkpoint signed (the chain was replaced).
	Differs bool
	// Restarted: the loss was detected before and the chain restarted; Entries counts the
	// new chain's entries, whose incident codes start past INC-(Base) in hex. Base is also
	// set on a loss found now, once the chain restarted: its codes continue past INC-(Base).
	Restarted bool
	Base      uint64
}

func (e *LossError) Error() string {
	cp := e.Checkpoint
	at := cp.At.UTC().Format(time.RFC3339)
	switch {
	case e.Restarted:
		return fmt.Sprintf("chain restarted after a loss: the last checkpoint of the lost chain (%s, tail %s) had %d entries, the present chain has %d (its incident codes start after INC-%X): %v",
			at, short(cp.TailHash), cp.Size, e.Entries, e.Base, ErrLost)
	case e.Differs:
		return fmt.Sprintf("chain has %d entries but entry %d is not the one its last checkpoint (%s, tail %s) signed: the chain was replaced, %v",
			e.Entries, cp.Size, at, short(cp.TailHash), ErrLost)
	}
	return fmt.Sprintf("chain has %d entries but its last checkpoint (%s, tail %s) had %d: %v", e.Entries, at, short(cp.TailHash), cp.Size, ErrLost)
}

func (e *LossError) Unwrap() error { return ErrLost }

// DefaultReserveBlock is how many seqs one sink write reserves ahead.
const DefaultReserveBlock = 256

// MaxCodeBlock is how many incident codes one sink write reserves ahead at most (fewer
// when ReserveBlock is smaller): after a loss, the codes continue past those reserved,
// so people see at most this many codes skipped.
const MaxCodeBlock = 16

// epoch is what a Ledger knows of a tenant's chain beyond its tail: the code base, the
// seqs and codes reserved in the sink, the longest tail it saw, and the mark it last
// loaded or saved. Guarded by the tenant queue's gmu.
type epoch struct {
	loaded   bool
	base     uint64
	reserved uint64
	// codes is the highest incident code the sink's mark of this chain covers (its
	// CodeBound): codes up to it may be handed out without writing the sink first.
	codes   uint64
	floor   Tail
	mark    *Mark
	written time.Time // when this Ledger last wrote the mark
	// fencedBelow, when not 0, is the code base of the chain at an unaccepted loss:
	// incidents numbered up to it are fenced (see ErrFenced).
	fencedBelow uint64
	// judged: a tail read from the store was compared with mark since it was loaded (a
	// Fenced call loads the epoch without reading the tail).
	judged bool
}

// storeBase returns the store's code base for tenant (0 when the store keeps none).
func storeBase(ctx context.Context, s Store, tenant string) (uint64, bool, error) {
	bs, ok := s.(BaseStore)
	if !ok {
		return 0, false, nil
	}
	b, err := bs.Base(ctx, tenant)
	return b, true, err
}

// loadEpoch reads the sink's mark and the store's code base for tenant.
func (l *Ledger) loadEpoch(ctx context.Context, tenant string, ep *epoch) error {
	base, _, err := storeBase(ctx, l.opts.Store, tenant)
	if err != nil {
		return err
	}
	ep.base = base
	if l.opts.Sink != nil {
		m, err := l.opts.Sink.Load(ctx, tenant)
		if err != nil {
			// The chain stays writable: a damaged sink must not stop incident recording,
			// but nothing is compared against it until it is mended.
			l.opts.Logger.Error("checkpoint sink unreadable: ledger loss cannot be detected against it", "tenant", tenant, "err", err)
		}
		if err == nil || m != nil { // Sinks: the others' best mark despite one failing
			ep.mark = m
			if m != nil && m.Checkpoint.Base == base {
				ep.reserved, ep.codes = m.Checkpoint.Reserved, m.Checkpoint.CodeBound()
			}
			ep.fenceFromMark()
			if lost := m.Unaccepted(); len(lost) > 0 {
				// A loss found before (by another replica, or before a restart) stays in
				// sight until an operator accepts it.
				l.opts.Logger.Error("ledger loss not yet accepted: incidents from before it are fenced until `bot ledger accept-loss`",
					"tenant", tenant, "lost_chains", len(lost))
			}
		}
	}
	ep.loaded = true
	return nil
}

// markLoss compares the store's chain (its tail and code base) with mark: nil when the
// chain holds everything the mark's checkpoint covered.
func markLoss(ctx context.Context, s Store, tenant string, tail Tail, base uint64, hasBase bool, m *Mark) (*LossError, error) {
	if m == nil {
		return nil, nil
	}
	cp := m.Checkpoint
	if hasBase && cp.Base > base {
		// The store forgot the code base the sink recorded: its chain is not the one the
		// checkpoint signed, unless that chain had not started.
		if cp.Size == 0 && cp.Reserved == 0 {
			return nil, nil
		}
		return &LossError{Tenant: tenant, Entries: tail.Seq, Checkpoint: cp}, nil
	}
	if hasBase && cp.Base < base {
		return nil, nil // another writer restarted the chain; the sink lags behind it
	}
	switch {
	case tail.Seq < cp.Size:
		return &LossError{Tenant: tenant, Entries: tail.Seq, Checkpoint: cp}, nil
	case cp.Size == 0:
		return nil, nil
	case tail.Seq == cp.Size:
		if tail.Hash != cp.TailHash {
			return &LossError{Tenant: tenant, Entries: tail.Seq, Checkpoint: cp, Differs: true}, nil
		}
		return nil, nil
	}
	es, err := s.Range(ctx, tenant, cp.Size, 1)
	if err != nil {
		return nil, fmt.Errorf("read entry %d: %w", cp.Size, err)
	}
	if len(es) != 1 || es[0].Seq != cp.Size || es[0].Hash != cp.TailHash {
		return &LossError{Tenant: tenant, Entries: tail.Seq, Checkpoint: cp, Differs: true}, nil
	}
	return nil, nil
}

// observe judges a tail read from the store against what this Ledger knew of the chain.
// On a loss it restarts the chain past every code the lost one may have used, logs the
// loss at ERROR, reports it to OnLoss and returns it.
func (l *Ledger) observe(ctx context.Context, tenant string, ep *epoch, tail Tail, fromMark bool) (*LossError, error) {
	var loss *LossError
	if tail.Seq < ep.floor.Seq {
		loss = &LossError{Tenant: tenant, Entries: tail.Seq, Checkpoint: Checkpoint{Tenant: tenant, Size: ep.floor.Seq, TailHash: ep.floor.Hash,
			At: l.opts.Clock().UTC(), Base: ep.base, Reserved: ep.reserved, Codes: max(ep.codes, ep.floor.LastCode, ep.base)}}
		if m := ep.mark; m != nil && m.Checkpoint.Base == ep.base && m.Checkpoint.Size >= ep.floor.Seq {
			loss.Checkpoint = m.Checkpoint
		} else if l.opts.Signer != nil {
			loss.Checkpoint = loss.Checkpoint.sign(l.opts.Signer)
		}
	} else if fromMark {
		base, hasBase, err := storeBase(ctx, l.opts.Store, tenant)
		if err != nil {
			return nil, err
		}
		if loss, err = markLoss(ctx, l.opts.Store, tenant, tail, base, hasBase, ep.mark); err != nil {
			return nil, err
		}
		if loss == nil && ep.mark != nil && hasBase && ep.mark.Checkpoint.Base > base {
			// A restarted chain that had no entry yet lost only its code base: claim it again.
			if ep.base, err = l.opts.Store.(BaseStore).ClaimBase(ctx, tenant, base, ep.mark.Checkpoint.Base); err != nil {
				return nil, err
			}
		} else if loss == nil && hasBase && base > ep.base {
			// Another replica found a loss and restarted the chain: number on from its base.
			ep.base, ep.reserved, ep.codes = base, 0, 0
			if ep.mark != nil && ep.mark.Checkpoint.Base == base {
				ep.reserved, ep.codes = ep.mark.Checkpoint.Reserved, ep.mark.Checkpoint.CodeBound()
			}
			ep.fenceFromMark()
		}
	}
	if loss == nil {
		if tail.Seq > ep.floor.Seq {
			ep.floor = tail
		}
		ep.judged = ep.judged || fromMark
		return nil, nil
	}
	if err := l.restart(ctx, tenant, ep, tail, loss); err != nil {
		return loss, err
	}
	return loss, nil
}

// refresh re-reads the sink's mark and judges the store's tail against it, before
// something that opens an incident or hands out or uses an approval is appended (and
// adopts the code base of a chain another replica restarted): another replica may have
// signed more of the chain than this one saw (its mark in a shared sink), and a store
// rolled back below that mark must be found now, not at the next periodic check — else
// the append would number itself into seqs the mark covered with other content, and an
// approval consumed before the rollback would be used again. A sink that cannot be read
// is logged and the append goes on (the chain stays writable, as at load).
func (l *Ledger) refresh(ctx context.Context, tenant string, ep *epoch) (Tail, *LossError, error) {
	if m, err := l.opts.Sink.Load(ctx, tenant); err != nil {
		l.opts.Logger.Error("checkpoint sink unreadable before an approval entry: ledger loss cannot be detected against it", "tenant", tenant, "err", err)
	} else if m != nil && newerMark(m, ep.mark) {
		ep.mark = m
		if m.Checkpoint.Base == ep.base {
			ep.reserved = max(ep.reserved, m.Checkpoint.Reserved)
			ep.codes = max(ep.codes, m.Checkpoint.CodeBound())
		}
		ep.fenceFromMark()
	}
	tail, err := l.opts.Store.Tail(ctx, tenant)
	if err != nil {
		return Tail{}, nil, fmt.Errorf("read tail of %s: %w", tenant, err)
	}
	loss, err := l.observe(ctx, tenant, ep, tail, true)
	return tail, loss, err
}

// newerMark reports whether m covers more than old: a later chain, or more of the same.
func newerMark(m, old *Mark) bool {
	if old == nil {
		return true
	}
	a, b := m.Checkpoint, old.Checkpoint
	return a.Base > b.Base || a.Base == b.Base && (a.Size > b.Size || a.Reserved > b.Reserved || a.Codes > b.Codes) ||
		len(m.Lost) > len(old.Lost) || len(m.Accepted) > len(old.Accepted)
}

// restart begins a new epoch of tenant's chain after loss: the new code base is the
// highest code the lost chain may have used (what its checkpoint, or the longest chain
// this Ledger saw, knows), so the next incident continues right after it; the sink
// records the lost chain's checkpoint, and the store records the new base.
func (l *Ledger) restart(ctx context.Context, tenant string, ep *epoch, tail Tail, loss *LossError) error {
	lost := loss.Checkpoint
	// Never 0 and always past the base the chain had: a restarted chain must be told
	// apart from the one before it.
	next := max(lost.CodeBound(), ep.codes, ep.floor.LastCode, ep.base+1)
	if bs, ok := l.opts.Store.(BaseStore); ok {
		// Raised from the base this Ledger numbered with: a surviving base key (a failover
		// that kept it but lost the newest entries) is replaced; another writer that
		// restarted the chain first keeps its base, and this one adopts it.
		claimed, err := bs.ClaimBase(ctx, tenant, ep.base, next)
		if err != nil {
			return fmt.Errorf("restart %s chain: %w", tenant, err)
		}
		next = claimed
	}
	loss.Base = next
	if l.opts.OnLoss != nil {
		l.opts.OnLoss(*loss)
	}
	l.opts.Logger.Error("ledger lost entries: the store holds less of the chain than its last checkpoint covered; the chain restarts with new incident codes",
		"tenant", tenant, "chain_entries", tail.Seq, "checkpoint_entries", lost.Size, "checkpoint_at", lost.At, "checkpoint_tail", short(lost.TailHash),
		"differs", loss.Differs, "codes_start_after", IncidentID(next))
	old := ep.mark
	// Every incident numbered before the new base may have lost entries: fenced until an
	// operator accepts the loss.
	*ep = epoch{loaded: true, judged: true, base: next, codes: next, floor: tail, fencedBelow: next}
	if l.opts.Signer != nil {
		// Codes: the new chain has handed out none past its base yet.
		cp := Checkpoint{Tenant: tenant, Size: tail.Seq, TailHash: tail.Hash, At: l.opts.Clock(), Base: next, Codes: next}.sign(l.opts.Signer)
		m := Mark{Checkpoint: cp}
		if old != nil {
			m.Lost, m.Accepted = old.Lost, old.Accepted
		}
		if lost.Signature != "" {
			m.Lost = mergeLost(m.Lost, []Checkpoint{lost})
		}
		ep.mark = &m
		if err := l.opts.Store.SaveCheckpoint(ctx, cp); err != nil {
			l.opts.Logger.Warn("save checkpoint", "tenant", tenant, "err", err)
		}
		l.saveMark(ctx, m)
	}
	return nil
}

// lossToMark returns the lost chain's checkpoint that a loss marker must continue before
// anything else is appended on tail, nil when none is needed: the mark lists a lost chain
// (signed) whose covered or reserved seqs the chain has not passed yet. It is read from
// the mark, not remembered, so a process that found the loss and stopped before its next
// append leaves the marker to whoever appends next; once a marker is in the chain, the
// tail is past those seqs and none is written again (another replica's marker included).
// Of several lost chains, the one whose seqs reach furthest is continued.
func (ep *epoch) lossToMark(tail Tail) *Checkpoint {
	if ep.mark == nil {
		return nil
	}
	var best *Checkpoint
	for i := range ep.mark.Lost {
		cp := &ep.mark.Lost[i]
		if cp.Signature != "" && (best == nil || max(cp.Size, cp.Reserved) >= max(best.Size, best.Reserved)) {
			best = cp
		}
	}
	if best == nil || tail.Seq > max(best.Size, best.Reserved) {
		return nil
	}
	return best
}

// saveMark writes m to the sink; a failure is logged at ERROR, not returned: the chain
// stays writable, and the next checkpoint writes again.
func (l *Ledger) saveMark(ctx context.Context, m Mark) {
	if l.opts.Sink == nil {
		return
	}
	if err := l.opts.Sink.Save(ctx, m); err != nil {
		l.opts.Logger.Error("checkpoint sink write failed", "tenant", m.Checkpoint.Tenant, "size", m.Checkpoint.Size, "err", err)
	}
}

// reserve makes sure the sink covers the codes of the incidents entries open (chained on
// tail) before they are appended, and their seqs: when a detect passes the reserved code
// or seq, one sink write reserves ReserveBlock more seqs and up to MaxCodeBlock more
// codes. So the sink is written at most once per ReserveBlock entries or MaxCodeBlock
// incidents, and only when incidents open.
func (l *Ledger) reserve(ctx context.Context, tenant string, ep *epoch, tail Tail, entries []Entry) {
	if l.opts.Sink == nil || l.opts.Signer == nil {
		return
	}
	// Only a detect hands out a code: other entries need no reservation.
	var last, code uint64
	for i := range entries {
		if entries[i].Event == Detect {
			last = entries[i].Seq
			code, _ = incidentCode(entries[i].Incident)
		}
	}
	if last <= ep.reserved && code <= ep.codes {
		return
	}
	r := max(ep.reserved, last+uint64(l.opts.ReserveBlock))
	c := max(ep.codes, code+uint64(min(l.opts.ReserveBlock, MaxCodeBlock)))
	cp := Checkpoint{Tenant: tenant, Size: tail.Seq, TailHash: tail.Hash, At: l.opts.Clock(), Base: ep.base, Reserved: r, Codes: c}
	if m := ep.mark; m != nil && m.Checkpoint.Base == ep.base && m.Checkpoint.Size > tail.Seq {
		cp.Size, cp.TailHash = m.Checkpoint.Size, m.Checkpoint.TailHash
	}
	m := Mark{Checkpoint: cp.sign(l.opts.Signer)}
	if ep.mark != nil {
		m.Lost, m.Accepted = ep.mark.Lost, ep.mark.Accepted
	}
	l.saveMark(ctx, m)
	ep.reserved, ep.codes, ep.mark = r, c, &m
}

// cover writes a mark of tail to the sink when the sink's mark covers less of the chain,
// at most once per SinkInterval unless force: so under load the sink lags the chain by at
// most SinkInterval, and idle (Check forces) by at most the check period.
func (l *Ledger) cover(ctx context.Context, tenant string, ep *epoch, tail Tail, force bool) {
	if l.opts.Sink == nil || l.opts.Signer == nil || !ep.loaded {
		return
	}
	if m := ep.mark; m != nil && m.Checkpoint.Base == ep.base && m.Checkpoint.Size >= tail.Seq {
		return
	}
	now := l.opts.Clock()
	if !force && !ep.written.IsZero() && now.Sub(ep.written) < l.opts.SinkInterval {
		return
	}
	m := Mark{Checkpoint: Checkpoint{Tenant: tenant, Size: tail.Seq, TailHash: tail.Hash, At: now, Base: ep.base, Reserved: ep.reserved,
		Codes: max(ep.codes, tail.LastCode, ep.base)}.sign(l.opts.Signer)}
	if ep.mark != nil {
		m.Lost, m.Accepted = ep.mark.Lost, ep.mark.Accepted
	}
	l.saveMark(ctx, m)
	ep.mark, ep.written = &m, now
}

// Check compares tenant's chain in the store with its last checkpoint in the sink and
// with the longest chain this Ledger saw. On a loss it restarts the chain (incident codes
// continue past the lost ones), logs at ERROR, calls OnLoss and returns the *LossError.
// `serve` calls it at start and periodically.
func (l *Ledger) Check(ctx context.Context, tenant string) error {
	q := l.queue(tenant)
	q.gmu.Lock()
	defer q.gmu.Unlock()
	if !q.ep.loaded {
		if err := l.loadEpoch(ctx, tenant, &q.ep); err != nil {
			return err
		}
	}
	fromMark := !q.ep.judged
	l.relift(ctx, tenant, &q.ep)
	tail, err := l.opts.Store.Tail(ctx, tenant)
	if err != nil {
		return fmt.Errorf("read tail of %s: %w", tenant, err)
	}
	loss, err := l.observe(ctx, tenant, &q.ep, tail, fromMark)
	if loss == nil && err == nil {
		l.cover(ctx, tenant, &q.ep, tail, true)
	}
	if loss != nil {
		q.tailKnown = false
		if err != nil {
			return fmt.Errorf("%w (and the restart failed: %v)", loss, err)
		}
		return loss
	}
	return err
}

// Base returns the code base of tenant's chain as this Ledger knows it.
func (l *Ledger) Base(tenant string) uint64 {
	q := l.queue(tenant)
	q.gmu.Lock()
	defer q.gmu.Unlock()
	return q.ep.base
}

// VerifyStoreMark is VerifyStore, then a comparison of the chain with mark, the tenant's
// last checkpoint kept outside the store (nil: none). A chain shorter than the mark's
// checkpoint, one that differs from it, or one that was restarted after a loss returns a
// *LossError.
func VerifyStoreMark(ctx context.Context, s Store, tenant string, trusted ed25519.PublicKey, m *Mark) (Report, error) {
	rep, err := VerifyStore(ctx, s, tenant, trusted)
	if err != nil || m == nil {
		return rep, err
	}
	if err := verifyMark(m, tenant, trusted); err != nil {
		return rep, fmt.Errorf("external checkpoint: %w", err)
	}
	base, hasBase, err := storeBase(ctx, s, tenant)
	if err != nil {
		return rep, err
	}
	loss, err := markLoss(ctx, s, tenant, Tail{Seq: rep.Size, Hash: rep.TailHash}, base, hasBase, m)
	if err != nil {
		return rep, err
	}
	if loss != nil {
		return rep, loss
	}
	if lost := m.Unaccepted(); len(lost) > 0 {
		return rep, &LossError{Tenant: tenant, Entries: rep.Entries, Checkpoint: lost[len(lost)-1], Restarted: true, Base: max(base, m.Checkpoint.Base)}
	}
	return rep, nil
}

// RecordCheckpoint signs tenant's chain of size entries ending in tailHash and keeps it in
// sink, with the chain's code base and the codes the sink already reserved (what `bot
// export` does beside the running bots). A sink that already covers more is left as it is.
func RecordCheckpoint(ctx context.Context, sink CheckpointSink, s Store, key ed25519.PrivateKey, tenant string, size uint64, tailHash string, at time.Time) error {
	base, _, err := storeBase(ctx, s, tenant)
	if err != nil {
		return err
	}
	old, err := sink.Load(ctx, tenant)
	if err != nil {
		return err
	}
	// The counter may be past size (the bots append meanwhile): a bound is all that is
	// needed.
	tail, err := s.Tail(ctx, tenant)
	if err != nil {
		return err
	}
	cp := Checkpoint{Tenant: tenant, Size: size, TailHash: tailHash, At: at, Base: base, Codes: max(tail.LastCode, base)}
	var m Mark
	if old != nil {
		oc := old.Checkpoint
		if oc.Base > base || oc.Base == base && oc.Size > size {
			return nil
		}
		if oc.Base == base {
			cp.Reserved = oc.Reserved
			cp.Codes = max(cp.Codes, oc.CodeBound())
		}
		m.Lost, m.Accepted = old.Lost, old.Accepted
	}
	m.Checkpoint = cp.sign(key)
	return sink.Save(ctx, m)
}
