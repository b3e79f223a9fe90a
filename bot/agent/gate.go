package agent

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/alertengine/alertengine/conversation"
	"github.com/alertengine/alertengine/ledger"
	"github.com/redis/go-redis/v9"
)

// Presenter puts an incident's approval card into its tenant's chats (the conversation
// engine's Present).
type Presenter interface {
	Present(ctx context.Context, tenant, incident string) error
}

// Options configure the gate.
type Options struct {
	Redis     redis.UniversalClient
	KeyPrefix string
	Ledger    *ledger.Ledger
	Tokens    *Tokens
	// Key signs receipts (the ledger signing key).
	Key ed25519.PrivateKey
	// Tenant returns a tenant's conversation config (actions, policy version).
	Tenant    func(id string) (*conversation.Tenant, bool)
	Presenter Presenter
	// Status and Commits, when set, feed the MCP tools service_status and get_incident.
	Status  conversation.StatusSource
	Commits conversation.CommitSource
	// Trees, when set, is the tenant's Merkle tree: a receipt then cites a checkpoint note
	// of it, signed with Key under Origin, and proves the decision entry in it.
	Trees ledger.TreeStore
	// Origin is the log origin's first part (LEDGER_ORIGIN; default ledger.DefaultOrigin).
	Origin string
	Clock  func() time.Time
	Logger *slog.Logger
	// Poll is how often a long-poll looks at the incident's stage (default 50ms).
	Poll time.Duration
	// Random, when set, is where approval ids come from (default crypto/rand; the
	// simulator's is seeded so a run repeats).
	Random io.Reader
	// ProgressEvery is how often an MCP request_approval that waits tells its client it
	// still waits (default 5s).
	ProgressEvery time.Duration
}

// Gate serves agents' approval requests.
type Gate struct {
	o    Options
	lim  limiter
	note ledger.LogSigner
}

// New returns a Gate.
func New(o Options) (*Gate, error) {
	switch {
	case o.Redis == nil:
		return nil, errors.New("agent: no Redis")
	case o.Ledger == nil:
		return nil, errors.New("agent: no ledger")
	case o.Tokens == nil:
		return nil, errors.New("agent: no tokens")
	case len(o.Key) != ed25519.PrivateKeySize:
		return nil, errors.New("agent: no Ed25519 key to sign receipts")
	case o.Tenant == nil || o.Presenter == nil:
		return nil, errors.New("agent: no tenants or presenter")
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.ProgressEvery <= 0 {
		o.ProgressEvery = 5 * time.Second
	}
	if o.Random == nil {
		o.Random = rand.Reader
	}
	if o.Poll <= 0 {
		o.Poll = 50 * time.Millisecond
	}
	if o.Origin == "" {
		o.Origin = ledger.DefaultOrigin
	}
	ns, vkey, err := ledger.NoteSigner(o.Origin, o.Key)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	return &Gate{o: o, lim: limiter{o.Redis, o.KeyPrefix, o.Clock}, note: ledger.LogSigner{Origin: o.Origin, Signer: ns, Verifier: vkey}}, nil
}

// PublicKey is the receipts' verification key.
func (g *Gate) PublicKey() ed25519.PublicKey { return g.o.Key.Public().(ed25519.PublicKey) }

// record is what Redis keeps of one request.
type record struct {
	ID         string    `json:"id"`
	Tenant     string    `json:"tenant"`
	Agent      string    `json:"agent"`
	Action     string    `json:"action"`
	ActionHash string    `json:"action_hash"`
	Incident   string    `json:"incident"`
	External   bool      `json:"external"`
	Execute    bool      `json:"execute"`
	ExpiresIn  int64     `json:"expires_in_s"`
	CreatedAt  time.Time `json:"created_at"`
}

// Status is the answer of GET /v1/approvals/{id}.
type Status struct {
	ID         string     `json:"id"`
	Status     string     `json:"status"`
	Action     string     `json:"action"`
	ActionHash string     `json:"action_hash"`
	Incident   string     `json:"incident"`
	External   bool       `json:"external"`
	Approvers  []string   `json:"approvers,omitempty"`
	DecidedBy  string     `json:"decided_by,omitempty"`
	DecidedAt  *time.Time `json:"decided_at,omitempty"`
	ExpiresAt  *time.Time `json:"expires_at,omitempty"`
	Consumed   bool       `json:"consumed"`
	// Execution is the incident's stage once approved: the executor's for a request it
	// runs (AUTHORIZED, EXECUTED, WEBHOOK_FAILED, RESOLVED), and for an external action
	// the one its reported result led to (RESOLVED, WEBHOOK_FAILED).
	Execution string `json:"execution,omitempty"`
	Receipt   string `json:"receipt,omitempty"`
}

var idRe = regexp.MustCompile(`^apr_[a-z2-7]{26}$`)

func newID(r io.Reader) (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return "apr_" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)), nil
}

