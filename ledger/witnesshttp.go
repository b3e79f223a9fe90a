package ledger

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// The witness over HTTP, as C2SP tlog-witness specifies it:
//
//	POST <prefix>/add-checkpoint
//	body: "old <size>\n", zero or more base64 consistency proof lines, "\n", the checkpoint note
//	200: the witness's cosignature lines; 409 (text/x.tlog.size): "<last cosigned size>\n";
//	400, 403, 422: refused, with the reason.

// maxWitnessRequest bounds a request body: a note and at most 63 proof lines.
const maxWitnessRequest = 64 << 10

// Handler serves add-checkpoint (at any path ending in /add-checkpoint).
func (w *Witness) Handler() http.Handler {
	return http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		if !strings.HasSuffix(r.URL.Path, "/add-checkpoint") {
			http.NotFound(rw, r)
			return
		}
		if r.Method != http.MethodPost {
			rw.Header().Set("Allow", http.MethodPost)
			http.Error(rw, "POST only", http.StatusMethodNotAllowed)
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, maxWitnessRequest+1))
		if err != nil || len(body) > maxWitnessRequest {
			http.Error(rw, "request body unreadable or too large", http.StatusBadRequest)
			return
		}
		oldSize, proof, msg, err := parseAddCheckpoint(body)
		if err != nil {
			http.Error(rw, err.Error(), http.StatusBadRequest)
			return
		}
		cosigned, err := w.AddCheckpoint(oldSize, proof, msg)
		var we *WitnessError
		switch {
		case errors.As(err, &we) && we.Status == http.StatusConflict && oldSize != we.Size:
			rw.Header().Set("Content-Type", "text/x.tlog.size")
			rw.WriteHeader(http.StatusConflict)
			fmt.Fprintf(rw, "%d\n", we.Size)
			return
		case errors.As(err, &we):
			http.Error(rw, err.Error(), we.Status)
			return
		case err != nil:
			http.Error(rw, "witness state unavailable", http.StatusServiceUnavailable)
			return
		}
		rw.Header().Set("Content-Type", "text/plain; charset=utf-8")
		rw.Write(w.ownSignatures(cosigned))
	})
}

// ownSignatures returns the signature lines of this witness in a note it cosigned.
func (w *Witness) ownSignatures(msg []byte) []byte {
	var out []byte
	prefix := []byte("— " + w.signer.Name() + " ")
	for _, line := range bytes.SplitAfter(msg[bytes.LastIndex(msg, []byte("\n\n"))+2:], []byte("\n")) {
		if bytes.HasPrefix(line, prefix) {
			b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(line[len(prefix):])))
			if err == nil && len(b) >= 4 && uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3]) == w.signer.KeyHash() {
				out = append(out, line...)
			}
		}
	}
	return out
}

func parseAddCheckpoint(body []byte) (int64, []tlog.Hash, []byte, error) {
	i := bytes.Index(body, []byte("\n\n"))
	if i < 0 {
		return 0, nil, nil, errors.New("want an old size line, proof lines, an empty line and a checkpoint")
	}
	lines := strings.Split(string(body[:i]), "\n")
	sz, ok := strings.CutPrefix(lines[0], "old ")
	old, err := strconv.ParseInt(sz, 10, 64)
	if !ok || err != nil || old < 0 || strconv.FormatInt(old, 10) != sz {
		return 0, nil, nil, fmt.Errorf("old size line %q", lines[0])
	}
	if len(lines)-1 > 63 {
		return 0, nil, nil, fmt.Errorf("%d proof lines, at most 63", len(lines)-1)
	}
	proof, err := decodeProof(lines[1:])
	if err != nil {
		return 0, nil, nil, err
	}
	return old, proof, body[i+2:], nil
}

// WitnessClient submits a log's checkpoints to one HTTP witness and checks the
// cosignature it returns against the witness key the log pins.
type WitnessClient struct {
	url    string // the add-checkpoint URL
	key    note.Verifier
	client *http.Client
}

// NewWitnessClient returns a client of the witness at prefix (an absolute http(s) URL;
// requests go to prefix/add-checkpoint) whose cosignatures must verify with key (a
// witness verifier string). client nil: one with a 10 s timeout.
func NewWitnessClient(prefix, key string, client *http.Client) (*WitnessClient, error) {
	u, err := url.Parse(prefix)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return nil, fmt.Errorf("witness URL %q: want an absolute http(s) URL without credentials", prefix)
	}
	v, err := ParseVerifier(key)
	if err != nil {
		return nil, fmt.Errorf("witness key: %w", err)
	}
	if _, ok := v.(*cosignatureVerifier); !ok {
		return nil, fmt.Errorf("witness key %s is not a cosignature (tlog-cosignature) key", v.Name())
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	return &WitnessClient{url: strings.TrimRight(prefix, "/") + "/add-checkpoint", key: v, client: client}, nil
}

// Name is the witness's key name.
func (c *WitnessClient) Name() string { return c.key.Name() }

// Verifier is the pinned witness key.
func (c *WitnessClient) Verifier() note.Verifier { return c.key }

// SizeConflict is a witness's 409 answer: the size of the last checkpoint it cosigned.
type SizeConflict struct{ Size int64 }

func (e *SizeConflict) Error() string {
	return fmt.Sprintf("the witness last cosigned a checkpoint of %d entries", e.Size)
}

