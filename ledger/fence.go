package ledger

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrFenced is the cause of every append refused because its incident is from before a
// ledger loss no operator has accepted yet: the store may have forgotten that the
// incident was approved or run, so nothing that hands out or uses an approval is recorded
// on it (see Ledger.AcceptLoss).
var ErrFenced = errors.New("incident fenced after a ledger loss")

// fencedEvents hand out or use approvals; on a fenced incident they are refused. Everything
// else (updates, questions, refused presses, notices, expiry, recovery) is still recorded.
var fencedEvents = map[Event]bool{
	Validate: true, Authorize: true, PartialApprove: true, Escalation: true, Reissue: true, Redrive: true,
}

// Acceptance is an operator's signed statement that the lost chains of a tenant up to
// the chain starting at Through (a code base) were reviewed: who, when and why. It lifts
// the fence on incidents from before the loss; the lost chains stay listed in the mark.
type Acceptance struct {
	Tenant    string    `json:"tenant"`
	Through   uint64    `json:"through"`
	By        string    `json:"by"`
	Reason    string    `json:"reason"`
	At        time.Time `json:"at"`
	PublicKey string    `json:"public_key"`
	Signature string    `json:"signature"`
}

func (a *Acceptance) message() []byte {
	return []byte("alertengine-loss-accepted/v1\n" + a.Tenant + "\n" + strconv.FormatUint(a.Through, 10) + "\n" +
		a.By + "\n" + a.Reason + "\n" + a.At.UTC().Format(time.RFC3339Nano))
}

func (a Acceptance) sign(key ed25519.PrivateKey) Acceptance {
	a.At = a.At.UTC()
	a.PublicKey = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	a.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, a.message()))
	return a
}

// verify checks a's signature, against trusted when set.
func (a *Acceptance) verify(trusted ed25519.PublicKey) error {
	pub, err := base64.StdEncoding.DecodeString(a.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: loss acceptance: public key is not a base64 Ed25519 key", ErrBadCheckpoint)
	}
	if trusted != nil && !trusted.Equal(ed25519.PublicKey(pub)) {
		return fmt.Errorf("%w: loss acceptance signed by another key than the trusted one", ErrBadCheckpoint)
	}
	sig, err := base64.StdEncoding.DecodeString(a.Signature)
	if err != nil || !ed25519.Verify(pub, a.message(), sig) {
		return fmt.Errorf("%w: loss acceptance signature does not verify", ErrBadCheckpoint)
	}
	return nil
}

// Unaccepted returns the lost chains of m no acceptance covers yet, oldest first.
func (m *Mark) Unaccepted() []Checkpoint {
	if m == nil {
		return nil
	}
	var through uint64
	for _, a := range m.Accepted {
		through = max(through, a.Through)
	}
	var out []Checkpoint
	for _, cp := range m.Lost {
		if cp.Base >= through {
			out = append(out, cp)
		}
	}
	if through > m.Checkpoint.Base || len(out) == 0 {
		return nil
	}
	return out
}

