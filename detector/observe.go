package detector

import (
	"context"
	"fmt"
	"time"
)

// Observe judges one health reading of a service taken at now, exactly as a poll of its
// health endpoint is judged (the same lease, gate, hysteresis, baseline, incidents-per-hour
// limit and ledger entries), without the HTTP call: for a caller that measures the service
// itself, such as the governance simulation driving the detector on a virtual clock. where
// says what was measured, for the record. A second reading within the same second counts
// nothing twice.
func (d *Detector) Observe(ctx context.Context, tenant, service string, now time.Time, h Health, where string) error {
	t, ok := d.tenants[tenant]
	if !ok {
		return fmt.Errorf("observe %s/%s: unknown tenant", tenant, service)
	}
	known := false
	for _, s := range t.Services {
		known = known || s.Name == service
	}
	if !known {
		return fmt.Errorf("observe %s/%s: unknown service", tenant, service)
	}
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	held, err := d.lease(ctx, tenant, service, 2*d.opts.PollInterval+d.opts.PollTimeout)
	if err != nil || !held {
		return err
	}
	st, err := d.loadGate(ctx, tenant, service)
	if err != nil {
		return err
	}
	end := now.Truncate(time.Second)
	if end.UnixMilli() <= st.LastEval {
		return nil
	}
	st.LastEval = end.UnixMilli()
	st.PollFailures, st.PollFailure = 0, ""
	obs := observation{source: SourcePull, p95Ms: h.P95Ms, errorRate: h.ErrorRate, n: h.SampleSize, reported: h.Score, window: where}
	return d.judge(ctx, t, service, now, st, obs)
}
