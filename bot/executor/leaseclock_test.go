package executor

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
	"github.com/alertengine/alertengine/ledger/ledgertest"
)

// TestDefaultLeaseOnALeaseClock drives the default lease (6 s), heartbeat (every 2 s)
// and reclaim pass (every 2 s) on an injected clock against real Redis, each step at the
// time the defaults schedule it: replica A takes an execution and dies (no more
// heartbeats); replica C takes another whose webhook call lasts 20 s, beating as it goes;
// replica B makes its reclaim passes just before C's beats (C's heartbeat at its oldest).
// A's execution is re-driven by B within 10 s of A's last heartbeat, and B can take its
// lease; C's is never taken over, nor its lease, for the whole 20 s.
func TestDefaultLeaseOnALeaseClock(t *testing.T) {
	t.Parallel()
	srv := ledgertest.NewServer(t)
	rdb := srv.Client(t)
	prefix := srv.Prefix(t)
	led, err := ledger.New(ledger.Options{Store: ledger.NewRedisStore(rdb, prefix)})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 12, 6, 9, 0, 0, 0, time.UTC)
	var nowNanos atomic.Int64 // the LeaseClock, moved by hand
	nowNanos.Store(start.UnixNano())
	clock := func() time.Time { return time.Unix(0, nowNanos.Load()).UTC() }
	replica := func(name string) *Executor {
		e, err := New(Options{Redis: rdb, KeyPrefix: prefix, Ledger: led, Consumer: name, LeaseClock: clock,
			Targets: func(string) (Target, bool) { return Target{}, false }})
		if err != nil {
			t.Fatal(err)
		}
		return e
	}
	a, b, c := replica("a"), replica("b"), replica("c")
	ctx := context.Background()
	if err := b.ensureGroup(ctx); err != nil {
		t.Fatal(err)
	}
	lease, beatEvery, reclaimEvery := b.opts.Lease, b.opts.Lease/3, b.opts.ReclaimEvery
	if lease != 6*time.Second || beatEvery != 2*time.Second || reclaimEvery != 2*time.Second {
		t.Fatalf("defaults: lease %s, heartbeat every %s, reclaim every %s; this test is written for 6 s, 2 s, 2 s", lease, beatEvery, reclaimEvery)
	}
	// take: the replica reads the next new entry and leases it, as handle does.
	take := func(e *Executor, key string) (id, token string) {
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: e.outbox, Values: []any{"x", key}}).Err(); err != nil {
			t.Fatal(err)
		}
		res, err := rdb.XReadGroup(ctx, &redis.XReadGroupArgs{Group: e.opts.Group, Consumer: e.opts.Consumer,
			Streams: []string{e.outbox, ">"}, Count: 1, Block: -1}).Result()
		if err != nil || len(res) == 0 || len(res[0].Messages) == 0 {
			t.Fatalf("%s read nothing: %v", e.opts.Consumer, err)
		}
		id = res[0].Messages[0].ID
		token = e.opts.Consumer + "/" + id
		if ok, err := e.lease(ctx, id, key, token); err != nil || !ok {
			t.Fatalf("%s could not lease %s: %v", e.opts.Consumer, key, err)
		}
		return id, token
	}
	deadID, _ := take(a, "key-dead")
	slowID, slowToken := take(c, "key-slow")

	renewed, bRenewed := clock(), time.Time{}
	redriven := time.Duration(-1)
	const step = 500 * time.Millisecond
	for at := step; at <= 20*time.Second; at += step {
		nowNanos.Store(start.Add(at).UnixNano())
		if at%reclaimEvery == reclaimEvery-step { // B's pass, just before C's beat
			for cursor := "-"; ; {
				m, next, err := b.reclaim(ctx, cursor)
				if err != nil {
					t.Fatal(err)
				}
				switch m.ID {
				case slowID:
					t.Fatalf("at %s B took over C's live execution", at)
				case deadID:
					if redriven >= 0 {
						t.Fatalf("at %s B took over A's execution a second time", at)
					}
					redriven, bRenewed = at, clock()
					if ok, err := b.lease(ctx, deadID, "key-dead", "b/"+deadID); err != nil || !ok {
						t.Fatalf("at %s B reclaimed A's execution but could not lease it: %v", at, err)
					}
				}
				if cursor = next; m.ID == "" && next == "-" {
					break
				}
			}
			if ok, err := b.lease(ctx, slowID, "key-slow", "b/"+slowID); err != nil || ok {
				t.Fatalf("at %s B got the lease of C's live execution (err %v)", at, err)
			}
		}
		if at%beatEvery != 0 {
			continue
		}
		if !c.beat(ctx, slowID, "key-slow", slowToken, &renewed, c.opts.Logger) {
			t.Fatalf("at %s C lost the lease of its own live execution", at)
		}
		// B, alive, beats for the execution it took over, so it stays B's.
		if redriven >= 0 && !b.beat(ctx, deadID, "key-dead", "b/"+deadID, &bRenewed, b.opts.Logger) {
			t.Fatalf("at %s B lost the lease of the execution it re-drove", at)
		}
	}
	switch {
	case redriven < 0:
		t.Fatal("A's execution was never re-driven")
	case redriven < lease:
		t.Fatalf("A's execution re-driven %s after its last heartbeat, before the %s lease", redriven, lease)
	case redriven > 10*time.Second:
		t.Fatalf("A's execution re-driven %s after its last heartbeat; want within 10 s", redriven)
	}
	t.Logf("A's execution re-driven %s after A's last heartbeat", redriven)
	pend, err := rdb.XPendingExt(ctx, &redis.XPendingExtArgs{Stream: b.outbox, Group: b.opts.Group, Start: "-", End: "+", Count: 10}).Result()
	if err != nil {
		t.Fatal(err)
	}
	owner := map[string]string{}
	for _, p := range pend {
		owner[p.ID] = p.Consumer
	}
	if owner[deadID] != "b" || owner[slowID] != "c" {
		t.Fatalf("pending owners %v; want A's execution with b and C's still with c", owner)
	}
}

// TestHeartbeatsShareTheOutboxSlot: the heartbeats hash is written in the same scripts and
// transactions as the outbox, so in a Redis cluster it must hash to the outbox's slot,
// whatever the key prefix (short of an empty hash tag "{}" or a lone "}", which no hash
// tag can reproduce; an empty tag splits every multi-key script of the bot across slots).
func TestHeartbeatsShareTheOutboxSlot(t *testing.T) {
	t.Parallel()
	for _, prefix := range []string{"", "prod:", "{acme}:", "a{b}c:", "x{:", "{acme}{b}:"} {
		e := &Executor{outbox: prefix + "ae:outbox"}
		if got, want := redisSlot(e.heartbeats()), redisSlot(e.outbox); got != want {
			t.Errorf("prefix %q: heartbeats %q in slot %d, outbox %q in slot %d", prefix, e.heartbeats(), got, e.outbox, want)
		}
	}
}

// redisSlot is Redis Cluster's slot of key: CRC16 (XMODEM) of its hash tag, mod 16384.
func redisSlot(key string) uint16 {
	if open := strings.IndexByte(key, '{'); open >= 0 {
		if end := strings.IndexByte(key[open+1:], '}'); end > 0 {
			key = key[open+1 : open+1+end]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}
