package otlp

import (
	"crypto/sha256"
	"encoding/binary"
	"math"
	"sort"
	"strconv"

	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	metricspb "go.opentelemetry.io/proto/otlp/metrics/v1"
)

// Metric is the histogram read: the stable HTTP server semantic conventions' request
// duration, in seconds (or, from older instrumentations, milliseconds).
const Metric = "http.server.request.duration"

// Bounds of one data point.
const (
	maxBuckets = 512  // explicit bounds or exponential buckets of one point
	maxScale   = 20   // exponential scales outside −10..20 are refused
	maxSpans   = 4096 // distinct buckets of one service in one second
)

// Reasons a data point is skipped, the label of alertengine_detector_otlp_skipped_points_total.
const (
	SkipBadPoint     = "bad_point"    // NaN or negative bounds, counts that do not add up, too many buckets
	SkipBackwards    = "backwards"    // a cumulative point lower than the last one with the same start
	SkipOverSeries   = "series_limit" // a new series past Options.MaxSeries
	SkipUnknown      = "unknown"      // a service the tenant does not watch, or no service.name
	SkipUnit         = "unit"         // a unit other than s or ms
	SkipStale        = "stale"        // older than the window, or first seen long after its start
	SkipOverBuckets  = "bucket_limit" // the service's second already holds maxSpans distinct buckets
	SkipTemporality  = "temporality"  // neither delta nor cumulative
	skipReasonsCount = 8
)

// SkipReasons lists every reason.
var SkipReasons = []string{SkipBadPoint, SkipBackwards, SkipOverSeries, SkipUnknown, SkipUnit, SkipStale, SkipOverBuckets, SkipTemporality}

// series is the last cumulative point of one series: a delta is taken against it.
type series struct {
	start   uint64
	time    uint64
	count   uint64
	buckets map[int64]uint64 // by bucket index (see point.idx)
	layout  uint64           // hash of the bucket layout (explicit bounds, or the exponential scale)
	expo    bool             // an exponential histogram: scale says its layout
	scale   int32
	seen    int64 // unix second it was last updated
}

// point is one data point made uniform: counts by bucket (each bucket a span in ms), the
// layout's hash, and whether it is 5xx.
type point struct {
	key     [32]byte
	start   uint64
	time    uint64
	count   uint64
	spans   []span
	buckets []uint64
	// idx numbers the buckets within the layout: explicit bucket i is i; exponential
	// bucket i is offset+i, the zero bucket math.MinInt64. Two points of one layout are
	// subtracted bucket by bucket by idx.
	idx    []int64
	layout uint64
	expo   bool
	scale  int32
	err5xx bool
}

