package redisfault

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// Server is a redis-server of the test's own, on a free local port, persisting with an
// append-only file fsync'd on every write, so that a copy of its directory is exactly
// what it had applied: restarting from an older copy is what a power cut with a lagging
// fsync, or a failover to a lagging replica, does to the data.
type Server struct {
	t    testing.TB
	bin  string
	dir  string
	port int
	cmd  *exec.Cmd
}

// Snapshot is a copy of a Server's data at one moment.
type Snapshot struct{ dir string }

// StartServer starts a redis-server from PATH, and skips the test when there is none. It
// is stopped when the test ends.
func StartServer(t testing.TB) *Server {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: the fault needs a server process of its own")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redisfault: free port: %v", err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	s := &Server{t: t, bin: bin, dir: t.TempDir(), port: port}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// Addr is the server's "host:port"; it stays the same across restarts.
func (s *Server) Addr() string { return "127.0.0.1:" + strconv.Itoa(s.port) }

// URL is a redis:// URL of the server.
func (s *Server) URL() string { return "redis://" + s.Addr() }

func (s *Server) data() string { return filepath.Join(s.dir, "data") }

func (s *Server) start() {
	s.t.Helper()
	if err := os.MkdirAll(s.data(), 0o755); err != nil {
		s.t.Fatal(err)
	}
	s.cmd = exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.data(),
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--daemonize", "no", "--logfile", "")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("redisfault: start redis-server: %v", err)
	}
	c := redis.NewClient(&redis.Options{Addr: s.Addr(), MaxRetries: -1})
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		// Waiting for the server to accept connections: there is no signal to wait on.
		if err := c.Ping(ctx).Err(); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			s.t.Fatalf("redisfault: redis-server on %s did not come up", s.Addr())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func (s *Server) stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Signal(syscall.SIGCONT)
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Snapshot copies the server's data as it is now (every write it acknowledged).
func (s *Server) Snapshot() Snapshot {
	s.t.Helper()
	to := filepath.Join(s.t.TempDir(), "snapshot")
	if err := copyDir(s.data(), to); err != nil {
		s.t.Fatalf("redisfault: snapshot: %v", err)
	}
	return Snapshot{dir: to}
}

// RestartFrom kills the server and starts it again on the same port from snap: every
// write since the snapshot is lost.
func (s *Server) RestartFrom(snap Snapshot) {
	s.t.Helper()
	s.stop()
	if err := os.RemoveAll(s.data()); err != nil {
		s.t.Fatal(err)
	}
	if err := copyDir(snap.dir, s.data()); err != nil {
		s.t.Fatalf("redisfault: restore: %v", err)
	}
	s.start()
}

// Pause stops the server process (SIGSTOP): connections stay open, nothing is answered.
func (s *Server) Pause() { _ = s.cmd.Process.Signal(syscall.SIGSTOP) }

// Resume continues a paused server (SIGCONT).
func (s *Server) Resume() { _ = s.cmd.Process.Signal(syscall.SIGCONT) }

func copyDir(from, to string) error {
	return filepath.Walk(from, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(from, p)
		if err != nil {
			return err
		}
		dst := filepath.Join(to, rel)
		if info.IsDir() {
			return os.MkdirAll(dst, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return fmt.Errorf("copy %s: %w", p, err)
		}
		return os.WriteFile(dst, b, 0o644)
	})
}
