package ledger

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// VerifyError names the first bad entry of a chain, by position (1-based).
type VerifyError struct {
	Entry  uint64
	Reason string
}

func (e *VerifyError) Error() string { return fmt.Sprintf("entry %d: %s", e.Entry, e.Reason) }

// Chain checks a chain one entry at a time, in order. Seqs follow each other, each
// prev_hash the previous entry's hash, except at a loss marker (see LossMarker), which
// jumps past a lost range.
type Chain struct {
	tenant string
	n      uint64 // entries present
	last   uint64 // seq of the last entry present
	prev   string
	// hashes are the hashes by seq (GenesisHash for a seq a loss marker skipped), kept
	// only when collecting for an export or a checkpoint comparison.
	hashes []string
	keep   bool
	// trusted, when set, must have signed every loss marker's checkpoint.
	trusted ed25519.PublicKey
	// hashAt reads the hash of an entry already passed, for a loss marker's check when
	// hashes are not kept.
	hashAt func(seq uint64) (string, bool, error)
	losses []LossMarker
}

// NewChain returns a checker for tenant's chain ("" accepts the first entry's tenant).
func NewChain(tenant string) *Chain { return &Chain{tenant: tenant, prev: GenesisHash} }

// Len is how many entries passed.
func (c *Chain) Len() uint64 { return c.n }

// Size is the seq of the last entry that passed: what a checkpoint of the chain covers.
// It is Len unless a loss marker skipped seqs.
func (c *Chain) Size() uint64 { return c.last }

// TailHash is the hash of the last entry that passed.
func (c *Chain) TailHash() string { return c.prev }

// Losses are the loss markers that passed, in order.
func (c *Chain) Losses() []LossMarker { return c.losses }

// seenHash returns the hash of the entry with seq, among those passed.
func (c *Chain) seenHash(seq uint64) (string, bool, error) {
	if c.keep {
		if seq == 0 || seq > uint64(len(c.hashes)) || c.hashes[seq-1] == GenesisHash {
			return "", false, nil
		}
		return c.hashes[seq-1], true, nil
	}
	if c.hashAt != nil {
		return c.hashAt(seq)
	}
	return "", false, errors.New("this check keeps no earlier entries")
}

// Next checks the entry at the next position.
func (c *Chain) Next(e *Entry) error {
	k := c.last + 1
	bad := func(format string, args ...any) error {
		return &VerifyError{Entry: k, Reason: fmt.Sprintf(format, args...)}
	}
	if c.tenant == "" {
		c.tenant = e.Tenant
	}
	if e.Tenant != c.tenant {
		return bad("belongs to tenant %q, not %q", e.Tenant, c.tenant)
	}
	if e.Event == Loss && e.Seq > c.last {
		if err := e.Validate(); err != nil {
			return &VerifyError{Entry: e.Seq, Reason: trimErr(err)}
		}
		if h, err := e.ComputeHash(); err != nil || h != e.Hash {
			return &VerifyError{Entry: e.Seq, Reason: "content does not match its hash (altered)"}
		}
		return c.marker(e)
	}
	switch {
	case e.Seq > k:
		return bad("missing (the next entry present has seq %d)", e.Seq)
	case e.Seq < k:
		return bad("out of order or duplicated: seq %d at this position", e.Seq)
	}
	if err := e.Validate(); err != nil {
		return bad("%v", err)
	}
	h, err := e.ComputeHash()
	if err != nil {
		return bad("%v", err)
	}
	if h != e.Hash {
		return bad("content does not match its hash (altered)")
	}
	if e.PrevHash != c.prev {
		return bad("prev_hash does not match the hash of entry %d", k-1)
	}
	c.pass(e.Seq, e.Hash)
	return nil
}

// marker checks the loss marker e (its hash already checked) and passes it.
func (c *Chain) marker(e *Entry) error {
	m, why := checkMarker(e, c.last, c.trusted, c.seenHash)
	if why != "" {
		return &VerifyError{Entry: e.Seq, Reason: why}
	}
	c.losses = append(c.losses, m)
	c.pass(e.Seq, e.Hash)
	return nil
}

