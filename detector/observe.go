package detector

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// Observation is one reading of a service by an input that measures it (a poll of its
// health endpoint, an OTLP export, a simulation), judged by Judge exactly as the push
// path's windows are: the same lease, gate, hysteresis, baseline, incidents-per-hour
// limit and ledger entries.
type Observation struct {
	Source          Source
	Tenant, Service string
	// At is when the reading was taken; a second reading within the same second counts
	// nothing twice.
	At time.Time
	// Health is what was measured (ignored when Failure is set).
	Health Health
	// Failure, when set, says why the service could not be measured (unreachable, an
	// unusable answer). One failure proves little: UnreachableAfter in a row are judged
	// as the worst health there is (score 0), and a success ends the streak.
	Failure string
	// Where says what was measured, for the record ("endpoint https://…/health/alerts").
	Where string
	// LeaseFor is how long the reading's lease on the service lasts; zero: twice
	// Options.PollInterval plus PollTimeout. An input reading every period P should ask
	// for a little more than P.
	LeaseFor time.Duration
}

// Judgement is what Judge concluded.
type Judgement struct {
	// Judged: the reading counted (the lease was held, it was not a repeat of the same
	// second, and it had enough samples or ended a failure streak).
	Judged bool
	// Bad: the score is under the tenant's threshold (or the service is down).
	Bad bool
	// Alerting: the service is in an incident episode after this reading.
	Alerting bool
	// Confirm: bad, but not bad long enough to open yet: an input that can should read
	// again soon (a second later) rather than after a whole period.
	Confirm bool
	// Score is the judged health score (Judged only).
	Score float64
}

// UnreachableAfter is how many failed readings in a row make a service judged down
// (health 0): with LOOP_INTERVAL_S=5, 15 s of a health endpoint that does not answer.
const UnreachableAfter = 3

// Observe judges one health reading of a service taken at now. where says what was
// measured, for the record.
func (d *Detector) Observe(ctx context.Context, tenant, service string, now time.Time, h Health, where string) error {
	_, err := d.Judge(ctx, Observation{Source: SourcePull, Tenant: tenant, Service: service, At: now, Health: h, Where: where})
	return err
}

// ObserveFailure records a reading of a service that failed at now (why: for people and
// the ledger, without secrets): UnreachableAfter in a row judge it down.
func (d *Detector) ObserveFailure(ctx context.Context, tenant, service string, now time.Time, why, where string) error {
	_, err := d.Judge(ctx, Observation{Source: SourcePull, Tenant: tenant, Service: service, At: now, Failure: why, Where: where})
	return err
}

// Judge judges one observation through the gate (see Observation). Readings of one
// service are judged one at a time on this replica; across replicas, by the holder of the
// service's lease (a replica that does not hold it judges nothing: Judged false).
func (d *Detector) Judge(ctx context.Context, o Observation) (Judgement, error) {
	t, ok := d.tenants[o.Tenant]
	if !ok {
		return Judgement{}, fmt.Errorf("observe %s/%s: unknown tenant", o.Tenant, o.Service)
	}
	if !t.watches(o.Service) {
		return Judgement{}, fmt.Errorf("observe %s/%s: unknown service", o.Tenant, o.Service)
	}
	mu := d.serviceLock(o.Tenant, o.Service)
	mu.Lock()
	defer mu.Unlock()
	ttl := o.LeaseFor
	if ttl <= 0 {
		ttl = 2*d.opts.PollInterval + d.opts.PollTimeout
	}
	held, err := d.lease(ctx, o.Tenant, o.Service, ttl)
	if err != nil || !held {
		return Judgement{}, err
	}
	st, err := d.loadGate(ctx, o.Tenant, o.Service)
	if err != nil {
		return Judgement{}, err
	}
	end := o.At.Truncate(time.Second)
	if end.UnixMilli() <= st.LastEval {
		return Judgement{}, nil
	}
	st.LastEval = end.UnixMilli()
	src := o.Source
	if src == "" {
		src = SourcePull
	}
	var obs observation
	if o.Failure != "" {
		d.stats.pollErrors.Add(1)
		st.PollFailures++
		why := ledger.ClipText(o.Failure)
		// Logged once per streak and reason: a service that keeps failing the same way is
		// counted (Stats.PollErrors), not logged on every reading.
		if st.PollFailures == 1 || why != st.PollFailure {
			d.log.Warn(readingWord(src)+" failed", "tenant", o.Tenant, "service", o.Service, "source", src, "failures", st.PollFailures, "err", why)
		}
		st.PollFailure = why
		if st.PollFailures < UnreachableAfter {
			return Judgement{}, d.saveGate(ctx, o.Tenant, o.Service, st)
		}
		zero := 0.0
		obs = observation{source: src, n: uint64(d.opts.MinSamples), reported: &zero,
			unreachable: ledger.ClipText(fmt.Sprintf("%s for %d polls in a row", why, st.PollFailures)), window: o.Where}
	} else {
		if st.PollFailures > 0 {
			d.log.Info(readingWord(src)+" answers again", "tenant", o.Tenant, "service", o.Service, "source", src, "failed", st.PollFailures)
		}
		st.PollFailures, st.PollFailure = 0, ""
		h := o.Health
		obs = observation{source: src, p95Ms: h.P95Ms, errorRate: h.ErrorRate, n: h.SampleSize, reported: h.Score, window: o.Where}
	}
	judged := int(obs.n) >= d.opts.MinSamples
	if err := d.judge(ctx, t, o.Service, o.At, st, obs); err != nil {
		return Judgement{}, err
	}
	j := Judgement{Judged: judged, Alerting: st.Alerting, Bad: st.Bad > 0,
		Confirm: !st.Alerting && st.Bad > 0 && st.Bad < d.opts.OpenAfter}
	if judged && st.Last != nil {
		j.Score = st.Last.Score
	}
	return j, nil
}

// readingWord names a reading of src in the logs.
func readingWord(src Source) string {
	if src == SourcePull {
		return "health poll"
	}
	return string(src) + " reading"
}

// Hold takes or renews this replica's lease on judging a service for ttl and reports
// whether it holds it. An input whose measurement costs something (an HTTP poll) asks
// first, so that only the holder measures; Judge takes the lease itself.
func (d *Detector) Hold(ctx context.Context, tenant, service string, ttl time.Duration) (bool, error) {
	return d.lease(ctx, tenant, service, ttl)
}

// serviceLock is the lock of one service's readings on this replica: two readings of
// the same service must not both load, judge and save its gate.
func (d *Detector) serviceLock(tenant, service string) *sync.Mutex {
	m, _ := d.locks.LoadOrStore(tenant+"/"+service, &sync.Mutex{})
	return m.(*sync.Mutex)
}

// Health is the /health/alerts document of the Go and Python SDKs, as far as the
// detector reads it.
type Health struct {
	// Status is ok, warning or critical ("" if absent).
	Status string
	// Score is health_score.score, 0..100; nil when the endpoint sent none.
	Score *float64
	// Trend is health_score.trend as the endpoint labels it.
	Trend string
	// P95Ms, ErrorRate (5xx share, 0..1) and SampleSize come from metrics.
	P95Ms        float64
	ErrorRate    float64
	AnomalyScore float64
	SampleSize   uint64
	// Alerts counts alerts[].
	Alerts int
	// Timestamp is when the endpoint computed it (zero if absent).
	Timestamp time.Time
}
