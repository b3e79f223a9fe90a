package detector

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/alertengine/alertengine/sdk"
)

// maxClockSkew is how far in the future a summary's bucket may lie.
const maxClockSkew = time.Minute

// pushStream is one push-mode service and its stream.
type pushStream struct {
	tenant, service, key string
}

// EnsureGroups creates the consumer group on every push-mode stream (and the stream if
// it does not exist yet). The group starts at the beginning of the stream; entries too old
// for any window are acknowledged and dropped when read. Run calls it; tests may too.
func (d *Detector) EnsureGroups(ctx context.Context) error {
	var errs []error
	for _, ps := range d.push {
		if err := d.ensureGroup(ctx, ps); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (d *Detector) ensureGroup(ctx context.Context, ps pushStream) error {
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	err := d.rdb.XGroupCreateMkStream(ctx, ps.key, group, "0").Err()
	if err != nil && !strings.HasPrefix(err.Error(), "BUSYGROUP") {
		return fmt.Errorf("create consumer group on %s: %w", ps.key, err)
	}
	return nil
}

// Ingest reads the entries new to the consumer group on every push-mode stream, without
// blocking: one XREADGROUP per stream, sent as one pipeline (which a cluster client splits
// by node). Each summary is checked, added to its service's shared window and
// acknowledged. It returns how many summaries were stored.
func (d *Detector) Ingest(ctx context.Context) (int, error) {
	if len(d.push) == 0 {
		return 0, nil
	}
	rctx, cancel := d.redisCtx(ctx)
	pipe := d.rdb.Pipeline()
	cmds := make([]*redis.XStreamSliceCmd, len(d.push))
	for i, ps := range d.push {
		cmds[i] = pipe.XReadGroup(rctx, &redis.XReadGroupArgs{
			Group:    group,
			Consumer: d.opts.ReplicaID,
			Streams:  []string{ps.key, ">"},
			Count:    d.opts.ReadCount,
			Block:    -1, // never block: one round trip for every stream
		})
	}
	_, _ = pipe.Exec(rctx) // errors are per command, below
	cancel()
	var errs []error
	stored := 0
	for i, cmd := range cmds {
		ps := d.push[i]
		streams, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil && strings.HasPrefix(err.Error(), "NOGROUP"):
			// The stream or its group was deleted; recreate and read next round.
			if gerr := d.ensureGroup(ctx, ps); gerr != nil {
				errs = append(errs, gerr)
			}
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("read %s: %w", ps.key, err))
			continue
		}
		for _, s := range streams {
			n, err := d.storeMessages(ctx, ps, s.Messages)
			stored += n
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	return stored, errors.Join(errs...)
}

// Reclaim takes over the entries that another consumer read but did not acknowledge for
// ClaimIdle (a replica that died between read and acknowledgement), with XAUTOCLAIM, and
// stores them like Ingest. It returns how many summaries were stored.
func (d *Detector) Reclaim(ctx context.Context) (int, error) {
	var errs []error
	stored := 0
	for _, ps := range d.push {
		start := "0-0"
		for range 64 { // bounded: at most 64 × ReadCount entries per stream per call
			rctx, cancel := d.redisCtx(ctx)
			msgs, next, err := d.rdb.XAutoClaim(rctx, &redis.XAutoClaimArgs{
				Stream: ps.key, Group: group, Consumer: d.opts.ReplicaID,
				MinIdle: d.opts.ClaimIdle, Start: start, Count: d.opts.ReadCount,
			}).Result()
			cancel()
			if err != nil {
				if !strings.HasPrefix(err.Error(), "NOGROUP") {
					errs = append(errs, fmt.Errorf("claim on %s: %w", ps.key, err))
				}
				break
			}
			if len(msgs) > 0 {
				d.stats.reclaimed.Add(uint64(len(msgs)))
				n, err := d.storeMessages(ctx, ps, msgs)
				stored += n
				if err != nil {
					errs = append(errs, err)
					break
				}
			}
			if next == "0-0" || next == "" {
				break
			}
			start = next
		}
	}
	return stored, errors.Join(errs...)
}

// storeMessages adds the summaries of msgs to the service's window, then acknowledges
// every message, stored or refused: a malformed, foreign or late entry is counted and
// logged, never retried forever. An entry is acknowledged only after its summary is
// durable in the window, so a replica dying in between leaves it pending for Reclaim.
func (d *Detector) storeMessages(ctx context.Context, ps pushStream, msgs []redis.XMessage) (int, error) {
	if len(msgs) == 0 {
		return 0, nil
	}
	now := d.opts.Clock()
	oldest := now.Truncate(time.Second).Add(-d.opts.Window)
	winKey := d.keys.window(ps.tenant, ps.service)
	instKey := d.keys.instances(ps.tenant, ps.service)
	ids := make([]string, 0, len(msgs))
	var members []redis.Z
	newest := map[string]int64{}
	for _, m := range msgs {
		ids = append(ids, m.ID)
		if m.Values == nil { // deleted from the stream while pending
			continue
		}
		s, err := sdk.ParseSummary(m.Values)
		if err == nil && (s.Tenant != ps.tenant || s.Service != ps.service) {
			err = fmt.Errorf("%w: %s/%s on %s", ErrForeignSummary, s.Tenant, s.Service, ps.key)
		}
		if err == nil && s.Bucket.After(now.Add(maxClockSkew)) {
			err = fmt.Errorf("bucket %s is in the future", s.Bucket.Format(time.RFC3339))
		}
		if err != nil {
			d.stats.invalidSummaries.Add(1)
			d.log.Warn("drop invalid summary", "stream", ps.key, "id", m.ID, "err", err)
			continue
		}
		if s.Bucket.Before(oldest) {
			d.stats.lateSummaries.Add(1)
			d.log.Debug("drop late summary", "stream", ps.key, "id", m.ID, "bucket", s.Bucket)
			continue
		}
		member, err := encodeMember(m.Values)
		if err != nil {
			d.stats.invalidSummaries.Add(1)
			d.log.Warn("drop unencodable summary", "stream", ps.key, "id", m.ID, "err", err)
			continue
		}
		members = append(members, redis.Z{Score: float64(s.Bucket.Unix()), Member: member})
		if s.Early == 0 { // an early part of a bucket does not complete it
			newest[s.Instance] = max(newest[s.Instance], s.Bucket.Unix())
		}
	}
	ctx, cancel := d.redisCtx(ctx)
	defer cancel()
	if len(members) > 0 {
		pipe := d.rdb.Pipeline()
		pipe.ZAdd(ctx, winKey, members...)
		pipe.PExpire(ctx, winKey, 3*d.opts.Window)
		for inst, b := range newest {
			pipe.ZAddGT(ctx, instKey, redis.Z{Score: float64(b), Member: inst})
		}
		pipe.ZRemRangeByScore(ctx, instKey, "-inf", "("+strconv.FormatInt(oldest.Add(-2*d.opts.Window).Unix(), 10))
		pipe.PExpire(ctx, instKey, 3*d.opts.Window)
		if _, err := pipe.Exec(ctx); err != nil {
			return 0, fmt.Errorf("store summaries of %s/%s: %w", ps.tenant, ps.service, err)
		}
		d.stats.summaries.Add(uint64(len(members)))
	}
	if err := d.rdb.XAck(ctx, ps.key, group, ids...).Err(); err != nil {
		return len(members), fmt.Errorf("acknowledge on %s: %w", ps.key, err)
	}
	return len(members), nil
}
