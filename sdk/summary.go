package sdk

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
)

// ErrInvalidSummary is wrapped by every error ParseSummary returns.
var ErrInvalidSummary = errors.New("invalid summary")

// The latency domain shared by every sketch of the package. Latencies are milliseconds;
// anything below minLatencyMs (including 0) is recorded as minLatencyMs and anything above
// maxLatencyMs as maxLatencyMs, so every sketch has at most about 1150 bins and a pushed
// summary can be checked against a fixed index range.
const (
	relativeAccuracy = 0.01
	minLatencyMs     = 0.001 // 1 µs
	maxLatencyMs     = 1e7   // about 2.8 hours

	// wireVersion is the value of the "v" field of a pushed summary.
	wireVersion = 1
	// maxSketchBytes bounds the "sk" field ParseSummary accepts; a full-range sketch
	// encodes to about 9.3 KiB.
	maxSketchBytes = 64 << 10
	// maxLabelBytes bounds tenant, service and instance names.
	maxLabelBytes = 256
)

// scale is the index mapping of the latency domain and its clamped index range.
type scale struct {
	m                  *mapping.LogarithmicMapping
	gamma              float64
	minIndex, maxIndex int
}

func newScale() scale {
	m, err := mapping.NewLogarithmicMapping(relativeAccuracy)
	if err != nil {
		// relativeAccuracy is a valid constant; this cannot happen.
		panic(fmt.Sprintf("sdk: latency mapping: %v", err))
	}
	return scale{
		m:        m,
		gamma:    m.ToProto().Gamma,
		minIndex: m.Index(minLatencyMs),
		maxIndex: m.Index(maxLatencyMs),
	}
}

// index maps a latency in milliseconds to its bin, clamped to the domain. NaN counts as
// the smallest latency.
func (sc scale) index(ms float64) int {
	if !(ms > minLatencyMs) {
		return sc.minIndex
	}
	if ms >= maxLatencyMs {
		return sc.maxIndex
	}
	i := sc.m.Index(ms)
	// Rounding at the very ends of the domain must not escape it.
	return min(max(i, sc.minIndex), sc.maxIndex)
}

func (sc scale) newSketch() *ddsketch.DDSketch {
	return ddsketch.NewDDSketch(sc.m, store.NewDenseStore(), store.NewDenseStore())
}

// Summary is one compact summary per 1 s bucket per instance, shipped to a Redis Stream.
//
// A Summary is a value; its sketch is never modified after it is built, so copies may be
// shared between goroutines.
type Summary struct {
	Tenant, Service, Instance string
	// Bucket is the start of the bucket, UTC, a whole second.
	Bucket time.Time
	// Count is the number of requests that finished in the bucket.
	Count uint64
	// Errors5xx counts responses with a 5xx status (including handler panics).
	Errors5xx uint64
	// Errors4xx counts responses with a 4xx status; they are not errors of the service.
	Errors4xx uint64
	// Early, when not zero, says the summary was shipped this far into its bucket, before
	// the bucket ended, because its errors surged: more of the bucket follows in another
	// summary of the same bucket (the one shipped after the bucket ends says nothing of
	// Early). Whole milliseconds, 1 ms to 999 ms.
	Early time.Duration

	// sketch holds the bucket's latencies in milliseconds (DDSketch, 1% relative
	// accuracy); nil when Count is 0.
	sketch *ddsketch.DDSketch
}

// Quantile returns the latency at quantile q (0..1, clamped) in milliseconds, within 1%
// of a latency actually observed; 0 when the bucket is empty.
func (s Summary) Quantile(q float64) float64 {
	if s.Count == 0 {
		return 0
	}
	return quantile(s.sketch, q)
}

func quantile(sk *ddsketch.DDSketch, q float64) float64 {
	if sk == nil || sk.IsEmpty() {
		return 0
	}
	if math.IsNaN(q) {
		return 0
	}
	q = min(max(q, 0), 1)
	v, err := sk.GetValueAtQuantile(q)
	if err != nil {
		return 0
	}
	return v
}

