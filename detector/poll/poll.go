package poll

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alertengine/alertengine/detector"
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

// ParseHealth decodes a /health/alerts body: {status, health_score{score, status, trend,
// components}, metrics{overall_p95_ms, error_rate, anomaly_score, sample_size}, alerts[],
// timestamp}. metrics.overall_p95_ms, error_rate and sample_size are required;
// health_score may be absent. timestamp may be unix seconds or RFC 3339. Anything else
// is an error wrapping ErrBadHealth.
func ParseHealth(body []byte) (detector.Health, error) {
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
		return detector.Health{}, fmt.Errorf("%w: %s", ErrBadHealth, ledger.ClipText(err.Error()))
	}
	if dec.More() {
		return detector.Health{}, fmt.Errorf("%w: trailing data", ErrBadHealth)
	}
	// The reason quotes what the endpoint sent: clipped, as it reaches logs and, after
	// UnreachableAfter polls, the ledger.
	bad := func(format string, args ...any) (detector.Health, error) {
		return detector.Health{}, fmt.Errorf("%w: %s", ErrBadHealth, ledger.ClipText(fmt.Sprintf(format, args...)))
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
	h := detector.Health{Status: w.Status, P95Ms: *m.P95Ms, ErrorRate: *m.ErrorRate, SampleSize: uint64(*m.SampleSize), Alerts: len(w.Alerts)}
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

// Intake registers the poller: every service with a health_url is polled every its
// Service.PollInterval (default the detector's PollInterval) with PollTimeout, and a
// second after a poll under the threshold that has not opened yet, to confirm it.
func Intake(o Options) detector.NewIntake {
	return func(d *detector.Detector) (detector.Intake, error) { return New(d, o) }
}

// Options configure the poller. The poll period and timeout are the detector's
// (Options.PollInterval, PollTimeout; a service's own PollInterval wins).
type Options struct {
	Logger *slog.Logger
}

// Poller polls the health endpoints of the pull-mode services and feeds what they report
// to the detector (Detector.Observe, Detector.ObserveFailure).
type Poller struct {
	d       *detector.Detector
	log     *slog.Logger
	every   time.Duration // the default period
	timeout time.Duration
	targets []target
	// mu keeps one round at a time; nextPoll is when each service is due (pollDue).
	mu       sync.Mutex
	nextPoll map[target]time.Time
	// guarded polls health URLs through the dial guard; unguarded those of services with
	// AllowPrivateNetwork. Neither takes a proxy from the environment.
	guarded, unguarded *http.Client
}

type target struct {
	tenant string
	svc    detector.Service
}

// New builds the poller of d's services that have a health URL.
func New(d *detector.Detector, o Options) (*Poller, error) {
	if o.Logger == nil {
		o.Logger = d.Logger()
	}
	do := d.Options()
	p := &Poller{d: d, log: o.Logger.With("source", detector.SourcePull), every: do.PollInterval, timeout: do.PollTimeout,
		guarded: pollClient(true, do.PollTimeout), unguarded: pollClient(false, do.PollTimeout)}
	for _, t := range d.Tenants() {
		for _, s := range t.Services {
			if s.HealthURL != "" {
				p.targets = append(p.targets, target{tenant: t.ID, svc: s})
			}
		}
	}
	return p, nil
}

// Source implements detector.Intake.
func (p *Poller) Source() detector.Source { return detector.SourcePull }

// Routes implements detector.Intake: none.
func (p *Poller) Routes() []detector.Route { return nil }

// Collectors implements detector.Intake: the failed polls are the detector's own
// counter (Stats.PollErrors).
func (p *Poller) Collectors() []prometheus.Collector { return nil }

// Run polls each service when it is due until ctx ends.
func (p *Poller) Run(ctx context.Context) error {
	if len(p.targets) == 0 {
		return nil
	}
	tick := time.NewTicker(p.pollTick())
	defer tick.Stop()
	for {
		if err := p.pollDue(ctx, p.d.Now()); err != nil && ctx.Err() == nil {
			p.log.Warn("poll round failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// pollConcurrency bounds the polls in flight.
const pollConcurrency = 8

// Poll fetches the health endpoint of every pull-mode service whose lease this replica
// holds (taking free leases), with PollTimeout each, and judges what they report through
// the same gate as push mode. An endpoint that is unreachable, answers non-2xx or sends
// an unusable body is logged and counted (Stats.PollErrors); UnreachableAfter such polls
// in a row judge the service down. Run polls each service every Service.PollInterval (see
// pollDue); Poll polls them all now.
func (p *Poller) Poll(ctx context.Context, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, err := p.pollTargets(ctx, now, p.targets)
	return err
}

// confirmAfter is how soon a service is polled again after a poll under its tenant's
// threshold that did not open an incident yet: the confirming poll the gate needs comes a
// second later, not a whole interval, so detection takes at most an interval and a second.
const confirmAfter = time.Second

// pollEvery is a service's poll period.
func (p *Poller) pollEvery(s detector.Service) time.Duration {
	if s.PollInterval > 0 {
		return s.PollInterval
	}
	return p.every
}

// pollTick is how often Run looks for services due a poll.
func (p *Poller) pollTick() time.Duration {
	tick := confirmAfter
	for _, pt := range p.targets {
		tick = min(tick, p.pollEvery(pt.svc))
	}
	return tick
}

// pollDue polls the services whose time has come: each every its own interval, or
// confirmAfter after a bad poll that has not opened yet.
func (p *Poller) pollDue(ctx context.Context, now time.Time) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.nextPoll == nil {
		p.nextPoll = make(map[target]time.Time, len(p.targets))
	}
	var due []target
	for _, pt := range p.targets {
		if next, ok := p.nextPoll[pt]; !ok || !now.Before(next) {
			due = append(due, pt)
		}
	}
	confirm, err := p.pollTargets(ctx, now, due)
	for i, pt := range due {
		next := now.Add(p.pollEvery(pt.svc))
		if confirm[i] {
			next = now.Add(confirmAfter)
		}
		p.nextPoll[pt] = next
	}
	return err
}

// pollTargets polls targets concurrently (at most pollConcurrency at once) and reports,
// per target, whether it wants a confirming poll.
func (p *Poller) pollTargets(ctx context.Context, now time.Time, targets []target) ([]bool, error) {
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
			c, err := p.pollOne(ctx, pt, now)
			confirm[i] = c
			if err != nil && !errors.Is(err, detector.ErrLeaseLost) {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return confirm, errors.Join(errs...)
}

// pollOne fetches one service's health and judges it; confirm reports a judgement under
// the threshold that has not opened an incident yet.
func (p *Poller) pollOne(ctx context.Context, pt target, now time.Time) (confirm bool, err error) {
	o := detector.Observation{Source: detector.SourcePull, Tenant: pt.tenant, Service: pt.svc.Name, At: now,
		Where: "endpoint " + redactURL(pt.svc.HealthURL), LeaseFor: 2*p.pollEvery(pt.svc) + p.timeout}
	// Only the replica holding the service's lease polls it.
	if held, err := p.d.Hold(ctx, pt.tenant, pt.svc.Name, o.LeaseFor); err != nil || !held {
		return false, err
	}
	h, ferr := p.fetchHealth(ctx, pt.svc)
	if ferr != nil {
		o.Failure = pollFailure(ferr)
	} else {
		o.Health = h
	}
	j, err := p.d.Judge(ctx, o)
	return j.Confirm, err
}

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
func (p *Poller) fetchHealth(ctx context.Context, svc detector.Service) (detector.Health, error) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	client := p.guarded
	if svc.AllowPrivateNetwork {
		client = p.unguarded
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, svc.HealthURL, nil)
	if err != nil {
		return detector.Health{}, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return detector.Health{}, fmt.Errorf("GET: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxHealthBytes))
		return detector.Health{}, fmt.Errorf("%w: HTTP %d", ErrBadHealth, resp.StatusCode)
	}
	if resp.ContentLength > maxHealthBytes {
		return detector.Health{}, fmt.Errorf("%w: body of %d bytes is over %d", ErrBadHealth, resp.ContentLength, maxHealthBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxHealthBytes+1))
	if err != nil {
		return detector.Health{}, fmt.Errorf("read body: %w", err)
	}
	if len(body) > maxHealthBytes {
		return detector.Health{}, fmt.Errorf("%w: body over %d bytes", ErrBadHealth, maxHealthBytes)
	}
	return ParseHealth(body)
}

// MaxRedirects is how many redirects a health poll follows, each only to the scheme, host
// and port of the health URL.
const MaxRedirects = 3

// pollClient is the health poller's HTTP client: no proxy from the environment (it would
// see every poll and be dialled instead of the target, outside the guard), redirects
// followed only within the health URL's origin, at most MaxRedirects, and, when guarded,
// non-public addresses refused at dial time. PollTimeout bounds each poll (a context).
func pollClient(guarded bool, dialTimeout time.Duration) *http.Client {
	return &http.Client{
		Transport:     netguard.Transport(guarded, ErrPrivateAddress, dialTimeout),
		CheckRedirect: netguard.SameOrigin(MaxRedirects),
	}
}
