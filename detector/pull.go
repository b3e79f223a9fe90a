package detector

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/alertengine/alertengine/detector/netguard"
	"github.com/alertengine/alertengine/ledger"
)

// ErrBadHealth wraps every reason a health endpoint's answer is not usable.
var ErrBadHealth = errors.New("unusable health answer")

// ErrPrivateAddress is the cause of a poll the dial guard refused: the health URL (or a
// same-origin redirect from it) resolved to a non-public address and the service does not
// have AllowPrivateNetwork. It also matches netguard.ErrRefused.
var ErrPrivateAddress = errors.New("health URL resolves to a private/loopback/link-local address (allow_private_network is false)")

// maxHealthBytes bounds a /health/alerts answer.
const maxHealthBytes = 1 << 20

// Bounds of a sane health reading: anything outside is refused as an unusable answer,
// never recorded as a measurement.
const (
	// MaxP95Ms is the largest p95 latency accepted: one hour.
	MaxP95Ms = float64(time.Hour / time.Millisecond)
	// MaxCount is the largest sample size (and anomaly score) accepted.
	MaxCount = 1e12
)

// pollConcurrency bounds the polls in flight.
const pollConcurrency = 8

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

// ParseHealth decodes a /health/alerts body: {status, health_score{score, status, trend,
// components}, metrics{overall_p95_ms, error_rate, anomaly_score, sample_size}, alerts[],
// timestamp}. metrics.overall_p95_ms, error_rate and sample_size are required;
// health_score may be absent. timestamp may be unix seconds or RFC 3339. Anything else
// is an error wrapping ErrBadHealth.
func ParseHealth(body []byte) (Health, error) {
	var w struct {
		Status      string `json:"status"`
		HealthScore *struct {
			Score *float64 `json:"score"`
			Trend string   `json:"trend"`
		} `json:"health_score"`
		Metrics *struct {
			P95Ms        *float64 `json:"overall_p95_ms"`
			ErrorRate    *float64 `json:"error_rate"`
			AnomalyScore *float64 `json:"anomaly_score"`
			SampleSize   *float64 `json:"sample_size"`
		} `json:"metrics"`
		Alerts    []json.RawMessage `json:"alerts"`
		Timestamp json.RawMessage   `json:"timestamp"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&w); err != nil {
		return Health{}, fmt.Errorf("%w: %s", ErrBadHealth, ledger.ClipText(err.Error()))
	}
	if dec.More() {
		return Health{}, fmt.Errorf("%w: trailing data", ErrBadHealth)
	}
	// The reason quotes what the endpoint sent: clipped, as it reaches logs and, after
	// UnreachableAfter polls, the ledger.
	bad := func(format string, args ...any) (Health, error) {
		return Health{}, fmt.Errorf("%w: %s", ErrBadHealth, ledger.ClipText(fmt.Sprintf(format, args...)))
	}
	switch w.Status {
	case "ok", "warning", "critical", "":
	default:
		return bad("status %q", ledger.Clip(w.Status, 40))
	}
	if w.Metrics == nil || w.Metrics.P95Ms == nil || w.Metrics.ErrorRate == nil || w.Metrics.SampleSize == nil {
		return bad("metrics.overall_p95_ms, error_rate and sample_size are required")
	}
	m := w.Metrics
	finite := func(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }
	if !finite(*m.P95Ms) || *m.P95Ms < 0 || *m.P95Ms > MaxP95Ms {
		return bad("overall_p95_ms %.4g outside 0..%.0f (one hour)", *m.P95Ms, MaxP95Ms)
	}
	if !finite(*m.ErrorRate) || *m.ErrorRate < 0 || *m.ErrorRate > 1 {
		return bad("error_rate %v is not a share between 0 and 1", *m.ErrorRate)
	}
	if !finite(*m.SampleSize) || *m.SampleSize < 0 || *m.SampleSize != math.Trunc(*m.SampleSize) || *m.SampleSize > MaxCount {
		return bad("sample_size %.4g is not a whole number in 0..%.0g", *m.SampleSize, MaxCount)
	}
	h := Health{Status: w.Status, P95Ms: *m.P95Ms, ErrorRate: *m.ErrorRate, SampleSize: uint64(*m.SampleSize), Alerts: len(w.Alerts)}
	if a := m.AnomalyScore; a != nil {
		if !finite(*a) || *a < 0 || *a > MaxCount {
			return bad("anomaly_score %.4g outside 0..%.0g", *a, MaxCount)
		}
		h.AnomalyScore = *a
	}
	if hs := w.HealthScore; hs != nil {
		h.Trend = ledger.Clip(hs.Trend, 40)
		if hs.Score != nil {
			if !finite(*hs.Score) || *hs.Score < 0 || *hs.Score > 100 {
				return bad("health_score.score %v outside 0..100", *hs.Score)
			}
			s := *hs.Score
			h.Score = &s
		}
	}
	if len(w.Timestamp) > 0 && string(w.Timestamp) != "null" {
		var secs float64
		var text string
		switch {
		case json.Unmarshal(w.Timestamp, &secs) == nil && finite(secs) && secs >= 0 && secs < 1e11:
			// Seconds and nanoseconds apart: secs·1e9 overflows int64 after 2262.
			whole := math.Floor(secs)
			h.Timestamp = time.Unix(int64(whole), int64((secs-whole)*1e9)).UTC()
		case json.Unmarshal(w.Timestamp, &text) == nil:
			t, err := time.Parse(time.RFC3339, text)
			if err != nil {
				return bad("timestamp %q", ledger.Clip(text, 40))
			}
			// In UTC, an offset can carry year 0 into year -1, which RFC 3339 cannot write:
			// only years 1 to 9999 are kept.
			if y := t.UTC().Year(); y < 1 || y > 9999 {
				return bad("timestamp %q is outside years 1 to 9999", ledger.Clip(text, 40))
			}
			h.Timestamp = t.UTC()
		default:
			return bad("timestamp %s is neither unix seconds nor RFC 3339", ledger.Clip(string(w.Timestamp), 40))
		}
	}
	return h, nil
}

// Poll fetches the health endpoint of every pull-mode service whose lease this replica
// holds (taking free leases), with PollTimeout each, and judges what they report through
// the same gate as push mode. An endpoint that is unreachable, answers non-2xx or sends
// an unusable body is logged and counted (Stats.PollErrors) and changes nothing: it
// neither counts as a bad nor as a healthy evaluation. Run polls each service every
// Service.PollInterval (see pollDue); Poll polls them all now.
func (d *Detector) Poll(ctx context.Context, now time.Time) error {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	_, err := d.pollTargets(ctx, now, d.pull)
	return err
}

// confirmAfter is how soon a service is polled again after a poll under its tenant's
// threshold that did not open an incident yet: the confirming poll the gate needs comes a
// second later, not a whole interval, so detection takes at most an interval and a second.
const confirmAfter = time.Second

// pollEvery is a service's poll period.
func (d *Detector) pollEvery(s Service) time.Duration {
	if s.PollInterval > 0 {
		return s.PollInterval
	}
	return d.opts.PollInterval
}

// pollTick is how often Run looks for services due a poll.
func (d *Detector) pollTick() time.Duration {
	tick := confirmAfter
	for _, pt := range d.pull {
		tick = min(tick, d.pollEvery(pt.svc))
	}
	return tick
}

// pollDue polls the services whose time has come: each every its own interval, or
// confirmAfter after a bad poll that has not opened yet.
func (d *Detector) pollDue(ctx context.Context, now time.Time) error {
	d.pollMu.Lock()
	defer d.pollMu.Unlock()
	if d.nextPoll == nil {
		d.nextPoll = make(map[pullTarget]time.Time, len(d.pull))
	}
	var due []pullTarget
	for _, pt := range d.pull {
		if next, ok := d.nextPoll[pt]; !ok || !now.Before(next) {
			due = append(due, pt)
		}
	}
	confirm, err := d.pollTargets(ctx, now, due)
	for i, pt := range due {
		next := now.Add(d.pollEvery(pt.svc))
		if confirm[i] {
			next = now.Add(confirmAfter)
		}
		d.nextPoll[pt] = next
	}
	return err
}

// pollTargets polls targets concurrently (at most pollConcurrency at once) and reports,
// per target, whether it wants a confirming poll.
func (d *Detector) pollTargets(ctx context.Context, now time.Time, targets []pullTarget) ([]bool, error) {
	var (
		mu      sync.Mutex
		errs    []error
		wg      sync.WaitGroup
		sem     = make(chan struct{}, pollConcurrency)
		confirm = make([]bool, len(targets))
	)
	for i, pt := range targets {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			c, err := d.pollOne(ctx, pt, now)
			confirm[i] = c
			if err != nil && !errors.Is(err, errLeaseLost) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return confirm, errors.Join(errs...)
}

// pollOne polls one service and judges it; confirm reports a judgement under the
// threshold that has not opened an incident yet.
func (d *Detector) pollOne(ctx context.Context, pt pullTarget, now time.Time) (confirm bool, err error) {
	t, name := pt.tenant, pt.svc.Name
	held, err := d.lease(ctx, t.ID, name, 2*d.pollEvery(pt.svc)+d.opts.PollTimeout)
	if err != nil || !held {
		return false, err
	}
	h, ferr := d.fetchHealth(ctx, pt.svc)
	st, err := d.loadGate(ctx, t.ID, name)
	if err != nil {
		return false, err
	}
	end := now.Truncate(time.Second)
	if end.UnixMilli() <= st.LastEval {
		return false, nil
	}
	st.LastEval = end.UnixMilli()
	where := "endpoint " + redactURL(pt.svc.HealthURL)
	if ferr != nil {
		// One failed poll proves little (a deploy, a blip); UnreachableAfter in a row is a
		// service that is down, judged as the worst health there is.
		// Logged once per streak and reason: an endpoint that keeps failing the same way
		// is counted (Stats.PollErrors), not logged on every poll.
		d.stats.pollErrors.Add(1)
		st.PollFailures++
		why := pollFailure(ferr)
		if st.PollFailures == 1 || why != st.PollFailure {
			d.log.Warn("health poll failed", "tenant", t.ID, "service", name, "failures", st.PollFailures, "err", why)
		}
		st.PollFailure = why
		if st.PollFailures < UnreachableAfter {
			return false, d.saveGate(ctx, t.ID, name, st)
		}
		zero := 0.0
		return false, d.judge(ctx, t, name, now, st, observation{source: SourcePull, n: uint64(d.opts.MinSamples), reported: &zero,
			unreachable: ledger.ClipText(fmt.Sprintf("%s for %d polls in a row", why, st.PollFailures)), window: where})
	}
	if st.PollFailures > 0 {
		d.log.Info("health poll answers again", "tenant", t.ID, "service", name, "failed_polls", st.PollFailures)
	}
	st.PollFailures, st.PollFailure = 0, ""
	obs := observation{
		source: SourcePull, p95Ms: h.P95Ms, errorRate: h.ErrorRate, n: h.SampleSize, reported: h.Score,
		window: where,
	}
	err = d.judge(ctx, t, name, now, st, obs)
	return !st.Alerting && st.Bad > 0 && st.Bad < d.opts.OpenAfter, err
}

// UnreachableAfter is how many failed polls in a row make a pull-mode service judged
// down (health 0): with LOOP_INTERVAL_S=5, 15 s.
const UnreachableAfter = 3

// pollFailure names a failed poll for people and the ledger, without the URL (it may
// carry credentials), at most ledger.MaxTextRunes.
func pollFailure(err error) string {
	return ledger.ClipText(describePollFailure(err))
}

func describePollFailure(err error) string {
	var (
		ue *url.Error
		ae *netguard.AddressError
	)
	switch {
	case errors.As(err, &ae):
		return fmt.Sprintf("health endpoint address %s is %s; refused (allow_private_network is false)", ae.Addr, ae.Kind)
	case errors.Is(err, netguard.ErrRefused):
		return "health endpoint address refused (allow_private_network is false)"
	case errors.Is(err, netguard.ErrRedirect) && errors.As(err, &ue):
		return "health endpoint " + strings.TrimPrefix(ue.Err.Error(), netguard.ErrRedirect.Error()+": ") + "; not followed"
	case errors.Is(err, ErrBadHealth):
		return strings.TrimPrefix(err.Error(), ErrBadHealth.Error()+": ")
	case errors.As(err, &ue) && ue.Timeout(), errors.Is(err, context.DeadlineExceeded):
		return "health endpoint timed out"
	case errors.As(err, &ue):
		return "health endpoint unreachable"
	}
	return "health endpoint unusable"
}

// redactURL keeps scheme, host and path: user info and query strings may hold secrets,
// and the ledger keeps what it is given for ever.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// fetchHealth GETs one service's health URL with PollTimeout, through the dial guard
// unless the service has AllowPrivateNetwork.
func (d *Detector) fetchHealth(ctx context.Context, svc Service) (Health, error) {
	ctx, cancel := context.WithTimeout(ctx, d.opts.PollTimeout)
	defer cancel()
	client := d.guarded
	if svc.AllowPrivateNetwork {
		client = d.unguarded
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, svc.HealthURL, nil)
	if err != nil {
		return Health{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return Health{}, fmt.Errorf("GET: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHealthBytes))
		return Health{}, fmt.Errorf("%w: HTTP %d", ErrBadHealth, resp.StatusCode)
	}
	if resp.ContentLength > maxHealthBytes {
		return Health{}, fmt.Errorf("%w: body of %d bytes is over %d", ErrBadHealth, resp.ContentLength, maxHealthBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBytes+1))
	if err != nil {
		return Health{}, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxHealthBytes {
		return Health{}, fmt.Errorf("%w: body over %d bytes", ErrBadHealth, maxHealthBytes)
	}
	return ParseHealth(body)
}