// Fields returns the values of the summary for XADD:
//
//	v        1, the version of this format
//	tenant   tenant id
//	service  service name
//	instance instance name
//	bucket   start of the bucket, unix seconds
//	n        requests in the bucket
//	e5       5xx responses
//	e4       4xx responses
//	sk       the latency sketch in milliseconds: a DDSketch (logarithmic mapping, 1%
//	         relative accuracy) in the protobuf encoding of sketches-go
//	early    only on a summary shipped before its bucket ended (Early): how far into
//	         the bucket, in milliseconds, 1 to 999
func (s Summary) Fields() map[string]any {
	sk := s.sketch
	if sk == nil {
		sk = newScale().newSketch()
	}
	var buf bytes.Buffer
	sk.EncodeProto(&buf)
	f := map[string]any{
		"v":        wireVersion,
		"tenant":   s.Tenant,
		"service":  s.Service,
		"instance": s.Instance,
		"bucket":   s.Bucket.Unix(),
		"n":        s.Count,
		"e5":       s.Errors5xx,
		"e4":       s.Errors4xx,
		"sk":       buf.Bytes(),
	}
	if s.Early > 0 {
		f["early"] = s.Early.Milliseconds()
	}
	return f
}

// ParseSummary reads a summary from the values of a stream entry, as XREAD and XREADGROUP
// return them (strings) or as Fields produces them. Anything that is not a summary this
// package could have written (missing or malformed field, unknown version, inconsistent
// counts, a sketch with another mapping or out of range) is an error wrapping
// ErrInvalidSummary; no input makes it panic or allocate more than a few times its size.
func ParseSummary(values map[string]any) (Summary, error) {
	var s Summary
	v, err := uintField(values, "v")
	if err != nil {
		return Summary{}, err
	}
	if v != wireVersion {
		return Summary{}, fmt.Errorf("%w: unsupported version %d", ErrInvalidSummary, v)
	}
	if s.Tenant, err = labelField(values, "tenant"); err != nil {
		return Summary{}, err
	}
	if s.Service, err = labelField(values, "service"); err != nil {
		return Summary{}, err
	}
	if s.Instance, err = labelField(values, "instance"); err != nil {
		return Summary{}, err
	}
	bucketStr, err := stringField(values, "bucket")
	if err != nil {
		return Summary{}, err
	}
	bucket, err := strconv.ParseInt(bucketStr, 10, 64)
	// Year 1970 to 9999: time.Unix is well defined and the value round-trips.
	if err != nil || bucket < 0 || bucket > 253402300799 {
		return Summary{}, fmt.Errorf("%w: field \"bucket\": not a unix time in seconds", ErrInvalidSummary)
	}
	s.Bucket = time.Unix(bucket, 0).UTC()
	if s.Count, err = uintField(values, "n"); err != nil {
		return Summary{}, err
	}
	if s.Errors5xx, err = uintField(values, "e5"); err != nil {
		return Summary{}, err
	}
	if s.Errors4xx, err = uintField(values, "e4"); err != nil {
		return Summary{}, err
	}
	if s.Errors5xx > s.Count || s.Errors4xx > s.Count-s.Errors5xx {
		return Summary{}, fmt.Errorf("%w: %d 5xx and %d 4xx out of %d requests", ErrInvalidSummary, s.Errors5xx, s.Errors4xx, s.Count)
	}
	if _, ok := values["early"]; ok {
		ms, err := uintField(values, "early")
		if err != nil || ms < 1 || ms > 999 {
			return Summary{}, fmt.Errorf("%w: field \"early\": not 1 to 999 milliseconds", ErrInvalidSummary)
		}
		s.Early = time.Duration(ms) * time.Millisecond
	}
	raw, err := stringField(values, "sk")
	if err != nil {
		return Summary{}, err
	}
	if len(raw) > maxSketchBytes {
		return Summary{}, fmt.Errorf("%w: field \"sk\": %d bytes, limit %d", ErrInvalidSummary, len(raw), maxSketchBytes)
	}
	sc := newScale()
	sk, total, err := decodeSketch([]byte(raw), sc)
	if err != nil {
		return Summary{}, fmt.Errorf("%w: field \"sk\": %w", ErrInvalidSummary, err)
	}
	if math.Abs(total-float64(s.Count)) >= 0.5 {
		return Summary{}, fmt.Errorf("%w: sketch holds %v latencies for %d requests", ErrInvalidSummary, total, s.Count)
	}
	if s.Count > 0 {
		s.sketch = sk
	}
	return s, nil
}

