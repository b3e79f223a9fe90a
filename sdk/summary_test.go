package sdk

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/DataDog/sketches-go/ddsketch"
	"github.com/DataDog/sketches-go/ddsketch/mapping"
	"github.com/DataDog/sketches-go/ddsketch/store"
	"github.com/google/go-cmp/cmp"
	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger/ledgertest"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// exactQuantile is the nearest-rank quantile of sorted samples, the convention of DDSketch
// (rank q·(n−1), rounded down).
func exactQuantile(sorted []float64, q float64) float64 {
	return sorted[int(q*float64(len(sorted)-1))]
}

func within(got, want, rel float64) bool {
	return math.Abs(got-want) <= rel*math.Abs(want)
}

// redisValues turns Fields into what XREAD hands back: every value a string.
func redisValues(t *testing.T, c *redis.Client, key string, fields map[string]any) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.XAdd(ctx, &redis.XAddArgs{Stream: key, Values: fields}).Err(); err != nil {
		t.Fatalf("XADD: %v", err)
	}
	msgs, err := c.XRange(ctx, key, "-", "+").Result()
	if err != nil || len(msgs) == 0 {
		t.Fatalf("XRANGE: %v (%d entries)", err, len(msgs))
	}
	return msgs[len(msgs)-1].Values
}

func TestSummaryRoundTripThroughRedis(t *testing.T) {
	c, prefix := ledgertest.Redis(t)
	rng := rand.New(rand.NewPCG(1, 2))
	many := make([]float64, 5000)
	for i := range many {
		many[i] = math.Exp(rng.NormFloat64()*0.6 + 4) // median ≈ 55 ms
	}
	tests := []struct {
		name      string
		latencies []float64
		statuses  []int
		want      [3]uint64 // n, e5, e4
	}{
		{"empty bucket", nil, nil, [3]uint64{0, 0, 0}},
		{"one request", []float64{12.5}, []int{200}, [3]uint64{1, 0, 0}},
		{"mixed statuses", []float64{1, 2, 3, 4, 5}, []int{200, 500, 503, 404, 429}, [3]uint64{5, 2, 2}},
		{"nil statuses are 200", []float64{7, 8}, nil, [3]uint64{2, 0, 0}},
		{"zero and huge latencies are clamped", []float64{0, 1e12}, []int{200, 200}, [3]uint64{2, 0, 0}},
		{"five thousand log-normal", many, nil, [3]uint64{5000, 0, 0}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := NewSummaryForTest("acme", "checkout", "pod-1", t0.Add(1500*time.Millisecond), tc.latencies, tc.statuses)
			key := StreamKey(prefix, "acme", "checkout")
			out, err := ParseSummary(redisValues(t, c, key, in.Fields()))
			if err != nil {
				t.Fatalf("ParseSummary: %v", err)
			}
			if diff := cmp.Diff([3]uint64{in.Count, in.Errors5xx, in.Errors4xx}, tc.want); diff != "" {
				t.Errorf("built counters (-got +want):\n%s", diff)
			}
			if diff := cmp.Diff([3]uint64{out.Count, out.Errors5xx, out.Errors4xx}, tc.want); diff != "" {
				t.Errorf("parsed counters (-got +want):\n%s", diff)
			}
			if got, want := out.Bucket, t0.Add(time.Second); !got.Equal(want) || got.Location() != time.UTC {
				t.Errorf("bucket = %v, want %v UTC", got, want)
			}
			if out.Tenant != "acme" || out.Service != "checkout" || out.Instance != "pod-1" {
				t.Errorf("labels = %q/%q/%q", out.Tenant, out.Service, out.Instance)
			}
			for _, q := range []float64{0, 0.5, 0.95, 0.99, 1} {
				if got, want := out.Quantile(q), in.Quantile(q); got != want {
					t.Errorf("Quantile(%v) after the wire = %v, before = %v", q, got, want)
				}
			}
			if len(tc.latencies) > 0 {
				sorted := slices.Sorted(slices.Values(tc.latencies))
				for i, v := range sorted {
					sorted[i] = min(max(v, minLatencyMs), maxLatencyMs)
				}
				if got, want := out.Quantile(0.95), exactQuantile(sorted, 0.95); !within(got, want, 0.01) {
					t.Errorf("p95 = %v, exact %v: beyond 1%%", got, want)
				}
			} else if got := out.Quantile(0.95); got != 0 {
				t.Errorf("p95 of an empty bucket = %v, want 0", got)
			}
		})
	}
}

func TestStreamKey(t *testing.T) {
	if got, want := StreamKey("t1:", "acme", "checkout"), "t1:ae:metrics:acme:checkout"; got != want {
		t.Errorf("StreamKey = %q, want %q", got, want)
	}
	if got, want := StreamKey("", "a", "b"), "ae:metrics:a:b"; got != want {
		t.Errorf("StreamKey without prefix = %q, want %q", got, want)
	}
}

