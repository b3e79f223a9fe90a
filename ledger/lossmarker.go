package ledger

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// A loss marker is how a chain goes on after the store lost entries a signed checkpoint
// covered (a Redis wiped, or restarted from an older append-only file). The first append
// after the loss is detected is the marker: an entry of event "loss", of no incident,
// by the system, whose seq jumps past every seq the lost chain's last signed checkpoint
// covered or reserved, and whose prev_hash is that checkpoint's tail hash. It carries the
// checkpoint whole (size, tail hash, time, code base, reserved seq, highest incident code,
// public key, signature), so that anyone holding the chain and the public key can check that the
// jump is the ledger's own: a seq is never reused for other content than a signed
// checkpoint covered, and a forged jump needs the signing key.
//
// The marker's seq is max(checkpoint size, checkpoint reserved seq, the seq of the last
// entry the store kept) + 1: the seqs between the last entry kept and the marker are the
// lost range, named in the marker's data. A verifier accepts a jump or a prev_hash that is
// not the previous entry's hash only at such a marker, and only when the chain before it
// does not hold the checkpoint's tail (a marker where nothing was lost is refused).
//
// Data members (all strings, decimal or RFC 3339): lost_from, lost_to, checkpoint_size,
// checkpoint_tail, checkpoint_at, checkpoint_base, checkpoint_reserved, checkpoint_key,
// checkpoint_signature, checkpoint_codes when the checkpoint states its highest incident
// code (older versions' checkpoints do not), and checkpoint_hashes when it lists hashes.

// LossMarker is what a loss marker entry states.
type LossMarker struct {
	// Seq is the marker entry's own seq.
	Seq uint64
	// LostFrom..LostTo are the seqs the chain skips; none when LostFrom > LostTo (a
	// replaced chain already past everything the checkpoint covered).
	LostFrom, LostTo uint64
	// Checkpoint is the lost chain's last signed checkpoint, which the marker continues.
	Checkpoint Checkpoint
}

// Marker data members.
const (
	mkLostFrom   = "lost_from"
	mkLostTo     = "lost_to"
	mkSize       = "checkpoint_size"
	mkTail       = "checkpoint_tail"
	mkAt         = "checkpoint_at"
	mkBase       = "checkpoint_base"
	mkReserved   = "checkpoint_reserved"
	mkKey        = "checkpoint_key"
	mkSignature  = "checkpoint_signature"
	mkHashes     = "checkpoint_hashes"
	mkCodes      = "checkpoint_codes"
	markerActor  = "ledger"
	markerFields = 9
)

// markerSeq is the seq of the marker that continues cp on a chain whose last entry kept
// has seq last.
func markerSeq(cp *Checkpoint, last uint64) uint64 { return max(cp.Size, cp.Reserved, last) + 1 }

// newLossMarker returns the marker entry that continues the lost chain's signed
// checkpoint cp on tail, the store's chain as it was found after the loss.
func newLossMarker(tenant string, tail Tail, cp Checkpoint, at time.Time) (Entry, error) {
	seq := markerSeq(&cp, tail.Seq)
	data := map[string]string{
		mkLostFrom:  strconv.FormatUint(tail.Seq+1, 10),
		mkLostTo:    strconv.FormatUint(seq-1, 10),
		mkSize:      strconv.FormatUint(cp.Size, 10),
		mkTail:      cp.TailHash,
		mkAt:        cp.At.UTC().Format(time.RFC3339Nano),
		mkBase:      strconv.FormatUint(cp.Base, 10),
		mkReserved:  strconv.FormatUint(cp.Reserved, 10),
		mkKey:       cp.PublicKey,
		mkSignature: cp.Signature,
	}
	if cp.Hashes != "" {
		data[mkHashes] = cp.Hashes
	}
	codes := ""
	if cp.Codes != 0 {
		data[mkCodes] = strconv.FormatUint(cp.Codes, 10)
		codes = ", incident codes through " + IncidentID(cp.Codes)
	}
	lost := "no entry is skipped"
	if tail.Seq+1 < seq {
		lost = fmt.Sprintf("entries %d–%d are lost", tail.Seq+1, seq-1)
	}
	e := Entry{
		Tenant: tenant, Seq: seq, At: at.UTC(), Event: Loss,
		Actor: Actor{Kind: ActorSystem, ID: markerActor},
		Reason: fmt.Sprintf("ledger loss: the store kept %d of the chain's seqs, its last signed checkpoint (%s) covered %d (tail %s, codes reserved through seq %d%s); the chain continues that checkpoint here, %s",
			tail.Seq, cp.At.UTC().Format(time.RFC3339), cp.Size, short(cp.TailHash), cp.Reserved, codes, lost),
		Data:     data,
		PrevHash: cp.TailHash,
	}
	h, err := e.ComputeHash()
	if err != nil {
		return Entry{}, err
	}
	e.Hash = h
	return e, nil
}

// errMarker is the cause of every malformed marker.
var errMarker = errors.New("not a well-formed loss marker")