func (g *Gate) key(tenant, rest string) string {
	return g.o.KeyPrefix + "agent:{" + tenant + "}:" + rest
}

// keep is how long a request's record outlives its creation.
const keep = 7 * 24 * time.Hour

func forbidden(format string, a ...any) error {
	return &HTTPError{http.StatusForbidden, fmt.Sprintf(format, a...)}
}

var errUnavailable = &HTTPError{http.StatusServiceUnavailable, "the gate could not record the request; retry with the same idempotency key"}

// Create records the request and puts it before the tenant's approvers, or returns the
// approval an earlier request with the same idempotency key created.
func (g *Gate) Create(ctx context.Context, tok Token, q Request) (Status, bool, error) {
	exp, err := q.Check()
	if err != nil {
		return Status{}, false, err
	}
	allowed, external := tok.Allows(q.Action)
	if !allowed {
		return Status{}, false, forbidden("action %s is not allowed for agent %s", q.Action, tok.Agent)
	}
	t, ok := g.o.Tenant(tok.Tenant)
	if !ok {
		return Status{}, false, forbidden("tenant %s is not configured", tok.Tenant)
	}
	conf, configured := t.Action(q.Action)
	switch {
	case !external && !configured:
		return Status{}, false, forbidden("action %s is not a configured action of tenant %s", q.Action, tok.Tenant)
	case q.Execute && external:
		return Status{}, false, bad("execute: %s is an external action; the agent runs it itself", q.Action)
	}
	if ok, err := g.lim.allow(ctx, tok); err != nil {
		return Status{}, false, errUnavailable
	} else if !ok {
		return Status{}, false, &HTTPError{http.StatusTooManyRequests, fmt.Sprintf("rate limit of %d requests a minute reached", tok.Rate)}
	}
	hash, err := ActionHash(tok.Tenant, q.Action, q.Params)
	if err != nil {
		return Status{}, false, bad("params: %v", err)
	}
	id, err := newID(g.o.Random)
	if err != nil {
		return Status{}, false, errUnavailable
	}
	idem := g.key(tok.Tenant, "idem:"+tok.Agent+":"+q.IdempotencyKey)
	won, err := g.o.Redis.SetNX(ctx, idem, id+" "+hash, keep).Result()
	if err != nil {
		return Status{}, false, errUnavailable
	}
	if !won {
		return g.again(ctx, tok, idem, hash)
	}
	rec := record{ID: id, Tenant: tok.Tenant, Agent: tok.Agent, Action: q.Action, ActionHash: hash, External: external,
		Execute: q.Execute, ExpiresIn: int64(exp / time.Second), CreatedAt: g.o.Clock().UTC()}
	if err := g.open(ctx, tok, t, q, conf.HighRisk || q.Risk == "high", &rec); err != nil {
		g.o.Logger.Warn("agent request not recorded", "tenant", tok.Tenant, "agent", tok.Agent, "err", err)
		// Nothing half-done is left for the key: a retry starts afresh.
		g.o.Redis.Del(context.WithoutCancel(ctx), idem)
		return Status{}, false, errUnavailable
	}
	if err := g.o.Presenter.Present(ctx, tok.Tenant, rec.Incident); err != nil {
		// The request is recorded and awaits approval; the engine's sweep of unpresented
		// incidents delivers the card.
		g.o.Logger.Warn("agent request card", "tenant", tok.Tenant, "incident", rec.Incident, "err", err)
	}
	st, err := g.status(ctx, rec)
	return st, true, err
}

