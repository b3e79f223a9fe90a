package slacktest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// sockets are the Socket Mode connections the fake holds, and the envelopes they
// acknowledged.
type sockets struct {
	mu    sync.Mutex
	conns []*sockConn
	// opened counts every connection ever made.
	opened int
	acks   map[string]bool
	seq    int
	cond   *sync.Cond
}

type sockConn struct {
	wmu  sync.Mutex
	conn *websocket.Conn
}

func (s *sockets) init() {
	s.acks = map[string]bool{}
	s.cond = sync.NewCond(&s.mu)
}

func (s *sockets) closeAll() {
	s.mu.Lock()
	conns := s.conns
	s.conns = nil
	s.cond.Broadcast()
	s.mu.Unlock()
	for _, c := range conns {
		_ = c.conn.Close()
	}
}

var upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}

// serveSocket is the websocket apps.connections.open points at: it says hello, then
// reads acknowledgements ({"envelope_id": …}) until the client goes.
func (s *Server) serveSocket(w http.ResponseWriter, r *http.Request) {
	conn, err := upgrader.Upgrade(w, r, nil)
	if err != nil {
		return
	}
	c := &sockConn{conn: conn}
	hello := map[string]any{"type": "hello", "num_connections": 1,
		"connection_info": map[string]any{"app_id": AppID}, "debug_info": map[string]any{"host": "fake"}}
	if err := c.write(hello); err != nil {
		_ = conn.Close()
		return
	}
	s.sock.mu.Lock()
	s.sock.conns = append(s.sock.conns, c)
	s.sock.opened++
	s.sock.cond.Broadcast()
	s.sock.mu.Unlock()
	defer s.sock.drop(c)
	for {
		var ack struct {
			EnvelopeID string `json:"envelope_id"`
		}
		if err := conn.ReadJSON(&ack); err != nil {
			return
		}
		if ack.EnvelopeID != "" {
			s.sock.mu.Lock()
			s.sock.acks[ack.EnvelopeID] = true
			s.sock.cond.Broadcast()
			s.sock.mu.Unlock()
		}
	}
}

func (c *sockConn) write(v any) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return c.conn.WriteJSON(v)
}

func (s *sockets) drop(c *sockConn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, x := range s.conns {
		if x == c {
			s.conns = append(s.conns[:i], s.conns[i+1:]...)
			break
		}
	}
	_ = c.conn.Close()
	s.cond.Broadcast()
}

// ErrNoSocket: no Socket Mode client is connected.
var ErrNoSocket = errors.New("slacktest: no socket mode connection")

// WaitSocket waits until a Socket Mode client is connected, or d passes.
func (s *Server) WaitSocket(d time.Duration) error {
	return s.sock.wait(d, func() bool { return len(s.sock.conns) > 0 }, ErrNoSocket)
}

// WaitOpened waits until n connections were opened in all (a client reconnecting after
// Disconnect opens a new one), or d passes.
func (s *Server) WaitOpened(n int, d time.Duration) error {
	return s.sock.wait(d, func() bool { return s.sock.opened >= n && len(s.sock.conns) > 0 }, fmt.Errorf("slacktest: fewer than %d socket mode connections", n))
}

// Envelope sends d over Socket Mode as Slack does (envelope_id, type, payload;
// retry_attempt on a redelivery) and returns its envelope id.
func (s *Server) Envelope(d Delivery, retry int) (string, error) {
	s.sock.mu.Lock()
	if len(s.sock.conns) == 0 {
		s.sock.mu.Unlock()
		return "", ErrNoSocket
	}
	c := s.sock.conns[len(s.sock.conns)-1]
	s.sock.seq++
	id := fmt.Sprintf("env-%06d", s.sock.seq)
	s.sock.mu.Unlock()
	env := map[string]any{"envelope_id": id, "type": d.Kind, "payload": json.RawMessage(d.Payload),
		"accepts_response_payload": d.Kind != "events_api", "retry_attempt": retry, "retry_reason": ""}
	if retry > 0 {
		env["retry_reason"] = "timeout"
	}
	return id, c.write(env)
}

// WaitAck waits until envelope id is acknowledged, or d passes.
func (s *Server) WaitAck(id string, d time.Duration) error {
	return s.sock.wait(d, func() bool { return s.sock.acks[id] }, fmt.Errorf("slacktest: envelope %s not acknowledged", id))
}

// Disconnect asks the connected clients to reconnect, as Slack does before it rotates a
// connection.
func (s *Server) Disconnect() {
	s.sock.mu.Lock()
	conns := append([]*sockConn(nil), s.sock.conns...)
	s.sock.mu.Unlock()
	for _, c := range conns {
		_ = c.write(map[string]any{"type": "disconnect", "reason": "refresh_requested"})
	}
}

func (s *sockets) wait(d time.Duration, ok func() bool, fail error) error {
	deadline := time.Now().Add(d)
	t := time.AfterFunc(d, func() {
		s.mu.Lock()
		s.cond.Broadcast()
		s.mu.Unlock()
	})
	defer t.Stop()
	s.mu.Lock()
	defer s.mu.Unlock()
	for !ok() {
		if time.Now().After(deadline) {
			return fail
		}
		s.cond.Wait()
	}
	return nil
}