// attrsKey identifies a series: the tenant, the service, the resource's and the point's
// attributes (sorted, hashed: a value of any size costs 32 bytes).
func attrsKey(tenant, service string, res, pt []*commonpb.KeyValue) [32]byte {
	h := sha256.New()
	h.Write([]byte(tenant))
	h.Write([]byte{0})
	h.Write([]byte(service))
	for _, attrs := range [][]*commonpb.KeyValue{res, pt} {
		kv := make([]string, 0, len(attrs))
		for _, a := range attrs {
			kv = append(kv, a.GetKey()+"\x00"+anyString(a.GetValue()))
		}
		sort.Strings(kv)
		h.Write([]byte{1})
		for _, s := range kv {
			h.Write([]byte(s))
			h.Write([]byte{0})
		}
	}
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

func anyString(v *commonpb.AnyValue) string {
	switch x := v.GetValue().(type) {
	case *commonpb.AnyValue_StringValue:
		return x.StringValue
	case *commonpb.AnyValue_IntValue:
		return strconv.FormatInt(x.IntValue, 10)
	case *commonpb.AnyValue_DoubleValue:
		return strconv.FormatFloat(x.DoubleValue, 'g', -1, 64)
	case *commonpb.AnyValue_BoolValue:
		return strconv.FormatBool(x.BoolValue)
	}
	return ""
}

// attr returns the value of key among attrs ("" if absent).
func attr(attrs []*commonpb.KeyValue, keys ...string) string {
	for _, k := range keys {
		for _, a := range attrs {
			if a.GetKey() == k {
				return anyString(a.GetValue())
			}
		}
	}
	return ""
}

// is5xx reads the point's status code (http.response.status_code, or the older
// http.status_code).
func is5xx(attrs []*commonpb.KeyValue) bool {
	code, err := strconv.Atoi(attr(attrs, "http.response.status_code", "http.status_code"))
	return err == nil && code >= 500 && code <= 599
}

func finite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// explicitPoint makes an explicit-bucket point uniform; ok false: a bad point.
func explicitPoint(dp *metricspb.HistogramDataPoint, scale float64) (p point, ok bool) {
	bounds, counts := dp.GetExplicitBounds(), dp.GetBucketCounts()
	if len(counts) == 0 || len(counts) != len(bounds)+1 || len(bounds) > maxBuckets {
		return point{}, false
	}
	var sum uint64
	for _, c := range counts {
		if sum+c < sum {
			return point{}, false
		}
		sum += c
	}
	if sum != dp.GetCount() {
		return point{}, false
	}
	h := sha256.New()
	for i, b := range bounds {
		if !finite(b) || b < 0 || (i > 0 && b <= bounds[i-1]) {
			return point{}, false
		}
		_ = binary.Write(h, binary.LittleEndian, b)
	}
	p.spans = make([]span, len(counts))
	p.idx = make([]int64, len(counts))
	for i := range counts {
		lo, hi := 0.0, 0.0
		switch {
		case len(bounds) == 0:
			lo, hi = 0, 0
		case i == 0:
			lo, hi = 0, bounds[0]
			if dp.Min != nil && finite(dp.GetMin()) && dp.GetMin() >= 0 && dp.GetMin() < hi {
				lo = dp.GetMin()
			}
		case i == len(bounds):
			lo, hi = bounds[i-1], bounds[i-1]
			if dp.Max != nil && finite(dp.GetMax()) && dp.GetMax() > lo {
				hi = dp.GetMax()
			}
		default:
			lo, hi = bounds[i-1], bounds[i]
		}
		p.spans[i] = span{lo * scale, hi * scale}
		p.idx[i] = int64(i)
	}
	p.buckets = append([]uint64(nil), counts...)
	p.count = sum
	p.layout = binary.LittleEndian.Uint64(h.Sum(nil))
	p.start, p.time = dp.GetStartTimeUnixNano(), dp.GetTimeUnixNano()
	p.err5xx = is5xx(dp.GetAttributes())
	return p, true
}

// exponentialPoint makes a base-2 exponential point uniform: the zero bucket is a point
// mass at 0, bucket i of the positive range covers (base^i, base^(i+1)], base =
// 2^(2^−scale). Negative buckets (no duration is negative) make it a bad point.
func exponentialPoint(dp *metricspb.ExponentialHistogramDataPoint, scale float64) (p point, ok bool) {
	s := dp.GetScale()
	pos := dp.GetPositive()
	counts := pos.GetBucketCounts()
	if s < -10 || s > maxScale || len(counts) > maxBuckets {
		return point{}, false
	}
	for _, c := range dp.GetNegative().GetBucketCounts() {
		if c > 0 {
			return point{}, false
		}
	}
	sum := dp.GetZeroCount()
	for _, c := range counts {
		if sum+c < sum {
			return point{}, false
		}
		sum += c
	}
	if sum != dp.GetCount() {
		return point{}, false
	}
	base := math.Exp2(math.Exp2(-float64(s)))
	off := pos.GetOffset()
	p.spans = make([]span, 0, len(counts)+1)
	p.buckets = make([]uint64, 0, len(counts)+1)
	zt := dp.GetZeroThreshold()
	if !finite(zt) || zt < 0 {
		return point{}, false
	}
	p.idx = make([]int64, 0, len(counts)+1)
	p.spans = append(p.spans, span{0, zt * scale})
	p.buckets = append(p.buckets, dp.GetZeroCount())
	p.idx = append(p.idx, math.MinInt64)
	for i, c := range counts {
		idx := float64(off) + float64(i)
		lo, hi := math.Pow(base, idx), math.Pow(base, idx+1)
		if !finite(lo) || !finite(hi) {
			return point{}, false
		}
		p.spans = append(p.spans, span{lo * scale, hi * scale})
		p.buckets = append(p.buckets, c)
		p.idx = append(p.idx, int64(off)+int64(i))
	}
	p.count = sum
	p.layout = 1<<63 | math.Float64bits(zt)>>40
	p.expo, p.scale = true, s
	p.start, p.time = dp.GetStartTimeUnixNano(), dp.GetTimeUnixNano()
	p.err5xx = is5xx(dp.GetAttributes())
	return p, true
}

// delta is what p adds to the series' last point prev (nil: none yet). A cumulative point
// that starts anew (a restarted process) is its own delta; one lower than prev with the
// same start goes backwards (bad); a changed layout (a rescaled exponential histogram)
// only sets the new base. fresh reports a usable delta.
func delta(p point, prev *series) (d point, fresh bool, backwards bool) {
	if prev == nil || p.start != prev.start {
		return p, true, false
	}
	if p.layout != prev.layout || p.time <= prev.time || p.expo && p.scale > prev.scale {
		return point{}, false, false
	}
	if p.expo && p.scale < prev.scale {
		// The histogram was rescaled to fit a wider range: each bucket of the last point
		// lies within one of the coarser new ones.
		prev = rescale(prev, prev.scale-p.scale)
	}
	if p.count < prev.count {
		return point{}, false, true
	}
	d = p
	d.buckets = make([]uint64, len(p.buckets))
	seen := 0
	for i, n := range p.buckets {
		old, ok := prev.buckets[p.idx[i]]
		if ok {
			seen++
		}
		if n < old {
			return point{}, false, true
		}
		d.buckets[i] = n - old
	}
	if seen < len(prev.buckets) {
		// A bucket of the last point is gone: only a rescale does that.
		for idx, old := range prev.buckets {
			if old == 0 {
				continue
			}
			found := false
			for _, j := range p.idx {
				found = found || j == idx
			}
			if !found {
				return point{}, false, true
			}
		}
	}
	d.count = p.count - prev.count
	return d, true, false
}

// remember makes p the series' last point.
func remember(s *series, p point, now int64) {
	s.start, s.time, s.count, s.layout, s.expo, s.scale, s.seen = p.start, p.time, p.count, p.layout, p.expo, p.scale, now
	s.buckets = make(map[int64]uint64, len(p.buckets))
	for i, n := range p.buckets {
		s.buckets[p.idx[i]] = n
	}
}

// rescale maps an exponential series' buckets down by shift scales: bucket i becomes
// i >> shift (the zero bucket stays).
func rescale(s *series, shift int32) *series {
	out := *s
	out.buckets = make(map[int64]uint64, len(s.buckets))
	for i, n := range s.buckets {
		if i != math.MinInt64 {
			i >>= shift
		}
		out.buckets[i] += n
	}
	return &out
}
