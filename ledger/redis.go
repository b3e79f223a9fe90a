package ledger

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// RedisStore keeps each tenant's chain in a Redis Stream, with the small indexes the
// pipeline reads (tail, stage per incident, open incident per service, entries per
// incident) updated in the same Lua script as the append. Every key of a tenant shares
// one hash tag, so a tenant lives in one Redis Cluster slot. The indexes are caches of the
// stream: RebuildIndexes recreates them from it.
//
// Keys, for prefix P and tenant T:
//
//	P{ae:T}:chain       stream, one entry per seq, ID "<seq>-0", field "e" = stored JSON (a loss
//	                    marker skips seqs: the IDs jump, and it is in no incident's index)
//	P{ae:T}:tail        hash  seq, hash, code (the incident counter, Tail.LastCode), code_at (the seq
//	                    code was written at: a chain appended to by a version that kept no
//	                    counter has none or a stale one, and reads as base + seq)
//	P{ae:T}:stage       hash  incident → stage ("" is stored as "-")
//	P{ae:T}:service     hash  incident → service
//	P{ae:T}:open        hash  service → open incident
//	P{ae:T}:incidents   zset  incident scored by its opening seq
//	P{ae:T}:byinc       zset  "<incident>:<seq, 20 digits>", all score 0 (lexicographic index)
//	P{ae:T}:checkpoint  string, the latest signed checkpoint (JSON)
//	P{ae:T}:base        string, the chain's code base (set once, when a chain restarts after a loss)
//	P{ae:T}:tree        hash  the Merkle tree over the entries (merkle_redis.go)
type RedisStore struct {
	c      redis.UniversalClient
	prefix string
	fronts sync.Map // tenant → *treeFront: the tree's last known frontier (merkle_redis.go)
}

// NewRedisStore returns a store on c whose keys all start with prefix.
func NewRedisStore(c redis.UniversalClient, prefix string) *RedisStore {
	return &RedisStore{c: c, prefix: prefix}
}

type tenantKeys struct{ chain, tail, stage, service, open, incidents, byinc, checkpoint, base, tree string }

func (s *RedisStore) keys(tenant string) tenantKeys {
	b := s.prefix + "{ae:" + tenant + "}:"
	return tenantKeys{b + "chain", b + "tail", b + "stage", b + "service", b + "open", b + "incidents", b + "byinc", b + "checkpoint", b + "base", b + "tree"}
}