// pass records the entry with seq and hash as the chain's new tail.
func (c *Chain) pass(seq uint64, hash string) {
	if c.keep {
		for s := c.last + 1; s < seq; s++ {
			c.hashes = append(c.hashes, GenesisHash)
		}
		c.hashes = append(c.hashes, hash)
	}
	c.n, c.last, c.prev = c.n+1, seq, hash
}

// markerKeys checks that every loss marker's checkpoint is signed by the key of cp, the
// checkpoint that signs the whole chain (when no key is trusted, a marker signed by a key
// of its own would prove nothing).
func (c *Chain) markerKeys(cp *Checkpoint) error {
	for _, m := range c.losses {
		if m.Checkpoint.PublicKey != cp.PublicKey {
			return &VerifyError{Entry: m.Seq, Reason: "loss marker: its checkpoint is signed by another key than the chain's checkpoint"}
		}
	}
	return nil
}

// against compares the verified chain with a signed checkpoint.
func (c *Chain) against(cp *Checkpoint) error {
	if cp.Tenant != c.tenant && c.n > 0 {
		return &VerifyError{Entry: 1, Reason: fmt.Sprintf("checkpoint is for tenant %q", cp.Tenant)}
	}
	if cp.Hashes != "" {
		for i, h := range c.hashes {
			k := uint64(i + 1)
			if k > cp.Size {
				break
			}
			if h[:HashPrefixLen] != cp.hashPrefix(k) {
				if h == GenesisHash {
					return &VerifyError{Entry: k, Reason: "lost before a loss marker, but the signed checkpoint covers an entry here"}
				}
				return &VerifyError{Entry: k, Reason: "differs from the entry the signed checkpoint covers (inserted, replaced or re-hashed)"}
			}
		}
	}
	switch {
	case c.last < cp.Size:
		return &VerifyError{Entry: c.last + 1, Reason: fmt.Sprintf("missing: the signed checkpoint covers %d entries, only %d present (truncated)", cp.Size, c.last)}
	case cp.Size > 0 && c.hashes[cp.Size-1] != cp.TailHash:
		return &VerifyError{Entry: cp.Size, Reason: "hash differs from the signed checkpoint's tail"}
	}
	return nil
}

// Report is the outcome of a successful verification.
type Report struct {
	Tenant string
	// Entries is how many entries the chain holds; Size is the seq of its last one, what
	// a checkpoint covers. They differ only after a loss marker skipped seqs.
	Entries  uint64
	Size     uint64
	TailHash string
	// Losses are the chain's loss markers, in order.
	Losses     []LossMarker
	Checkpoint *Checkpoint
	// Pinned: the checkpoint was checked against a trusted key, not only its embedded one.
	Pinned bool
}

// VerifyStore walks a tenant's chain in the store and checks it against the latest stored
// checkpoint, if any.
func VerifyStore(ctx context.Context, s Store, tenant string, trusted ed25519.PublicKey) (Report, error) {
	c := NewChain(tenant)
	c.trusted = trusted
	c.hashAt = func(seq uint64) (string, bool, error) {
		es, err := s.Range(ctx, tenant, seq, 1)
		if err != nil || len(es) == 0 || es[0].Seq != seq {
			return "", false, err
		}
		return es[0].Hash, true, nil
	}
	cp, err := s.Checkpoint(ctx, tenant)
	if err != nil {
		return Report{}, fmt.Errorf("read checkpoint: %w", err)
	}
	var cpHash string
	if cp != nil && cp.Size == 0 {
		cpHash = GenesisHash // a restarted chain is signed before its first entry
	}
	for from := uint64(1); ; {
		page, err := s.Range(ctx, tenant, from, 10000)
		if err != nil {
			return Report{}, fmt.Errorf("read entries from %d: %w", from, err)
		}
		for i := range page {
			if err := c.Next(&page[i]); err != nil {
				return Report{}, err
			}
			if cp != nil && c.last == cp.Size {
				cpHash = c.prev
			}
		}
		if len(page) == 0 {
			break
		}
		from = page[len(page)-1].Seq + 1
	}
	r := c.report(cp)
	if cp != nil {
		if r.Pinned, err = cp.Verify(trusted); err != nil {
			return r, &VerifyError{Entry: cp.Size, Reason: "checkpoint: " + err.Error()}
		}
		if err := c.markerKeys(cp); err != nil {
			return r, err
		}
		if c.last < cp.Size {
			return r, &VerifyError{Entry: c.last + 1, Reason: fmt.Sprintf("missing: the signed checkpoint covers %d entries, only %d present (truncated)", cp.Size, c.last)}
		}
		if cpHash != cp.TailHash {
			return r, &VerifyError{Entry: cp.Size, Reason: "hash differs from the signed checkpoint"}
		}
	}
	return r, nil
}

