package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alertengine/alertengine/bot/app"
)

// lockedBuffer is a log destination safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) records(t *testing.T) []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.b.String()), "\n") {
		if line == "" {
			continue
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("not a JSON record: %q", line)
		}
		out = append(out, r)
	}
	return out
}

// TestRedisLogBurst: a burst of 1,000 client lines (an outage: one per failed dial) becomes
// a handful of JSON records; the next interval's first record says how many were dropped.
func TestRedisLogBurst(t *testing.T) {
	var buf lockedBuffer
	now := time.Date(2026, 12, 4, 1, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	rl := app.NewRedisLog(app.RedisLogOptions{Logger: slog.New(slog.NewJSONHandler(&buf, nil)), Burst: 5, Interval: 10 * time.Second, Clock: clock})
	var wg sync.WaitGroup
	for g := 0; g < 10; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				rl.Printf(context.Background(), "redis: pool.go:%d: connection pool: failed to dial after %d attempts: dial tcp 127.0.0.1:6379: connect: connection refused", 120, i)
			}
		}()
	}
	wg.Wait()
	recs := buf.records(t)
	if len(recs) != 5 {
		t.Fatalf("1,000 lines gave %d records, want 5", len(recs))
	}
	if recs[0]["level"] != "WARN" || recs[0]["msg"] != "redis client" || !strings.HasPrefix(recs[0]["detail"].(string), "pool.go:120: connection pool") {
		t.Fatalf("record %v", recs[0])
	}
	mu.Lock()
	now = now.Add(10 * time.Second)
	mu.Unlock()
	rl.Printf(context.Background(), "redis: reconnected")
	recs = buf.records(t)
	if len(recs) != 7 || recs[5]["msg"] != "redis client: lines suppressed" || recs[5]["suppressed"] != float64(995) || recs[6]["detail"] != "reconnected" {
		t.Fatalf("after the interval: %v", recs[5:])
	}
	rl.Flush()
	if n := len(buf.records(t)); n != 7 {
		t.Fatalf("Flush with nothing suppressed logged %d records", n-7)
	}
}