// appendScript is the compare-and-append. It returns {appended, code, detail}:
// code 0 all appended, 1 tail moved (detail: "seq hash last-code" of the tail), 2 stage conflict (detail: current stage),
// 3 service open (detail: the open incident), 4 the Merkle tree's size is not the one the
// tree arguments were computed on (detail: its size), 5 an incident's code is not past the
// incident counter (detail: the counter).
//
// The counter (the tail's code) moves with the entry that opens an incident: its code,
// read from the id's hex, must be past the counter and the chain's code base, and becomes
// the counter. A tail without a counter written at its own seq (an older version's chain)
// counts as code base + seq.
//
// After the entries' 7 arguments each come the tree's: its size, the stored-hash index the
// batch's hashes start at, the end index after each entry, then the hashes; the hashes of
// exactly the entries appended are stored, with the entries.
var appendScript = redis.NewScript(`
local t = redis.call('HMGET', KEYS[2], 'seq', 'hash', 'code', 'code_at')
local tseq = t[1] or '0'
local thash = t[2] or ARGV[3]
local base = tonumber(redis.call('GET', KEYS[9]) or '0')
local tcode
if t[3] and t[4] == tseq then tcode = math.max(tonumber(t[3]), base) else tcode = base + tonumber(tseq) end
if tseq ~= ARGV[1] or thash ~= ARGV[2] then return {0, 1, tseq .. ' ' .. thash .. ' ' .. string.format('%d', tcode)} end
local n = tonumber(ARGV[4])
local tb = 5 + 7 * n
local tn = redis.call('HGET', KEYS[8], 'n') or '0'
if tn ~= ARGV[tb] then return {0, 4, tn} end
local function grow(m)
  local leaves, s, hv, prev = tonumber(ARGV[tb]), tonumber(ARGV[tb+1]), tb + 2 + n, tonumber(ARGV[tb+1])
  for i = 1, m do
    local e = tonumber(ARGV[tb+1+i])
    for x = prev, e - 1 do redis.call('HSET', KEYS[8], 'h' .. x, ARGV[hv + x - s]) end
    prev = e
    redis.call('HSET', KEYS[8], 's' .. ARGV[5 + 7 * (i - 1)], string.format('%d', leaves + i - 1))
  end
  if m > 0 then redis.call('HSET', KEYS[8], 'n', string.format('%d', leaves + m)) end
end
local k = 5
local terminal = {RESOLVED=true, RECOVERED=true, REJECTED=true}
for i = 1, n do
  local seq, js, hash, inc, from, to, svc = ARGV[k], ARGV[k+1], ARGV[k+2], ARGV[k+3], ARGV[k+4], ARGV[k+5], ARGV[k+6]
  if inc == '' then
    redis.call('XADD', KEYS[1], seq .. '-0', 'e', js)
    redis.call('HSET', KEYS[8], 'loss', string.format('%d', tonumber(ARGV[tb]) + i - 1) .. ':' .. seq)
  else
    local cur = redis.call('HGET', KEYS[3], inc) or '-'
    if cur ~= from then grow(i-1) return {i-1, 2, cur} end
    if from == '-' then
      if svc ~= '' then
        local o = redis.call('HGET', KEYS[5], svc)
        if o then grow(i-1) return {i-1, 3, o} end
      end
      local c = tonumber(string.sub(inc, 5), 16)
      if not c or c <= tcode then grow(i-1) return {i-1, 5, string.format('%d', tcode)} end
      tcode = c
      if svc ~= '' then redis.call('HSET', KEYS[4], inc, svc) end
      redis.call('ZADD', KEYS[6], seq, inc)
    end
    redis.call('XADD', KEYS[1], seq .. '-0', 'e', js)
    redis.call('ZADD', KEYS[7], 0, inc .. ':' .. string.rep('0', 20 - #seq) .. seq)
    if to ~= cur then redis.call('HSET', KEYS[3], inc, to) end
    local isvc = redis.call('HGET', KEYS[4], inc)
    if isvc then
      if from == '-' and not terminal[to] then
        redis.call('HSET', KEYS[5], isvc, inc)
      elseif terminal[to] and redis.call('HGET', KEYS[5], isvc) == inc then
        redis.call('HDEL', KEYS[5], isvc)
      end
    end
  end
  redis.call('HSET', KEYS[2], 'seq', seq, 'hash', hash, 'code', string.format('%d', tcode), 'code_at', seq)
  k = k + 7
end
grow(n)
return {n, 0, ''}
`)

func stageArg(s Stage) string {
	if s == None {
		return "-"
	}
	return string(s)
}

func stageFromArg(s string) Stage {
	if s == "-" {
		return None
	}
	return Stage(s)
}

// Append implements Store.
func (s *RedisStore) Append(ctx context.Context, tenant string, tail Tail, entries []Entry) (int, error) {
	k := s.keys(tenant)
	args := make([]any, 0, 4+7*len(entries))
	args = append(args, strconv.FormatUint(tail.Seq, 10), tail.Hash, GenesisHash, len(entries))
	for i := range entries {
		e := &entries[i]
		js, err := json.Marshal(e)
		if err != nil {
			return 0, fmt.Errorf("encode entry %d: %w", e.Seq, err)
		}
		svc := ""
		if e.From == None {
			svc = e.Service
		}
		args = append(args, strconv.FormatUint(e.Seq, 10), js, e.Hash, e.Incident, stageArg(e.From), stageArg(e.To), svc)
	}
	tree, err := s.treeArgs(ctx, tenant, tail, entries)
	if err != nil {
		return 0, err
	}
	args = append(args, tree...)
	res, err := appendScript.Run(ctx, s.c, []string{k.chain, k.tail, k.stage, k.service, k.open, k.incidents, k.byinc, k.tree, k.base}, args...).Slice()
	if err != nil {
		s.fronts.Delete(tenant)
		return 0, fmt.Errorf("append script: %w", err)
	}
	s.treeAppended(tenant, tree, res)
	if len(res) != 3 {
		return 0, fmt.Errorf("append script: unexpected reply %v", res)
	}
	n, _ := res[0].(int64)
	code, _ := res[1].(int64)
	detail, _ := res[2].(string)
	switch code {
	case 0:
		return int(n), nil
	case 1:
		if f := strings.Fields(detail); len(f) == 3 {
			n, err1 := strconv.ParseUint(f[0], 10, 64)
			c, err2 := strconv.ParseUint(f[2], 10, 64)
			if err1 == nil && err2 == nil {
				return 0, &ConflictError{Tail: Tail{n, f[1], c}}
			}
		}
		return 0, ErrConflict
	case 2:
		e := entries[n]
		return int(n), &StageConflictError{Incident: e.Incident, Want: e.From, Current: stageFromArg(detail)}
	case 3:
		return int(n), &ServiceOpenError{Service: entries[n].Service, Incident: detail}
	case 4:
		return 0, ErrConflict // the remembered tree was stale: read it again
	case 5:
		last, _ := strconv.ParseUint(detail, 10, 64)
		return int(n), codeUsedError(entries[n].Incident, last)
	}
	return int(n), fmt.Errorf("append script: unknown code %d", code)
}

