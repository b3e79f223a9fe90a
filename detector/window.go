package detector

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/sdk"
)

// group is the consumer group every replica joins on every metric stream.
const group = "ae-detector"

// keys names the detector's Redis keys. Every key of one service carries the hash tag
// {tenant/service}, so its scripts stay on one slot of a Redis Cluster.
type keys struct{ prefix string }

func (k keys) service(tenant, service, what string) string {
	return k.prefix + "ae:det:{" + tenant + "/" + service + "}:" + what
}

// lease: which replica evaluates the service (string, PX LeaseTTL).
func (k keys) lease(t, s string) string { return k.service(t, s, "lease") }

// gate: the gate state and learned baseline (JSON string).
func (k keys) gate(t, s string) string { return k.service(t, s, "gate") }

// window: the service's recent summaries (sorted set scored by bucket, unix seconds).
func (k keys) window(t, s string) string { return k.service(t, s, "win") }

// instances: each instance's newest shipped bucket (sorted set, unix seconds).
func (k keys) instances(t, s string) string { return k.service(t, s, "inst") }

// history: the service's judged readings, newest last (stream, capped), for charts.
func (k keys) history(t, s string) string { return k.service(t, s, "hist") }

// opens: the tenant's incident openings of the last hour (sorted set scored by unix ms).
func (k keys) opens(t string) string { return k.prefix + "ae:det:{" + t + "}:opens" }

// stream: where the service's SDK pushes its summaries.
func (k keys) stream(t, s string) string { return sdk.StreamKey(k.prefix, t, s) }

// summaryFields are the stream entry fields a window member keeps; optionalFields too,
// when the entry has them.
var (
	summaryFields  = []string{"v", "tenant", "service", "instance", "bucket", "n", "e5", "e4", "sk"}
	optionalFields = []string{"early"}
)

// encodeMember turns a parsed stream entry into a window member: the entry's own fields
// as a JSON object (keys sorted, the sketch in base64). The same entry always gives the
// same member, so a redelivered entry is stored once.
func encodeMember(values map[string]any) (string, error) {
	m := make(map[string]string, len(summaryFields)+len(optionalFields))
	for i, f := range append(summaryFields[:len(summaryFields):len(summaryFields)], optionalFields...) {
		v, ok := values[f]
		if !ok && i >= len(summaryFields) {
			continue
		}
		if !ok {
			return "", fmt.Errorf("field %q missing", f)
		}
		var s string
		switch x := v.(type) {
		case string:
			s = x
		case []byte:
			s = string(x)
		default:
			s = fmt.Sprint(x)
		}
		if f == "sk" {
			s = base64.StdEncoding.EncodeToString([]byte(s))
		}
		m[f] = s
	}
	b, err := json.Marshal(m)
	return string(b), err
}

// decodeMember reverses encodeMember and parses the summary.
func decodeMember(member string) (sdk.Summary, error) {
	var m map[string]string
	if err := json.Unmarshal([]byte(member), &m); err != nil {
		return sdk.Summary{}, fmt.Errorf("window member: %w", err)
	}
	sk, err := base64.StdEncoding.DecodeString(m["sk"])
	if err != nil {
		return sdk.Summary{}, fmt.Errorf("window member sketch: %w", err)
	}
	values := make(map[string]any, len(m))
	for k, v := range m {
		values[k] = v
	}
	values["sk"] = sk
	return sdk.ParseSummary(values)
}

// ErrForeignSummary: a stream entry names another tenant or service than its stream.
var ErrForeignSummary = errors.New("summary does not belong to its stream")

// window is what an evaluation judges: the merged summaries of every instance over the
// buckets [start, end).
type window struct {
	agg sdk.Aggregate
	// recent merges the buckets of the newest FastWindow only.
	recent     sdk.Aggregate
	start, end time.Time
	buckets    int // distinct buckets with data
	summaries  int
	// sums are the summaries merged, for the look-ahead (staysBad).
	sums []sdk.Summary
}

// loadWindow reads the window ending at end (exclusive) and trims what is older than one
// more window.
func (d *Detector) loadWindow(ctx context.Context, tenant, service string, end time.Time) (*window, error) {
	start := end.Add(-d.opts.Window)
	key := d.keys.window(tenant, service)
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	pipe := d.rdb.Pipeline()
	pipe.ZRemRangeByScore(ctx, key, "-inf", "("+strconv.FormatInt(start.Add(-d.opts.Window).Unix(), 10))
	rng := pipe.ZRangeByScore(ctx, key, &redis.ZRangeBy{
		Min: strconv.FormatInt(start.Unix(), 10),
		Max: "(" + strconv.FormatInt(end.Unix(), 10),
	})
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read window of %s/%s: %w", tenant, service, err)
	}
	w := &window{start: start, end: end}
	seen := map[int64]bool{}
	for _, m := range rng.Val() {
		s, err := decodeMember(m)
		if err != nil {
			// Only this package writes members, after parsing them: a bad one is a bug or
			// tampering, not a reason to stop judging the rest.
			d.stats.invalidSummaries.Add(1)
			d.log.Warn("skip unreadable window member", "tenant", tenant, "service", service, "err", err)
			continue
		}
		w.agg.Add(s)
		w.sums = append(w.sums, s)
		if !s.Bucket.Before(end.Add(-d.opts.FastWindow)) {
			w.recent.Add(s)
		}
		w.summaries++
		if !seen[s.Bucket.Unix()] {
			seen[s.Bucket.Unix()] = true
			w.buckets++
		}
	}
	return w, nil
}
