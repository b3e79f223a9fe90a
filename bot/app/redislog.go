package app

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
)

// RedisLogOptions configure a RedisLog.
type RedisLogOptions struct {
	Logger *slog.Logger
	// Burst is how many lines one Interval passes (default 5); the rest are counted and
	// summarised by the first line of a later interval.
	Burst    int
	Interval time.Duration // default 10 s
	Clock    func() time.Time
}

// RedisLog is the Redis client's logger (go-redis's Printf logger, set with
// redis.SetLogger) routed through slog at WARN and rate-limited: during an outage the
// client writes a line per failed dial, a hundred a second, which must not flood the log.
type RedisLog struct {
	opts       RedisLogOptions
	mu         sync.Mutex
	window     time.Time
	passed     int
	suppressed int
}

// maxRedisLine bounds one logged line of the client.
const maxRedisLine = 300

// NewRedisLog returns the logger.
func NewRedisLog(opts RedisLogOptions) *RedisLog {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Burst <= 0 {
		opts.Burst = 5
	}
	if opts.Interval <= 0 {
		opts.Interval = 10 * time.Second
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &RedisLog{opts: opts}
}

// Printf implements go-redis's internal.Logging.
func (l *RedisLog) Printf(ctx context.Context, format string, v ...any) {
	now := l.opts.Clock()
	l.mu.Lock()
	suppressed := 0
	if l.window.IsZero() || now.Sub(l.window) >= l.opts.Interval || now.Before(l.window) {
		suppressed = l.suppressed
		l.window, l.passed, l.suppressed = now, 0, 0
	}
	pass := l.passed < l.opts.Burst
	if pass {
		l.passed++
	} else {
		l.suppressed++
	}
	l.mu.Unlock()
	if suppressed > 0 {
		l.opts.Logger.Warn("redis client: lines suppressed", "suppressed", suppressed, "per", l.opts.Interval.String())
	}
	if !pass {
		return
	}
	msg := strings.TrimSpace(strings.TrimPrefix(fmt.Sprintf(format, v...), "redis: "))
	if len(msg) > maxRedisLine {
		msg = msg[:maxRedisLine] + "…"
	}
	l.opts.Logger.Warn("redis client", "detail", msg)
}

// Flush logs the count of lines suppressed in the current interval, if any (at shutdown).
func (l *RedisLog) Flush() {
	l.mu.Lock()
	n := l.suppressed
	l.suppressed = 0
	l.mu.Unlock()
	if n > 0 {
		l.opts.Logger.Warn("redis client: lines suppressed", "suppressed", n, "per", l.opts.Interval.String())
	}
}