// report is the chain's Report, against cp (not yet checked).
func (c *Chain) report(cp *Checkpoint) Report {
	return Report{Tenant: c.tenant, Entries: c.n, Size: c.last, TailHash: c.prev, Losses: c.losses, Checkpoint: cp}
}

// exportTrailer is the last line of a JSONL export.
type exportTrailer struct {
	Checkpoint *Checkpoint `json:"checkpoint"`
}

// MaxLine bounds one line of an export file. The checkpoint line lists 16 hex digits per
// entry, so this admits exports of up to four million entries.
const MaxLine = 64 << 20

// VerifyExport checks a JSONL export: every entry line in order, then the trailing signed
// checkpoint, which is required.
func VerifyExport(r io.Reader, trusted ed25519.PublicKey) (Report, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), MaxLine)
	c := NewChain("")
	c.keep = true
	var cp *Checkpoint
	const batch = 4096
	var buf [][]byte
	var arena []byte
	var ends []int
	facts := make([]lineFacts, batch)
	flush := func() error {
		buf = buf[:0]
		start := 0
		for _, end := range ends {
			buf = append(buf, arena[start:end])
			start = end
		}
		inspectAll(buf, facts[:len(buf)])
		for i := range buf {
			if err := c.link(&facts[i]); err != nil {
				return err
			}
		}
		arena, ends = arena[:0], ends[:0]
		return nil
	}
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		if cp != nil {
			return Report{}, &VerifyError{Entry: c.last + 1, Reason: "found after the checkpoint line"}
		}
		if bytes.HasPrefix(line, []byte(`{"checkpoint"`)) {
			if err := flush(); err != nil {
				return Report{}, err
			}
			var t exportTrailer
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&t); err != nil || t.Checkpoint == nil {
				return Report{}, &VerifyError{Entry: c.last + 1, Reason: "unreadable checkpoint line"}
			}
			cp = t.Checkpoint
			continue
		}
		arena = append(arena, line...)
		ends = append(ends, len(arena))
		if len(ends) == batch {
			if err := flush(); err != nil {
				return Report{}, err
			}
		}
	}
	if err := flush(); err != nil {
		return Report{}, err
	}
	if err := sc.Err(); err != nil {
		return Report{}, &VerifyError{Entry: c.last + 1, Reason: "unreadable: " + err.Error()}
	}
	rep := c.report(cp)
	if cp == nil {
		return rep, &VerifyError{Entry: c.last + 1, Reason: "no signed checkpoint at the end of the export (truncated?)"}
	}
	pinned, err := cp.Verify(trusted)
	rep.Pinned = pinned
	if errors.Is(err, ErrUntrustedKey) {
		return rep, &KeyError{Signer: cp.PublicKey}
	}
	if err != nil {
		return rep, &VerifyError{Entry: cp.Size, Reason: "checkpoint: " + err.Error()}
	}
	if err := c.markerKeys(cp); err != nil {
		return rep, err
	}
	if err := c.against(cp); err != nil {
		return rep, err
	}
	if c.last > cp.Size {
		return rep, &VerifyError{Entry: cp.Size + 1, Reason: fmt.Sprintf("not covered by the signed checkpoint (it covers %d entries)", cp.Size)}
	}
	return rep, nil
}

func trimErr(err error) string {
	s := strings.TrimPrefix(err.Error(), ErrBadEntry.Error()+": ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
