// Package redisfault puts a fault between a Redis client and a real Redis server: a small
// RESP proxy that forwards every command and can hold back the reply to chosen ones (the
// server has applied the command; the client does not learn it, times out and may retry)
// or cut the connection right after the server applied one. Tests use it to reproduce
// what a slow network or a stalled server does to code that writes to Redis.
//
// It speaks RESP2 and RESP3 (go-redis says HELLO 3): requests are arrays of bulk strings;
// replies are framed by type so that the n-th reply is known to answer the n-th command of
// a connection, pipelines included. Out-of-band push messages are passed through.
package redisfault

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// Match chooses commands by their arguments (args[0] is the command name).
type Match func(args []string) bool

// Command matches a command named name (any case) with at least one argument containing
// each of parts.
func Command(name string, parts ...string) Match {
	return func(args []string) bool {
		if len(args) == 0 || !strings.EqualFold(args[0], name) {
			return false
		}
		for _, p := range parts {
			found := false
			for _, a := range args[1:] {
				if strings.Contains(a, p) {
					found = true
					break
				}
			}
			if !found {
				return false
			}
		}
		return true
	}
}

// Any matches a command that any of ms matches.
func Any(ms ...Match) Match {
	return func(args []string) bool {
		for _, m := range ms {
			if m(args) {
				return true
			}
		}
		return false
	}
}

// Proxy forwards connections to one Redis server.
type Proxy struct {
	target string
	ln     net.Listener

	mu    sync.Mutex
	rules []*rule
	conns map[net.Conn]bool
	seen  [][]string
	wg    sync.WaitGroup
}

type action int

const (
	hold action = iota
	cut
)

type rule struct {
	match Match
	act   action
	left  int // matches still to act on
	held  *Held
}

// Held is a set of replies held back; they reach their clients on Release (if the client
// is still connected).
type Held struct {
	reached   chan struct{}
	released  chan struct{}
	onceReach sync.Once
	onceRel   sync.Once
}

// Reached is closed once the first matching reply was held.
func (h *Held) Reached() <-chan struct{} { return h.reached }

// Release lets the held replies (and those queued behind them) go.
func (h *Held) Release() { h.onceRel.Do(func() { close(h.released) }) }

// Start listens on a free local port and forwards to target ("host:port"); it stops when
// the test ends.
func Start(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("redisfault: listen: %v", err)
	}
	p := &Proxy{target: target, ln: ln, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.Close)
	return p
}

// Addr is the proxy's "host:port".
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL is a redis:// URL of the proxy.
func (p *Proxy) URL() string { return "redis://" + p.Addr() }

// Hold holds back the replies to the next n commands m matches (n ≤ 0: all of them),
// until Release. Replies behind a held one on the same connection wait too, as they
// would behind a slow reply.
func (p *Proxy) Hold(m Match, n int) *Held {
	h := &Held{reached: make(chan struct{}), released: make(chan struct{})}
	p.mu.Lock()
	p.rules = append(p.rules, &rule{match: m, act: hold, left: n, held: h})
	p.mu.Unlock()
	return h
}

// Cut closes the client's connection instead of delivering the reply to the next n
// commands m matches (n ≤ 0: all): the server applied each, the client sees a broken
// connection.
func (p *Proxy) Cut(m Match, n int) {
	p.mu.Lock()
	p.rules = append(p.rules, &rule{match: m, act: cut, left: n})
	p.mu.Unlock()
}

// Seen returns every command forwarded so far, in order.
func (p *Proxy) Seen() [][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]string(nil), p.seen...)
}

// Close stops accepting, closes every connection and releases what is held.
func (p *Proxy) Close() {
	_ = p.ln.Close()
	p.mu.Lock()
	for c := range p.conns {
		_ = c.Close()
	}
	for _, r := range p.rules {
		if r.held != nil {
			r.held.Release()
		}
	}
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		p.mu.Lock()
		p.conns[c], p.conns[s] = true, true
		p.mu.Unlock()
		p.wg.Add(2)
		queue := make(chan *rule, 1024)
		go p.requests(c, s, queue)
		go p.replies(c, s, queue)
	}
}

func (p *Proxy) forget(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		_ = c.Close()
		delete(p.conns, c)
	}
}

