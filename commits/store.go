package commits

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	Redis     redis.UniversalClient
	KeyPrefix string
	// MaxPerRepo bounds the changes kept per repository (default MaxPerRepo).
	MaxPerRepo int
	// Retention is how long changes are kept (default Retention).
	Retention time.Duration
	// Clock is used for retention (default time.Now).
	Clock func() time.Time
}

// Validate checks the options.
func (o *StoreOptions) Validate() error {
	if o.Redis == nil {
		return errors.New("commits store: no Redis")
	}
	if o.MaxPerRepo < 0 || o.Retention < 0 {
		return errors.New("commits store: negative bound")
	}
	return nil
}

// Store keeps each repository's recent changes in Redis: a sorted set of change ids by
// time and a hash of their records (with their +/− stats), both under the repository's
// hash tag, trimmed by age and count on every write, expiring with the retention.
type Store struct {
	o StoreOptions
}

// NewStore returns a store.
func NewStore(o StoreOptions) (*Store, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.MaxPerRepo == 0 {
		o.MaxPerRepo = MaxPerRepo
	}
	if o.Retention == 0 {
		o.Retention = Retention
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return &Store{o: o}, nil
}

func (s *Store) keys(repo string) (set, data string) {
	base := s.o.KeyPrefix + "gh:{" + NormalizeRepo(repo) + "}:"
	return base + "at", base + "data"
}

// addScript adds changes and trims the repository's set. KEYS: set, hash. ARGV: cutoff
// score (older goes), max count, TTL ms, then per change: id, score, record, keep (1: keep
// an existing record, for tags announced twice).
var addScript = redis.NewScript(`
for i = 4, #ARGV, 4 do
  local id = ARGV[i]
  if ARGV[i+3] == '1' and redis.call('HEXISTS', KEYS[2], id) == 1 then
  else
    redis.call('ZADD', KEYS[1], ARGV[i+1], id)
    redis.call('HSET', KEYS[2], id, ARGV[i+2])
  end
end
local function drop(ids)
  for _, id in ipairs(ids) do
    redis.call('HDEL', KEYS[2], id, 's:' .. id)
  end
end
drop(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1]))
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[1])
local over = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[2])
if over > 0 then
  drop(redis.call('ZRANGE', KEYS[1], 0, over - 1))
  redis.call('ZREMRANGEBYRANK', KEYS[1], 0, over - 1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[3])
return redis.call('ZCARD', KEYS[1])
`)

// score orders changes by At, then by their order in the delivery (microseconds).
func score(c Change) float64 { return float64(c.At.UnixMicro() + int64(c.seq)) }

// Add stores changes of one repository atomically: all of them or none.
func (s *Store) Add(ctx context.Context, repo string, changes []Change) error {
	if len(changes) == 0 {
		return nil
	}
	set, data := s.keys(repo)
	args := []any{strconv.FormatInt(s.o.Clock().Add(-s.o.Retention).UnixMicro(), 10), s.o.MaxPerRepo, s.o.Retention.Milliseconds()}
	for _, c := range changes {
		if NormalizeRepo(c.Repo) != NormalizeRepo(repo) {
			return fmt.Errorf("add change of %s to %s", c.Repo, repo)
		}
		b, err := json.Marshal(c)
		if err != nil {
			return fmt.Errorf("encode change %s: %w", c.id(), err)
		}
		keep := "0"
		if c.Kind == KindTag && c.SHA == "" {
			keep = "1"
		}
		args = append(args, c.id(), strconv.FormatFloat(score(c), 'f', 0, 64), b, keep)
	}
	if err := addScript.Run(ctx, s.o.Redis, []string{set, data}, args...).Err(); err != nil {
		return fmt.Errorf("store %d changes of %s: %w", len(changes), repo, err)
	}
	return nil
}

// Commit returns the stored commit sha of repo.
func (s *Store) Commit(ctx context.Context, repo, sha string) (Change, bool, error) {
	_, data := s.keys(repo)
	id := "c:" + strings.ToLower(sha)
	vals, err := s.o.Redis.HMGet(ctx, data, id, "s:"+id).Result()
	if err != nil {
		return Change{}, false, fmt.Errorf("read commit %s of %s: %w", short(sha), repo, err)
	}
	c, ok := decode(vals[0], vals[1])
	return c, ok, nil
}

// setStatsScript records stats only for a commit still stored.
var setStatsScript = redis.NewScript(`
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 's:' .. ARGV[1], ARGV[2])
  return 1
end
return 0`)

// SetStats records a commit's +/− line counts.
func (s *Store) SetStats(ctx context.Context, repo, sha string, additions, deletions int) error {
	_, data := s.keys(repo)
	v := strconv.Itoa(additions) + "/" + strconv.Itoa(deletions)
	if err := setStatsScript.Run(ctx, s.o.Redis, []string{data}, "c:"+strings.ToLower(sha), v).Err(); err != nil {
		return fmt.Errorf("store stats of %s: %w", short(sha), err)
	}
	return nil
}

// HasStats reports whether a commit's stats are stored.
func (s *Store) HasStats(ctx context.Context, repo, sha string) (bool, error) {
	_, data := s.keys(repo)
	n, err := s.o.Redis.HExists(ctx, data, "s:c:"+strings.ToLower(sha)).Result()
	if err != nil {
		return false, fmt.Errorf("read stats of %s: %w", short(sha), err)
	}
	return n, nil
}

// Between returns repo's changes with since ≤ At ≤ until, newest first, at most limit.
// A deployment carries the message, author, files and stats of the commit it deployed
// when that commit is stored.
func (s *Store) Between(ctx context.Context, repo string, since, until time.Time, limit int) ([]Change, error) {
	set, data := s.keys(repo)
	if floor := s.o.Clock().Add(-s.o.Retention); since.Before(floor) {
		since = floor
	}
	ids, err := s.o.Redis.ZRevRangeByScore(ctx, set, &redis.ZRangeBy{
		Min: strconv.FormatInt(since.UnixMicro(), 10), Max: strconv.FormatInt(until.UnixMicro()+999, 10), Count: int64(limit),
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("read changes of %s: %w", repo, err)
	}
	if len(ids) == 0 {
		return nil, nil
	}
	fields := make([]string, 0, 2*len(ids))
	for _, id := range ids {
		fields = append(fields, id, "s:"+id)
	}
	vals, err := s.o.Redis.HMGet(ctx, data, fields...).Result()
	if err != nil {
		return nil, fmt.Errorf("read changes of %s: %w", repo, err)
	}
	out := make([]Change, 0, len(ids))
	var deploys []int
	for i := range ids {
		c, ok := decode(vals[2*i], vals[2*i+1])
		if !ok {
			continue // trimmed between the two reads
		}
		if c.Kind == KindDeploy && c.SHA != "" {
			deploys = append(deploys, len(out))
		}
		out = append(out, c)
	}
	for _, i := range deploys {
		if cm, ok, err := s.Commit(ctx, repo, out[i].SHA); err == nil && ok {
			out[i] = deployOf(out[i], cm)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.After(out[j].At) })
	return out, nil
}

// deployOf fills a deployment with what is known of the commit it deployed.
func deployOf(d, c Change) Change {
	if c.Message != "" {
		d.Message = c.Message // the change people recognise, not the deployment's description
	}
	d.AuthorLogin, d.AuthorName, d.AuthorEmail = c.AuthorLogin, c.AuthorName, c.AuthorEmail
	d.Added, d.Modified, d.Removed, d.Files, d.FilesCut, d.Hits = c.Added, c.Modified, c.Removed, c.Files, c.FilesCut, c.Hits
	d.Stats, d.Additions, d.Deletions = c.Stats, c.Additions, c.Deletions
	d.CommittedAt = c.CommittedAt
	return d
}

func decode(rec, stats any) (Change, bool) {
	s, ok := rec.(string)
	if !ok {
		return Change{}, false
	}
	var c Change
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return Change{}, false
	}
	if st, ok := stats.(string); ok {
		a, d, _ := strings.Cut(st, "/")
		ai, err1 := strconv.Atoi(a)
		di, err2 := strconv.Atoi(d)
		if err1 == nil && err2 == nil {
			c.Stats, c.Additions, c.Deletions = true, ai, di
		}
	}
	return c, true
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
