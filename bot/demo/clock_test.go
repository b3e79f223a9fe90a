package demo

import (
	"context"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// TestDriveClockExpiresKeysOfTheEmbeddedRedis: with its clock driven, a key with a TTL
// in the embedded Redis expires once the wall clock has passed it (here, ticks stand for
// the wall clock).
func TestDriveClockExpiresKeysOfTheEmbeddedRedis(t *testing.T) {
	mr := miniredis.RunT(t)
	rc := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := rc.Set(ctx, "approval", "x", 5*time.Minute).Err(); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC)
	ticks := make(chan time.Time)
	done := make(chan error, 1)
	go func() { done <- DriveClock(ctx, mr, start, ticks) }()
	ticks <- start.Add(4 * time.Minute)
	ticks <- start.Add(3 * time.Minute) // a clock step backwards moves nothing
	ticks <- start.Add(4*time.Minute + 59*time.Second)
	ticks <- start.Add(4*time.Minute + 59*time.Second) // handled once the next send is taken
	if n, _ := rc.Exists(ctx, "approval").Result(); n != 1 {
		t.Fatal("the key expired before its TTL")
	}
	ticks <- start.Add(5*time.Minute + time.Second)
	ticks <- start.Add(5*time.Minute + time.Second)
	if n, _ := rc.Exists(ctx, "approval").Result(); n != 0 {
		t.Fatal("the key outlived its TTL on the driven clock")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