// decide finds the rule acting on args, if any, and counts the match.
func (p *Proxy) decide(args []string) *rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.seen = append(p.seen, args)
	for _, r := range p.rules {
		if r.left >= 0 && r.match(args) {
			if r.left > 0 {
				r.left--
				if r.left == 0 {
					r.left = -1 // spent
				}
			}
			return r
		}
	}
	return nil
}

// noRule stands in the queue for a command no rule acts on.
var noRule = &rule{}

// requests reads the client's commands, forwards each, and queues what to do with its reply.
func (p *Proxy) requests(c, s net.Conn, queue chan<- *rule) {
	defer p.wg.Done()
	defer close(queue)
	r := bufio.NewReader(c)
	for {
		raw, args, err := readRequest(r)
		if err != nil {
			p.forget(c, s)
			return
		}
		act := p.decide(args)
		if act == nil {
			act = noRule
		}
		queue <- act
		if _, err := s.Write(raw); err != nil {
			p.forget(c, s)
			return
		}
	}
}

// replies delivers the server's replies to the client, holding or cutting as decided.
func (p *Proxy) replies(c, s net.Conn, queue <-chan *rule) {
	defer p.wg.Done()
	r := bufio.NewReader(s)
	for {
		var buf bytes.Buffer
		push, err := readValue(r, &buf)
		if err != nil {
			p.forget(c, s)
			return
		}
		if push {
			_, _ = c.Write(buf.Bytes())
			continue
		}
		act, ok := <-queue
		if !ok {
			p.forget(c, s)
			return
		}
		switch {
		case act.act == cut && act != noRule:
			p.forget(c, s)
			return
		case act.held != nil:
			act.held.onceReach.Do(func() { close(act.held.reached) })
			<-act.held.released
		}
		if _, err := c.Write(buf.Bytes()); err != nil {
			p.forget(c, s)
			return
		}
	}
}

// readRequest reads one command: an array of bulk strings, or an inline command.
func readRequest(r *bufio.Reader) ([]byte, []string, error) {
	line, err := readLine(r)
	if err != nil {
		return nil, nil, err
	}
	if len(line) == 0 || line[0] != '*' {
		return append(line, '\r', '\n'), strings.Fields(string(line)), nil
	}
	n, err := strconv.Atoi(string(line[1:]))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, nil, fmt.Errorf("redisfault: bad request header %q", line)
	}
	raw := append(append([]byte(nil), line...), '\r', '\n')
	args := make([]string, 0, n)
	for range n {
		h, err := readLine(r)
		if err != nil {
			return nil, nil, err
		}
		if len(h) == 0 || h[0] != '$' {
			return nil, nil, fmt.Errorf("redisfault: bad argument header %q", h)
		}
		size, err := strconv.Atoi(string(h[1:]))
		if err != nil || size < 0 || size > 512<<20 {
			return nil, nil, fmt.Errorf("redisfault: bad argument size %q", h)
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, nil, err
		}
		raw = append(append(append(raw, h...), '\r', '\n'), b...)
		args = append(args, string(b[:size]))
	}
	return raw, args, nil
}

// readValue copies one RESP2/RESP3 value into buf; push reports an out-of-band push.
func readValue(r *bufio.Reader, buf *bytes.Buffer) (push bool, err error) {
	line, err := readLine(r)
	if err != nil {
		return false, err
	}
	buf.Write(line)
	buf.WriteString("\r\n")
	if len(line) == 0 {
		return false, errors.New("redisfault: empty reply line")
	}
	switch line[0] {
	case '+', '-', ':', '_', ',', '#', '(':
		return false, nil
	case '$', '!', '=':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil {
			return false, fmt.Errorf("redisfault: bad reply %q", line)
		}
		if n < 0 {
			return false, nil
		}
		b := make([]byte, n+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return false, err
		}
		buf.Write(b)
		return false, nil
	case '*', '~', '>', '%', '|':
		n, err := strconv.Atoi(string(line[1:]))
		if err != nil {
			return false, fmt.Errorf("redisfault: bad reply %q", line)
		}
		if line[0] == '%' || line[0] == '|' {
			n *= 2
		}
		for range max(n, 0) {
			if _, err := readValue(r, buf); err != nil {
				return false, err
			}
		}
		if line[0] == '|' { // attributes come before the value they describe
			return readValue(r, buf)
		}
		return line[0] == '>', nil
	}
	return false, fmt.Errorf("redisfault: unknown reply type %q", line)
}

func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(bytes.TrimSuffix(line, []byte("\n")), []byte("\r")), nil
}