// AddCheckpoint submits msg with a proof from oldSize and returns msg with the witness's
// cosignature added (only signature lines that verify with the pinned key are kept).
func (c *WitnessClient) AddCheckpoint(ctx context.Context, oldSize int64, proof []tlog.Hash, msg []byte) ([]byte, error) {
	var body bytes.Buffer
	fmt.Fprintf(&body, "old %d\n", oldSize)
	for _, p := range encodeProof(proof) {
		body.WriteString(p + "\n")
	}
	body.WriteString("\n")
	body.Write(msg)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, &body)
	if err != nil {
		return nil, err
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", c.Name(), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 16<<10))
	if err != nil {
		return nil, fmt.Errorf("witness %s: %w", c.Name(), err)
	}
	switch {
	case resp.StatusCode == http.StatusConflict && strings.HasPrefix(resp.Header.Get("Content-Type"), "text/x.tlog.size"):
		s := strings.TrimSuffix(string(b), "\n")
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("witness %s: 409 with size %q", c.Name(), s)
		}
		return nil, &SizeConflict{Size: n}
	case resp.StatusCode != http.StatusOK:
		return nil, fmt.Errorf("witness %s refused (HTTP %d): %s", c.Name(), resp.StatusCode, firstLine(b))
	}
	var sigs []byte
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "— ") {
			return nil, fmt.Errorf("witness %s: answer is not signature lines", c.Name())
		}
		sigs = append(sigs, line+"\n"...)
	}
	n, err := note.Open(append(append([]byte(nil), msg...), sigs...), note.VerifierList(c.key))
	if err != nil || len(n.Sigs) == 0 {
		return nil, fmt.Errorf("witness %s: no cosignature that verifies with its pinned key", c.Name())
	}
	out := append([]byte(nil), msg...)
	for _, s := range n.Sigs {
		out = append(out, "— "+s.Name+" "+s.Base64+"\n"...)
	}
	return out, nil
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(strings.TrimSpace(string(b)), "\n")
	return Clip(s, 200)
}

// ErrQuorum: fewer witnesses cosigned a checkpoint than required.
var ErrQuorum = errors.New("not enough witness cosignatures")

// Witnesses is the log's side of witnessing: it submits each new checkpoint note of a
// tenant to every witness, with a consistency proof from the size that witness last
// cosigned (learnt from its 409 the first time), and requires Quorum cosignatures.
type Witnesses struct {
	Clients []*WitnessClient
	Quorum  int
	mu      sync.Mutex
	last    map[string]int64 // witness name + "\n" + origin → size it last cosigned
}

// Cosign returns msg (a checkpoint note of tenant's tree in ts) with the cosignatures of
// the witnesses that gave one; fewer than Quorum is an error wrapping ErrQuorum that
// names each witness's failure, with the note as cosigned as it got.
func (ws *Witnesses) Cosign(ctx context.Context, ts TreeStore, tenant string, msg []byte) ([]byte, error) {
	cp, err := ParseCheckpointText(noteText(msg))
	if err != nil {
		return nil, err
	}
	out := msg
	var fails []string
	got := 0
	for _, c := range ws.Clients {
		cosigned, err := ws.one(ctx, c, ts, tenant, cp, msg)
		if err != nil {
			fails = append(fails, err.Error())
			continue
		}
		got++
		out = append(out, cosigned[len(msg):]...)
	}
	if got < ws.Quorum {
		return out, fmt.Errorf("%w: %d of %d required for %s at %d entries: %s", ErrQuorum, got, ws.Quorum, cp.Origin, cp.Tree.N, strings.Join(fails, "; "))
	}
	return out, nil
}

func (ws *Witnesses) one(ctx context.Context, c *WitnessClient, ts TreeStore, tenant string, cp *NoteCheckpoint, msg []byte) ([]byte, error) {
	key := c.Name() + "\n" + cp.Origin
	ws.mu.Lock()
	old := ws.last[key]
	ws.mu.Unlock()
	for try := 0; ; try++ {
		if old > cp.Tree.N {
			return nil, fmt.Errorf("witness %s already cosigned %d entries of %s, more than this checkpoint's %d", c.Name(), old, cp.Origin, cp.Tree.N)
		}
		var proof []tlog.Hash
		if old > 0 && old < cp.Tree.N {
			p, err := ConsistencyProof(ctx, ts, tenant, old, cp.Tree.N)
			if err != nil {
				return nil, fmt.Errorf("witness %s: consistency proof from %d: %w", c.Name(), old, err)
			}
			proof = p
		}
		out, err := c.AddCheckpoint(ctx, old, proof, msg)
		var sc *SizeConflict
		if errors.As(err, &sc) && try == 0 && sc.Size != old {
			old = sc.Size
			continue
		}
		if err != nil {
			return nil, err
		}
		ws.mu.Lock()
		if ws.last == nil {
			ws.last = map[string]int64{}
		}
		ws.last[key] = cp.Tree.N
		ws.mu.Unlock()
		return out, nil
	}
}

// ListenAndServe serves the witness on addr until ctx ends; ready, when given, is told
// the address it listens on.
func (w *Witness) ListenAndServe(ctx context.Context, addr string, ready func(string)) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: w.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second, WriteTimeout: 30 * time.Second}
	if ready != nil {
		ready(ln.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	}
}
