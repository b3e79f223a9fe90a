package otlp

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
	resourcepb "go.opentelemetry.io/proto/otlp/resource/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/alertengine/alertengine/detector"
	"github.com/alertengine/alertengine/detector/detectortest"
)

func kv(k, v string) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_StringValue{StringValue: v}}}
}

func kvInt(k string, v int64) *commonpb.KeyValue {
	return &commonpb.KeyValue{Key: k, Value: &commonpb.AnyValue{Value: &commonpb.AnyValue_IntValue{IntValue: v}}}
}

// bounds are the semantic conventions' advised buckets of http.server.request.duration (s).
var bounds = []float64{0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10}

// explicit is a data point of n requests spread over the buckets as counts says.
func explicit(start, at time.Time, status int64, counts []uint64, attrs ...*commonpb.KeyValue) *metricspb.HistogramDataPoint {
	var n uint64
	for _, c := range counts {
		n += c
	}
	return &metricspb.HistogramDataPoint{StartTimeUnixNano: uint64(start.UnixNano()), TimeUnixNano: uint64(at.UnixNano()), Count: n,
		BucketCounts: counts, ExplicitBounds: bounds, Attributes: append([]*commonpb.KeyValue{kvInt("http.response.status_code", status)}, attrs...)}
}

func request(service string, temporality metricspb.AggregationTemporality, pts ...*metricspb.HistogramDataPoint) *metricspb.MetricsData {
	return &metricspb.MetricsData{ResourceMetrics: []*metricspb.ResourceMetrics{{
		Resource: &resourcepb.Resource{Attributes: []*commonpb.KeyValue{kv("service.name", service)}},
		ScopeMetrics: []*metricspb.ScopeMetrics{{Metrics: []*metricspb.Metric{{Name: Metric, Unit: "s",
			Data: &metricspb.Metric_Histogram{Histogram: &metricspb.Histogram{AggregationTemporality: temporality, DataPoints: pts}}}}}},
	}}}
}

type reply struct {
	code int
	body []byte
}

