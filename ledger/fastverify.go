package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"runtime"
	"strconv"
	"sync"
)

// lineFacts are what the chain check needs from one export line.
type lineFacts struct {
	tenant string
	seq    uint64
	prev   [64]byte
	hash   [64]byte
	err    string // non-empty: the line is not a sound entry
	loss   *Entry // the line is a loss marker, decoded
}

var (
	suffixPrev = []byte(`,"prev_hash":"`)
	suffixHash = []byte(`","hash":"`)
	prefixTen  = []byte(`{"tenant":"`)
	seqKey     = []byte(`"seq":`)
	lossEvent  = []byte(`"event":"loss"`)
)

// tailLen is the length of `,"prev_hash":"<64>","hash":"<64>"}`.
const tailLen = 14 + 64 + 10 + 64 + 2

// inspect checks one stored entry line without decoding it into a struct: the stored form
// is the canonical encoding with "hash" last, so the canonical bytes are the line up to
// `,"hash"` closed by `}`, and prev_hash and hash sit at fixed offsets from the end. A line
// that is not in that shape falls back to a full decode for an exact message.
func inspect(line []byte, f *lineFacts) {
	n := len(line)
	ok := n > tailLen+len(prefixTen) && line[n-1] == '}' && line[n-2] == '"' &&
		bytes.Equal(line[n-tailLen:n-tailLen+len(suffixPrev)], suffixPrev) &&
		bytes.Equal(line[n-2-64-len(suffixHash):n-2-64], suffixHash) &&
		bytes.HasPrefix(line, prefixTen)
	if ok {
		copy(f.prev[:], line[n-tailLen+len(suffixPrev):])
		copy(f.hash[:], line[n-2-64:])
		rest := line[len(prefixTen):]
		i := bytes.IndexByte(rest, '"')
		j := bytes.Index(line, seqKey)
		if i < 0 || j < 0 {
			ok = false
		} else {
			f.tenant = string(rest[:i])
			d := line[j+len(seqKey):]
			k := 0
			for k < len(d) && d[k] >= '0' && d[k] <= '9' {
				k++
			}
			seq, err := strconv.ParseUint(string(d[:k]), 10, 64)
			ok = err == nil && isHex(f.prev[:]) && isHex(f.hash[:]) && json.Valid(line)
			f.seq = seq
		}
	}
	if !ok {
		var e Entry
		if err := json.Unmarshal(line, &e); err != nil {
			f.err = "undecodable: " + trimErr(err)
			return
		}
		f.err = "not in the stored canonical form"
		return
	}
	h := sha256.New()
	h.Write(line[:n-tailLen+len(suffixPrev)+64+1]) // through the closing quote of prev_hash
	h.Write([]byte{'}'})
	var sum [32]byte
	var hx [64]byte
	hex.Encode(hx[:], h.Sum(sum[:0]))
	if bytes.Contains(line, lossEvent) {
		// Perhaps a loss marker (or only data that reads so): decode it to be sure.
		var e Entry
		if err := json.Unmarshal(line, &e); err == nil && e.Event == Loss {
			f.loss = &e
		}
	}
	if hx != f.hash {
		f.err = "content does not match its hash (altered)"
	}
}

func isHex(b []byte) bool {
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// inspectAll inspects lines on every CPU.
func inspectAll(lines [][]byte, out []lineFacts) {
	workers := runtime.GOMAXPROCS(0)
	if workers > len(lines)/256+1 {
		workers = len(lines)/256 + 1
	}
	var wg sync.WaitGroup
	per := (len(lines) + workers - 1) / workers
	for w := 0; w < workers; w++ {
		lo, hi := w*per, min((w+1)*per, len(lines))
		if lo >= hi {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				out[i] = lineFacts{}
				inspect(lines[i], &out[i])
			}
		}()
	}
	wg.Wait()
}

// link checks the inspected line at the next position of the chain.
func (c *Chain) link(f *lineFacts) error {
	k := c.last + 1
	bad := func(reason string) error { return &VerifyError{Entry: k, Reason: reason} }
	if f.err != "" {
		if f.loss != nil && f.seq > c.last {
			// A loss marker is named by its own seq, past the jump (as Next does).
			return &VerifyError{Entry: f.seq, Reason: f.err}
		}
		return bad(f.err)
	}
	if c.tenant == "" {
		c.tenant = f.tenant
	}
	if f.tenant != c.tenant {
		return bad("belongs to tenant " + strconv.Quote(f.tenant) + ", not " + strconv.Quote(c.tenant))
	}
	if f.loss != nil && f.seq > c.last {
		if err := f.loss.Validate(); err != nil {
			return &VerifyError{Entry: f.seq, Reason: trimErr(err)}
		}
		return c.marker(f.loss)
	}
	switch {
	case f.seq > k:
		return bad("missing (the next entry present has seq " + strconv.FormatUint(f.seq, 10) + ")")
	case f.seq < k:
		return bad("out of order or duplicated: seq " + strconv.FormatUint(f.seq, 10) + " at this position")
	case string(f.prev[:]) != c.prev:
		return bad("prev_hash does not match the hash of entry " + strconv.FormatUint(k-1, 10))
	}
	c.pass(f.seq, string(f.hash[:]))
	return nil
}
