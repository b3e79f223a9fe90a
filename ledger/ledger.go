package ledger

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"
)

// Options configure a Ledger.
type Options struct {
	Store Store
	// Clock stamps entries; defaults to time.Now.
	Clock func() time.Time
	// Signer signs a checkpoint whenever an incident reaches a terminal stage; nil: none.
	Signer ed25519.PrivateKey
	Logger *slog.Logger
	// MaxBatch caps how many queued appends go to the store in one atomic step (default 256).
	MaxBatch int
	// Timeout bounds one store call (default 10 s).
	Timeout time.Duration
	// Sink keeps each tenant's latest signed checkpoint outside the store, so that a
	// store that loses entries is noticed (see Check). It needs Signer. nil: none (a loss
	// is still noticed while this Ledger runs, against the longest chain it saw).
	Sink CheckpointSink
	// ReserveBlock is how far past a new incident's seq one sink write reserves seqs
	// (default DefaultReserveBlock), and how many codes past its code (at most
	// MaxCodeBlock): an incident opening past the reserved seq or code writes the sink
	// before it is appended.
	ReserveBlock int
	// SinkInterval is the least time between two sink writes that only record how far
	// the chain has grown (default 1 s); reservations and terminal stages write at once.
	SinkInterval time.Duration
	// OnLoss is called for every loss the Ledger detects, once its new code base is
	// claimed and before it is logged at ERROR.
	OnLoss func(LossError)
}

// Validate checks the options.
func (o *Options) Validate() error {
	if o.Store == nil {
		return errors.New("ledger: no store")
	}
	if o.Signer != nil && len(o.Signer) != ed25519.PrivateKeySize {
		return errors.New("ledger: signer is not an Ed25519 private key")
	}
	if o.MaxBatch < 0 || o.Timeout < 0 || o.ReserveBlock < 0 || o.SinkInterval < 0 {
		return errors.New("ledger: negative MaxBatch, Timeout or ReserveBlock")
	}
	if o.Sink != nil && o.Signer == nil {
		return errors.New("ledger: a checkpoint sink needs a Signer")
	}
	return nil
}

// Ledger records incident events on a Store. It checks every event against the transition
// table, chains entries, and group-commits concurrent appends of one tenant: the first
// caller to find the queue idle commits everything queued behind it in one atomic step.
type Ledger struct {
	opts   Options
	mu     sync.Mutex
	queues map[string]*queue
	// stages remembers the stage each incident was left in by this Ledger's appends, to
	// skip reading it before the next one. It is only a guess: the store checks every
	// entry's from-stage atomically, and a stale guess costs one retry with the stage the
	// store reports.
	stages map[string]Stage
}

// maxRemembered bounds the remembered stages; past it they are forgotten at once.
const maxRemembered = 10000

// New returns a Ledger on opts.Store.
func New(opts Options) (*Ledger, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = 256
	}
	if opts.Timeout == 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.ReserveBlock == 0 {
		opts.ReserveBlock = DefaultReserveBlock
	}
	if opts.SinkInterval == 0 {
		opts.SinkInterval = time.Second
	}
	return &Ledger{opts: opts, queues: map[string]*queue{}, stages: map[string]Stage{}}, nil
}

// Store returns the ledger's store.
func (l *Ledger) Store() Store { return l.opts.Store }

// maxStageRetries bounds re-evaluation when the incident's stage keeps moving under us.
const maxStageRetries = 32

