package detector

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/sdk/health"
)

// gateTTL forgets the gate and baseline of a service that has not been judged for 30 days.
const gateTTL = 30 * 24 * time.Hour

// gateState is the per-(tenant, service) memory shared by the replicas, stored as JSON
// under keys.gate and written only by the lease holder (see saveGate).
type gateState struct {
	// Bad and Good count consecutive judged evaluations under and at/over the threshold.
	Bad  int `json:"bad"`
	Good int `json:"good"`
	// Alerting: the gate opened (or adopted) an incident and has not seen the service
	// recover yet. Incident is that incident, "" once someone else closed it.
	Alerting bool   `json:"alerting"`
	Incident string `json:"incident,omitempty"`
	// Band is the severity band last recorded on the incident.
	Band string `json:"band,omitempty"`
	// Suppressed: this episode's detection hit the incidents-per-hour limit (reported once).
	Suppressed bool `json:"suppressed,omitempty"`
	// Scores are the last health.TrendWindow scores, oldest first.
	Scores []float64 `json:"scores,omitempty"`
	// Last is the previous judged reading (rate of change, Status).
	Last *Reading `json:"last,omitempty"`
	// Baseline is the learned normal; LearnedAt (unix ms) when it last learned.
	Baseline  health.Baseline `json:"baseline"`
	LearnedAt int64           `json:"learned_at,omitempty"`
	// PollFailures counts failed polls in a row (pull mode).
	PollFailures int `json:"poll_failures,omitempty"`
	// PollFailure is the latest failed poll's reason (clipped): a streak failing the same
	// way is logged once.
	PollFailure string `json:"poll_failure,omitempty"`
	// LastEval (unix ms) is the end of the last evaluated window: an evaluation of the
	// same window again (a retry, a second caller) counts nothing twice.
	LastEval int64 `json:"last_eval,omitempty"`
}

// Reading is one judged evaluation.
type Reading struct {
	At            time.Time `json:"at"`
	Source        Source    `json:"source"`
	Score         float64   `json:"score"`
	Status        string    `json:"status"`
	P95Ms         float64   `json:"p95_ms"`
	ErrorRate     float64   `json:"error_rate"`
	Errors4xx     uint64    `json:"errors_4xx,omitempty"`
	SampleSize    uint64    `json:"sample_size"`
	AnomalyRatio  float64   `json:"anomaly_ratio"`
	Slope         float64   `json:"slope"`
	Trend         string    `json:"trend"`
	LatencySpike  bool      `json:"latency_spike,omitempty"`
	ErrorSpike    bool      `json:"error_spike,omitempty"`
	BaselineP95Ms float64   `json:"baseline_p95_ms"`
	// Unreachable says why the service could not be measured (judged health 0).
	Unreachable string `json:"unreachable,omitempty"`
}

// Status is what the detector knows about one service.
type Status struct {
	Tenant, Service string
	// Last is the latest judged evaluation; nil before the first.
	Last *Reading
	// Baseline is the learned normal (Samples 0: none yet).
	Baseline health.Baseline
	// Alerting: the service is in an incident episode; Incident is the incident the
	// detector holds ("" if it was closed by someone else while still unhealthy).
	Alerting bool
	Incident string
	// Scores are the recent scores, oldest first.
	Scores []float64
}

// Status returns the detector's view of a service, from the shared state.
func (d *Detector) Status(ctx context.Context, tenant, service string) (Status, error) {
	st, err := d.loadGate(ctx, tenant, service)
	if err != nil {
		return Status{}, err
	}
	return Status{
		Tenant: tenant, Service: service, Last: st.Last, Baseline: st.Baseline,
		Alerting: st.Alerting, Incident: st.Incident, Scores: st.Scores,
	}, nil
}

