package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/ledger"
)

// actor is who records the executor's entries in the ledger.
func actor() ledger.Actor { return ledger.Actor{Kind: ledger.ActorOrchestrator, ID: "executor"} }

// OutcomeKind says how an execution ended.
type OutcomeKind string

// Outcome kinds.
const (
	// Executed: the webhook answered 2xx; the incident is EXECUTED.
	Executed OutcomeKind = "executed"
	// Failed: retries exhausted or a permanent failure; WEBHOOK_FAILED and dead-lettered.
	Failed OutcomeKind = "failed"
	// Skipped: the outbox entry was not due (the incident is no longer AUTHORIZED, or the
	// entry does not match its approval) and was acknowledged without a call.
	Skipped OutcomeKind = "skipped"
	// Refused: the execution ran before (its key is in Options.Executed) though the ledger
	// in Redis says it is due: Redis lost the entries since. Not called again; a security
	// entry says why.
	Refused OutcomeKind = "refused"
)

// Outcome is how one outbox entry was settled.
type Outcome struct {
	Kind      OutcomeKind
	Execution Execution
	// Reason is written for people: "recovery webhook answered 200", "recovery webhook
	// answered 500 after 3 attempts; dead-lettered", "incident is EXECUTED".
	Reason string
	// Status is the last HTTP status (0: no response); Attempts the calls made.
	Status   int
	Attempts int
}

// Executor delivers executions from the outbox to the tenants' recovery webhooks.
type Executor struct {
	opts    Options
	guarded *http.Client // dial guard on
	open    *http.Client // for targets with AllowPrivateNetwork
	outbox  string

	leaseScript   *redis.Script
	reclaimScript *redis.Script
	releaseScript *redis.Script
	touchScript   *redis.Script
	dropScript    *redis.Script
}

// New returns an Executor on opts.
func New(opts Options) (*Executor, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.defaults()
	return &Executor{
		opts:    opts,
		guarded: newClient(true, opts.AttemptTimeout),
		open:    newClient(false, opts.AttemptTimeout),
		outbox:  opts.KeyPrefix + "ae:outbox",
		// The lease on an execution (one per idempotency key) is "owner|deadline ms", judged
		// by the executors' LeaseClock (ARGV[3], ms); an owner may renew its own lease.
		leaseScript: redis.NewScript(`
local now = tonumber(ARGV[3])
local v = redis.call('GET', KEYS[1])
if v then
  local sep = string.find(v, '|', 1, true)
  if sep and string.sub(v, 1, sep - 1) ~= ARGV[1] and tonumber(string.sub(v, sep + 1)) > now then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1] .. '|' .. (now + tonumber(ARGV[2])), 'PX', math.max(2 * tonumber(ARGV[2]), 60000))
return 1`),
		// reclaim takes over the first pending entry from ARGV[5] on (at most ARGV[6]
		// looked at) whose owner's last heartbeat (KEYS[2]) is at least ARGV[4] ms before
		// ARGV[3]; an entry with no heartbeat yet (read, not yet leased) is judged by
		// Redis's idle time instead. It returns {id, fields} for an entry taken over, else
		// {"", last id looked at, how many were looked at}.
		reclaimScript: redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[5], '+', tonumber(ARGV[6]))
local now, lease = tonumber(ARGV[3]), tonumber(ARGV[4])
local last = ''
for _, e in ipairs(p) do
  last = e[1]
  local hb = redis.call('HGET', KEYS[2], e[1])
  local due
  if hb then due = now - tonumber(hb) >= lease else due = tonumber(e[3]) >= lease end
  if due then
    local c = redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, e[1])
    if #c > 0 and c[1] then
      redis.call('HSET', KEYS[2], e[1], ARGV[3])
      return {e[1], c[1][2]}
    end
    redis.call('HDEL', KEYS[2], e[1])
  end