// Tail implements Store. It reads the tail hash and the code base in one round trip; the
// append script derives the counter of an older version's chain from them the same way.
func (s *RedisStore) Tail(ctx context.Context, tenant string) (Tail, error) {
	k := s.keys(tenant)
	pipe := s.c.Pipeline()
	hm := pipe.HMGet(ctx, k.tail, "seq", "hash", "code", "code_at")
	bg := pipe.Get(ctx, k.base)
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, redis.Nil) {
		return Tail{}, fmt.Errorf("read tail: %w", err)
	}
	v := hm.Val()
	seqS, _ := v[0].(string)
	hash, _ := v[1].(string)
	codeS, _ := v[2].(string)
	atS, _ := v[3].(string)
	t := Tail{0, GenesisHash, 0}
	if seqS != "" {
		var err error
		if t.Seq, err = strconv.ParseUint(seqS, 10, 64); err != nil {
			return Tail{}, fmt.Errorf("read tail: bad seq %q", seqS)
		}
		t.Hash = hash
	}
	base := uint64(0)
	if b := bg.Val(); b != "" {
		var err error
		if base, err = strconv.ParseUint(b, 10, 64); err != nil {
			return Tail{}, fmt.Errorf("read tail: code base %q is not a number", b)
		}
	}
	if codeS != "" && atS == strconv.FormatUint(t.Seq, 10) {
		c, err := strconv.ParseUint(codeS, 10, 64)
		if err != nil {
			return Tail{}, fmt.Errorf("read tail: bad incident counter %q", codeS)
		}
		t.LastCode = max(c, base)
		return t, nil
	}
	t.LastCode = base + t.Seq
	return t, nil
}