// encodeProto encodes a hand-made sketch the way a foreign producer would.
func encodeProto(t testing.TB, m mapping.IndexMapping, values ...float64) []byte {
	t.Helper()
	sk := ddsketch.NewDDSketch(m, store.NewDenseStore(), store.NewDenseStore())
	for _, v := range values {
		if err := sk.Add(v); err != nil {
			t.Fatalf("Add(%v): %v", v, err)
		}
	}
	var buf bytes.Buffer
	sk.EncodeProto(&buf)
	return buf.Bytes()
}

func TestParseSummaryRefusesWhatItCouldNotHaveWritten(t *testing.T) {
	good := NewSummaryForTest("acme", "checkout", "pod-1", t0, []float64{10, 20, 30}, []int{200, 500, 404}).Fields()
	with := func(key string, v any) map[string]any {
		m := make(map[string]any, len(good))
		for k, x := range good {
			m[k] = x
		}
		if v == nil {
			delete(m, key)
		} else {
			m[key] = v
		}
		return m
	}
	sk := good["sk"].([]byte)
	log2, _ := mapping.NewLogarithmicMapping(0.02)
	cubic, _ := mapping.NewCubicallyInterpolatedMapping(0.01)
	tests := []struct {
		name   string
		values map[string]any
		want   string // part of the error text
	}{
		{"nil map", nil, `"v" missing`},
		{"no version", with("v", nil), `"v" missing`},
		{"future version", with("v", "2"), "unsupported version 2"},
		{"version not a number", with("v", "one"), `"v": not an unsigned integer`},
		{"empty tenant", with("tenant", ""), `"tenant"`},
		{"tenant with newline", with("tenant", "ac\nme"), "control character"},
		{"tenant not UTF-8", with("tenant", "\xff"), `"tenant"`},
		{"very long service", with("service", strings.Repeat("s", 300)), `"service"`},
		{"no instance", with("instance", nil), `"instance" missing`},
		{"negative bucket", with("bucket", "-5"), `"bucket"`},
		{"bucket in year 10000", with("bucket", "253402300800"), `"bucket"`},
		{"bucket in milliseconds with dot", with("bucket", "1.5"), `"bucket"`},
		{"negative count", with("n", "-3"), `"n": not an unsigned integer`},
		{"count overflows", with("n", "18446744073709551616"), `"n"`},
		{"more 5xx than requests", with("e5", "4"), "out of 3 requests"},
		{"5xx plus 4xx beyond count", with("e4", "3"), "out of 3 requests"},
		{"value of a foreign type", with("n", 3.0), "has type float64"},
		{"no sketch", with("sk", nil), `"sk" missing`},
		{"sketch count differs from n", with("n", "4"), "4 requests"},
		{"truncated sketch", with("sk", sk[:len(sk)-3]), "truncated"},
		{"sketch of another accuracy", with("sk", encodeProto(t, log2, 10, 20, 30)), "not the logarithmic 1% mapping"},
		{"sketch of another interpolation", with("sk", encodeProto(t, cubic, 10, 20, 30)), "not the logarithmic 1% mapping"},
		{"sketch without mapping", with("sk", []byte{}), "no index mapping"},
		{"negative latencies", with("sk", encodeProto(t, newScale().m, -10, 20, 30)), "negative latencies"},
		{"bin far outside the domain", with("sk", encodeProto(t, newScale().m, 1e-9, 20, 30)), "outside the latency domain"},
		{"oversized sketch", with("sk", make([]byte, maxSketchBytes+1)), "limit"},
		{"garbage sketch", with("sk", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"), "varint"},
		{"field number zero", with("sk", "\x00"), "invalid field number 0"},
		{"group wire type", with("sk", "\x0b"), "wire type 3"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseSummary(tc.values)
			if !errors.Is(err, ErrInvalidSummary) {
				t.Fatalf("err = %v, want ErrInvalidSummary", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %q, want it to mention %q", err, tc.want)
			}
		})
	}
}

func TestParseSummaryAcceptsOtherValidEncodings(t *testing.T) {
	sc := newScale()
	// A sparse store (binCounts map) instead of contiguous counts, plus an unknown
	// field: a newer producer must still be readable.
	var sk []byte
	sk = appendTag(sk, 1, wireBytes)
	mp := appendTag(nil, 1, wireFixed64)
	mp = appendFixed64(mp, math.Float64bits(sc.gamma))
	sk = appendLen(sk, mp)
	var st []byte
	for _, ms := range []float64{10, 1000} {
		entry := appendTag(nil, 1, wireVarint)
		i := int64(sc.index(ms))
		entry = appendVarint(entry, uint64((i<<1)^(i>>63)))
		entry = appendTag(entry, 2, wireFixed64)
		entry = appendFixed64(entry, math.Float64bits(2))
		st = appendTag(st, 1, wireBytes)
		st = appendLen(st, entry)
	}
	sk = appendTag(sk, 2, wireBytes)
	sk = appendLen(sk, st)
	sk = appendTag(sk, 99, wireVarint)
	sk = appendVarint(sk, 7)

	s, err := ParseSummary(map[string]any{
		"v": "1", "tenant": "acme", "service": "checkout", "instance": "i",
		"bucket": "1740830400", "n": "4", "e5": "0", "e4": "0", "sk": string(sk),
	})
	if err != nil {
		t.Fatalf("ParseSummary: %v", err)
	}
	if got := s.Quantile(0.95); !within(got, 1000, 0.01) {
		t.Errorf("p95 = %v, want 1000 within 1%%", got)
	}
	if got := s.Quantile(0.25); !within(got, 10, 0.01) {
		t.Errorf("p25 = %v, want 10 within 1%%", got)
	}
}

func appendVarint(b []byte, v uint64) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

func appendTag(b []byte, field uint64, wire int) []byte {
	return appendVarint(b, field<<3|uint64(wire))
}

func appendFixed64(b []byte, v uint64) []byte {
	for range 8 {
		b = append(b, byte(v))
		v >>= 8
	}
	return b
}

func appendLen(b, msg []byte) []byte {
	return append(appendVarint(b, uint64(len(msg))), msg...)
}

func TestAggregate(t *testing.T) {
	b := t0
	tests := []struct {
		name      string
		summaries []Summary
		n, e5, e4 uint64
		rate      float64
		p95       float64 // 0: empty
	}{
		{name: "empty", rate: 0, p95: 0},
		{
			name: "one instance",
			summaries: []Summary{
				NewSummaryForTest("a", "s", "i1", b, []float64{10, 10, 10, 200, 200}, []int{200, 200, 404, 500, 200}),
			},
			n: 5, e5: 1, e4: 1, rate: 0.2, p95: 200,
		},
		{
			name: "instances times buckets",
			summaries: []Summary{
				NewSummaryForTest("a", "s", "i1", b, repeat(10, 94), nil),
				NewSummaryForTest("a", "s", "i2", b, repeat(10, 0), nil),
				NewSummaryForTest("a", "s", "i1", b.Add(time.Second), repeat(900, 6), []int{503, 503, 503, 400, 200, 200}),
			},
			n: 100, e5: 3, e4: 1, rate: 0.03, p95: 900,
		},
		{
			name:      "counters without latencies",
			summaries: []Summary{{Tenant: "a", Service: "s", Instance: "i", Bucket: b}},
			rate:      0, p95: 0,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var a Aggregate
			for _, s := range tc.summaries {
				a.Add(s)
			}
			if diff := cmp.Diff([3]uint64{a.Count(), a.Errors5xx(), a.Errors4xx()}, [3]uint64{tc.n, tc.e5, tc.e4}); diff != "" {
				t.Errorf("counters (-got +want):\n%s", diff)
			}
			if got := a.ErrorRate(); math.Abs(got-tc.rate) > 1e-12 {
				t.Errorf("ErrorRate = %v, want %v", got, tc.rate)
			}
			if got := a.Quantile(0.95); !within(got, tc.p95, 0.01) {
				t.Errorf("p95 = %v, want %v within 1%%", got, tc.p95)
			}
		})
	}
}

func TestAggregateDoesNotChangeTheSummaries(t *testing.T) {
	s1 := NewSummaryForTest("a", "s", "i1", t0, []float64{10}, nil)
	s2 := NewSummaryForTest("a", "s", "i2", t0, []float64{1000}, nil)
	var a Aggregate
	a.Add(s1)
	a.Add(s2)
	if got := s1.Quantile(1); !within(got, 10, 0.01) {
		t.Errorf("first summary's max after merging = %v, want 10", got)
	}
	if got := a.Quantile(1); !within(got, 1000, 0.01) {
		t.Errorf("aggregate max = %v, want 1000", got)
	}
}

func TestQuantileOutOfRange(t *testing.T) {
	s := NewSummaryForTest("a", "s", "i", t0, []float64{5, 50}, nil)
	tests := []struct {
		q, want float64
	}{{-1, 5}, {2, 50}, {math.NaN(), 0}}
	for _, tc := range tests {
		if got := s.Quantile(tc.q); !within(got, tc.want, 0.01) {
			t.Errorf("Quantile(%v) = %v, want %v", tc.q, got, tc.want)
		}
	}
}

func TestNewSummaryForTestPanicsOnMismatchedSlices(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for 2 latencies and 1 status")
		}
	}()
	NewSummaryForTest("a", "s", "i", t0, []float64{1, 2}, []int{200})
}