// StreamKey is the Redis Stream a service's summaries are pushed to. Every instance of
// the service appends one entry per second that saw traffic (idle seconds are not sent);
// delivery is at least once, and data that arrives after its second was shipped goes
// out as another entry for the same bucket, so a reader adds up entries per bucket.
func StreamKey(prefix, tenant, service string) string {
	return prefix + "ae:metrics:" + tenant + ":" + service
}

// stringField returns a field as text, accepting what go-redis returns (string) and what
// Fields produces (string, []byte, integers).
func stringField(values map[string]any, key string) (string, error) {
	raw, ok := values[key]
	if !ok {
		return "", fmt.Errorf("%w: field %q missing", ErrInvalidSummary, key)
	}
	switch v := raw.(type) {
	case string:
		return v, nil
	case []byte:
		return string(v), nil
	case int:
		return strconv.FormatInt(int64(v), 10), nil
	case int64:
		return strconv.FormatInt(v, 10), nil
	case uint64:
		return strconv.FormatUint(v, 10), nil
	default:
		return "", fmt.Errorf("%w: field %q has type %T", ErrInvalidSummary, key, raw)
	}
}

func uintField(values map[string]any, key string) (uint64, error) {
	s, err := stringField(values, key)
	if err != nil {
		return 0, err
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: field %q: not an unsigned integer", ErrInvalidSummary, key)
	}
	return n, nil
}

func labelField(values map[string]any, key string) (string, error) {
	s, err := stringField(values, key)
	if err != nil {
		return "", err
	}
	if s == "" || len(s) > maxLabelBytes || !utf8.ValidString(s) {
		return "", fmt.Errorf("%w: field %q: want 1 to %d bytes of UTF-8", ErrInvalidSummary, key, maxLabelBytes)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", fmt.Errorf("%w: field %q: control character", ErrInvalidSummary, key)
		}
	}
	return s, nil
}

// Aggregate is the merge of any number of summaries (instances × buckets). The zero value
// is empty and ready to use. It is not safe for concurrent use.
type Aggregate struct {
	sketch            *ddsketch.DDSketch
	count, e5xx, e4xx uint64
}

// Add merges s into a: its latencies into the sketch and its counters into the totals.
func (a *Aggregate) Add(s Summary) {
	a.count += s.Count
	a.e5xx += s.Errors5xx
	a.e4xx += s.Errors4xx
	if s.Count == 0 || s.sketch == nil || s.sketch.IsEmpty() {
		return
	}
	a.mergeSketch(s.sketch)
}

// mergeSketch folds a sketch of the package's latency domain into a.
func (a *Aggregate) mergeSketch(sk *ddsketch.DDSketch) {
	if a.sketch == nil {
		a.sketch = sk.Copy()
		return
	}
	// Every sketch of the package shares one mapping (ParseSummary refuses any other), so
	// the merge cannot fail.
	_ = a.sketch.MergeWith(sk)
}