func decodeMessages(msgs []redis.XMessage) ([]Entry, error) {
	out := make([]Entry, 0, len(msgs))
	for _, m := range msgs {
		raw, _ := m.Values["e"].(string)
		var e Entry
		if err := json.Unmarshal([]byte(raw), &e); err != nil {
			return out, fmt.Errorf("stream entry %s: %w", m.ID, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// Range implements Store.
func (s *RedisStore) Range(ctx context.Context, tenant string, from uint64, limit int) ([]Entry, error) {
	if from == 0 {
		from = 1
	}
	start := strconv.FormatUint(from, 10) + "-0"
	var msgs []redis.XMessage
	var err error
	if limit > 0 {
		msgs, err = s.c.XRangeN(ctx, s.keys(tenant).chain, start, "+", int64(limit)).Result()
	} else {
		msgs, err = s.c.XRange(ctx, s.keys(tenant).chain, start, "+").Result()
	}
	if err != nil {
		return nil, fmt.Errorf("read chain: %w", err)
	}
	return decodeMessages(msgs)
}

// Stage implements Store.
func (s *RedisStore) Stage(ctx context.Context, tenant, incident string) (Stage, error) {
	v, err := s.c.HGet(ctx, s.keys(tenant).stage, incident).Result()
	if errors.Is(err, redis.Nil) {
		return None, nil
	}
	if err != nil {
		return None, fmt.Errorf("read stage: %w", err)
	}
	return stageFromArg(v), nil
}

// History implements Store.
func (s *RedisStore) History(ctx context.Context, tenant, incident string) ([]Entry, error) {
	k := s.keys(tenant)
	members, err := s.c.ZRangeByLex(ctx, k.byinc, &redis.ZRangeBy{Min: "[" + incident + ":", Max: "(" + incident + ";"}).Result()
	if err != nil {
		return nil, fmt.Errorf("read incident index: %w", err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	pipe := s.c.Pipeline()
	cmds := make([]*redis.XMessageSliceCmd, len(members))
	for i, m := range members {
		seq := strings.TrimLeft(m[strings.LastIndexByte(m, ':')+1:], "0")
		cmds[i] = pipe.XRange(ctx, k.chain, seq+"-0", seq+"-0")
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return nil, fmt.Errorf("read incident entries: %w", err)
	}
	out := make([]Entry, 0, len(members))
	for i, c := range cmds {
		es, err := decodeMessages(c.Val())
		if err != nil {
			return out, err
		}
		if len(es) != 1 {
			return out, fmt.Errorf("incident %s: entry %s missing from the chain", incident, members[i])
		}
		out = append(out, es[0])
	}
	return out, nil
}

// Incidents implements Store.
func (s *RedisStore) Incidents(ctx context.Context, tenant string) ([]string, error) {
	v, err := s.c.ZRange(ctx, s.keys(tenant).incidents, 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("read incidents: %w", err)
	}
	return v, nil
}

// OpenIncident implements Store.
func (s *RedisStore) OpenIncident(ctx context.Context, tenant, service string) (string, error) {
	v, err := s.c.HGet(ctx, s.keys(tenant).open, service).Result()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read open incident: %w", err)
	}
	return v, nil
}

// SaveCheckpoint implements Store. A checkpoint never replaces one of a later chain (a
// larger base) or a larger one of the same chain.
func (s *RedisStore) SaveCheckpoint(ctx context.Context, cp Checkpoint) error {
	js, err := json.Marshal(cp)
	if err != nil {
		return err
	}
	err = saveCheckpointScript.Run(ctx, s.c, []string{s.keys(cp.Tenant).checkpoint}, js, cp.Size, cp.Base).Err()
	if err != nil && !errors.Is(err, redis.Nil) {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

var saveCheckpointScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur then
  local size = tonumber(string.match(cur, '"size":(%d+)'))
  local base = tonumber(string.match(cur, '"base":(%d+)') or '0')
  local nbase = tonumber(ARGV[3])
  if base > nbase then return 0 end
  if base == nbase and size and size > tonumber(ARGV[2]) then return 0 end
end
redis.call('SET', KEYS[1], ARGV[1])
return 1
`)

// Checkpoint implements Store.
func (s *RedisStore) Checkpoint(ctx context.Context, tenant string) (*Checkpoint, error) {
	v, err := s.c.Get(ctx, s.keys(tenant).checkpoint).Result()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	var cp Checkpoint
	if err := json.Unmarshal([]byte(v), &cp); err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	return &cp, nil
}

// Ping implements Store: Redis answers and accepts a write.
func (s *RedisStore) Ping(ctx context.Context) error {
	if err := s.c.Set(ctx, s.prefix+"{ae}:probe", "1", 0).Err(); err != nil {
		return fmt.Errorf("redis write probe: %w", err)
	}
	return nil
}

// Client returns the store's Redis client (for tools that tamper in tests or rebuild).
func (s *RedisStore) Client() redis.UniversalClient { return s.c }

// ChainKey returns the stream key of a tenant's chain.
func (s *RedisStore) ChainKey(tenant string) string { return s.keys(tenant).chain }

// Base implements BaseStore.
func (s *RedisStore) Base(ctx context.Context, tenant string) (uint64, error) {
	v, err := s.c.Get(ctx, s.keys(tenant).base).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read code base: %w", err)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("read code base: %q is not a number", v)
	}
	return n, nil
}

var claimBaseScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1]) or '0'
if cur == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2])
  return ARGV[2]
end
return cur
`)

// ClaimBase implements BaseStore.
func (s *RedisStore) ClaimBase(ctx context.Context, tenant string, old, base uint64) (uint64, error) {
	v, err := claimBaseScript.Run(ctx, s.c, []string{s.keys(tenant).base}, strconv.FormatUint(old, 10), strconv.FormatUint(base, 10)).Text()
	if err != nil {
		return 0, fmt.Errorf("claim code base: %w", err)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("claim code base: %q is not a number", v)
	}
	return n, nil
}
