package detector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/sdk"
	"github.com/alertengine/alertengine/sdk/health"
)

// maxBacklog is how many window ends an evaluation catches up on after a pause; older
// ones are skipped rather than replayed.
const maxBacklog = 3

// readyScript renews or takes the evaluation lease KEYS[1] for ARGV[1] (ARGV[2] ms) and,
// if held, returns the gate state KEYS[2] (false if none), the instances of KEYS[3]
// whose newest shipped bucket is ≥ ARGV[3], with those buckets, and how many summaries
// the window KEYS[4] holds of buckets ≥ ARGV[4] (the second in progress, shipped early).
// Not held: false.
var readyScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
elseif v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
else
  return false
end
return {redis.call('GET', KEYS[2]), redis.call('ZRANGEBYSCORE', KEYS[3], ARGV[3], '+inf', 'WITHSCORES'),
  redis.call('ZCOUNT', KEYS[4], ARGV[4], '+inf')}
`)

// Evaluate judges the push-mode services whose lease this replica holds (taking free
// leases). A window is the Window of whole buckets before an end E, a whole second; E is
// judged once, as soon as its last bucket (E−1 s) is complete — every instance that
// shipped the bucket before it has shipped this one — or MaxEvalDelay after E, whichever
// comes first. Up to maxBacklog ends up to ⌊now⌋ not judged yet are judged in order.
// Run calls Evaluate after every read of the streams; tests call it with the time they
// want. Judging the same end twice counts it once. Errors of one service do not stop the
// others.
func (d *Detector) Evaluate(ctx context.Context, now time.Time) error {
	if len(d.push) == 0 {
		return nil
	}
	d.evalMu.Lock()
	defer d.evalMu.Unlock()
	latest := now.Truncate(time.Second)
	since := latest.Add(-(maxBacklog + 1) * time.Second).Unix()
	cmds := d.readiness(ctx, since, latest.Unix(), true)
	for _, c := range cmds {
		if err := c.Err(); err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") {
			cmds = d.readiness(ctx, since, latest.Unix(), false) // the server lost its script cache
			break
		}
	}
	var errs []error
	for i, ps := range d.push {
		res, err := cmds[i].Slice()
		switch {
		case errors.Is(err, redis.Nil):
			continue // another replica holds the lease
		case err != nil:
			errs = append(errs, fmt.Errorf("lease and readiness of %s/%s: %w", ps.tenant, ps.service, err))
			continue
		}
		st, shipped, inflight, err := d.decodeReady(ps, res)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		err = d.evaluateService(ctx, ps, now, st, shipped)
		if err == nil && inflight {
			err = d.evaluateInflight(ctx, ps, now, st)
		}
		if err != nil && !errors.Is(err, ErrLeaseLost) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// readiness runs readyScript for every push-mode service in one pipeline, by hash
// (EVALSHA) or, after a NOSCRIPT, with the script text.
func (d *Detector) readiness(ctx context.Context, since, inProgress int64, bySHA bool) []*redis.Cmd {
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	pipe := d.rdb.Pipeline()
	cmds := make([]*redis.Cmd, len(d.push))
	for i, ps := range d.push {
		keys := []string{d.keys.lease(ps.tenant, ps.service), d.keys.gate(ps.tenant, ps.service),
			d.keys.instances(ps.tenant, ps.service), d.keys.window(ps.tenant, ps.service)}
		args := []any{d.opts.ReplicaID, d.opts.LeaseTTL.Milliseconds(), since, inProgress}
		if bySHA {
			cmds[i] = readyScript.EvalSha(ctx, pipe, keys, args...)
		} else {
			cmds[i] = readyScript.Eval(ctx, pipe, keys, args...)
		}
	}
	_, _ = pipe.Exec(ctx) // errors are per command, read by the caller
	return cmds
}

// decodeReady reads readyScript's answer: the gate state, each active instance's newest
// bucket (unix seconds), and whether part of the second in progress was shipped early.
func (d *Detector) decodeReady(ps pushStream, res []any) (*gateState, map[string]int64, bool, error) {
	if len(res) != 3 {
		return nil, nil, false, fmt.Errorf("readiness of %s/%s: unexpected reply %v", ps.tenant, ps.service, res)
	}
	st := &gateState{}
	if raw, ok := res[0].(string); ok {
		if err := json.Unmarshal([]byte(raw), st); err != nil {
			d.log.Error("unreadable gate state, starting afresh", "tenant", ps.tenant, "service", ps.service, "err", err)
			st = &gateState{}
		}
	}
	shipped := map[string]int64{}
	flat, _ := res[1].([]any)
	for j := 0; j+1 < len(flat); j += 2 {
		inst, _ := flat[j].(string)
		score, _ := flat[j+1].(string)
		b, err := strconv.ParseFloat(score, 64)
		if err == nil {
			shipped[inst] = int64(b)
		}
	}
	inflight, _ := res[2].(int64)
	return st, shipped, inflight > 0, nil
}

// evaluateService judges the ready window ends of one service, oldest first.
func (d *Detector) evaluateService(ctx context.Context, ps pushStream, now time.Time, st *gateState, shipped map[string]int64) error {
	latest := now.Truncate(time.Second)
	first := latest.Add(-(maxBacklog - 1) * time.Second)
	if next := time.UnixMilli(st.LastEval).Add(time.Second); st.LastEval > 0 && next.After(first) {
		first = next
	}
	for end := first; !end.After(latest); end = end.Add(time.Second) {
		if !d.complete(end, now, shipped) {
			return nil
		}
		if err := d.evaluateEnd(ctx, ps, end, now, st); err != nil {
			return err
		}
	}
	return nil
}

// complete reports whether the window ending at end can be judged at now: its last
// bucket was shipped by at least one instance and by every instance that shipped the
// bucket before it, or MaxEvalDelay has passed since it closed (an instance died, or
// nothing is shipped at all).
func (d *Detector) complete(end, now time.Time, shipped map[string]int64) bool {
	if !now.Before(end.Add(d.opts.MaxEvalDelay)) {
		return true
	}
	last := end.Add(-time.Second).Unix()
	seen := false
	for _, b := range shipped {
		switch {
		case b >= last:
			seen = true
		case b == last-1:
			return false // shipped the previous bucket but not this one yet
		}
	}
	return seen
}

// evaluateInflight looks at the window ending after the second in progress, part of
// which an SDK shipped early because its errors surged (sdk.Summary.Early), once every
// complete window is judged. It is no evaluation: it opens an incident only when the gate
// would open one at the coming evaluations whatever the rest of the second and the next
// ones bring (staysBad), and otherwise changes nothing.
func (d *Detector) evaluateInflight(ctx context.Context, ps pushStream, now time.Time, st *gateState) error {
	latest := now.Truncate(time.Second)
	if st.Alerting || st.LastEval != latest.UnixMilli() {
		return nil
	}
	end := latest.Add(time.Second)
	w, err := d.loadWindow(ctx, ps.tenant, ps.service, end)
	if err != nil {
		return err
	}
	t := d.tenants[ps.tenant]
	perSecond, seconds, ok := d.staysBad(t, st, w, true)
	if !ok {
		return nil
	}
	obs := observation{
		source: SourcePush, p95Ms: w.agg.Quantile(0.95), errorRate: w.agg.ErrorRate(), errors4xx: w.agg.Errors4xx(),
		n: w.agg.Count(), decisive: true, ahead: perSecond, aheadSeconds: seconds,
		window: fmt.Sprintf("%s ending %s so far (%d buckets, %d summaries; the second in progress shipped early, its errors surging)",
			d.opts.Window, end.UTC().Format(time.RFC3339), w.buckets, w.summaries),
	}
	return d.judge(ctx, t, ps.service, now, st, obs)
}

// evaluateEnd judges the window ending at end with st, the service's gate state.
func (d *Detector) evaluateEnd(ctx context.Context, ps pushStream, end, now time.Time, st *gateState) error {
	if end.UnixMilli() <= st.LastEval {
		return nil
	}
	st.LastEval = end.UnixMilli()
	w, err := d.loadWindow(ctx, ps.tenant, ps.service, end)
	if err != nil {
		return err
	}
	obs := observation{
		source:    SourcePush,
		p95Ms:     w.agg.Quantile(0.95),
		errorRate: w.agg.ErrorRate(),
		errors4xx: w.agg.Errors4xx(),
		n:         w.agg.Count(),
		window: fmt.Sprintf("%s ending %s (%d buckets, %d summaries)", d.opts.Window, end.UTC().Format(time.RFC3339),
			w.buckets, w.summaries),
	}
	if fast, ok := d.fastObservation(ps, end, st, w); ok {
		obs = fast
	} else if perSecond, seconds, ok := d.staysBad(d.tenants[ps.tenant], st, w, false); ok {
		obs.decisive, obs.ahead, obs.aheadSeconds = true, perSecond, seconds
	}
	// The decision is stamped with the window's end plus the time it took to become
	// judgeable, i.e. when it is made.
	at := now
	if at.Before(end) {
		at = end
	}
	return d.judge(ctx, d.tenants[ps.tenant], ps.service, at, st, obs)
}

// decisiveMargin is how far under the tenant's threshold the newest FastWindow must score
// to open at once: a score near the threshold (a slow drift crossing it) waits for the
// whole window, so it does not open, heal and reopen.
const decisiveMargin = 20

// fastObservation is the newest FastWindow of w when it decides on its own: the service
// is not in an episode, the part holds FastMinSamples requests, and it scores
// decisiveMargin under the tenant's threshold. The judgement then opens at once (see Options.FastWindow).
func (d *Detector) fastObservation(ps pushStream, end time.Time, st *gateState, w *window) (observation, bool) {
	n := w.recent.Count()
	if st.Alerting || d.opts.FastWindow >= d.opts.Window || n < uint64(max(d.opts.FastMinSamples, d.opts.MinSamples)) {
		return observation{}, false
	}
	p95, errRate := w.recent.Quantile(0.95), w.recent.ErrorRate()
	if health.Compute(p95, errRate, st.Baseline.AnomalyRatio(p95, errRate)).Score >= d.tenants[ps.tenant].MinScoreToAlert-decisiveMargin {
		return observation{}, false
	}
	return observation{
		source: SourcePush, p95Ms: p95, errorRate: errRate, errors4xx: w.recent.Errors4xx(), n: n, decisive: true,
		window: fmt.Sprintf("%s ending %s (the newest part of the %s window, %d requests: enough to decide at once)",
			d.opts.FastWindow, end.UTC().Format(time.RFC3339), d.opts.Window, n),
	}, true
}

// staysBad reports whether the gate, not alerting yet, will open at its coming evaluations
// whatever they bring, so it may open now: w scores under the tenant's threshold, and so
// does every window of the evaluations still needed to open (OpenAfter minus the bad
// streak so far, this one included) when the oldest seconds have left it and each new
// second brought as many requests as the busiest second of w, every one successful and as
// fast as a request can be — the most any healthy second could dilute it. Failures stay
// in the window for a whole Window, so a window bad enough usually stays bad: opening at
// once then opens the incident the gate would open a second or two later, and nothing the
// gate would not open (unless the next second is busier than any so far). inflight: w
// ends after the second in progress (its partial bucket, shipped early by the SDK), so
// the rest of that second is counted among the new requests and w itself is not an
// evaluation. It returns how many requests each coming second was assumed to bring, and
// over how many seconds.
func (d *Detector) staysBad(t *Tenant, st *gateState, w *window, inflight bool) (perSecond uint64, seconds int, ok bool) {
	if st.Alerting || d.opts.noLookAhead || int(w.agg.Count()) < d.opts.MinSamples {
		return 0, 0, false
	}
	need := d.opts.OpenAfter - st.Bad // evaluations still needed to open, this one included
	if !inflight {
		need-- // w is one of them
	}
	if need <= 0 || !d.scoresBad(t, st, &w.agg) {
		return 0, 0, false // the gate opens on w by itself, or w is not bad
	}
	counts := map[int64]uint64{}
	var busiest uint64
	for _, s := range w.sums {
		counts[s.Bucket.Unix()] += s.Count
		busiest = max(busiest, counts[s.Bucket.Unix()])
	}
	shift := 1
	if inflight {
		shift = 0 // the first coming window ends where w does
	}
	for k := 1; k <= need; k++ {
		cut := w.start.Add(time.Duration(k-1+shift) * time.Second)
		var a sdk.Aggregate
		for _, s := range w.sums {
			if !s.Bucket.Before(cut) {
				a.Add(s)
			}
		}
		a.AddFastest(uint64(k) * busiest)
		if !d.scoresBad(t, st, &a) {
			return 0, 0, false
		}
	}
	return busiest, need, true
}

// scoresBad reports whether a scores under the tenant's threshold, as judge scores it.
func (d *Detector) scoresBad(t *Tenant, st *gateState, a *sdk.Aggregate) bool {
	p95, errRate := a.Quantile(0.95), a.ErrorRate()
	return health.Compute(p95, errRate, st.Baseline.AnomalyRatio(p95, errRate)).Score < t.MinScoreToAlert
}
