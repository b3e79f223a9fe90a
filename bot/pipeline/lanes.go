package pipeline

import (
	"context"
	"sync"
)

// Default bounds of the detections the pipeline handles at once.
const (
	// DefaultConcurrency bounds the detections handled at once, all tenants together.
	DefaultConcurrency = 64
	// DefaultConcurrencyPerTenant bounds one tenant's: an alert storm of one tenant
	// leaves room for the others, and its chats and LLM see a bounded burst.
	DefaultConcurrencyPerTenant = 32
)

// lanes runs the pipeline's work: one lane per incident, whose items run one at a time in
// the order they were submitted (an incident's steps stay in order), while different
// incidents run concurrently, at most perTenant of one tenant and max in all. A lane waiting
// for a slot holds none, so a slow incident (an LLM at its deadline) delays only its own
// lane.
type lanes struct {
	max, perTenant int

	mu      sync.Mutex
	all     chan struct{}            // a slot of the overall bound
	tenants map[string]chan struct{} // a slot of each tenant's bound
	queued  map[laneKey][]func()     // per running lane, what is still to run
	wg      sync.WaitGroup
}

type laneKey struct{ tenant, incident string }

func newLanes(max, perTenant int) *lanes {
	return &lanes{max: max, perTenant: perTenant, all: make(chan struct{}, max),
		tenants: map[string]chan struct{}{}, queued: map[laneKey][]func(){}}
}

// submit queues work on the incident's lane, starting the lane if it is idle. Work still
// queued when ctx ends is dropped; work already running finishes.
func (l *lanes) submit(ctx context.Context, tenant, incident string, work func()) {
	k := laneKey{tenant, incident}
	l.mu.Lock()
	defer l.mu.Unlock()
	if q, running := l.queued[k]; running {
		l.queued[k] = append(q, work)
		return
	}
	l.queued[k] = []func(){work}
	if l.tenants[tenant] == nil {
		l.tenants[tenant] = make(chan struct{}, l.perTenant)
	}
	l.wg.Add(1)
	go l.run(ctx, k, l.tenants[tenant])
}

// run drains one lane.
func (l *lanes) run(ctx context.Context, k laneKey, tenant chan struct{}) {
	defer l.wg.Done()
	for {
		l.mu.Lock()
		q := l.queued[k]
		if len(q) == 0 || ctx.Err() != nil {
			delete(l.queued, k)
			l.mu.Unlock()
			return
		}
		work := q[0]
		q[0] = nil
		l.queued[k] = q[1:]
		l.mu.Unlock()
		if !acquire(ctx, tenant) {
			continue // ctx ended: the next turn drops the rest
		}
		if !acquire(ctx, l.all) {
			<-tenant
			continue
		}
		if ctx.Err() != nil { // a slot and the end came together: the end wins
			<-l.all
			<-tenant
			continue
		}
		work()
		<-l.all
		<-tenant
	}
}

func acquire(ctx context.Context, slots chan struct{}) bool {
	select {
	case slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// wait returns once every lane has stopped.
func (l *lanes) wait() { l.wg.Wait() }