// AddFastest merges n successful requests at the smallest latency the sketches hold: the
// most a window could be diluted by n more requests (the detector's look-ahead).
func (a *Aggregate) AddFastest(n uint64) {
	if n == 0 {
		return
	}
	sc := newScale()
	if a.sketch == nil {
		a.sketch = sc.newSketch()
	}
	a.sketch.GetPositiveValueStore().AddWithCount(sc.minIndex, float64(n))
	a.count += n
}

// Quantile returns the merged latency at quantile q (0..1, clamped) in milliseconds; 0
// when empty.
func (a *Aggregate) Quantile(q float64) float64 { return quantile(a.sketch, q) }

// Count is the number of requests merged.
func (a *Aggregate) Count() uint64 { return a.count }

// Errors5xx is the number of 5xx responses merged.
func (a *Aggregate) Errors5xx() uint64 { return a.e5xx }

// Errors4xx is the number of 4xx responses merged.
func (a *Aggregate) Errors4xx() uint64 { return a.e4xx }

// ErrorRate is the 5xx share of the requests, 0 when empty. 4xx responses are not errors.
func (a *Aggregate) ErrorRate() float64 {
	if a.count == 0 {
		return 0
	}
	return float64(a.e5xx) / float64(a.count)
}

// NewSummaryForTest builds the summary of one bucket from raw samples: request i took
// latenciesMs[i] milliseconds and answered statuses[i]. A nil statuses means every request
// answered 200; otherwise both slices must have the same length (it panics if not: this is
// for tests and fixtures).
func NewSummaryForTest(tenant, service, instance string, bucket time.Time, latenciesMs []float64, statuses []int) Summary {
	if statuses != nil && len(statuses) != len(latenciesMs) {
		panic(fmt.Sprintf("sdk.NewSummaryForTest: %d latencies but %d statuses", len(latenciesMs), len(statuses)))
	}
	sc := newScale()
	s := Summary{
		Tenant:   tenant,
		Service:  service,
		Instance: instance,
		Bucket:   bucket.UTC().Truncate(time.Second),
		Count:    uint64(len(latenciesMs)),
	}
	for _, code := range statuses {
		switch {
		case code >= 500 && code < 600:
			s.Errors5xx++
		case code >= 400 && code < 500:
			s.Errors4xx++
		}
	}
	if len(latenciesMs) > 0 {
		s.sketch = sc.newSketch()
		st := s.sketch.GetPositiveValueStore()
		for _, ms := range latenciesMs {
			st.Add(sc.index(ms))
		}
	}
	return s
}

// decodeSketch reads a DDSketch from its protobuf encoding, accepting only the package's
// mapping, no negative values and positive bins inside the latency domain. It returns the
// sketch and the total count it holds.
func decodeSketch(b []byte, sc scale) (*ddsketch.DDSketch, float64, error) {
	sk := sc.newSketch()
	pos := sk.GetPositiveValueStore()
	var (
		total      float64
		sawMapping bool
		gamma      float64
		offset     float64
		interp     uint64
	)
	addPositive := func(index int64, count float64) error {
		if count == 0 {
			return nil
		}
		if index < int64(sc.minIndex) || index > int64(sc.maxIndex) {
			return fmt.Errorf("bin %d outside the latency domain [%d, %d]", index, sc.minIndex, sc.maxIndex)
		}
		pos.AddWithCount(int(index), count)
		total += count
		return nil
	}
	rejectNegative := func(_ int64, count float64) error {
		if count != 0 {
			return errors.New("negative latencies")
		}
		return nil
	}
	r := protoReader{b: b}
	for !r.done() {
		field, wire, err := r.key()
		if err != nil {
			return nil, 0, err
		}
		switch {
		case field == 1 && wire == wireBytes:
			m, err := r.bytes()
			if err != nil {
				return nil, 0, err
			}
			sawMapping = true
			if err := decodeMapping(m, &gamma, &offset, &interp); err != nil {
				return nil, 0, fmt.Errorf("mapping: %w", err)
			}
		case field == 2 && wire == wireBytes:
			m, err := r.bytes()
			if err != nil {
				return nil, 0, err
			}
			if err := decodeStore(m, addPositive); err != nil {
				return nil, 0, fmt.Errorf("positive values: %w", err)
			}
		case field == 3 && wire == wireBytes:
			m, err := r.bytes()
			if err != nil {
				return nil, 0, err
			}
			if err := decodeStore(m, rejectNegative); err != nil {
				return nil, 0, fmt.Errorf("negative values: %w", err)
			}
		case field == 4 && wire == wireFixed64:
			zero, err := r.double()
			if err != nil {
				return nil, 0, err
			}
			if zero != 0 {
				// The SDK never records zero: latencies are clamped to the domain.
				return nil, 0, errors.New("zero count outside the latency domain")
			}
		case field <= 4:
			return nil, 0, fmt.Errorf("field %d has wire type %d", field, wire)
		default:
			if err := r.skip(wire); err != nil {
				return nil, 0, err
			}
		}
	}
	if !sawMapping {
		return nil, 0, errors.New("no index mapping")
	}
	if interp != 0 || math.Abs(offset) > 1e-12 || !(math.Abs(gamma-sc.gamma) <= 1e-12*sc.gamma) {
		return nil, 0, fmt.Errorf("index mapping (gamma %v, offset %v, interpolation %d) is not the logarithmic 1%% mapping", gamma, offset, interp)
	}
	return sk, total, nil
}