// Record appends the event e describes to its incident and returns the stored entry.
// The caller sets Tenant, Event, Actor and, except for Detect, Incident; Record sets From,
// To, Seq, At (unless set), PrevHash and Hash, and for Detect the new incident's id.
//
// An event illegal in the incident's current stage returns a *TransitionError and
// appends nothing. A Detect for a service that already has an open incident returns a
// *ServiceOpenError naming it. An append that cannot be made durable is an error: the
// caller must treat the event as not recorded.
func (l *Ledger) Record(ctx context.Context, e Entry) (Entry, error) {
	if e.At.IsZero() {
		e.At = l.opts.Clock()
	}
	e.At = e.At.UTC()
	if e.Event == Detect {
		e.Incident = "INC-0" // placeholder, replaced when chained
	} else if !incidentRe.MatchString(e.Incident) {
		return Entry{}, fmt.Errorf("%w: %q", ErrNoIncident, e.Incident)
	}
	if err := e.validateContent(); err != nil {
		return Entry{}, err
	}
	if err := checkActor(&e); err != nil {
		return Entry{}, err
	}
	key := e.Tenant + "/" + e.Incident
	for attempt := 0; attempt < maxStageRetries; attempt++ {
		from, guessed := None, false
		if e.Event != Detect {
			s, known := l.remembered(key)
			guessed = known
			if !known {
				var err error
				if s, err = l.opts.Store.Stage(ctx, e.Tenant, e.Incident); err != nil {
					return Entry{}, fmt.Errorf("read stage of %s: %w", e.Incident, err)
				}
			}
			if s == None {
				return Entry{}, fmt.Errorf("%w: %s", ErrNoIncident, e.Incident)
			}
			from = s
		}
		to, err := Next(from, e.Event)
		if err != nil && guessed {
			l.forget(key) // judge an illegal move on the stage the store holds, not a guess
			continue
		}
		if err != nil {
			return Entry{}, err
		}
		e.From, e.To = from, to
		out, err := l.submit(e)
		var sc *StageConflictError
		if errors.As(err, &sc) {
			l.remember(key, sc.Current)
			continue
		}
		if err != nil {
			l.forget(key)
			return Entry{}, err
		}
		l.remember(out.Tenant+"/"+out.Incident, out.To)
		if out.To.Terminal() && out.From != out.To && l.opts.Signer != nil {
			l.checkpoint(ctx, out)
		}
		return out, nil
	}
	return Entry{}, fmt.Errorf("record %s on %s: %w (gave up after %d tries)", e.Event, e.Incident, ErrStageConflict, maxStageRetries)
}

func (l *Ledger) remembered(key string) (Stage, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	s, ok := l.stages[key]
	return s, ok
}

func (l *Ledger) remember(key string, s Stage) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.stages) >= maxRemembered {
		clear(l.stages)
	}
	l.stages[key] = s
}

func (l *Ledger) forget(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.stages, key)
}

// checkpoint signs the chain as it stood at e, in the store and in the sink. A failure is
// logged, not returned: the entry is durable, and the next terminal stage or export signs
// again.
func (l *Ledger) checkpoint(ctx context.Context, e Entry) {
	q := l.queue(e.Tenant)
	q.gmu.Lock()
	cp := Checkpoint{Tenant: e.Tenant, Size: e.Seq, TailHash: e.Hash, At: l.opts.Clock(), Base: q.ep.base, Reserved: q.ep.reserved,
		Codes: max(q.ep.codes, q.ep.floor.LastCode, q.ep.base)}.sign(l.opts.Signer)
	var m *Mark
	if l.opts.Sink != nil && q.ep.loaded && (q.ep.mark == nil || q.ep.mark.Checkpoint.Base < cp.Base || q.ep.mark.Checkpoint.Base == cp.Base && q.ep.mark.Checkpoint.Size <= cp.Size) {
		m = &Mark{Checkpoint: cp}
		if q.ep.mark != nil {
			m.Lost, m.Accepted = q.ep.mark.Lost, q.ep.mark.Accepted
		}
		q.ep.mark = m
	}
	q.gmu.Unlock()
	if err := l.opts.Store.SaveCheckpoint(ctx, cp); err != nil {
		l.opts.Logger.Warn("save checkpoint", "tenant", e.Tenant, "size", e.Seq, "err", err)
	}
	if m != nil {
		l.saveMark(ctx, *m)
	}
}

// Incident folds an incident's history into its state.
func (l *Ledger) Incident(ctx context.Context, tenant, id string) (Incident, []Entry, error) {
	h, err := l.opts.Store.History(ctx, tenant, id)
	if err != nil {
		return Incident{}, nil, fmt.Errorf("history of %s: %w", id, err)
	}
	if len(h) == 0 {
		return Incident{}, nil, fmt.Errorf("%w: %s", ErrNoIncident, id)
	}
	in, err := Fold(h)
	return in, h, err
}

type result struct {
	e   Entry
	err error
}

type request struct {
	e    Entry
	done chan result
	lead chan struct{}
}

