package otlp

import (
	"math"
	"sort"
)

// span is a bucket of a histogram: count requests whose latency (ms) lies in (lo, hi],
// taken as spread evenly over it; lo == hi is a point mass.
type span struct{ lo, hi float64 }

// counts are the requests of one service in one second, by bucket, and its 5xx.
type counts struct {
	buckets map[span]uint64
	total   uint64
	errors  uint64
}

// window is a service's last seconds of requests (a ring of per-second counts).
type window struct {
	secs map[int64]*counts // unix second → counts
}

func newWindow() *window { return &window{secs: map[int64]*counts{}} }

// add records a delta of n requests (err of them 5xx) spread over buckets, at second sec.
// It refuses (false) a delta that would take the second past maxSpans distinct buckets.
func (w *window) add(sec int64, buckets map[span]uint64, n, errs uint64, maxSpans int) bool {
	c := w.secs[sec]
	if c == nil {
		c = &counts{buckets: map[span]uint64{}}
		w.secs[sec] = c
	}
	fresh := 0
	for s := range buckets {
		if _, ok := c.buckets[s]; !ok {
			fresh++
		}
	}
	if len(c.buckets)+fresh > maxSpans {
		return false
	}
	for s, k := range buckets {
		c.buckets[s] += k
	}
	c.total += n
	c.errors += errs
	return true
}

// forget drops the seconds before from.
func (w *window) forget(from int64) {
	for s := range w.secs {
		if s < from {
			delete(w.secs, s)
		}
	}
}

// summary is what the window says between from and to (unix seconds, to excluded).
type summary struct {
	p95Ms     float64
	errorRate float64
	requests  uint64
}

func (w *window) summarise(from, to int64) summary {
	merged := map[span]uint64{}
	var total, errs uint64
	for s, c := range w.secs {
		if s < from || s >= to {
			continue
		}
		for b, k := range c.buckets {
			merged[b] += k
		}
		total += c.total
		errs += c.errors
	}
	out := summary{requests: total}
	if total == 0 {
		return out
	}
	out.errorRate = float64(errs) / float64(total)
	out.p95Ms = quantile(merged, 0.95)
	return out
}

// quantile is the q-quantile of requests spread evenly within their buckets: the x where
// the requests at or under x make q of the whole, found by bisection over the mixture.
func quantile(buckets map[span]uint64, q float64) float64 {
	type b struct {
		span
		n float64
	}
	var bs []b
	var total float64
	lo, hi := math.Inf(1), 0.0
	for s, n := range buckets {
		if n == 0 {
			continue
		}
		bs = append(bs, b{s, float64(n)})
		total += float64(n)
		lo, hi = math.Min(lo, s.lo), math.Max(hi, s.hi)
	}
	if total == 0 {
		return 0
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].lo < bs[j].lo || bs[i].lo == bs[j].lo && bs[i].hi < bs[j].hi })
	below := func(x float64) float64 {
		var c float64
		for _, k := range bs {
			switch {
			case x >= k.hi:
				c += k.n
			case x > k.lo:
				c += k.n * (x - k.lo) / (k.hi - k.lo)
			}
		}
		return c
	}
	target := q * total
	for range 100 {
		mid := lo + (hi-lo)/2
		if below(mid) >= target {
			hi = mid
		} else {
			lo = mid
		}
		if hi-lo <= 1e-9*math.Max(1, hi) {
			break
		}
	}
	return hi
}