// again answers a repeated idempotency key: the same approval for the same action, a
// conflict for another.
func (g *Gate) again(ctx context.Context, tok Token, idem, hash string) (Status, bool, error) {
	deadline := g.o.Clock().Add(5 * time.Second)
	for {
		v, err := g.o.Redis.Get(ctx, idem).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return Status{}, false, errUnavailable
		}
		id, h, _ := strings.Cut(v, " ")
		if v != "" && h != hash {
			return Status{}, false, &HTTPError{http.StatusConflict, "idempotency_key was used for another action or params"}
		}
		if v != "" {
			if rec, err := g.load(ctx, tok.Tenant, id); err == nil {
				st, err := g.status(ctx, rec)
				return st, false, err
			}
		}
		if g.o.Clock().After(deadline) {
			return Status{}, false, errUnavailable
		}
		select {
		case <-ctx.Done():
			return Status{}, false, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// open records the request in the tenant's chain — detect (the agent's request), propose
// (its action), validate (policy: approvals open) — and saves the record.
func (g *Gate) open(ctx context.Context, tok Token, t *conversation.Tenant, q Request, highRisk bool, rec *record) error {
	actor := ledger.Actor{Kind: ledger.ActorAI, ID: tok.Actor(), Channel: "api"}
	params := "null"
	if len(q.Params) > 0 {
		c, _ := Canonical(q.Params)
		params = string(c)
	}
	data := map[string]string{
		"agent": tok.Agent, "approval_id": rec.ID, "action_hash": rec.ActionHash,
		"params": clip(params, 2000), "summary": clip(q.Summary, MaxSummary), "idempotency_key": q.IdempotencyKey,
	}
	if q.Details != "" {
		data["details"] = clip(q.Details, MaxDetails)
	}
	if rec.External {
		data["external"] = "true"
	}
	// Who runs the action once approved: the executor (the tenant's recovery webhook)
	// only when the agent asked it to; otherwise the executor refuses to prepare it.
	data["runs"] = "agent"
	if rec.Execute {
		data["runs"] = "executor"
	}
	if q.Incident != "" {
		data["about"] = q.Incident
	}
	det, err := g.o.Ledger.Record(ctx, ledger.Entry{Tenant: tok.Tenant, Event: ledger.Detect, Actor: actor,
		Service: "agent:" + tok.Agent + "/" + rec.ID, Reason: "approval requested by agent " + tok.Agent, Data: data})
	if err != nil {
		return fmt.Errorf("record request: %w", err)
	}
	rec.Incident = det.Incident
	p := conversation.Proposal{
		Theories: []conversation.Theory{{Lens: tok.Actor(), Summary: clip(q.Summary, MaxSummary), Action: q.Action, Confidence: 1}},
		Agree:    true, Offers: []conversation.Offer{{Action: q.Action}}, HighRisk: highRisk,
	}
	if _, err := g.o.Ledger.Record(ctx, ledger.Entry{Tenant: tok.Tenant, Incident: det.Incident, Event: ledger.Propose, Actor: actor,
		Action: q.Action, Confidence: 1, Reason: "requested by agent " + tok.Agent, Data: p.Data()}); err != nil {
		return fmt.Errorf("record proposal: %w", err)
	}
	reason := "agent request: every approval is a person's"
	if highRisk {
		reason += "; high risk: two approvers"
	}
	if _, err := g.o.Ledger.Record(ctx, ledger.Entry{Tenant: tok.Tenant, Incident: det.Incident, Event: ledger.Validate,
		Actor: ledger.Actor{Kind: ledger.ActorPolicy, ID: "policy"}, Action: q.Action, PolicyVersion: t.PolicyVersion,
		Reason: reason}); err != nil {
		return fmt.Errorf("record validation: %w", err)
	}
	b, _ := json.Marshal(rec)
	if err := g.o.Redis.Set(ctx, g.key(tok.Tenant, "ap:"+rec.ID), b, keep).Err(); err != nil {
		return fmt.Errorf("save request: %w", err)
	}
	return nil
}

var errNotFound = &HTTPError{http.StatusNotFound, "no such approval"}

// load reads a request of tenant; another tenant's id is not found.
func (g *Gate) load(ctx context.Context, tenant, id string) (record, error) {
	if !idRe.MatchString(id) {
		return record{}, errNotFound
	}
	b, err := g.o.Redis.Get(ctx, g.key(tenant, "ap:"+id)).Bytes()
	if errors.Is(err, redis.Nil) {
		return record{}, errNotFound
	}
	if err != nil {
		return record{}, errUnavailable
	}
	var rec record
	if err := json.Unmarshal(b, &rec); err != nil || rec.Tenant != tenant {
		return record{}, errNotFound
	}
	return rec, nil
}

// decision reads the request's incident from the ledger: the decision and the entry that
// made it (nil while pending).
func (g *Gate) decision(ctx context.Context, rec record) (string, ledger.Incident, *ledger.Entry, error) {
	in, hist, err := g.o.Ledger.Incident(ctx, rec.Tenant, rec.Incident)
	if err != nil {
		return "", in, nil, errUnavailable
	}
	for i := range hist {
		e := &hist[i]
		switch e.Event {
		case ledger.Authorize:
			return Approved, in, e, nil
		case ledger.Reject:
			return Rejected, in, e, nil
		case ledger.Expire, ledger.Recover:
			return Expired, in, e, nil
		}
	}
	return Pending, in, nil, nil
}

// Get answers the request's state now.
func (g *Gate) Get(ctx context.Context, tok Token, id string) (Status, error) {
	rec, err := g.load(ctx, tok.Tenant, id)
	if err != nil {
		return Status{}, err
	}
	return g.status(ctx, rec)
}

// Wait answers the request's state once decided, or after wait.
func (g *Gate) Wait(ctx context.Context, tok Token, id string, wait time.Duration) (Status, error) {
	rec, err := g.load(ctx, tok.Tenant, id)
	if err != nil {
		return Status{}, err
	}
	st, err := g.status(ctx, rec)
	if err != nil || st.Status != Pending {
		return st, err
	}
	// While pending, only the incident's stage is read (one Redis read); the whole
	// incident once it moved.
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		select {
		case <-ctx.Done():
			return g.status(context.WithoutCancel(ctx), rec)
		case <-time.After(g.o.Poll):
		}
		s, err := g.o.Ledger.Store().Stage(ctx, rec.Tenant, rec.Incident)
		if err != nil && ctx.Err() == nil {
			return st, errUnavailable
		}
		if err == nil && s != ledger.Validated {
			return g.status(context.WithoutCancel(ctx), rec)
		}
	}
}

func (g *Gate) status(ctx context.Context, rec record) (Status, error) {
	st := Status{ID: rec.ID, Status: Pending, Action: rec.Action, ActionHash: rec.ActionHash, Incident: rec.Incident, External: rec.External}
	dec, in, e, err := g.decision(ctx, rec)
	if err != nil {
		return st, err
	}
	st.Status = dec
	if e == nil {
		return st, nil
	}
	at := e.At.UTC()
	exp := at.Add(time.Duration(rec.ExpiresIn) * time.Second)
	st.DecidedAt, st.ExpiresAt = &at, &exp
	st.DecidedBy = e.Actor.ID
	if dec == Approved {
		st.Approvers = in.ApprovedBy
	}
	if dec == Approved && (rec.Execute || in.Stage != ledger.Authorized) {
		st.Execution = string(in.Stage)
	}
	n, err := g.o.Redis.Exists(ctx, g.key(rec.Tenant, "used:"+rec.ID)).Result()
	if err != nil {
		return st, errUnavailable
	}
	st.Consumed = n == 1
	st.Receipt, err = g.receipt(ctx, rec, in, e, dec, exp)
	return st, err
}

// receipt signs the decision once; later answers return the same receipt.
func (g *Gate) receipt(ctx context.Context, rec record, in ledger.Incident, e *ledger.Entry, dec string, exp time.Time) (string, error) {
	k := g.key(rec.Tenant, "receipt:"+rec.ID)
	if s, err := g.o.Redis.Get(ctx, k).Result(); err == nil {
		return s, nil
	} else if !errors.Is(err, redis.Nil) {
		return "", errUnavailable
	}
	r := Receipt{Approval: rec.ID, Tenant: rec.Tenant, Agent: rec.Agent, Action: rec.Action, ActionHash: rec.ActionHash,
		Decision: dec, Approvers: []string{}, PolicyVersion: in.PolicyVersion, DecidedAt: e.At.UTC(), ExpiresAt: exp,
		Ledger: LedgerRef{Seq: e.Seq, Hash: e.Hash}}
	if dec == Approved {
		r.Approvers = in.ApprovedBy
	}
	if g.o.Trees != nil {
		// Without the tree (a store that keeps none, a Redis hiccup) the receipt is still
		// signed; it then says so by carrying no checkpoint.
		if cp, err := g.checkpoint(ctx, rec.Tenant, e.Seq); err == nil {
			r.Checkpoint = cp
		} else {
			g.o.Logger.Warn("agent receipt without a ledger proof", "tenant", rec.Tenant, "seq", e.Seq, "err", err)
		}
	}
	s, err := SignReceipt(g.o.Key, r)
	if err != nil {
		return "", errUnavailable
	}
	if ok, err := g.o.Redis.SetNX(ctx, k, s, keep).Result(); err != nil {
		return "", errUnavailable
	} else if !ok {
		return g.o.Redis.Get(ctx, k).Result()
	}
	return s, nil
}

// ConsumeRequest is the body of POST /v1/approvals/{id}/consume.
type ConsumeRequest struct {
	ActionHash string `json:"action_hash"`
	Receipt    string `json:"receipt,omitempty"`
}

// Consumed is the answer of a successful consume.
type Consumed struct {
	ID         string    `json:"id"`
	ActionHash string    `json:"action_hash"`
	ConsumedAt time.Time `json:"consumed_at"`
	Ledger     LedgerRef `json:"ledger"`
}

func conflict(format string, a ...any) error {
	return &HTTPError{http.StatusConflict, fmt.Sprintf(format, a...)}
}

// Consume lets the agent act on an approved request, once.
func (g *Gate) Consume(ctx context.Context, tok Token, id string, c ConsumeRequest) (Consumed, error) {
	rec, err := g.load(ctx, tok.Tenant, id)
	if err != nil {
		return Consumed{}, err
	}
	if rec.Agent != tok.Agent {
		return Consumed{}, forbidden("approval %s was requested by another agent", id)
	}
	if c.ActionHash != rec.ActionHash {
		return Consumed{}, conflict("action_hash does not match the approved action")
	}
	if rec.Execute {
		return Consumed{}, conflict("the executor runs this action; there is nothing to consume")
	}
	st, err := g.status(ctx, rec)
	if err != nil {
		return Consumed{}, err
	}
	if st.Status != Approved {
		return Consumed{}, conflict("approval is %s, not approved", st.Status)
	}
	now := g.o.Clock()
	if !now.Before(*st.ExpiresAt) {
		return Consumed{}, conflict("approval expired at %s", st.ExpiresAt.Format(time.RFC3339))
	}
	if c.Receipt != "" {
		if _, err := VerifyReceipt(c.Receipt, g.PublicKey(), Want{ActionHash: rec.ActionHash, Tenant: rec.Tenant, Approval: rec.ID}, now); err != nil {
			return Consumed{}, conflict("receipt refused: %v", err)
		}
	}
	used := g.key(rec.Tenant, "used:"+rec.ID)
	won, err := g.o.Redis.SetNX(ctx, used, now.UTC().Format(time.RFC3339Nano), keep).Result()
	if err != nil {
		return Consumed{}, errUnavailable
	}
	if !won {
		return Consumed{}, conflict("approval already consumed")
	}
	e, err := g.o.Ledger.Record(ctx, ledger.Entry{Tenant: rec.Tenant, Incident: rec.Incident, Event: ledger.Consume,
		Actor: ledger.Actor{Kind: ledger.ActorAI, ID: tok.Actor(), Channel: "api"}, Action: rec.Action,
		Reason: "the agent acts now", Data: map[string]string{"approval_id": rec.ID, "action_hash": rec.ActionHash}})
	if err != nil {
		// Not recorded means not consumed: give the approval back.
		g.o.Redis.Del(context.WithoutCancel(ctx), used)
		g.o.Logger.Warn("agent consume not recorded", "tenant", rec.Tenant, "incident", rec.Incident, "err", err)
		return Consumed{}, errUnavailable
	}
	return Consumed{ID: rec.ID, ActionHash: rec.ActionHash, ConsumedAt: e.At, Ledger: LedgerRef{e.Seq, e.Hash}}, nil
}
