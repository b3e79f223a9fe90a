package otlp

import (
	"compress/gzip"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/ledger"
)

// Source is what the readings and entries of this intake carry.
const Source detector.Source = "otlp"

// Path is OTLP/HTTP's metrics path (a Collector's otlphttp exporter appends it to its
// endpoint).
const Path = "/v1/metrics"

// Defaults.
const (
	DefaultMaxBody    = 16 << 20 // a request body as sent (compressed or not)
	DefaultMaxDecoded = 64 << 20 // a request once decompressed
	DefaultMaxSeries  = 10_000   // series remembered at once, all tenants
	DefaultWindow     = time.Minute
	// seriesIdle forgets a series not exported for this long.
	seriesIdle = 10 * time.Minute
)

// Token is one tenant's bearer token for OTLP exports.
type Token struct {
	Tenant string
	// Token is the secret the exporter sends as "Authorization: Bearer TOKEN" (at least
	// 16 characters; compared in constant time, never logged).
	Token string
}

// Options configure the intake.
type Options struct {
	Tokens []Token
	// MaxBodyBytes bounds a request body as sent (default 16 MiB); MaxDecodedBytes once
	// gunzipped (default 64 MiB).
	MaxBodyBytes, MaxDecodedBytes int64
	// MaxSeries bounds the series remembered (default 10,000): points of new series past it
	// are skipped and counted.
	MaxSeries int
	// Window is how much of the recent past each judgement covers (default 1 min: the
	// OpenTelemetry SDK's default export interval).
	Window time.Duration
	Logger *slog.Logger
}

// Intake registers the intake on a detector (detector.Options.Intakes).
func Intake(o Options) detector.NewIntake {
	return func(d *detector.Detector) (detector.Intake, error) { return New(d, o) }
}

// Receiver is the OTLP/HTTP metrics intake.
type Receiver struct {
	d       *detector.Detector
	o       Options
	log     *slog.Logger
	tokens  []token
	mu      sync.Mutex // series and windows
	series  map[[32]byte]*series
	windows map[string]*window // "tenant/service"
	stats   counters
}

type token struct {
	digest [32]byte
	tenant string
}

type counters struct {
	requests, points atomic.Uint64
	refused          [5]atomic.Uint64 // by RefusedReasons
	skipped          [skipReasonsCount]atomic.Uint64
}

// Reasons a request is refused, the label of alertengine_detector_otlp_refused_total.
const (
	RefusedUnauthorized = "unauthorized" // 401
	RefusedTooLarge     = "too_large"    // 413: body or decoded body over the limit
	RefusedMalformed    = "malformed"    // 400: not an OTLP metrics request
	RefusedMediaType    = "media_type"   // 415: neither protobuf nor JSON, or an unknown encoding
	RefusedUnreadable   = "unreadable"   // 400: the body could not be read
)

// RefusedReasons lists every refusal reason.
var RefusedReasons = []string{RefusedUnauthorized, RefusedTooLarge, RefusedMalformed, RefusedMediaType, RefusedUnreadable}

// New builds the intake.
func New(d *detector.Detector, o Options) (*Receiver, error) {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBody
	}
	if o.MaxDecodedBytes <= 0 {
		o.MaxDecodedBytes = DefaultMaxDecoded
	}
	if o.MaxSeries <= 0 {
		o.MaxSeries = DefaultMaxSeries
	}
	if o.Window <= 0 {
		o.Window = DefaultWindow
	}
	if o.Logger == nil {
		o.Logger = d.Logger()
	}
	r := &Receiver{d: d, o: o, log: o.Logger.With("source", Source), series: map[[32]byte]*series{}, windows: map[string]*window{}}
	seen := map[[32]byte]bool{}
	for i, t := range o.Tokens {
		if _, ok := d.Tenant(t.Tenant); !ok {
			return nil, fmt.Errorf("otlp: tokens[%d]: unknown tenant %q", i, t.Tenant)
		}
		if len(t.Token) < 16 {
			return nil, fmt.Errorf("otlp: tokens[%d] (%s): token shorter than 16 characters", i, t.Tenant)
		}
		dg := sha256.Sum256([]byte(t.Token))
		if seen[dg] {
			return nil, fmt.Errorf("otlp: tokens[%d] (%s): token used twice", i, t.Tenant)
		}
		seen[dg] = true
		r.tokens = append(r.tokens, token{digest: dg, tenant: t.Tenant})
	}
	return r, nil
}

