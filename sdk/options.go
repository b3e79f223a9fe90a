package sdk

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// Defaults of Options.
const (
	DefaultStreamMaxLen = 10000
	DefaultBufferSize   = 600
	DefaultMinSamples   = 20
	DefaultRedisTimeout = 2 * time.Second
)

// Options configure an SDK. Only Service and Tenant matter for memory mode; RedisURL turns
// on push mode.
type Options struct {
	// Service is the name of the instrumented service, e.g. "checkout".
	Service string
	// Tenant is the AlertEngine tenant the service belongs to, e.g. "acme".
	Tenant string
	// RedisURL (redis:// or rediss://) enables push mode: one Summary per completed
	// second is shipped to StreamKey(KeyPrefix, Tenant, Service). Empty: memory mode.
	RedisURL string
	// Instance names this process in pushed summaries. Default: hostname-pid.
	Instance string
	// KeyPrefix is put in front of every Redis key the SDK writes.
	KeyPrefix string
	// StreamMaxLen caps the stream (XADD MAXLEN ~). Default DefaultStreamMaxLen.
	StreamMaxLen int64
	// BufferSize is how many summaries are kept while Redis is unreachable; beyond it
	// the oldest are dropped and counted. Default DefaultBufferSize (10 minutes).
	BufferSize int
	// MinSamples is the number of requests in the 60 s window below which nothing is
	// judged. Default DefaultMinSamples.
	MinSamples int
	// RedisTimeout bounds every Redis call. Default DefaultRedisTimeout.
	RedisTimeout time.Duration
	// Logger receives the SDK's own events (breaker transitions, drops). Default: discard.
	Logger *slog.Logger
	// Clock is the time source for latencies, buckets and the breaker. Default time.Now.
	Clock func() time.Time
}

// Validate reports every problem with o, one per line. New accepts invalid options
// anyway (an SDK must never take its service down) and falls back as documented on New.
func (o Options) Validate() error {
	var errs []error
	if o.Service == "" {
		errs = append(errs, errors.New("sdk: Service is required"))
	}
	if o.Tenant == "" {
		errs = append(errs, errors.New("sdk: Tenant is required"))
	}
	for _, f := range []struct{ name, v string }{{"Service", o.Service}, {"Tenant", o.Tenant}, {"Instance", o.Instance}} {
		if f.v != "" {
			if _, err := labelField(map[string]any{f.name: f.v}, f.name); err != nil {
				errs = append(errs, fmt.Errorf("sdk: %s: want 1 to %d bytes of printable UTF-8", f.name, maxLabelBytes))
			}
		}
	}
	if o.RedisURL != "" {
		if _, err := redis.ParseURL(o.RedisURL); err != nil {
			// The parser's message may quote the URL, password included: never repeat it.
			errs = append(errs, errors.New("sdk: RedisURL is not a valid redis:// or rediss:// URL"))
		}
	}
	if o.StreamMaxLen < 0 {
		errs = append(errs, errors.New("sdk: StreamMaxLen must not be negative"))
	}
	if o.BufferSize < 0 {
		errs = append(errs, errors.New("sdk: BufferSize must not be negative"))
	}
	if o.MinSamples < 0 {
		errs = append(errs, errors.New("sdk: MinSamples must not be negative"))
	}
	if o.RedisTimeout < 0 {
		errs = append(errs, errors.New("sdk: RedisTimeout must not be negative"))
	}
	return errors.Join(errs...)
}

// withDefaults fills the zero fields of o.
func (o Options) withDefaults() Options {
	if o.Service == "" {
		o.Service = "unnamed"
	}
	if o.Tenant == "" {
		o.Tenant = "default"
	}
	if o.Instance == "" {
		host, err := os.Hostname()
		if err != nil || host == "" {
			host = "localhost"
		}
		o.Instance = host + "-" + strconv.Itoa(os.Getpid())
	}
	if o.StreamMaxLen <= 0 {
		o.StreamMaxLen = DefaultStreamMaxLen
	}
	if o.BufferSize <= 0 {
		o.BufferSize = DefaultBufferSize
	}
	if o.MinSamples <= 0 {
		o.MinSamples = DefaultMinSamples
	}
	if o.RedisTimeout <= 0 {
		o.RedisTimeout = DefaultRedisTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return o
}