func decodeMapping(b []byte, gamma, offset *float64, interp *uint64) error {
	r := protoReader{b: b}
	for !r.done() {
		field, wire, err := r.key()
		if err != nil {
			return err
		}
		switch {
		case field == 1 && wire == wireFixed64:
			if *gamma, err = r.double(); err != nil {
				return err
			}
		case field == 2 && wire == wireFixed64:
			if *offset, err = r.double(); err != nil {
				return err
			}
		case field == 3 && wire == wireVarint:
			if *interp, err = r.varint(); err != nil {
				return err
			}
		case field <= 3:
			return fmt.Errorf("field %d has wire type %d", field, wire)
		default:
			if err := r.skip(wire); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeStore reads a Store message and calls add for every bin. Contiguous bins are
// reported after the whole message is read, because their offset may come last.
func decodeStore(b []byte, add func(index int64, count float64) error) error {
	var (
		contiguous []float64
		offset     int64
	)
	r := protoReader{b: b}
	for !r.done() {
		field, wire, err := r.key()
		if err != nil {
			return err
		}
		switch {
		case field == 1 && wire == wireBytes:
			entry, err := r.bytes()
			if err != nil {
				return err
			}
			index, count, err := decodeBinEntry(entry)
			if err != nil {
				return fmt.Errorf("bin: %w", err)
			}
			if err := add(index, count); err != nil {
				return err
			}
		case field == 2 && wire == wireBytes: // packed
			packed, err := r.bytes()
			if err != nil {
				return err
			}
			if len(packed)%8 != 0 {
				return errors.New("packed counts: length not a multiple of 8")
			}
			pr := protoReader{b: packed}
			for !pr.done() {
				c, err := pr.double()
				if err != nil {
					return err
				}
				if err := checkCount(c); err != nil {
					return err
				}
				contiguous = append(contiguous, c)
			}
		case field == 2 && wire == wireFixed64: // unpacked
			c, err := r.double()
			if err != nil {
				return err
			}
			if err := checkCount(c); err != nil {
				return err
			}
			contiguous = append(contiguous, c)
		case field == 3 && wire == wireVarint:
			v, err := r.varint()
			if err != nil {
				return err
			}
			if offset, err = sint32(v); err != nil {
				return err
			}
		case field <= 3:
			return fmt.Errorf("field %d has wire type %d", field, wire)
		default:
			if err := r.skip(wire); err != nil {
				return err
			}
		}
	}
	for i, c := range contiguous {
		if err := add(offset+int64(i), c); err != nil {
			return err
		}
	}
	return nil
}

func decodeBinEntry(b []byte) (index int64, count float64, err error) {
	r := protoReader{b: b}
	for !r.done() {
		field, wire, err := r.key()
		if err != nil {
			return 0, 0, err
		}
		switch {
		case field == 1 && wire == wireVarint:
			v, err := r.varint()
			if err != nil {
				return 0, 0, err
			}
			if index, err = sint32(v); err != nil {
				return 0, 0, err
			}
		case field == 2 && wire == wireFixed64:
			if count, err = r.double(); err != nil {
				return 0, 0, err
			}
			if err := checkCount(count); err != nil {
				return 0, 0, err
			}
		case field <= 2:
			return 0, 0, fmt.Errorf("field %d has wire type %d", field, wire)
		default:
			if err := r.skip(wire); err != nil {
				return 0, 0, err
			}
		}
	}
	return index, count, nil
}

// checkCount accepts a bin count: finite, not negative, at most 2^53 (exact in float64).
func checkCount(c float64) error {
	if !(c >= 0 && c <= 1<<53) {
		return fmt.Errorf("bin count %v", c)
	}
	return nil
}

// sint32 decodes a zigzag-encoded sint32.
func sint32(v uint64) (int64, error) {
	n := int64(v>>1) ^ -int64(v&1)
	if n < math.MinInt32 || n > math.MaxInt32 {
		return 0, fmt.Errorf("sint32 out of range: %d", n)
	}
	return n, nil
}

// Protobuf wire types.
const (
	wireVarint  = 0
	wireFixed64 = 1
	wireBytes   = 2
	wireFixed32 = 5
)

var errTruncated = errors.New("truncated protobuf")

// protoReader reads the protobuf wire format from a byte slice, never past its end.
type protoReader struct{ b []byte }

func (r *protoReader) done() bool { return len(r.b) == 0 }

func (r *protoReader) varint() (uint64, error) {
	var v uint64
	for i := 0; i < 10; i++ {
		if i >= len(r.b) {
			return 0, errTruncated
		}
		c := r.b[i]
		if i == 9 && c > 1 {
			return 0, errors.New("varint overflows 64 bits")
		}
		v |= uint64(c&0x7f) << (7 * i)
		if c < 0x80 {
			r.b = r.b[i+1:]
			return v, nil
		}
	}
	return 0, errors.New("varint longer than 10 bytes")
}

func (r *protoReader) key() (field uint64, wire int, err error) {
	k, err := r.varint()
	if err != nil {
		return 0, 0, err
	}
	field, wire = k>>3, int(k&7)
	if field == 0 || field > math.MaxInt32 {
		return 0, 0, fmt.Errorf("invalid field number %d", field)
	}
	return field, wire, nil
}

func (r *protoReader) fixed(n int) ([]byte, error) {
	if len(r.b) < n {
		return nil, errTruncated
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v, nil
}

func (r *protoReader) double() (float64, error) {
	v, err := r.fixed(8)
	if err != nil {
		return 0, err
	}
	var u uint64
	for i := 7; i >= 0; i-- {
		u = u<<8 | uint64(v[i])
	}
	return math.Float64frombits(u), nil
}

func (r *protoReader) bytes() ([]byte, error) {
	n, err := r.varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(len(r.b)) {
		return nil, errTruncated
	}
	return r.fixed(int(n))
}

func (r *protoReader) skip(wire int) error {
	var err error
	switch wire {
	case wireVarint:
		_, err = r.varint()
	case wireFixed64:
		_, err = r.fixed(8)
	case wireBytes:
		_, err = r.bytes()
	case wireFixed32:
		_, err = r.fixed(4)
	default:
		err = fmt.Errorf("unsupported wire type %d", wire)
	}
	return err
}