func send(t testing.TB, url, token, contentType string, gz bool, body []byte) reply {
	t.Helper()
	if gz {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		_, _ = zw.Write(body)
		_ = zw.Close()
		body = b.Bytes()
	}
	req, _ := http.NewRequest(http.MethodPost, url+Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if gz {
		req.Header.Set("Content-Encoding", "gzip")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, b}
}

func pb(t testing.TB, md *metricspb.MetricsData) []byte {
	b, err := proto.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRefusals: no or a wrong token 401, another media type or encoding 415, a body that
// is not OTLP 400, an oversized one 413; nothing is counted as a point.
func TestRefusals(t *testing.T) {
	t.Parallel()
	_, d, srv := newIntake(t, func(o *Options) { o.MaxBodyBytes = 64 << 10; o.MaxDecodedBytes = 256 << 10 })
	now := time.Now()
	ok := pb(t, request("checkout", metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA, explicit(now.Add(-time.Second), now, 200, make([]uint64, 15))))
	for _, c := range []struct {
		name, token, ct string
		gz              bool
		body            []byte
		want            int
	}{
		{"no token", "", "application/x-protobuf", false, ok, 401},
		{"wrong token", "not-the-token-0000000000", "application/x-protobuf", false, ok, 401},
		{"text", acmeToken, "text/plain", false, ok, 415},
		{"garbage protobuf", acmeToken, "application/x-protobuf", false, []byte{0xff, 0xff, 0xff, 0x01}, 400},
		{"garbage JSON", acmeToken, "application/json", false, []byte(`{"resourceMetrics":7}`), 400},
		{"too large", acmeToken, "application/x-protobuf", false, bytes.Repeat([]byte{0}, 65<<10), 413},
		{"gzip bomb", acmeToken, "application/x-protobuf", true, bytes.Repeat([]byte{0x0a, 0x00}, 200<<10), 413},
	} {
		if got := send(t, srv.URL, c.token, c.ct, c.gz, c.body); got.code != c.want {
			t.Errorf("%s: %d %q, want %d", c.name, got.code, got.body, c.want)
		}
	}
	st := d.Intake(Source).(*Receiver).Stats()
	if st.Points != 0 || st.Refused[RefusedUnauthorized] != 2 || st.Refused[RefusedTooLarge] != 2 || st.Refused[RefusedMalformed] != 2 || st.Refused[RefusedMediaType] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestJSONDeltaExplicit: OTLP/JSON with delta explicit-bucket histograms: p95 interpolated
// within its bucket, the 5xx share from the status attribute, the requests counted.
func TestJSONDeltaExplicit(t *testing.T) {
	t.Parallel()
	_, d, srv := newIntake(t, nil)
	now := time.Now()
	// 100 requests spread evenly over 0..1 s (the buckets up to 1 s hold 0.5, 0.25, 0.25 s
	// worth of them): p95 is 950 ms. 10 more are 503s under 5 ms.
	counts := []uint64{0, 0, 0, 0, 0, 0, 25, 25, 25, 25, 0, 0, 0, 0, 0}
	errs := []uint64{10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	md := request("checkout", metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA,
		explicit(now.Add(-time.Second), now, 200, counts), explicit(now.Add(-time.Second), now, 503, errs))
	js, err := protojson.Marshal(md)
	if err != nil {
		t.Fatal(err)
	}
	if r := send(t, srv.URL, acmeToken, "application/json", false, js); r.code != 200 || string(r.body) != "{}" {
		t.Fatalf("%d %s", r.code, r.body)
	}
	st, err := d.Status(context.Background(), "acme", "checkout")
	if err != nil || st.Last == nil {
		t.Fatalf("status %+v %v", st, err)
	}
	// The 10 errors sit in the first bucket (0..5 ms): p95 of the 110 is the 104.5th
	// request, 94.5 of the 100 spread over 0.25..1 s.
	wantP95 := 250 + (104.5-10-25)/75*750
	if math.Abs(st.Last.P95Ms-wantP95) > 1 || st.Last.SampleSize != 110 || math.Abs(st.Last.ErrorRate-10.0/110) > 1e-9 || st.Last.Source != Source {
		t.Fatalf("reading %+v, want p95 %.1f, 110 requests, 5xx 9.1%%", st.Last, wantP95)
	}
}

// TestCumulative: a cumulative series is read as the difference of its points; a
// restarted process (a new start) is counted from its start, not as a drop or a spike; a
// point that goes backwards with the same start is skipped and counted.
func TestCumulative(t *testing.T) {
	t.Parallel()
	_, d, srv := newIntake(t, nil)
	rcv := d.Intake(Source).(*Receiver)
	cum := metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
	start := time.Now().Add(-3 * time.Second)
	at := func(k int) time.Time { return start.Add(time.Duration(k) * 500 * time.Millisecond) }
	bucketsAt := func(fast, slow uint64) []uint64 {
		c := make([]uint64, 15)
		c[1], c[9] = fast, slow // 5..10 ms, 750 ms..1 s
		return c
	}
	post := func(p *metricspb.HistogramDataPoint) reply {
		return send(t, srv.URL, acmeToken, "application/x-protobuf", false, pb(t, request("checkout", cum, p)))
	}
	post(explicit(start, at(1), 200, bucketsAt(100, 0)))
	post(explicit(start, at(2), 200, bucketsAt(150, 0)))
	// Backwards with the same start: skipped and counted.
	if r := post(explicit(start, at(3), 200, bucketsAt(120, 0))); r.code != 200 || !bytes.Contains(r.body, []byte("skipped")) {
		t.Fatalf("backwards: %d %q", r.code, r.body)
	}
	if got := rcv.Stats().Skipped[SkipBackwards]; got != 1 {
		t.Fatalf("backwards skipped %d, want 1", got)
	}
	// The process restarts: 30 requests since, all fast. Not a spike, not negative.
	restart := at(4)
	post(explicit(restart, at(5), 200, bucketsAt(30, 0)))
	rcv.mu.Lock()
	sum := rcv.windows["acme/checkout"].summarise(0, math.MaxInt64)
	rcv.mu.Unlock()
	// 100 + 50 (the delta) + 30 (since the restart); the backwards point added nothing.
	if sum.requests != 180 || sum.p95Ms > 10 {
		t.Fatalf("window %+v, want 180 fast requests", sum)
	}
}

// TestBadPointsSkipped: NaN or negative bounds, bucket counts that do not add up to the
// count, another unit, an unknown service: skipped, counted and reported as a partial
// success; the good point of the same request counts.
func TestBadPointsSkipped(t *testing.T) {
	t.Parallel()
	_, d, srv := newIntake(t, nil)
	now := time.Now()
	good := explicit(now.Add(-time.Second), now, 200, []uint64{0, 40, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	nan := explicit(now.Add(-time.Second), now, 200, make([]uint64, 15))
	nan.ExplicitBounds = append([]float64{math.NaN()}, bounds[1:]...)
	neg := explicit(now.Add(-time.Second), now, 200, make([]uint64, 15))
	neg.ExplicitBounds = append([]float64{-1}, bounds[1:]...)
	wrong := explicit(now.Add(-time.Second), now, 200, []uint64{1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
	wrong.Count = 1 << 40
	md := request("checkout", metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA, good, nan, neg, wrong)
	other := request("billing", metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_DELTA, explicit(now.Add(-time.Second), now, 200, make([]uint64, 15)))
	md.ResourceMetrics = append(md.ResourceMetrics, other.ResourceMetrics...)
	r := send(t, srv.URL, acmeToken, "application/x-protobuf", true, pb(t, md))
	if r.code != 200 {
		t.Fatalf("%d %q", r.code, r.body)
	}
	// partial_success {rejected_data_points: 4}
	if !bytes.Contains(r.body, []byte{0x08, 0x04}) {
		t.Fatalf("answer %q does not reject 4 points", r.body)
	}
	st := d.Intake(Source).(*Receiver).Stats()
	if st.Points != 1 || st.Skipped[SkipBadPoint] != 3 || st.Skipped[SkipUnknown] != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestManySeriesBounded: one request with 100,000 series (and attribute values of 64 KiB):
// the intake remembers at most MaxSeries of them, skips and counts the rest, and answers.
func TestManySeriesBounded(t *testing.T) {
	t.Parallel()
	_, d, srv := newIntake(t, func(o *Options) { o.MaxSeries = 1000 })
	now := time.Now()
	cum := metricspb.AggregationTemporality_AGGREGATION_TEMPORALITY_CUMULATIVE
	huge := strings.Repeat("r", 64<<10)
	pts := make([]*metricspb.HistogramDataPoint, 0, 100_000)
	for i := range 100_000 {
		route := "/r/" + strings.Repeat("x", i%7) + string(rune('a'+i%26))
		p := explicit(now.Add(-time.Second), now, 200, []uint64{0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, kvInt("i", int64(i)), kv("http.route", route))
		pts = append(pts, p)
	}
	pts[0].Attributes = append(pts[0].Attributes, kv("huge", huge))
	r := send(t, srv.URL, acmeToken, "application/x-protobuf", true, pb(t, request("checkout", cum, pts...)))
	if r.code != 200 {
		t.Fatalf("%d %.200q", r.code, r.body)
	}
	st := d.Intake(Source).(*Receiver).Stats()
	if st.Series != 1000 || st.Skipped[SkipOverSeries] != 99_000 || st.Points != 1000 {
		t.Fatalf("series %d, skipped %d, points %d; want 1000, 99,000, 1000", st.Series, st.Skipped[SkipOverSeries], st.Points)
	}
}

// TestQuantileInterpolates: requests spread over a bucket are read as spread evenly.
func TestQuantileInterpolates(t *testing.T) {
	t.Parallel()
	q := quantile(map[span]uint64{{0, 100}: 50, {100, 200}: 50}, 0.95)
	if math.Abs(q-190) > 1e-6 {
		t.Fatalf("p95 %v, want 190", q)
	}
	if q := quantile(map[span]uint64{{40, 40}: 10}, 0.95); q != 40 {
		t.Fatalf("point mass p95 %v", q)
	}
}

const acmeToken = "acme-otlp-token-0000000001"

// newIntake starts a detector (real clock) with the OTLP intake for tenant acme, whose
// service checkout is fed by OTLP, behind an HTTP server.
func newIntake(t *testing.T, tweak func(*Options)) (*detectortest.Harness, *detector.Detector, *httptest.Server) {
	t.Helper()
	h := detectortest.New(t)
	o := Options{Tokens: []Token{{Tenant: "acme", Token: acmeToken}}}
	if tweak != nil {
		tweak(&o)
	}
	tenants := []detector.Tenant{{ID: "acme", PolicyVersion: "policy-v7", IncidentsPerHour: -1,
		Services: []detector.Service{{Name: "checkout", Source: Source}, {Name: "payments", Source: Source}}}}
	d := h.Replica("r1", tenants, func(do *detector.Options) {
		do.Clock = time.Now
		do.Logger = slog.New(slog.DiscardHandler)
		do.Intakes = []detector.NewIntake{Intake(o)}
	})
	return h, d, h.Serve(d)
}