type queue struct {
	mu        sync.Mutex
	pending   []*request
	busy      bool
	tail      Tail
	tailKnown bool // guarded by the leadership, not mu
	// gmu guards ep; a commit holds it throughout, so Check never judges a tail read
	// before an append this Ledger made.
	gmu sync.Mutex
	ep  epoch
}

func (l *Ledger) queue(tenant string) *queue {
	l.mu.Lock()
	defer l.mu.Unlock()
	q := l.queues[tenant]
	if q == nil {
		q = &queue{}
		l.queues[tenant] = q
	}
	return q
}

// submit queues e and waits for its outcome, leading the commits when the queue is idle
// or when leadership is handed over.
func (l *Ledger) submit(e Entry) (Entry, error) {
	q := l.queue(e.Tenant)
	r := &request{e: e, done: make(chan result, 1), lead: make(chan struct{}, 1)}
	q.mu.Lock()
	q.pending = append(q.pending, r)
	if !q.busy {
		q.busy = true
		q.mu.Unlock()
		return l.lead(q, r)
	}
	q.mu.Unlock()
	select {
	case res := <-r.done:
		return res.e, res.err
	case <-r.lead:
		return l.lead(q, r)
	}
}

// lead commits queued batches until r is done, then hands leadership to the oldest
// waiter, if any.
func (l *Ledger) lead(q *queue, r *request) (Entry, error) {
	for {
		select {
		case res := <-r.done:
			q.mu.Lock()
			if len(q.pending) > 0 {
				q.pending[0].lead <- struct{}{}
			} else {
				q.busy = false
			}
			q.mu.Unlock()
			return res.e, res.err
		default:
		}
		q.mu.Lock()
		n := min(len(q.pending), l.opts.MaxBatch)
		batch := append([]*request(nil), q.pending[:n]...)
		q.pending = append(q.pending[:0], q.pending[n:]...)
		q.mu.Unlock()
		l.commit(q, batch)
	}
}