func repeat(v float64, n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = v
	}
	return out
}

func FuzzParseSummary(f *testing.F) {
	good := NewSummaryForTest("acme", "checkout", "pod-1", t0, []float64{1, 10, 100, 1000}, []int{200, 500, 404, 200}).Fields()
	f.Add("1", "acme", "checkout", "pod-1", "1740830400", "4", "1", "1", good["sk"].([]byte))
	f.Add("1", "a", "s", "i", "0", "0", "0", "0", []byte{})
	f.Add("1", "a", "s", "i", "0", "0", "0", "0", []byte{0x12, 0x05, 0x18, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, v, tenant, service, instance, bucket, n, e5, e4 string, sk []byte) {
		s, err := ParseSummary(map[string]any{
			"v": v, "tenant": tenant, "service": service, "instance": instance,
			"bucket": bucket, "n": n, "e5": e5, "e4": e4, "sk": sk,
		})
		if err != nil {
			if !errors.Is(err, ErrInvalidSummary) {
				t.Fatalf("error does not wrap ErrInvalidSummary: %v", err)
			}
			return
		}
		// Whatever was accepted must be bounded, consistent and survive another round trip.
		for _, l := range []string{s.Tenant, s.Service, s.Instance} {
			if l == "" || len(l) > maxLabelBytes || !utf8.ValidString(l) {
				t.Fatalf("accepted label %q", l)
			}
		}
		if s.Errors5xx+s.Errors4xx > s.Count {
			t.Fatalf("accepted %d+%d errors out of %d", s.Errors5xx, s.Errors4xx, s.Count)
		}
		p95 := s.Quantile(0.95)
		if s.Count > 0 && !(p95 >= minLatencyMs*0.98 && p95 <= maxLatencyMs*1.02) {
			t.Fatalf("p95 %v outside the latency domain", p95)
		}
		again, err := ParseSummary(s.Fields())
		if err != nil {
			t.Fatalf("re-parsing an accepted summary: %v", err)
		}
		if again.Count != s.Count || again.Quantile(0.95) != p95 || !again.Bucket.Equal(s.Bucket) {
			t.Fatalf("second round trip changed the summary")
		}
	})
}