// ParseLossMarker reads what a loss marker entry states. It checks the form, not the
// signature nor the chain (see Chain).
func ParseLossMarker(e *Entry) (LossMarker, error) {
	if e.Event != Loss {
		return LossMarker{}, fmt.Errorf("%w: event %q", errMarker, e.Event)
	}
	d := e.Data
	want := markerFields
	for _, k := range []string{mkHashes, mkCodes} {
		if _, ok := d[k]; ok {
			want++
		}
	}
	if len(d) != want {
		return LossMarker{}, fmt.Errorf("%w: %d data members, want %d", errMarker, len(d), want)
	}
	num := func(k string) (uint64, error) {
		v, ok := d[k]
		if !ok {
			return 0, fmt.Errorf("%w: no %s", errMarker, k)
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || strconv.FormatUint(n, 10) != v {
			return 0, fmt.Errorf("%w: %s %q is not a number", errMarker, k, v)
		}
		return n, nil
	}
	m := LossMarker{Seq: e.Seq}
	cp := &m.Checkpoint
	cp.Tenant = e.Tenant
	var err error
	for k, p := range map[string]*uint64{mkLostFrom: &m.LostFrom, mkLostTo: &m.LostTo, mkSize: &cp.Size, mkBase: &cp.Base, mkReserved: &cp.Reserved} {
		if *p, err = num(k); err != nil {
			return LossMarker{}, err
		}
	}
	if _, ok := d[mkCodes]; ok {
		if cp.Codes, err = num(mkCodes); err != nil || cp.Codes == 0 {
			return LossMarker{}, fmt.Errorf("%w: %s %q is not a code number", errMarker, mkCodes, d[mkCodes])
		}
	}
	cp.TailHash, cp.PublicKey, cp.Signature, cp.Hashes = d[mkTail], d[mkKey], d[mkSignature], d[mkHashes]
	if !hashRe.MatchString(cp.TailHash) {
		return LossMarker{}, fmt.Errorf("%w: %s is not 64 hex digits", errMarker, mkTail)
	}
	at, err := time.Parse(time.RFC3339Nano, d[mkAt])
	if err != nil || at.UTC().Format(time.RFC3339Nano) != d[mkAt] {
		return LossMarker{}, fmt.Errorf("%w: %s %q is not an RFC 3339 UTC time", errMarker, mkAt, d[mkAt])
	}
	cp.At = at.UTC()
	return m, nil
}

// checkMarker judges the marker e at the position after last (the seq of the last entry
// present before it; 0: none): well formed, its checkpoint signed (by trusted when set),
// its prev_hash the checkpoint's tail, its seq the one past everything the checkpoint
// covered, its lost range the seqs skipped, and a real loss behind it: the chain before it
// must not hold the checkpoint's tail (hashAt returns the hash of the entry with a seq,
// false when there is none). It returns the marker, or the reason it is refused.
func checkMarker(e *Entry, last uint64, trusted ed25519.PublicKey, hashAt func(uint64) (string, bool, error)) (LossMarker, string) {
	m, err := ParseLossMarker(e)
	if err != nil {
		return m, err.Error()
	}
	cp := &m.Checkpoint
	if _, err := cp.Verify(trusted); err != nil {
		if errors.Is(err, ErrUntrustedKey) {
			return m, "loss marker: its checkpoint is signed by another key than the trusted one"
		}
		return m, "loss marker: its checkpoint does not verify: " + err.Error()
	}
	if e.PrevHash != cp.TailHash {
		return m, "loss marker: prev_hash is not the tail hash of the checkpoint it continues"
	}
	if want := markerSeq(cp, last); e.Seq != want {
		return m, fmt.Sprintf("loss marker: seq %d, but the first seq past its checkpoint (size %d, reserved %d) and the chain before it (%d) is %d",
			e.Seq, cp.Size, cp.Reserved, last, want)
	}
	if m.LostFrom != last+1 || m.LostTo != e.Seq-1 {
		return m, fmt.Sprintf("loss marker: names entries %d–%d as lost, the chain skips %d–%d", m.LostFrom, m.LostTo, last+1, e.Seq-1)
	}
	switch {
	case cp.Size == 0 && cp.Reserved == 0:
		return m, "loss marker: its checkpoint covers nothing, so nothing was lost"
	case cp.Size > 0 && cp.Size <= last:
		h, ok, err := hashAt(cp.Size)
		if err != nil {
			return m, "loss marker: cannot read entry " + strconv.FormatUint(cp.Size, 10) + ": " + err.Error()
		}
		if ok && h == cp.TailHash {
			return m, fmt.Sprintf("loss marker where nothing was lost: the chain before it still holds entry %d, the tail of the checkpoint it continues", cp.Size)
		}
	}
	return m, ""
}

// Describe is one line for people: where the chain continues past a loss, what it lost and
// which signed checkpoint it continues.
func (m LossMarker) Describe() string {
	lost := "no seq skipped (the chain was replaced)"
	if m.LostFrom <= m.LostTo {
		lost = fmt.Sprintf("entries %d–%d lost", m.LostFrom, m.LostTo)
	}
	cp := m.Checkpoint
	return fmt.Sprintf("Loss marker at entry %d: %s; continues the checkpoint signed %s (%d entries, tail %s).",
		m.Seq, lost, cp.At.UTC().Format(time.RFC3339), cp.Size, short(cp.TailHash))
}
