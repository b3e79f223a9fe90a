package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
)

// Errors of the dead-letter queue.
var (
	ErrNoDeadLetter  = errors.New("no such dead letter")
	ErrNotRedrivable = errors.New("dead letter cannot be re-driven")
	ErrRedriveActor  = errors.New("a re-drive is an engineer's decision: actor must be an engineer with an id")
)

// DeadLetter is an execution that failed for good, kept per tenant under
// <prefix>ae:dlq:<tenant> (a hash: incident → JSON) until an engineer re-drives it.
type DeadLetter struct {
	// ID is the incident: an incident has one approval, so one live dead letter.
	ID        string    `json:"id"`
	Execution Execution `json:"execution"`
	Attempts  int       `json:"attempts"`
	// Status is the last HTTP status (0: no response); Error the last transport error;
	// Response the start of the last response body (≤ 512 bytes).
	Status   int       `json:"status,omitempty"`
	Error    string    `json:"error,omitempty"`
	Response string    `json:"response,omitempty"`
	Reason   string    `json:"reason"`
	At       time.Time `json:"at"`
}

func (e *Executor) putDeadLetter(ctx context.Context, dl DeadLetter) error {
	b, err := json.Marshal(&dl)
	if err != nil {
		return fmt.Errorf("encode dead letter: %w", err)
	}
	rctx, cancel := e.redisCtx(ctx)
	defer cancel()
	if err := e.opts.Redis.HSet(rctx, e.dlqKey(dl.Execution.Tenant), dl.ID, b).Err(); err != nil {
		return fmt.Errorf("dead-letter %s: %w", dl.ID, err)
	}
	return nil
}

func (e *Executor) dropDeadLetter(ctx context.Context, dl DeadLetter, log *slog.Logger) {
	b, err := json.Marshal(&dl)
	if err != nil {
		return
	}
	rctx, cancel := e.redisCtx(ctx)
	defer cancel()
	if err := e.dropScript.Run(rctx, e.opts.Redis, []string{e.dlqKey(dl.Execution.Tenant)}, dl.ID, b).Err(); err != nil {
		log.Warn("remove stale dead letter", "err", err)
	}
}

// DeadLetters lists a tenant's dead letters, oldest first.
func (e *Executor) DeadLetters(ctx context.Context, tenant string) ([]DeadLetter, error) {
	if !ledger.ValidTenant(tenant) {
		return nil, fmt.Errorf("%w: tenant %q", ErrBadExecution, tenant)
	}
	rctx, cancel := e.redisCtx(ctx)
	defer cancel()
	all, err := e.opts.Redis.HGetAll(rctx, e.dlqKey(tenant)).Result()
	if err != nil {
		return nil, fmt.Errorf("list dead letters of %s: %w", tenant, err)
	}
	out := make([]DeadLetter, 0, len(all))
	for id, raw := range all {
		var dl DeadLetter
		if err := json.Unmarshal([]byte(raw), &dl); err != nil {
			return nil, fmt.Errorf("dead letter %s of %s: %w", id, tenant, err)
		}
		out = append(out, dl)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Redrive sends a dead letter again: it records the engineer's re-drive in the ledger
// (WEBHOOK_FAILED → AUTHORIZED, carrying the incident's original approval reference),
// enqueues the same execution with the same idempotency key, and only then removes the
// dead letter. Interrupted half-way, it can simply be called again.
func (e *Executor) Redrive(ctx context.Context, tenant, id string, by ledger.Actor) error {
	if by.Kind != ledger.ActorEngineer || by.ID == "" {
		return ErrRedriveActor
	}
	if !ledger.ValidTenant(tenant) {
		return fmt.Errorf("%w: tenant %q", ErrBadExecution, tenant)
	}
	rctx, cancel := e.redisCtx(ctx)
	raw, err := e.opts.Redis.HGet(rctx, e.dlqKey(tenant), id).Result()
	cancel()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%w: %s/%s", ErrNoDeadLetter, tenant, id)
	}
	if err != nil {
		return fmt.Errorf("read dead letter %s: %w", id, err)
	}
	var dl DeadLetter
	if err := json.Unmarshal([]byte(raw), &dl); err != nil {
		return fmt.Errorf("dead letter %s: %w", id, err)
	}
	if err := e.redriveEntry(ctx, tenant, id, by, dl.Execution.IdempotencyKey); err != nil {
		return err
	}
	if err := e.Enqueue(ctx, dl.Execution); err != nil {
		return fmt.Errorf("re-drive %s: %w", id, err)
	}
	rctx, cancel = e.redisCtx(ctx)
	defer cancel()
	// Only the value read above: a newer failure of the re-driven execution stays listed.
	if err := e.dropScript.Run(rctx, e.opts.Redis, []string{e.dlqKey(tenant)}, id, raw).Err(); err != nil {
		return fmt.Errorf("re-drive %s: enqueued, but removing the dead letter failed: %w", id, err)
	}
	e.opts.Logger.Info("dead letter re-driven", "tenant", tenant, "incident", id, "by", by.ID, "idempotency_key", dl.Execution.IdempotencyKey)
	return nil
}

// redriveEntry brings the incident back to AUTHORIZED, unless an earlier, interrupted
// re-drive already did.
func (e *Executor) redriveEntry(ctx context.Context, tenant, id string, by ledger.Actor, key string) error {
	for range 2 {
		in, _, err := e.opts.Ledger.Incident(ctx, tenant, id)
		if err != nil {
			return fmt.Errorf("re-drive %s: %w", id, err)
		}
		switch in.Stage {
		case ledger.Authorized:
			return nil
		case ledger.WebhookFailed:
		default:
			return fmt.Errorf("%w: %s is %s", ErrNotRedrivable, id, in.Stage)
		}
		_, err = e.opts.Ledger.Record(ctx, ledger.Entry{Tenant: tenant, Incident: id, Event: ledger.Redrive, Actor: by,
			Action: in.Action, Approval: in.Approval, Reason: "dead-lettered execution re-driven by " + by.ID,
			Data: map[string]string{"idempotency_key": key}})
		var te *ledger.TransitionError
		if errors.As(err, &te) {
			continue // moved meanwhile: look again
		}
		if err != nil {
			return fmt.Errorf("re-drive %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("%w: %s keeps changing stage", ErrNotRedrivable, id)
}

// String is the dead letter as `bot dlq list` prints it, one line.
func (d DeadLetter) String() string {
	return fmt.Sprintf("%s  %s  %s  attempts %d  %s  key %s", d.ID, d.At.UTC().Format(time.RFC3339), d.Execution.Action, d.Attempts, d.Reason, d.Execution.IdempotencyKey)
}
