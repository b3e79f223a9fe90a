package metrics

import (
	"sync"
	"time"

	"github.com/alertengine/alertengine/ledger"
	"github.com/prometheus/client_golang/prometheus"
)

// LedgerLosses counts the ledger losses this replica detected
// (alertengine_ledger_loss_detected_total{tenant}) and remembers the last one of each
// tenant for the status endpoint. Its Record is the ledger's OnLoss.
type LedgerLosses struct {
	counter *prometheus.CounterVec
	clock   func() time.Time
	mu      sync.Mutex
	last    map[string]LossRecord
}

// LossRecord is what the status endpoint shows of a tenant's detected losses.
type LossRecord struct {
	Detected int       `json:"detected"`
	At       time.Time `json:"at,omitzero"`
	Message  string    `json:"last,omitempty"`
}

// NewLedgerLosses registers the counter on reg, at 0 for every tenant given, so an alert
// rule sees the series before the first loss.
func NewLedgerLosses(reg prometheus.Registerer, tenants []string, clock func() time.Time) (*LedgerLosses, error) {
	if clock == nil {
		clock = time.Now
	}
	l := &LedgerLosses{
		counter: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "alertengine_ledger_loss_detected_total",
			Help: "Times this replica found a tenant's ledger chain in Redis shorter than (or different from) its last signed checkpoint: entries were lost."}, []string{"tenant"}),
		clock: clock,
		last:  map[string]LossRecord{},
	}
	if err := Register(reg, l.counter); err != nil {
		return nil, err
	}
	for _, t := range tenants {
		l.counter.WithLabelValues(t)
	}
	return l, nil
}

// Record counts one detected loss.
func (l *LedgerLosses) Record(e ledger.LossError) {
	l.counter.WithLabelValues(e.Tenant).Inc()
	l.mu.Lock()
	defer l.mu.Unlock()
	r := l.last[e.Tenant]
	r.Detected++
	r.At = l.clock().UTC()
	r.Message = e.Error()
	l.last[e.Tenant] = r
}

// Of returns what was detected for tenant.
func (l *LedgerLosses) Of(tenant string) LossRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.last[tenant]
}
