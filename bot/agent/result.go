package agent

import (
	"context"
	"strings"
	"unicode/utf8"

	"github.com/alertengine/alertengine/ledger"
)

// ResultRequest is the body of POST /v1/approvals/{id}/result: how the action the agent
// consumed went.
type ResultRequest struct {
	OK     *bool  `json:"ok"`
	Detail string `json:"detail,omitempty"`
}

// Reported is the answer of a recorded result: the incident's closing stage.
type Reported struct {
	ID     string    `json:"id"`
	Stage  string    `json:"stage"`
	Ledger LedgerRef `json:"ledger"`
}

// Result records, once, the outcome of an external action the agent consumed, so its
// incident does not stay AUTHORIZED: ok is an execute entry (EXECUTED) and, the request
// being done, a resolve (RESOLVED); a failure is a webhook_fail entry (WEBHOOK_FAILED, as
// for a recovery whose webhook failed; it stays open). Both name the agent as the actor:
// the ledger records what the agent reports, not a verified fact.
func (g *Gate) Result(ctx context.Context, tok Token, id string, q ResultRequest) (Reported, error) {
	switch {
	case q.OK == nil:
		return Reported{}, bad("ok: required (true or false)")
	case utf8.RuneCountInString(q.Detail) > MaxSummary:
		return Reported{}, bad("detail: longer than %d characters", MaxSummary)
	}
	rec, err := g.load(ctx, tok.Tenant, id)
	if err != nil {
		return Reported{}, err
	}
	if rec.Agent != tok.Agent {
		return Reported{}, forbidden("approval %s was requested by another agent", id)
	}
	if rec.Execute {
		return Reported{}, conflict("the executor runs this action and records its outcome")
	}
	n, err := g.o.Redis.Exists(ctx, g.key(rec.Tenant, "used:"+rec.ID)).Result()
	if err != nil {
		return Reported{}, errUnavailable
	}
	if n == 0 {
		return Reported{}, conflict("consume the approval before reporting its result")
	}
	done := g.key(rec.Tenant, "result:"+rec.ID)
	won, err := g.o.Redis.SetNX(ctx, done, "1", keep).Result()
	if err != nil {
		return Reported{}, errUnavailable
	}
	if !won {
		return Reported{}, conflict("the result was already reported")
	}
	actor := ledger.Actor{Kind: ledger.ActorAI, ID: tok.Actor(), Channel: "api"}
	data := map[string]string{"approval_id": rec.ID, "action_hash": rec.ActionHash, "outcome": "failed"}
	if *q.OK {
		data["outcome"] = "ok"
	}
	detail := strings.TrimSpace(q.Detail)
	if detail != "" {
		data["detail"] = detail
	}
	entries := []ledger.Entry{{Event: ledger.WebhookFail, Reason: "the agent reports " + rec.Action + " failed"}}
	if *q.OK {
		entries = []ledger.Entry{{Event: ledger.Execute, Reason: "the agent reports " + rec.Action + " ran"},
			{Event: ledger.Resolve, Reason: "the agent's request is done"}}
	}
	var last ledger.Entry
	for i, e := range entries {
		e.Tenant, e.Incident, e.Actor, e.Action, e.Data = rec.Tenant, rec.Incident, actor, rec.Action, data
		if last, err = g.o.Ledger.Record(ctx, e); err != nil {
			if i == 0 {
				// Nothing recorded: the agent may report again.
				g.o.Redis.Del(context.WithoutCancel(ctx), done)
			}
			g.o.Logger.Warn("agent result not recorded", "tenant", rec.Tenant, "incident", rec.Incident, "err", err)
			return Reported{}, errUnavailable
		}
	}
	return Reported{ID: rec.ID, Stage: string(last.To), Ledger: LedgerRef{last.Seq, last.Hash}}, nil
}