// mergeAccepted unites two lists of acceptances, oldest first, without repeats.
func mergeAccepted(a, b []Acceptance) []Acceptance {
	seen := map[string]bool{}
	var out []Acceptance
	for _, x := range append(append([]Acceptance(nil), a...), b...) {
		if !seen[x.Signature] {
			seen[x.Signature] = true
			out = append(out, x)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	if len(out) > maxLost {
		out = out[len(out)-maxLost:]
	}
	return out
}

// incidentCode is the number of an incident id (INC-1F → 0x1F).
func incidentCode(id string) (uint64, bool) {
	h, ok := strings.CutPrefix(id, "INC-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(h, 16, 64)
	return n, err == nil
}

// fences reports whether e may not be appended: its incident is from before an
// unaccepted loss (its code is not past the chain's code base at the loss: the lost
// chain's highest code may be the base itself) and e hands out or uses an approval.
func (ep *epoch) fences(e *Entry) bool {
	if ep.fencedBelow == 0 || !fencedEvents[e.Event] {
		return false
	}
	n, ok := incidentCode(e.Incident)
	return ok && n <= ep.fencedBelow
}

// fenceFromMark fences the incidents before the current chain when the mark lists a lost
// chain no acceptance covers.
func (ep *epoch) fenceFromMark() {
	if ep.mark != nil && len(ep.mark.Unaccepted()) > 0 {
		ep.fencedBelow = max(ep.fencedBelow, ep.mark.Checkpoint.Base)
	}
}

// Fenced reports whether incident is from before a ledger loss of tenant no operator has
// accepted: approvals of it are neither handed out nor used until then.
func (l *Ledger) Fenced(ctx context.Context, tenant, incident string) (bool, error) {
	q := l.queue(tenant)
	q.gmu.Lock()
	defer q.gmu.Unlock()
	if !q.ep.loaded {
		if err := l.loadEpoch(ctx, tenant, &q.ep); err != nil {
			return false, err
		}
	}
	return q.ep.fences(&Entry{Event: Authorize, Incident: incident}), nil
}

// relift reloads the sink's mark of a fenced tenant, and lifts the fence when an operator
// accepted the loss meanwhile (from another process: `bot ledger accept-loss`).
func (l *Ledger) relift(ctx context.Context, tenant string, ep *epoch) {
	if ep.fencedBelow == 0 || l.opts.Sink == nil {
		return
	}
	m, err := l.opts.Sink.Load(ctx, tenant)
	if err != nil || m == nil || m.Checkpoint.Base != ep.base {
		return
	}
	if len(m.Unaccepted()) == 0 && len(m.Accepted) > 0 {
		ep.fencedBelow = 0
		ep.mark = m
		l.opts.Logger.Warn("ledger loss accepted by an operator: incidents from before it are no longer fenced", "tenant", tenant,
			"by", m.Accepted[len(m.Accepted)-1].By)
	}
}

// AcceptLoss records that by reviewed every lost chain of tenant, and why it may carry on:
// a signed acceptance in the checkpoint sink (the lost chains stay listed) and a notice on
// every open incident from before the loss. It lifts the fence (other processes lift it at
// their next Check). It needs a Signer and a Sink; with no unaccepted loss it returns an
// error wrapping ErrNoLoss.
func (l *Ledger) AcceptLoss(ctx context.Context, tenant, by, reason string) (Acceptance, []Entry, error) {
	by, reason = strings.TrimSpace(by), strings.TrimSpace(reason)
	if by == "" || reason == "" {
		return Acceptance{}, nil, errors.New("accept loss: who accepts and why are both required")
	}
	if l.opts.Signer == nil || l.opts.Sink == nil {
		return Acceptance{}, nil, errors.New("accept loss: needs the signing key and a checkpoint sink")
	}
	if err := l.Check(ctx, tenant); err != nil && !errors.Is(err, ErrLost) {
		return Acceptance{}, nil, err
	}
	q := l.queue(tenant)
	q.gmu.Lock()
	m, err := l.opts.Sink.Load(ctx, tenant)
	if err != nil {
		q.gmu.Unlock()
		return Acceptance{}, nil, err
	}
	lost := m.Unaccepted()
	if len(lost) == 0 {
		q.gmu.Unlock()
		return Acceptance{}, nil, fmt.Errorf("accept loss of %s: %w", tenant, ErrNoLoss)
	}
	below := max(q.ep.fencedBelow, m.Checkpoint.Base)
	a := Acceptance{Tenant: tenant, Through: m.Checkpoint.Base, By: by, Reason: reason, At: l.opts.Clock()}.sign(l.opts.Signer)
	nm := *m
	nm.Accepted = mergeAccepted(m.Accepted, []Acceptance{a})
	if err := l.opts.Sink.Save(ctx, nm); err != nil {
		q.gmu.Unlock()
		return Acceptance{}, nil, err
	}
	q.ep.mark, q.ep.fencedBelow = &nm, 0
	q.gmu.Unlock()

	// Into the chain too: a notice on each incident the fence held.
	ids, err := l.opts.Store.Incidents(ctx, tenant)
	if err != nil {
		return a, nil, fmt.Errorf("accepted, but listing incidents to note it on failed: %w", err)
	}
	var notes []Entry
	text := fmt.Sprintf("ledger loss accepted by %s: %s (%d lost chain(s), last checkpoint %s)", by, reason, len(lost), lost[len(lost)-1].At.UTC().Format(time.RFC3339))
	for _, id := range ids {
		if n, ok := incidentCode(id); !ok || n > below {
			continue
		}
		in, _, err := l.Incident(ctx, tenant, id)
		if err != nil || in.Stage.Terminal() {
			continue
		}
		e, err := l.Record(ctx, Entry{Tenant: tenant, Incident: id, Event: Notice,
			Actor: Actor{Kind: ActorEngineer, ID: by, Channel: "cli"}, Reason: ClipText(text)})
		if err != nil {
			return a, notes, fmt.Errorf("accepted, but noting it on %s failed: %w", id, err)
		}
		notes = append(notes, e)
	}
	return a, notes, nil
}

// ErrNoLoss: there is no unaccepted loss to accept.
var ErrNoLoss = errors.New("no unaccepted ledger loss")

// Unaccepted returns the lost chains of tenant no operator has accepted yet, as this
// Ledger knows them (loaded from the sink at its first append or check, and every loss it
// found since), oldest first. It does no I/O.
func (l *Ledger) Unaccepted(tenant string) []Checkpoint {
	q := l.queue(tenant)
	q.gmu.Lock()
	defer q.gmu.Unlock()
	if q.ep.fencedBelow == 0 {
		return nil
	}
	return q.ep.mark.Unaccepted()
}