// commit appends batch atomically, re-chaining on a moved tail, and answers every request.
func (l *Ledger) commit(q *queue, batch []*request) {
	tenant := batch[0].e.Tenant
	ctx, cancel := context.WithTimeout(context.Background(), l.opts.Timeout)
	defer cancel()
	fail := func(rs []*request, err error) {
		for _, r := range rs {
			r.done <- result{err: err}
		}
	}
	q.gmu.Lock()
	defer q.gmu.Unlock()
	if !q.ep.loaded {
		if err := l.loadEpoch(ctx, tenant, &q.ep); err != nil {
			fail(batch, fmt.Errorf("read code base of %s: %w", tenant, err))
			return
		}
	}
	fromMark := !q.ep.judged
	// seen judges every tail the store reports: one shorter than the chain was is a loss.
	seen := func(t Tail, fromMark bool) error {
		if _, err := l.observe(ctx, tenant, &q.ep, t, fromMark); err != nil {
			return fmt.Errorf("restart %s chain after a loss: %w", tenant, err)
		}
		return nil
	}
	if !q.tailKnown {
		t, err := l.opts.Store.Tail(ctx, tenant)
		if err != nil {
			fail(batch, fmt.Errorf("read tail of %s: %w", tenant, err))
			return
		}
		if err := seen(t, fromMark); err != nil {
			fail(batch, err)
			return
		}
		q.tail, q.tailKnown = t, true
	}
	if l.opts.Sink != nil && needsFreshMark(batch) {
		t, loss, err := l.refresh(ctx, tenant, &q.ep)
		if err != nil {
			q.tailKnown = false
			fail(batch, fmt.Errorf("judge %s chain against its checkpoint: %w", tenant, err))
			return
		}
		if loss != nil {
			l.opts.Logger.Error("ledger loss found before an approval or a new incident was recorded: incidents from before it are fenced", "tenant", tenant)
		}
		q.tail, q.tailKnown = t, true
	}
	rest := batch
	codeRetried := false
	for len(rest) > 0 {
		// After a loss (found now or before), what would hand out or use an approval of
		// an incident from before it is refused.
		kept := rest[:0:0]
		for _, r := range rest {
			if q.ep.fences(&r.e) {
				r.done <- result{err: fmt.Errorf("%s on %s: %w", r.e.Event, r.e.Incident, ErrFenced)}
				continue
			}
			kept = append(kept, r)
		}
		if rest = kept; len(rest) == 0 {
			return
		}
		// The first append after a loss is the loss marker: its seq jumps past every seq
		// the lost chain's checkpoint covered or reserved, so none is used again.
		var all []Entry
		on := q.tail
		if lost := q.ep.lossToMark(q.tail); lost != nil {
			m, err := newLossMarker(tenant, q.tail, *lost, l.opts.Clock())
			if err != nil {
				fail(rest, err)
				return
			}
			all, on = append(all, m), Tail{m.Seq, m.Hash, q.tail.LastCode}
		}
		off := len(all)
		entries, tails, err := chain(on, q.ep.base, rest)
		if err != nil {
			fail(rest, err)
			return
		}
		all = append(all, entries...)
		l.reserve(ctx, tenant, &q.ep, q.tail, all)
		n, err := l.opts.Store.Append(ctx, tenant, q.tail, all)
		if off > 0 && n > 0 {
			l.opts.Logger.Warn("ledger loss marker written: the chain continues past every seq the lost chain's checkpoint covered",
				"tenant", tenant, "marker_seq", all[0].Seq, "lost_from", q.tail.Seq+1)
		}
		done := max(n-off, 0)
		for i := 0; i < done; i++ {
			rest[i].done <- result{e: entries[i]}
		}
		if n > 0 {
			q.tail = Tail{all[n-1].Seq, all[n-1].Hash, on.LastCode}
			if done > 0 {
				q.tail = tails[done-1]
			}
			q.ep.floor = q.tail
			l.cover(ctx, tenant, &q.ep, q.tail, false)
		}
		rest = rest[done:]
		var sc *StageConflictError
		var so *ServiceOpenError
		var ce *ConflictError
		switch {
		case err == nil:
		case errors.As(err, &ce):
			if err := seen(ce.Tail, false); err != nil {
				q.tailKnown = false
				fail(rest, err)
				return
			}
			q.tail = ce.Tail
		case errors.Is(err, ErrConflict), errors.Is(err, ErrCodeUsed) && !codeRetried:
			// A refused code: the tail's counter moved without the tail (another writer
			// restarted the chain past a loss, with a higher code base): read it again.
			codeRetried = codeRetried || errors.Is(err, ErrCodeUsed)
			t, terr := l.opts.Store.Tail(ctx, tenant)
			if terr == nil {
				terr = seen(t, false)
			}
			if terr != nil {
				q.tailKnown = false
				fail(rest, fmt.Errorf("read tail of %s: %w", tenant, terr))
				return
			}
			q.tail = t
		case errors.As(err, &sc), errors.As(err, &so):
			rest[0].done <- result{err: err}
			rest = rest[1:]
		default:
			q.tailKnown = false
			fail(rest, fmt.Errorf("append to %s ledger: %w", tenant, err))
			return
		}
	}
}

// needsFreshMark reports whether a request in batch opens an incident (its code must
// come from the chain's current base) or hands out or uses an approval.
func needsFreshMark(batch []*request) bool {
	for _, r := range batch {
		if r.e.Event == Detect || fencedEvents[r.e.Event] {
			return true
		}
	}
	return false
}

// chain links requests onto tail: seq, prev_hash, hash, and the id of opened incidents,
// the next number of the tenant's incident counter (tail.LastCode), or the first past the
// chain's code base when the counter is below it (a chain restarted after a loss). It
// returns the entries and the tail after each.
func chain(tail Tail, base uint64, rs []*request) ([]Entry, []Tail, error) {
	out := make([]Entry, len(rs))
	tails := make([]Tail, len(rs))
	prev := tail
	for i, r := range rs {
		e := r.e
		e.Seq = prev.Seq + 1
		e.PrevHash = prev.Hash
		code := prev.LastCode
		if e.Event == Detect {
			code = max(code, base) + 1
			e.Incident = IncidentID(code)
		}
		h, err := e.ComputeHash()
		if err != nil {
			return nil, nil, err
		}
		e.Hash = h
		out[i] = e
		prev = Tail{e.Seq, h, code}
		tails[i] = prev
	}
	return out, tails, nil
}
