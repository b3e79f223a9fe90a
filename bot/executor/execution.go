package executor

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/alertengine/alertengine/ledger"
)

// Errors about executions.
var (
	// ErrBadExecution: an Execution misses a field the call needs.
	ErrBadExecution = errors.New("bad execution")
	// ErrNotAuthorized: the incident is not in stage AUTHORIZED.
	ErrNotAuthorized = errors.New("incident is not authorized")
	// ErrRunByAgent: the incident is an AI agent's approval request for an action the
	// agent runs itself (its detect entry says runs=agent); the executor never calls it.
	ErrRunByAgent = errors.New("the requesting agent runs this action itself")
)

// Execution is one approved recovery to deliver to a tenant's webhook. Its JSON form is
// the body of the call (README, "Approvals and execution").
type Execution struct {
	Tenant     string    `json:"tenant"`
	Incident   string    `json:"incident"`
	Action     string    `json:"action"`
	ApprovedBy []string  `json:"approved_by"`
	ApprovedAt time.Time `json:"approved_at"`
	// IdempotencyKey is IdempotencyKey(Tenant, Incident, approval reference): the same for
	// every attempt, resume and re-drive of one approval.
	IdempotencyKey string `json:"idempotency_key"`
}

// IdempotencyKey derives the key of the execution authorized by approval reference
// approval for an incident: a deterministic function of the three, so whoever rebuilds the
// execution (a resumed bot, a re-drive) sends the key the webhook saw before.
func IdempotencyKey(tenant, incident, approval string) string {
	h := sha256.New()
	for _, s := range []string{"alertengine/execution/v1", tenant, incident, approval} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "ae1-" + hex.EncodeToString(h.Sum(nil)[:16])
}

// Validate checks that x carries what the call needs.
func (x *Execution) Validate() error {
	switch {
	case !ledger.ValidTenant(x.Tenant):
		return fmt.Errorf("%w: tenant %q", ErrBadExecution, x.Tenant)
	case x.Incident == "":
		return fmt.Errorf("%w: no incident", ErrBadExecution)
	case x.Action == "":
		return fmt.Errorf("%w: no action", ErrBadExecution)
	case x.IdempotencyKey == "":
		return fmt.Errorf("%w: no idempotency key", ErrBadExecution)
	case x.ApprovedAt.IsZero():
		return fmt.Errorf("%w: no approval time", ErrBadExecution)
	}
	return nil
}

// body is the JSON the webhook receives.
func (x *Execution) body() ([]byte, error) {
	c := *x
	c.ApprovedAt = c.ApprovedAt.UTC()
	if c.ApprovedBy == nil {
		c.ApprovedBy = []string{}
	}
	b, err := json.Marshal(&c)
	if err != nil {
		return nil, fmt.Errorf("encode execution: %w", err)
	}
	return b, nil
}

// Prepare builds the Execution of an AUTHORIZED incident from its ledger history: the
// authorized action, the approvers, the time of the (last) authorization and the key
// derived from the consumed approval reference.
func (e *Executor) Prepare(ctx context.Context, tenant, incident string) (Execution, error) {
	in, hist, err := e.opts.Ledger.Incident(ctx, tenant, incident)
	if err != nil {
		return Execution{}, fmt.Errorf("prepare %s: %w", incident, err)
	}
	if in.Stage != ledger.Authorized {
		return Execution{}, fmt.Errorf("prepare %s: %w (it is %s)", incident, ErrNotAuthorized, in.Stage)
	}
	if len(hist) > 0 && hist[0].Data["runs"] == "agent" {
		return Execution{}, fmt.Errorf("prepare %s: %w", incident, ErrRunByAgent)
	}
	x := Execution{
		Tenant:         tenant,
		Incident:       incident,
		Action:         in.Action,
		ApprovedBy:     append([]string(nil), in.ApprovedBy...),
		IdempotencyKey: IdempotencyKey(tenant, incident, in.Approval),
	}
	for i := len(hist) - 1; i >= 0; i-- {
		if hist[i].Event == ledger.Authorize {
			x.ApprovedAt = hist[i].At.UTC()
			break
		}
	}
	if err := x.Validate(); err != nil {
		return Execution{}, fmt.Errorf("prepare %s: %w", incident, err)
	}
	return x, nil
}