end
return {'', last, #p}`),
		releaseScript: redis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v and string.sub(v, 1, #ARGV[1] + 1) == ARGV[1] .. '|' then redis.call('DEL', KEYS[1]) end
return 0`),
		// touch resets the idle time of a pending entry this consumer still owns.
		touchScript: redis.NewScript(`
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[3], 1)
if #p == 0 or p[1][2] ~= ARGV[2] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[3], 'JUSTID')
return 1`),
		// drop deletes a hash field only if it still holds the value read earlier.
		dropScript: redis.NewScript(`
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0`),
	}, nil
}

// Consumer is this executor's name in the outbox consumer group.
func (e *Executor) Consumer() string { return e.opts.Consumer }

func (e *Executor) dlqKey(tenant string) string { return e.opts.KeyPrefix + "ae:dlq:" + tenant }

// heartbeats is the hash of the outbox entries' last heartbeats (entry id → LeaseClock
// ms), in the outbox's cluster slot: it shares the outbox's hash tag when its name has one
// (a key prefix with braces), else its hash tag is the outbox's whole name (a prefix with a
// lone "}" or an empty "{}" cannot be matched so, and splits them in a cluster).
func (e *Executor) heartbeats() string {
	if open := strings.IndexByte(e.outbox, '{'); open >= 0 {
		if end := strings.IndexByte(e.outbox[open+1:], '}'); end > 0 {
			return e.outbox + ":heartbeats"
		}
	}
	return "{" + e.outbox + "}:heartbeats"
}

func (e *Executor) leaseKey(idemKey string) string {
	return e.opts.KeyPrefix + "ae:inflight:" + idemKey
}

// redisCtx bounds one Redis call.
func (e *Executor) redisCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, e.opts.RedisTimeout)
}

// Enqueue adds x to the outbox. Once it returns nil the execution is durable in Redis and
// will be delivered by some executor's Run, even if this process dies now.
func (e *Executor) Enqueue(ctx context.Context, x Execution) error {
	if err := x.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(&x)
	if err != nil {
		return fmt.Errorf("encode execution: %w", err)
	}
	rctx, cancel := e.redisCtx(ctx)
	defer cancel()
	id, err := e.opts.Redis.XAdd(rctx, &redis.XAddArgs{Stream: e.outbox, Values: []any{"x", b}}).Result()
	if err != nil {
		return fmt.Errorf("enqueue execution of %s/%s: %w", x.Tenant, x.Incident, err)
	}
	e.opts.Logger.Debug("execution enqueued", "tenant", x.Tenant, "incident", x.Incident, "idempotency_key", x.IdempotencyKey, "entry", id)
	return nil
}

// Run consumes the outbox until ctx ends, with up to Workers executions in flight. At start
// and every ReclaimEvery it also claims entries that other consumers (or an earlier run of
// this one) left pending for longer than Lease: executions in flight when a bot died. It
// returns nil when ctx ends, after the executions in flight have stopped; an error only if
// the consumer group cannot be set up.
func (e *Executor) Run(ctx context.Context) error {
	if err := e.ensureGroup(ctx); err != nil {
		return err
	}
	log := e.opts.Logger.With("consumer", e.opts.Consumer)
	log.Info("executor running", "workers", e.opts.Workers, "lease", e.opts.Lease)
	slots := make(chan struct{}, e.opts.Workers)
	var wg sync.WaitGroup
	defer e.leaveGroup(log)
	defer wg.Wait()
	r := reader{e: e, nextReclaim: time.Now(), cursor: "-"}
	for {
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		m, ok, err := r.next(ctx)
		if err != nil || !ok {
			<-slots
			if ctx.Err() != nil {
				return nil
			}
			if err != nil {
				log.Warn("read outbox", "err", err)
				if strings.Contains(err.Error(), "NOGROUP") {
					if gerr := e.ensureGroup(ctx); gerr != nil {
						log.Warn("recreate consumer group", "err", gerr)
					}
				}
				_ = sleep(ctx, min(time.Second, e.opts.Poll))
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			e.handle(ctx, m)
		}()
	}
}

// leaveGroup removes this consumer from the outbox group when it stops with nothing
// pending, so restarts and deploys do not pile up consumer names in Redis. A consumer with
// pending entries stays: another one reclaims them.
func (e *Executor) leaveGroup(log *slog.Logger) {
	ctx, cancel := e.redisCtx(context.Background())
	defer cancel()
	if err := leaveScript.Run(ctx, e.opts.Redis, []string{e.outbox}, e.opts.Group, e.opts.Consumer).Err(); err != nil {
		log.Warn("leave the outbox consumer group", "err", err)
	}
}

// leaveScript deletes consumer ARGV[2] of group ARGV[1] if it holds no pending entry.
var leaveScript = redis.NewScript(`
local ok, p = pcall(redis.call, 'XPENDING', KEYS[1], ARGV[1], '-', '+', 1, ARGV[2])
if not ok or #p > 0 then return 0 end
return redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], ARGV[2])
`)

func (e *Executor) ensureGroup(ctx context.Context) error {
	rctx, cancel := e.redisCtx(ctx)
	defer cancel()
	err := e.opts.Redis.XGroupCreateMkStream(rctx, e.outbox, e.opts.Group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create outbox consumer group: %w", err)
	}
	return nil
}

// reader takes the next outbox entry: a reclaimed one when a reclaim pass is due, else a
// new one.
type reader struct {
	e           *Executor
	nextReclaim time.Time // the cadence of reclaim passes; what is due is judged by LeaseClock
	cursor      string    // where the reclaim pass goes on: "-" from the start
}

// reclaimBatch is how many pending entries one reclaim call looks at.
const reclaimBatch = 100

// reclaim takes over the first pending entry from cursor on whose owner's last heartbeat
// is Lease old by LeaseClock (its owner died or was cut off). next is where the pass goes
// on, "-" when it has looked at every pending entry.
func (e *Executor) reclaim(ctx context.Context, cursor string) (m redis.XMessage, next string, err error) {
	rctx, cancel := e.redisCtx(ctx)
	defer cancel()
	res, err := e.reclaimScript.Run(rctx, e.opts.Redis, []string{e.outbox, e.heartbeats()}, e.opts.Group, e.opts.Consumer,
		e.opts.LeaseClock().UnixMilli(), e.opts.Lease.Milliseconds(), cursor, reclaimBatch).Slice()
	if err != nil {
		return m, cursor, err
	}
	if len(res) < 2 {
		return m, cursor, fmt.Errorf("unexpected reply %v", res)
	}
	id, _ := res[0].(string)
	if id != "" {
		m.ID = id
		fields, _ := res[1].([]any)
		m.Values = map[string]any{}
		for i := 0; i+1 < len(fields); i += 2 {
			k, _ := fields[i].(string)
			m.Values[k] = fields[i+1]
		}
		return m, cursor, nil // the pass goes on from the same place: there may be more
	}
	last, _ := res[1].(string)
	if n, _ := res[2].(int64); n < reclaimBatch || last == "" {
		return m, "-", nil
	}
	return m, "(" + last, nil
}

func (r *reader) next(ctx context.Context) (redis.XMessage, bool, error) {
	e := r.e
	if !time.Now().Before(r.nextReclaim) {
		m, next, err := e.reclaim(ctx, r.cursor)
		if err != nil {
			return redis.XMessage{}, false, fmt.Errorf("reclaim: %w", err)
		}
		r.cursor = next
		if next == "-" {
			r.nextReclaim = time.Now().Add(e.opts.ReclaimEvery)
		}
		if m.ID != "" {
			e.opts.Logger.Info("reclaimed an execution left pending", "entry", m.ID, "consumer", e.opts.Consumer)
			return m, true, nil
		}
		if r.cursor != "-" {
			return redis.XMessage{}, false, nil // more to scan
		}
	}
	block := min(e.opts.Poll, time.Until(r.nextReclaim))
	block = max(block, time.Millisecond) // BLOCK 0 would wait for ever
	rctx, cancel := context.WithTimeout(ctx, block+e.opts.RedisTimeout)
	defer cancel()
	res, err := e.opts.Redis.XReadGroup(rctx, &redis.XReadGroupArgs{
		Group: e.opts.Group, Consumer: e.opts.Consumer, Streams: []string{e.outbox, ">"}, Count: 1, Block: block,
	}).Result()
	if errors.Is(err, redis.Nil) {
		return redis.XMessage{}, false, nil
	}
	if err != nil {
		return redis.XMessage{}, false, fmt.Errorf("read: %w", err)
	}
	for _, s := range res {
		if len(s.Messages) > 0 {
			return s.Messages[0], true, nil
		}
	}
	return redis.XMessage{}, false, nil
}

// handle settles one outbox entry: leave it pending (to be reclaimed after the lease), or
// settle it in the ledger and acknowledge it.
func (e *Executor) handle(ctx context.Context, m redis.XMessage) {
	log := e.opts.Logger.With("entry", m.ID, "consumer", e.opts.Consumer)
	raw, _ := m.Values["x"].(string)
	var x Execution
	if err := json.Unmarshal([]byte(raw), &x); err != nil || x.Validate() != nil {
		log.Error("unreadable outbox entry dropped", "err", errors.Join(err, x.Validate()))
		e.ack(ctx, m.ID, log)
		return
	}
	log = log.With("tenant", x.Tenant, "incident", x.Incident, "idempotency_key", x.IdempotencyKey)

	// One lease per idempotency key: two copies of one execution never run at once.
	token := e.opts.Consumer + "/" + m.ID
	got, err := e.lease(ctx, m.ID, x.IdempotencyKey, token)
	if err != nil {
		log.Warn("take execution lease; left pending", "err", err)
		return
	}
	if !got {
		log.Info("execution already in flight elsewhere; left pending")
		return
	}
	hbCtx, stop := context.WithCancel(ctx)
	// The delivery stops as soon as this consumer cannot be sure it still holds the lease:
	// another one may take the execution over, and two calls must never be in flight.
	dctx, stopDelivery := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() {
		defer close(hbDone)
		e.heartbeat(hbCtx, m.ID, x.IdempotencyKey, token, log, stopDelivery)
	}()
	out, settled := e.process(dctx, x, log)
	stopDelivery()
	stop()
	<-hbDone
	if !settled {
		return // pending: whoever reclaims it after the lease tries again, same key
	}
	e.ack(ctx, m.ID, log)
	rctx, cancel := e.redisCtx(context.WithoutCancel(ctx))
	if err := e.releaseScript.Run(rctx, e.opts.Redis, []string{e.leaseKey(x.IdempotencyKey)}, token).Err(); err != nil {
		log.Warn("release execution lease", "err", err)
	}
	cancel()
	if e.opts.OnOutcome != nil && out.Kind != "" {
		e.opts.OnOutcome(context.WithoutCancel(ctx), out)
	}
}

// lease takes or renews the execution's lease for token and writes the heartbeat of its
// outbox entry id, both at LeaseClock's now.
func (e *Executor) lease(ctx context.Context, id, idemKey, token string) (bool, error) {
	rctx, cancel := e.redisCtx(ctx)
	defer cancel()
	ttl := max(e.opts.Lease*9/10, time.Millisecond) // expires before the entry may be reclaimed
	now := e.opts.LeaseClock().UnixMilli()
	n, err := e.leaseScript.Run(rctx, e.opts.Redis, []string{e.leaseKey(idemKey)}, token, ttl.Milliseconds(), now).Int()
	if err != nil || n != 1 {
		return false, err
	}
	// The entry's heartbeat: what a reclaim pass judges it by. Written only once the lease
	// is ours, so a consumer that lost the lease never keeps the entry from its new owner.
	if err := e.opts.Redis.HSet(rctx, e.heartbeats(), id, now).Err(); err != nil {
		return false, fmt.Errorf("write heartbeat: %w", err)
	}
	return true, nil
}

// heartbeat keeps the outbox entry and the lease ours while the execution runs, beating
// every Lease/3. When the lease is lost, or cannot be renewed for as long as it lasts, it
// calls lost.
func (e *Executor) heartbeat(ctx context.Context, id, idemKey, token string, log *slog.Logger, lost func()) {
	t := time.NewTicker(max(e.opts.Lease/3, time.Millisecond))
	defer t.Stop()
	renewed := e.opts.LeaseClock()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !e.beat(ctx, id, idemKey, token, &renewed, log) {
			lost()
			return
		}
	}
}

// beat is one heartbeat: it renews the lease and the entry's heartbeat time. false: the
// lease is lost (another consumer holds it), or could not be renewed for 0.9 × Lease since
// *renewed, so the call must stop.
func (e *Executor) beat(ctx context.Context, id, idemKey, token string, renewed *time.Time, log *slog.Logger) bool {
	rctx, cancel := e.redisCtx(ctx)
	n, err := e.touchScript.Run(rctx, e.opts.Redis, []string{e.outbox}, e.opts.Group, e.opts.Consumer, id).Int()
	cancel()
	if err != nil && ctx.Err() == nil {
		log.Warn("heartbeat", "err", err)
	} else if err == nil && n == 0 {
		log.Warn("outbox entry was reclaimed by another consumer while in flight")
	}
	ok, err := e.lease(ctx, id, idemKey, token)
	switch {
	case ctx.Err() != nil:
		return true
	case err == nil && ok:
		*renewed = e.opts.LeaseClock()
	case err == nil:
		log.Warn("execution lease lost while in flight; stopping this delivery")
		return false
	case e.opts.LeaseClock().Sub(*renewed) > e.opts.Lease*9/10:
		log.Warn("execution lease could not be renewed before it expired; stopping this delivery", "err", err)
		return false
	}
	return true
}

func (e *Executor) ack(ctx context.Context, id string, log *slog.Logger) {
	rctx, cancel := e.redisCtx(context.WithoutCancel(ctx))
	defer cancel()
	p := e.opts.Redis.TxPipeline()
	p.XAck(rctx, e.outbox, e.opts.Group, id)
	p.XDel(rctx, e.outbox, id)
	p.HDel(rctx, e.heartbeats(), id)
	if _, err := p.Exec(rctx); err != nil {
		log.Warn("acknowledge outbox entry (it will be reclaimed and found settled)", "err", err)
	}
}

// process decides and, when due, makes the call and records the outcome. settled false
// leaves the entry pending.
func (e *Executor) process(ctx context.Context, x Execution, log *slog.Logger) (out Outcome, settled bool) {
	out = Outcome{Execution: x}
	in, _, err := e.opts.Ledger.Incident(ctx, x.Tenant, x.Incident)
	switch {
	case errors.Is(err, ledger.ErrNoIncident):
		log.Error("execution for an unknown incident dropped")
		out.Kind, out.Reason = Skipped, "no such incident"
		return out, true
	case err != nil:
		log.Warn("read incident; left pending", "err", err)
		return out, false
	case in.Stage != ledger.Authorized:
		log.Info("execution not due; acknowledged without a call", "stage", in.Stage)
		out.Kind, out.Reason = Skipped, fmt.Sprintf("incident is %s", in.Stage)
		return out, true
	case in.Action != x.Action || IdempotencyKey(x.Tenant, x.Incident, in.Approval) != x.IdempotencyKey:
		log.Error("outbox execution does not match the incident's approval; not executed", "action", x.Action, "authorized", in.Action)
		_, err := e.record(ctx, ledger.Entry{Tenant: x.Tenant, Incident: x.Incident, Event: ledger.Security, Actor: actor(),
			Action: x.Action, Reason: "outbox execution does not match the authorized approval; not executed",
			Data: map[string]string{"idempotency_key": x.IdempotencyKey, "authorized_action": in.Action}})
		if err != nil {
			return out, false
		}
		out.Kind, out.Reason = Skipped, "does not match the authorized approval"
		return out, true
	}
	if e.opts.Executed != nil {
		at, ran, err := e.opts.Executed.Executed(ctx, x.Tenant, x.IdempotencyKey)
		if err != nil {
			// Unsure whether it ran: not called now; the entry is reclaimed and judged again.
			log.Error("read the executed keys kept outside Redis; execution left pending", "err", err)
			return out, false
		}
		if ran {
			when := at.UTC().Format(time.RFC3339)
			log.Error("execution refused: this approval's recovery already ran before Redis lost ledger entries", "executed_at", when)
			_, err := e.record(ctx, ledger.Entry{Tenant: x.Tenant, Incident: x.Incident, Event: ledger.Security, Actor: actor(),
				Action: x.Action, Reason: "recovery not called again: this approval's recovery already ran at " + when + " (recorded outside Redis); the ledger lost the entries since",
				Data: map[string]string{"idempotency_key": x.IdempotencyKey, "executed_at": when}})
			if err != nil {
				return out, false
			}
			out.Kind, out.Reason = Refused, "not run again: this approval's recovery already ran at "+when+", before the audit ledger lost recent entries"
			return out, true
		}
	}
	if e.opts.OnClaim != nil {
		e.opts.OnClaim(ctx, x)
		if ctx.Err() != nil {
			return out, false
		}
	}

	var d delivery
	if t, ok := e.opts.Targets(x.Tenant); !ok || t.URL == "" {
		d.reason = "no recovery webhook is configured for this tenant; not retried; dead-lettered"
	} else if d, err = e.deliver(ctx, x, t); err != nil {
		log.Info("stopped mid-execution; left pending for resumption", "err", err)
		return out, false
	}
	out.Reason, out.Status, out.Attempts = d.reason, d.last.status, d.attempts
	// From here the call is made: finish the bookkeeping even if ctx ends.
	ctx = context.WithoutCancel(ctx)
	data := map[string]string{"idempotency_key": x.IdempotencyKey, "attempts": fmt.Sprint(d.attempts)}
	if d.last.status != 0 {
		data["status"] = fmt.Sprint(d.last.status)
	}
	if d.ok {
		if e.opts.Executed != nil {
			if err := e.opts.Executed.MarkExecuted(ctx, x.Tenant, x.IdempotencyKey, e.opts.Clock()); err != nil {
				log.Error("keep the executed key outside Redis: a Redis rollback could run this recovery again", "err", err)
			}
		}
		recorded, err := e.record(ctx, ledger.Entry{Tenant: x.Tenant, Incident: x.Incident, Event: ledger.Execute, Actor: actor(),
			Action: x.Action, Approval: in.Approval, Reason: d.reason, Data: data})
		if err != nil {
			return out, false
		}
		out.Kind = Executed
		if !recorded {
			out.Kind, out.Reason = Skipped, "executed; recorded by another bot"
		}
		return out, true
	}

	if d.last.snippet != "" {
		data["response"] = d.last.snippet
	}
	if d.last.err != nil {
		data["error"] = errText(d.last.err)
	}
	dl := DeadLetter{ID: x.Incident, Execution: x, Attempts: d.attempts, Status: d.last.status, Error: data["error"],
		Response: d.last.snippet, Reason: d.reason, At: e.opts.Clock().UTC()}
	if err := e.putDeadLetter(ctx, dl); err != nil {
		log.Warn("dead-letter; left pending", "err", err)
		return out, false
	}
	if d.guard != nil {
		if _, err := e.record(ctx, ledger.Entry{Tenant: x.Tenant, Incident: x.Incident, Event: ledger.Security, Actor: actor(),
			Action: x.Action, Reason: "recovery call refused at dial time: " + d.guard.Error(),
			Data: map[string]string{"address": d.guard.Addr.String(), "kind": d.guard.Kind, "idempotency_key": x.IdempotencyKey}}); err != nil {
			return out, false
		}
	}
	recorded, err := e.record(ctx, ledger.Entry{Tenant: x.Tenant, Incident: x.Incident, Event: ledger.WebhookFail, Actor: actor(),
		Action: x.Action, Approval: in.Approval, Reason: d.reason, Data: data})
	if err != nil {
		return out, false
	}
	out.Kind = Failed
	if !recorded {
		// Another bot settled it first (it executed, most likely): this dead letter is stale.
		e.dropDeadLetter(ctx, dl, log)
		out.Kind, out.Reason = Skipped, "settled by another bot"
	}
	return out, true
}

// record appends an entry; false (and no error) when the incident moved on meanwhile.
func (e *Executor) record(ctx context.Context, en ledger.Entry) (bool, error) {
	_, err := e.opts.Ledger.Record(ctx, en)
	var te *ledger.TransitionError
	switch {
	case errors.As(err, &te):
		e.opts.Logger.Info("incident moved on before the outcome was recorded", "incident", en.Incident, "event", en.Event, "stage", te.From)
		return false, nil
	case err != nil:
		e.opts.Logger.Warn("record outcome; left pending", "incident", en.Incident, "event", en.Event, "err", err)
		return false, fmt.Errorf("record %s on %s: %w", en.Event, en.Incident, err)
	}
	return true, nil
}