func (d *Detector) loadGate(ctx context.Context, tenant, service string) (*gateState, error) {
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	raw, err := d.rdb.Get(ctx, d.keys.gate(tenant, service)).Bytes()
	st := &gateState{}
	switch {
	case errors.Is(err, redis.Nil):
		return st, nil
	case err != nil:
		return nil, fmt.Errorf("read gate of %s/%s: %w", tenant, service, err)
	}
	if err := json.Unmarshal(raw, st); err != nil {
		// A state this package cannot read is replaced rather than blocking the service
		// forever; the baseline is relearned.
		d.log.Error("unreadable gate state, starting afresh", "tenant", tenant, "service", service, "err", err)
		return &gateState{}, nil
	}
	return st, nil
}

// leaseScript takes or renews the lease KEYS[1] for ARGV[1] for ARGV[2] ms; 1 if held.
var leaseScript = redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == false then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return 1
end
if v == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// saveScript writes the gate KEYS[2] only while ARGV[1] holds the lease KEYS[1].
var saveScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
return 1
`)

// lease takes or renews the evaluation lease of a service.
func (d *Detector) lease(ctx context.Context, tenant, service string, ttl time.Duration) (bool, error) {
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	n, err := leaseScript.Run(ctx, d.rdb, []string{d.keys.lease(tenant, service)}, d.opts.ReplicaID, ttl.Milliseconds()).Int()
	if err != nil {
		return false, fmt.Errorf("lease %s/%s: %w", tenant, service, err)
	}
	return n == 1, nil
}

// saveGate writes st if this replica still holds the service's lease (fencing: a replica
// that paused past its lease cannot overwrite its successor's state).
func (d *Detector) saveGate(ctx context.Context, tenant, service string, st *gateState) error {
	raw, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode gate: %w", err)
	}
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	n, err := saveScript.Run(ctx, d.rdb, []string{d.keys.lease(tenant, service), d.keys.gate(tenant, service)},
		d.opts.ReplicaID, raw, gateTTL.Milliseconds()).Int()
	if err != nil {
		return fmt.Errorf("write gate of %s/%s: %w", tenant, service, err)
	}
	if n != 1 {
		d.stats.lostLeases.Add(1)
		return fmt.Errorf("write gate of %s/%s: %w", tenant, service, ErrLeaseLost)
	}
	return nil
}

// observation is one window's measurements, before judgement.
type observation struct {
	source    Source
	p95Ms     float64
	errorRate float64
	errors4xx uint64
	n         uint64
	// reported is the score a pull-mode endpoint computed itself (nil: compute it).
	reported *float64
	// window describes what was measured, for the record ("10s", "endpoint").
	window string
	// unreachable, when set, says why nothing could be measured (the endpoint is down).
	unreachable string
	// decisive: a bad judgement of this observation opens at once (Options.FastWindow, or
	// the look-ahead: staysBad).
	decisive bool
	// ahead, when aheadSeconds > 0, is why: the window stays bad for aheadSeconds more
	// evaluations even if every coming second brings ahead fast successful requests
	// (staysBad).
	ahead        uint64
	aheadSeconds int
}

// judge scores obs, moves the gate and records what the policy decides. It is the one
// decision path of push and pull mode; st is saved at the end (fenced by the lease).
func (d *Detector) judge(ctx context.Context, t *Tenant, service string, now time.Time, st *gateState, obs observation) error {
	if int(obs.n) < d.opts.MinSamples {
		// Too few requests to judge: nothing counts either way, the episode stands.
		d.stats.skipped.Add(1)
		return d.saveGate(ctx, t.ID, service, st)
	}
	d.stats.evaluations.Add(1)
	base := st.Baseline
	ratio := base.AnomalyRatio(obs.p95Ms, obs.errorRate)
	score := health.Compute(obs.p95Ms, obs.errorRate, ratio)
	if obs.reported != nil {
		score.Score = *obs.reported
		score.Status = health.StatusOf(score.Score)
	}
	var change health.Change
	if st.Last != nil {
		change = health.RateOfChange(st.Last.P95Ms, obs.p95Ms, st.Last.ErrorRate, obs.errorRate)
	}
	st.Scores = append(st.Scores, score.Score)
	if len(st.Scores) > health.TrendWindow {
		st.Scores = st.Scores[len(st.Scores)-health.TrendWindow:]
	}
	slope, trend := health.Trend(st.Scores)
	r := &Reading{
		At: now.UTC(), Source: obs.source, Score: score.Score, Status: score.Status,
		P95Ms: obs.p95Ms, ErrorRate: obs.errorRate, Errors4xx: obs.errors4xx, SampleSize: obs.n,
		AnomalyRatio: ratio, Slope: slope, Trend: trend,
		LatencySpike: change.LatencySpike, ErrorSpike: change.ErrorSpike,
		BaselineP95Ms: base.P95Ms, Unreachable: obs.unreachable,
	}
	st.Last = r
	d.remember(ctx, t.ID, service, r)
	if change.LatencySpike || change.ErrorSpike {
		d.log.Info("sudden change", "tenant", t.ID, "service", service, "latency_spike", change.LatencySpike,
			"error_spike", change.ErrorSpike, "p95_ms", obs.p95Ms, "error_rate", obs.errorRate, "score", score.Score)
	}

	bad := score.Score < t.MinScoreToAlert
	if bad {
		st.Bad++
		st.Good = 0
	} else {
		st.Good++
		st.Bad = 0
	}
	ev := evidence{tenant: t, service: service, at: now, reading: r, obs: obs, base: base, streak: max(st.Bad, st.Good)}
	var err error
	switch {
	case !st.Alerting && bad && (st.Bad >= d.opts.OpenAfter || obs.decisive):
		err = d.openFromGate(ctx, st, ev)
	case st.Alerting && bad:
		err = d.maybeUpdateBand(ctx, st, ev)
	case st.Alerting && !bad && st.Good >= d.opts.RecoverAfter:
		err = d.recoverFromGate(ctx, st, ev)
	case !st.Alerting && !bad && st.Good >= d.opts.RecoverAfter:
		st.Suppressed = false // the suppressed episode is over
	}

	// The baseline learns only from healthy windows with enough samples, outside any
	// episode and without a sudden change, at most once per window length so every
	// learned window is a fresh one.
	if !bad && score.Score >= health.HealthyAt && !st.Alerting && !st.Suppressed && !change.LatencySpike && !change.ErrorSpike &&
		now.Sub(time.UnixMilli(st.LearnedAt)) >= d.opts.Window {
		st.Baseline = st.Baseline.Learn(obs.p95Ms, obs.errorRate)
		st.LearnedAt = now.UnixMilli()
	}
	if serr := d.saveGate(ctx, t.ID, service, st); serr != nil {
		return errors.Join(err, serr)
	}
	return err
}

// HistoryLen caps the readings kept per service: two hours at one evaluation a second.
const HistoryLen = 7200

// remember appends a judged reading to the service's history. A failure only costs a
// point of a chart: it is logged, never fatal to the evaluation.
func (d *Detector) remember(ctx context.Context, tenant, service string, r *Reading) {
	b, err := json.Marshal(r)
	if err != nil {
		return
	}
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	if err := d.rdb.XAdd(ctx, &redis.XAddArgs{Stream: d.keys.history(tenant, service), MaxLen: HistoryLen, Approx: true,
		Values: []any{"r", b}}).Err(); err != nil {
		d.log.Warn("record reading history", "tenant", tenant, "service", service, "err", err)
	}
}

// History returns a service's judged readings since since, oldest first (at most
// HistoryLen): what the incident card's chart draws.
func (d *Detector) History(ctx context.Context, tenant, service string, since time.Time) ([]Reading, error) {
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	// Newest first, until a reading older than since: the stream's ids are Redis's clock,
	// the readings carry the detector's.
	msgs, err := d.rdb.XRevRangeN(ctx, d.keys.history(tenant, service), "+", "-", HistoryLen).Result()
	if err != nil {
		return nil, fmt.Errorf("read history of %s/%s: %w", tenant, service, err)
	}
	var out []Reading
	for _, m := range msgs {
		raw, _ := m.Values["r"].(string)
		var r Reading
		if json.Unmarshal([]byte(raw), &r) != nil {
			continue
		}
		if r.At.Before(since) {
			break
		}
		out = append(out, r)
	}
	slices.Reverse(out)
	return out, nil
}

// evidence is what a gate decision cites.
type evidence struct {
	tenant  *Tenant
	service string
	at      time.Time
	reading *Reading
	obs     observation
	base    health.Baseline
	streak  int // consecutive evaluations on this side of the threshold
}

func (e evidence) data() map[string]string {
	r := e.reading
	ev := ledger.Evidence{
		Source: string(r.Source), Judged: true, Score: r.Score, P95Ms: r.P95Ms, ErrorRate: r.ErrorRate,
		BaselineP95Ms: e.base.P95Ms, AnomalyRatio: r.AnomalyRatio, Trend: r.Trend, Slope: r.Slope, SampleSize: r.SampleSize,
		Window: e.obs.window, MinScore: e.tenant.MinScoreToAlert, Evaluations: e.streak,
		// The card says "unreachable" rather than a health of 0 with 0% errors.
		Unreachable: r.Unreachable,
	}
	if r.LatencySpike || r.ErrorSpike {
		ev.RateOfChange = spikeText(r)
	}
	return ev.Data()
}

func (e evidence) event(kind Kind, incident, reason string) Event {
	r := e.reading
	return Event{
		Kind: kind, Source: r.Source, Tenant: e.tenant.ID, Service: e.service, Incident: incident, At: e.at,
		Score: r.Score, P95Ms: r.P95Ms, ErrorRate: r.ErrorRate, BaselineP95Ms: e.base.P95Ms, Trend: r.Trend,
		SampleSize: r.SampleSize, Reason: reason, PolicyVersion: e.tenant.PolicyVersion,
	}
}

// openFromGate opens an incident after OpenAfter bad evaluations, within the tenant's
// hourly limit; a service that already has an open incident (another replica, an
// Alertmanager alert) gets the evidence as an update and the gate adopts that incident.
func (d *Detector) openFromGate(ctx context.Context, st *gateState, ev evidence) error {
	reason := openReason(ev)
	res, err := d.open(ctx, ev.tenant, ev.service, ev.at, reason, ev.data())
	if err != nil {
		return err
	}
	switch {
	case res.suppressed:
		// Reported once per episode; every evaluation still tries, so the incident opens
		// as soon as the hour has room.
		if !st.Suppressed {
			st.Suppressed = true
			d.suppressed(ctx, ev.tenant, ev.service, reason, ev.event(Suppressed, "", reason))
		}
	case res.existing != "":
		// The evidence is on the open incident. The gate closes it on recovery only if a
		// judged reading opened it (this service's state was lost, or another replica
		// raced); an incident from an alert is closed by the alert's source.
		judged, err := d.openedByGate(ctx, ev.tenant, res.existing)
		if err != nil {
			return err
		}
		st.Alerting, st.Band = true, ev.reading.Status
		if judged {
			st.Incident = res.existing
		}
		d.emit(ctx, ev.event(Updated, res.existing, reason))
	default:
		st.Alerting, st.Incident, st.Band, st.Suppressed = true, res.opened, ev.reading.Status, false
		d.emit(ctx, ev.event(Opened, res.opened, reason))
	}
	return nil
}

// openResult is the outcome of open: exactly one field is set.
type openResult struct {
	opened     string // the new incident
	existing   string // the service's already open incident, which got an update
	suppressed bool   // over the incidents-per-hour limit: nothing recorded
}

// open records DETECTED for a service unless it already has an open incident (then an
// update on that one) or the tenant is over its hourly limit.
func (d *Detector) open(ctx context.Context, t *Tenant, service string, at time.Time, reason string, data map[string]string) (openResult, error) {
	member, ok, err := d.reserveOpening(ctx, t, at)
	if err != nil {
		return openResult{}, err
	}
	if !ok {
		return openResult{suppressed: true}, nil
	}
	e, err := d.record(ctx, t, ledger.Entry{Event: ledger.Detect, Service: service, Reason: reason, Data: data}, at)
	var so *ledger.ServiceOpenError
	if errors.As(err, &so) {
		d.releaseOpening(ctx, t, member)
		d.stats.stageRaces.Add(1)
		if _, err := d.record(ctx, t, ledger.Entry{Event: ledger.Update, Incident: so.Incident, Service: service,
			Reason: "still failing: " + reason, Data: data}, at); err != nil {
			return openResult{}, fmt.Errorf("update open incident %s: %w", so.Incident, err)
		}
		d.stats.updated.Add(1)
		d.log.Info("service already open: evidence recorded", "tenant", t.ID, "service", service, "incident", so.Incident)
		return openResult{existing: so.Incident}, nil
	}
	if err != nil {
		d.releaseOpening(ctx, t, member)
		return openResult{}, fmt.Errorf("open incident for %s/%s: %w", t.ID, service, err)
	}
	d.stats.opened.Add(1)
	d.log.Info("incident opened", "tenant", t.ID, "service", service, "incident", e.Incident, "reason", reason,
		"policy_version", t.PolicyVersion)
	return openResult{opened: e.Incident}, nil
}

// openedBy returns the source recorded on an incident's DETECTED entry ("" if none).
func (d *Detector) openedBy(ctx context.Context, t *Tenant, incident string) (Source, error) {
	e, err := d.detected(ctx, t, incident)
	return Source(e.Data["source"]), err
}

// openedByGate reports whether a judged reading (of any source) opened the incident: its
// DETECTED entry carries a health score, which no alert's does, or comes from the push or
// pull path.
func (d *Detector) openedByGate(ctx context.Context, t *Tenant, incident string) (bool, error) {
	e, err := d.detected(ctx, t, incident)
	src := Source(e.Data["source"])
	return e.Data["score"] != "" || src == SourcePush || src == SourcePull, err
}

// detected is an incident's DETECTED entry (zero if none). It never changes once
// written, so it is remembered (up to detectedCacheSize incidents): an alert storm joining
// one incident must not read its whole, growing history on every alert.
func (d *Detector) detected(ctx context.Context, t *Tenant, incident string) (ledger.Entry, error) {
	key := t.ID + "/" + incident
	if e, ok := d.detectedCache.Load(key); ok {
		return e.(ledger.Entry), nil
	}
	ctx, cancel := d.ledgerCtx(ctx)
	defer cancel()
	h, err := d.ledger.Store().History(ctx, t.ID, incident)
	if err != nil {
		return ledger.Entry{}, fmt.Errorf("history of %s: %w", incident, err)
	}
	if len(h) == 0 || h[0].Event != ledger.Detect {
		return ledger.Entry{}, nil
	}
	if d.detectedCount.Add(1) > detectedCacheSize {
		d.detectedCache.Clear()
		d.detectedCount.Store(1)
	}
	d.detectedCache.Store(key, h[0])
	return h[0], nil
}

// detectedCacheSize bounds the DETECTED entries remembered.
const detectedCacheSize = 4096

// suppressed counts, logs and reports a detection refused by the hourly limit.
func (d *Detector) suppressed(ctx context.Context, t *Tenant, service, reason string, e Event) {
	d.stats.suppressed.Add(1)
	d.log.Warn("detection suppressed: incidents-per-hour limit reached", "tenant", t.ID, "service", service,
		"limit", t.IncidentsPerHour, "reason", reason, "policy_version", t.PolicyVersion)
	d.emit(ctx, e)
}

// maybeUpdateBand records an update when the score of an open episode crosses into
// another severity band; otherwise an unhealthy tick records nothing.
func (d *Detector) maybeUpdateBand(ctx context.Context, st *gateState, ev evidence) error {
	band := ev.reading.Status
	if st.Incident == "" || band == st.Band || !bandCrossed(st.Band, band, ev.reading.Score) {
		return nil
	}
	reason := fmt.Sprintf("health %s/100 now %s (was %s): %s", fmtScore(ev.reading.Score), band, st.Band, measurements(ev))
	_, err := d.record(ctx, ev.tenant, ledger.Entry{Event: ledger.Update, Incident: st.Incident, Service: ev.service,
		Reason: reason, Data: ev.data()}, ev.at)
	var te *ledger.TransitionError
	if errors.As(err, &te) {
		// Closed meanwhile by someone else: keep the episode, no new incident until healthy.
		st.Incident = ""
		return nil
	}
	if err != nil {
		return fmt.Errorf("update %s: %w", st.Incident, err)
	}
	st.Band = band
	d.stats.updated.Add(1)
	d.emit(ctx, ev.event(Updated, st.Incident, reason))
	return nil
}

// bandMargin is how far past a band's boundary an improving score must get before the
// improvement is recorded, so a score wobbling around a boundary records one update.
const bandMargin = 5.0

// bandCrossed reports whether moving from band from to band to at score is worth an
// update: any worsening, or an improvement clear of the boundary by bandMargin.
func bandCrossed(from, to string, score float64) bool {
	rank := map[string]int{health.StatusHealthy: 0, health.StatusDegraded: 1, health.StatusCritical: 2}
	switch {
	case rank[to] > rank[from]:
		return true
	case rank[to] < rank[from]:
		floor := health.DegradedAt // leaving critical
		if from == health.StatusDegraded {
			floor = health.HealthyAt
		}
		return score >= floor+bandMargin
	}
	return false
}

// recoverFromGate closes the gate's incident after RecoverAfter healthy evaluations.
func (d *Detector) recoverFromGate(ctx context.Context, st *gateState, ev evidence) error {
	if st.Incident == "" {
		st.Alerting, st.Band = false, ""
		return nil
	}
	reason := fmt.Sprintf("healthy again: health %s/100 ≥ %s for %d evaluations: %s",
		fmtScore(ev.reading.Score), fmtScore(ev.tenant.MinScoreToAlert), ev.streak, measurements(ev))
	kind, done, err := d.closeIncident(ctx, ev.tenant, ev.service, st.Incident, ev.at, reason, ev.data())
	if err != nil || !done {
		return err
	}
	if kind != "" {
		d.emit(ctx, ev.event(kind, st.Incident, reason))
	}
	st.Alerting, st.Incident, st.Band = false, "", ""
	return nil
}

// closeIncident ends an incident whose service is healthy again, according to its stage:
// RECOVERED before authorization (or after a failed or expired approval), RESOLVED after
// an executed action, nothing while AUTHORIZED (execution in flight: try again later).
// done reports that the caller may forget the incident; kind is "" when it was already
// closed by someone else.
func (d *Detector) closeIncident(ctx context.Context, t *Tenant, service, incident string, at time.Time, reason string, data map[string]string) (kind Kind, done bool, err error) {
	lctx, cancel := d.ledgerCtx(ctx)
	stage, err := d.ledger.Store().Stage(lctx, t.ID, incident)
	cancel()
	if err != nil {
		return "", false, fmt.Errorf("stage of %s: %w", incident, err)
	}
	ev := ledger.Recover
	switch {
	case stage == ledger.None || stage.Terminal():
		d.log.Info("incident already closed", "tenant", t.ID, "service", service, "incident", incident, "stage", stage)
		return "", true, nil
	case stage == ledger.Authorized:
		d.log.Info("healthy, but execution in flight: not closing yet", "tenant", t.ID, "service", service, "incident", incident)
		return "", false, nil
	case stage == ledger.Executed:
		ev = ledger.Resolve
		reason = "resolved after the action: " + reason
	}
	_, err = d.record(ctx, t, ledger.Entry{Event: ev, Incident: incident, Service: service, Reason: reason, Data: data}, at)
	var te *ledger.TransitionError
	if errors.As(err, &te) {
		// Another replica or the pipeline moved the incident between our read and our
		// append; the next evaluation reads the new stage.
		d.stats.stageRaces.Add(1)
		d.log.Info("incident moved meanwhile", "tenant", t.ID, "incident", incident, "err", err)
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("%s %s: %w", ev, incident, err)
	}
	if ev == ledger.Resolve {
		d.stats.resolved.Add(1)
		kind = Resolved
	} else {
		d.stats.recovered.Add(1)
		kind = Recovered
	}
	d.log.Info("incident closed", "tenant", t.ID, "service", service, "incident", incident, "event", ev, "reason", reason)
	return kind, true, nil
}

// record appends an entry for the detector: actor policy/detector, confidence 1, the
// tenant's policy version.
func (d *Detector) record(ctx context.Context, t *Tenant, e ledger.Entry, at time.Time) (ledger.Entry, error) {
	return d.recordAs(ctx, t, e, at, ledger.Actor{Kind: ledger.ActorPolicy, ID: "detector"})
}

// recordAs appends an entry caused by by (an acknowledgement from outside); otherwise as
// record.
func (d *Detector) recordAs(ctx context.Context, t *Tenant, e ledger.Entry, at time.Time, by ledger.Actor) (ledger.Entry, error) {
	e.Tenant = t.ID
	e.Actor = by
	e.Confidence = 1
	e.PolicyVersion = t.PolicyVersion
	e.At = at.UTC()
	// The last line of defence for text from outside: nothing longer than the bound is
	// kept for ever.
	e.Reason = ledger.ClipText(e.Reason)
	if len(e.Data) > 0 {
		data := make(map[string]string, len(e.Data))
		for k, v := range e.Data {
			data[k] = ledger.ClipText(v)
		}
		e.Data = data
	}
	ctx, cancel := d.ledgerCtx(ctx)
	defer cancel()
	return d.ledger.Record(ctx, e)
}

func (d *Detector) emit(ctx context.Context, e Event) {
	if d.opts.OnEvent != nil {
		d.opts.OnEvent(ctx, e)
	}
}

// reserveScript keeps the openings of the last hour in KEYS[1] (scored by unix ms) and
// adds ARGV[3] at ARGV[1] unless ARGV[2] are already there; 1 if added.
var reserveScript = redis.NewScript(`
local now = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - 3600000)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], 3600000)
return 1
`)

// reserveOpening takes one of the tenant's incident openings of the sliding hour.
func (d *Detector) reserveOpening(ctx context.Context, t *Tenant, at time.Time) (member string, ok bool, err error) {
	if t.IncidentsPerHour < 0 {
		return "", true, nil
	}
	member = fmt.Sprintf("%s:%d:%d", d.opts.ReplicaID, at.UnixNano(), d.seq.Add(1))
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	n, err := reserveScript.Run(ctx, d.rdb, []string{d.keys.opens(t.ID)}, at.UnixMilli(), t.IncidentsPerHour, member).Int()
	if err != nil {
		return "", false, fmt.Errorf("incidents-per-hour of %s: %w", t.ID, err)
	}
	return member, n == 1, nil
}

// releaseOpening gives back a reservation that opened nothing.
func (d *Detector) releaseOpening(ctx context.Context, t *Tenant, member string) {
	if member == "" {
		return
	}
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	if err := d.rdb.ZRem(ctx, d.keys.opens(t.ID), member).Err(); err != nil {
		d.log.Warn("release incident reservation", "tenant", t.ID, "err", err)
	}
}