// Source implements detector.Intake.
func (r *Receiver) Source() detector.Source { return Source }

// Routes implements detector.Intake: POST /v1/metrics.
func (r *Receiver) Routes() []detector.Route {
	return []detector.Route{{Pattern: "POST " + Path, Handler: r.Handler(), MaxBody: r.o.MaxBodyBytes}}
}

// Run forgets idle series every minute until ctx ends.
func (r *Receiver) Run(ctx context.Context) error {
	tick := time.NewTicker(time.Minute)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
			r.forgetIdle(r.d.Now())
		}
	}
}

func (r *Receiver) forgetIdle(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	cut := now.Add(-seriesIdle).Unix()
	for k, s := range r.series {
		if s.seen < cut {
			delete(r.series, k)
		}
	}
	for k, w := range r.windows {
		w.forget(now.Add(-r.o.Window).Unix())
		if len(w.secs) == 0 {
			delete(r.windows, k)
		}
	}
}

// Stats are the intake's counters.
type Stats struct {
	Requests, Points uint64 // accepted requests; data points used
	Refused          map[string]uint64
	Skipped          map[string]uint64 // data points skipped, by SkipReasons
	Series           int               // series remembered now
}

// Stats returns the counters.
func (r *Receiver) Stats() Stats {
	s := Stats{Requests: r.stats.requests.Load(), Points: r.stats.points.Load(), Refused: map[string]uint64{}, Skipped: map[string]uint64{}}
	for i, x := range RefusedReasons {
		s.Refused[x] = r.stats.refused[i].Load()
	}
	for i, x := range SkipReasons {
		s.Skipped[x] = r.stats.skipped[i].Load()
	}
	r.mu.Lock()
	s.Series = len(r.series)
	r.mu.Unlock()
	return s
}

// Collectors implements detector.Intake.
func (r *Receiver) Collectors() []prometheus.Collector {
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "alertengine_detector_otlp_requests_total", Help: "OTLP metrics requests accepted."},
			func() float64 { return float64(r.stats.requests.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "alertengine_detector_otlp_points_total", Help: "http.server.request.duration data points used."},
			func() float64 { return float64(r.stats.points.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "alertengine_detector_otlp_series", Help: "Histogram series remembered (bounded by the intake's max series)."},
			func() float64 { return float64(r.Stats().Series) }),
	}
	for i, x := range RefusedReasons {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "alertengine_detector_otlp_refused_total",
			Help: "OTLP metrics requests refused, by reason.", ConstLabels: prometheus.Labels{"reason": x}},
			func() float64 { return float64(r.stats.refused[i].Load()) }))
	}
	for i, x := range SkipReasons {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "alertengine_detector_otlp_skipped_points_total",
			Help: "Data points skipped, by reason.", ConstLabels: prometheus.Labels{"reason": x}},
			func() float64 { return float64(r.stats.skipped[i].Load()) }))
	}
	return cs
}

func (r *Receiver) refuse(w http.ResponseWriter, asJSON bool, code int, reason, tenant, msg string) {
	for i, x := range RefusedReasons {
		if x == reason {
			r.stats.refused[i].Add(1)
		}
	}
	r.log.Warn("otlp request refused", "reason", reason, "tenant", tenant, "why", ledger.ClipText(msg))
	writeStatus(w, asJSON, code, msg)
}

// writeStatus answers an error with a google.rpc.Status (code, message), as OTLP/HTTP
// asks: protobuf or JSON like the request.
func writeStatus(w http.ResponseWriter, asJSON bool, code int, msg string) {
	rpc := int64(3) // INVALID_ARGUMENT
	switch code {
	case http.StatusUnauthorized:
		rpc = 16 // UNAUTHENTICATED
	case http.StatusRequestEntityTooLarge:
		rpc = 8 // RESOURCE_EXHAUSTED
	}
	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		fmt.Fprintf(w, `{"code":%d,"message":%q}`, rpc, msg)
		return
	}
	var b []byte
	b = protowire.AppendTag(b, 1, protowire.VarintType)
	b = protowire.AppendVarint(b, uint64(rpc))
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendString(b, msg)
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(code)
	_, _ = w.Write(b)
}

