// Package ledgertest gives tests a Redis to talk to: the real server named by REDIS_URL
// when it is set (CI sets it), otherwise an embedded miniredis, so that `go test ./...`
// passes on a fresh machine. Every caller gets its own key prefix.
package ledgertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"
)

// Server is a Redis server reachable by tests.
type Server struct {
	// URL is a redis:// URL any number of clients can dial.
	URL string
	// Embedded reports whether the server is an in-process miniredis.
	Embedded bool
	// Mini is the embedded server, nil for a real one.
	Mini *miniredis.Miniredis
}

// NewServer returns the server of REDIS_URL, or starts an embedded one that is stopped
// when the test ends.
func NewServer(t testing.TB) *Server {
	t.Helper()
	if u := os.Getenv("REDIS_URL"); u != "" {
		return &Server{URL: u}
	}
	m := miniredis.RunT(t)
	return &Server{URL: "redis://" + m.Addr(), Embedded: true, Mini: m}
}

// Client dials a new client to s; it is closed when the test ends. A real server that
// does not answer fails the test.
func (s *Server) Client(t testing.TB) *redis.Client {
	t.Helper()
	opt, err := redis.ParseURL(s.URL)
	if err != nil {
		t.Fatalf("REDIS_URL: %v", err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redis at %s does not answer: %v", s.URL, err)
	}
	return c
}

// Prefix returns a key prefix unique to this call, and removes every key under it when
// the test ends.
func (s *Server) Prefix(t testing.TB) string {
	t.Helper()
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	p := "t" + hex.EncodeToString(b)
	c := s.Client(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := c.Scan(ctx, 0, p+"*", 1000).Iterator()
		for iter.Next(ctx) {
			c.Del(ctx, iter.Val())
		}
	})
	return p
}

// Redis is the short form: a client and a fresh prefix on the test server.
func Redis(t testing.TB) (*redis.Client, string) {
	t.Helper()
	s := NewServer(t)
	return s.Client(t), s.Prefix(t)
}