// TestAggregateAddFastest: n fast successes dilute the error rate and pull the quantiles
// down to the fastest latency, as n healthy requests would at best.
func TestAggregateAddFastest(t *testing.T) {
	var a Aggregate
	a.AddFastest(0)
	if a.Count() != 0 || a.Quantile(0.5) != 0 {
		t.Fatalf("AddFastest(0) on an empty aggregate: count %d, p50 %v", a.Count(), a.Quantile(0.5))
	}
	lat := []float64{2500, 2500, 2500, 2500}
	a.Add(NewSummaryForTest("acme", "checkout", "pod-1", time.Unix(0, 0), lat, []int{500, 500, 200, 200}))
	a.AddFastest(4)
	if a.Count() != 8 || a.Errors5xx() != 2 || a.ErrorRate() != 0.25 {
		t.Fatalf("count %d, 5xx %d, error rate %v; want 8, 2, 0.25", a.Count(), a.Errors5xx(), a.ErrorRate())
	}
	if p := a.Quantile(0.25); p > 0.01 {
		t.Fatalf("p25 %v ms, want the fastest latency", p)
	}
	if p := a.Quantile(0.95); p < 2400 {
		t.Fatalf("p95 %v ms, want the slow half's 2.5 s", p)
	}
}

// TestSummaryEarlyField: an early part of a bucket says how far into it it was shipped,
// and survives the round trip; a whole bucket has no "early" field; anything but 1 to 999
// milliseconds is refused.
func TestSummaryEarlyField(t *testing.T) {
	s := NewSummaryForTest("acme", "checkout", "pod-1", time.Unix(100, 0), []float64{1, 2}, []int{500, 500})
	if _, ok := s.Fields()["early"]; ok {
		t.Fatal("a whole bucket's fields have an early field")
	}
	s.Early = 250 * time.Millisecond
	got, err := ParseSummary(s.Fields())
	if err != nil || got.Early != 250*time.Millisecond || got.Count != 2 {
		t.Fatalf("round trip: %+v, %v; want early 250ms, 2 requests", got, err)
	}
	for _, bad := range []any{"0", "1000", "-5", "soon"} {
		f := s.Fields()
		f["early"] = bad
		if _, err := ParseSummary(f); !errors.Is(err, ErrInvalidSummary) {
			t.Errorf("early %q: %v, want ErrInvalidSummary", bad, err)
		}
	}
}