// writeOK answers an accepted request: an ExportMetricsServiceResponse, with a partial
// success naming the points skipped when there were any.
func writeOK(w http.ResponseWriter, asJSON bool, rejected int64, msg string) {
	if asJSON {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		if rejected == 0 {
			_, _ = w.Write([]byte(`{}`))
			return
		}
		fmt.Fprintf(w, `{"partialSuccess":{"rejectedDataPoints":"%d","errorMessage":%q}}`, rejected, msg)
		return
	}
	var b []byte
	if rejected > 0 {
		var ps []byte
		ps = protowire.AppendTag(ps, 1, protowire.VarintType)
		ps = protowire.AppendVarint(ps, uint64(rejected))
		ps = protowire.AppendTag(ps, 2, protowire.BytesType)
		ps = protowire.AppendString(ps, msg)
		b = protowire.AppendTag(b, 1, protowire.BytesType)
		b = protowire.AppendBytes(b, ps)
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
}

// Handler serves OTLP/HTTP metrics exports: "Authorization: Bearer TOKEN" of a tenant
// (401 otherwise), a body of application/x-protobuf or application/json (415 otherwise),
// gzip or not (Content-Encoding), at most MaxBodyBytes as sent and MaxDecodedBytes
// decoded (413). The http.server.request.duration histograms of the tenant's watched
// services (resource attribute service.name) are turned into per-second request counts
// by latency bucket and 5xx, and each service exported is judged at once over the last
// Window (Detector.Judge): p95 interpolated within buckets, the 5xx share, the requests.
// Other metrics are ignored; bad points are skipped and counted, and the answer's
// partial_success says how many.
func (r *Receiver) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		mt, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type"))
		asJSON := mt == "application/json"
		tenant := r.authenticate(req)
		if tenant == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="alertengine"`)
			r.refuse(w, asJSON, http.StatusUnauthorized, RefusedUnauthorized, "", "missing or wrong bearer token")
			return
		}
		if mt != "application/x-protobuf" && !asJSON {
			r.refuse(w, false, http.StatusUnsupportedMediaType, RefusedMediaType, tenant, "Content-Type must be application/x-protobuf or application/json")
			return
		}
		if req.ContentLength > r.o.MaxBodyBytes {
			r.refuse(w, asJSON, http.StatusRequestEntityTooLarge, RefusedTooLarge, tenant, fmt.Sprintf("body over %d bytes", r.o.MaxBodyBytes))
			return
		}
		var body io.Reader = http.MaxBytesReader(w, req.Body, r.o.MaxBodyBytes)
		switch enc := strings.ToLower(strings.TrimSpace(req.Header.Get("Content-Encoding"))); enc {
		case "", "identity":
		case "gzip":
			zr, err := gzip.NewReader(body)
			if err != nil {
				r.refuse(w, asJSON, http.StatusBadRequest, RefusedMalformed, tenant, "body is not gzip")
				return
			}
			defer zr.Close()
			body = zr
		default:
			r.refuse(w, asJSON, http.StatusUnsupportedMediaType, RefusedMediaType, tenant, "Content-Encoding must be gzip or none")
			return
		}
		raw, err := io.ReadAll(io.LimitReader(body, r.o.MaxDecodedBytes+1))
		var big *http.MaxBytesError
		switch {
		case errors.As(err, &big):
			r.refuse(w, asJSON, http.StatusRequestEntityTooLarge, RefusedTooLarge, tenant, fmt.Sprintf("body over %d bytes", r.o.MaxBodyBytes))
			return
		case errors.Is(err, gzip.ErrChecksum), errors.Is(err, gzip.ErrHeader), errors.Is(err, io.ErrUnexpectedEOF):
			r.refuse(w, asJSON, http.StatusBadRequest, RefusedMalformed, tenant, "body is not valid gzip")
			return
		case err != nil:
			r.refuse(w, asJSON, http.StatusBadRequest, RefusedUnreadable, tenant, "could not read the body")
			return
		case int64(len(raw)) > r.o.MaxDecodedBytes:
			r.refuse(w, asJSON, http.StatusRequestEntityTooLarge, RefusedTooLarge, tenant, fmt.Sprintf("decoded body over %d bytes", r.o.MaxDecodedBytes))
			return
		}
		md, err := Decode(raw, asJSON)
		if err != nil {
			r.refuse(w, asJSON, http.StatusBadRequest, RefusedMalformed, tenant, err.Error())
			return
		}
		r.stats.requests.Add(1)
		// Once accepted, an export is judged to the end even if the exporter hangs up.
		rejected, services := r.ingest(tenant, md, r.d.Now())
		ctx := context.WithoutCancel(req.Context())
		for _, svc := range services {
			if err := r.judge(ctx, tenant, svc); err != nil && !errors.Is(err, detector.ErrLeaseLost) {
				r.log.Error("otlp reading not judged", "tenant", tenant, "service", svc, "err", err)
			}
		}
		msg := ""
		if rejected > 0 {
			msg = fmt.Sprintf("%d %s data points skipped (bad, stale, or over the series limit)", rejected, Metric)
		}
		writeOK(w, asJSON, rejected, msg)
	})
}

// Decode reads an ExportMetricsServiceRequest (protobuf or OTLP/JSON). Its only field,
// resource_metrics = 1, is MetricsData's, so it is read as one; unknown fields are
// ignored, as OTLP asks.
func Decode(raw []byte, asJSON bool) (*metricspb.MetricsData, error) {
	md := &metricspb.MetricsData{}
	var err error
	if asJSON {
		err = protojson.UnmarshalOptions{DiscardUnknown: true}.Unmarshal(raw, md)
	} else {
		err = proto.Unmarshal(raw, md)
	}
	if err != nil {
		return nil, fmt.Errorf("not an OTLP metrics request: %s", ledger.Clip(err.Error(), 200))
	}
	return md, nil
}

func (r *Receiver) authenticate(req *http.Request) string {
	scheme, tok, ok := strings.Cut(req.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return ""
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	match := ""
	for _, t := range r.tokens {
		if subtle.ConstantTimeCompare(got[:], t.digest[:]) == 1 {
			match = t.tenant
		}
	}
	return match
}

func (r *Receiver) skip(reason string, n int64) {
	for i, x := range SkipReasons {
		if x == reason {
			r.stats.skipped[i].Add(uint64(n))
		}
	}
}

// ingest adds the request's request-duration points to the windows of the tenant's
// services; it returns how many points were skipped and the services that got data.
func (r *Receiver) ingest(tenant string, md *metricspb.MetricsData, now time.Time) (rejected int64, services []string) {
	t, _ := r.d.Tenant(tenant)
	watched := map[string]bool{}
	for _, s := range t.Services {
		watched[s.Name] = true
	}
	touched := map[string]bool{}
	oldest := now.Add(-r.o.Window)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, rm := range md.GetResourceMetrics() {
		res := rm.GetResource().GetAttributes()
		svc := attr(res, "service.name")
		for _, sm := range rm.GetScopeMetrics() {
			for _, m := range sm.GetMetrics() {
				if m.GetName() != Metric {
					continue
				}
				var pts []point
				var temporality metricspb.AggregationTemporality
				bad := int64(0)
				scale, unitOK := unitScale(m.GetUnit())
				switch {
				case m.GetHistogram() != nil:
					h := m.GetHistogram()
					temporality = h.GetAggregationTemporality()
					for _, dp := range h.GetDataPoints() {
						if p, ok := explicitPoint(dp, scale); ok {
							p.key = attrsKey(tenant, svc, res, dp.GetAttributes())
							pts = append(pts, p)
						} else {
							bad++
						}
					}
				case m.GetExponentialHistogram() != nil:
					h := m.GetExponentialHistogram()
					temporality = h.GetAggregationTemporality()
					for _, dp := range h.GetDataPoints() {
						if p, ok := exponentialPoint(dp, scale); ok {
							p.key = attrsKey(tenant, svc, res, dp.GetAttributes())
							pts = append(pts, p)
						} else {
							bad++
						}
					}
				default:
					continue
				}
				n := int64(len(pts)) + bad
				switch {
				case !watched[svc]:
					r.skip(SkipUnknown, n)
					rejected += n
					continue
				case !unitOK:
					r.skip(SkipUnit, n)
					rejected += n
					continue
				case temporality != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA &&
					temporality != metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE:
					r.skip(SkipTemporality, n)
					rejected += n
					continue
				}
				r.skip(SkipBadPoint, bad)
				rejected += bad
				for _, p := range pts {
					if reason := r.addPoint(tenant, svc, p, temporality, oldest, now); reason != "" {
						r.skip(reason, 1)
						rejected++
						continue
					}
					r.stats.points.Add(1)
					touched[svc] = true
				}
			}
		}
	}
	for s := range touched {
		services = append(services, s)
	}
	return rejected, services
}

// unitScale is the factor from the metric's unit to milliseconds.
func unitScale(unit string) (float64, bool) {
	switch unit {
	case "s":
		return 1000, true
	case "ms":
		return 1, true
	}
	return 0, false
}

// addPoint adds one point's requests to its service's window (the delta since the
// series' last point when cumulative); it returns why it was skipped, or "".
func (r *Receiver) addPoint(tenant, svc string, p point, temporality metricspb.AggregationTemporality, oldest, now time.Time) string {
	at := time.Unix(0, int64(p.time))
	if p.time == 0 || at.Before(oldest) || at.After(now.Add(time.Minute)) {
		return SkipStale
	}
	d := p
	if temporality == metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE {
		s := r.series[p.key]
		if s == nil && len(r.series) >= r.o.MaxSeries {
			return SkipOverSeries
		}
		// A point of a new series, or of a restarted process (a new start), counts from
		// its start: it is its own delta, never a drop or a spike.
		anew := s == nil || p.start != s.start
		dd, fresh, backwards := delta(p, s)
		if s == nil {
			s = &series{}
			r.series[p.key] = s
		}
		remember(s, p, now.Unix())
		switch {
		case backwards:
			return SkipBackwards
		case !fresh:
			return "" // a new base (a rescaled histogram): nothing to add yet
		case anew && time.Unix(0, int64(p.start)).Before(oldest):
			// It started before the window: its counts are mostly history; it only sets
			// the base.
			return ""
		}
		d = dd
	}
	var errs uint64
	buckets := make(map[span]uint64, len(d.buckets))
	for i, n := range d.buckets {
		if n > 0 {
			buckets[d.spans[i]] += n
		}
	}
	if d.err5xx {
		errs = d.count
	}
	if d.count == 0 {
		return ""
	}
	key := tenant + "/" + svc
	w := r.windows[key]
	if w == nil {
		w = newWindow()
		r.windows[key] = w
	}
	if !w.add(at.Unix(), buckets, d.count, errs, maxSpans) {
		return SkipOverBuckets
	}
	return ""
}

// judge judges a service over the last Window.
func (r *Receiver) judge(ctx context.Context, tenant, svc string) error {
	now := r.d.Now()
	r.mu.Lock()
	w := r.windows[tenant+"/"+svc]
	var sum summary
	if w != nil {
		w.forget(now.Add(-r.o.Window).Unix())
		sum = w.summarise(now.Add(-r.o.Window).Unix(), now.Unix()+60)
	}
	r.mu.Unlock()
	h := detector.Health{P95Ms: sum.p95Ms, ErrorRate: sum.errorRate, SampleSize: sum.requests}
	_, err := r.d.Judge(ctx, detector.Observation{Source: Source, Tenant: tenant, Service: svc, At: now, Health: h,
		Where: fmt.Sprintf("OTLP %s over %s", Metric, r.o.Window), LeaseFor: 2 * r.o.Window})
	return err
}
