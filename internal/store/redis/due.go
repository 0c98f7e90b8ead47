package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/dontinterrupt/dontinterrupt/internal/store"
	goredis "github.com/redis/go-redis/v9"
)

// The due index: a sorted set of user IDs scored by due time in milliseconds since the Unix
// epoch, with two hashes beside it. A claim moves the score to the lease end and records the
// lease in due:lease (a visibility timeout: after the lease the person is claimable again).
// While a claim holds a person, MarkDue records the mark in due:dirty instead of lowering the
// score, so no other claim returns them before the lease ends; Complete keeps the earlier of
// the mark and the next due time. Every operation on the three keys is one Lua script.
//
// KEYS[1] = due, KEYS[2] = due:lease, KEYS[3] = due:dirty in every script.

// markDueScript: ARGV uid, at. Lowers the score (or the pending mark while held).
var markDueScript = goredis.NewScript(`
local at = tonumber(ARGV[2])
if redis.call('HEXISTS', KEYS[2], ARGV[1]) == 1 then
  local d = redis.call('HGET', KEYS[3], ARGV[1])
  if (not d) or at < tonumber(d) then
    redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
  end
  return 1
end
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if (not s) or at < tonumber(s) then
  redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
end
return 0
`)

// claimDueScript: ARGV now, max, until. Returns the claimed user IDs, earliest first.
var claimDueScript = goredis.NewScript(`
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[2]))
for _, id in ipairs(ids) do
  redis.call('ZADD', KEYS[1], ARGV[3], id)
  redis.call('HSET', KEYS[2], id, ARGV[3])
  redis.call('HDEL', KEYS[3], id)
end
return ids
`)

// extendLeaseScript: ARGV uid, lease, until. Returns 1, or 0 when the claim is not held.
var extendLeaseScript = goredis.NewScript(`
local l = redis.call('HGET', KEYS[2], ARGV[1])
if (not l) or tonumber(l) ~= tonumber(ARGV[2]) or not redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  return 0
end
redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
`)

// completeScript: ARGV uid, lease, next. Returns 1 when done, 0 when the person has no due
// entry (removed meanwhile: nothing to do), -1 when another claim holds the person.
var completeScript = goredis.NewScript(`
local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not s then
  return 0
end
local nxt = tonumber(ARGV[3])
local l = redis.call('HGET', KEYS[2], ARGV[1])
if l then
  if tonumber(l) ~= tonumber(ARGV[2]) then
    return -1
  end
  local out = ARGV[3]
  local d = redis.call('HGET', KEYS[3], ARGV[1])
  if d and tonumber(d) < nxt then
    out = d
  end
  redis.call('ZADD', KEYS[1], out, ARGV[1])
  redis.call('HDEL', KEYS[2], ARGV[1])
  redis.call('HDEL', KEYS[3], ARGV[1])
  return 1
end
if nxt < tonumber(s) then
  redis.call('ZADD', KEYS[1], ARGV[3], ARGV[1])
end
return 1
`)

func msArg(t time.Time) string { return strconv.FormatInt(ms(t), 10) }

// MarkDue makes the person due at at, or earlier if they already are. While a claim holds the
// person, the mark is kept for Complete instead.
func (s *Store) MarkDue(ctx context.Context, userID string, at time.Time) error {
	if err := need("user ID", userID); err != nil {
		return wrap("mark due", err)
	}
	return wrap("mark due", markDueScript.Run(ctx, s.rdb, s.dueKeys(), userID, msArg(at)).Err())
}

// ClaimDue claims up to max people due at or before now, earliest first, moving each due time
// to now+lease, in one Lua script.
func (s *Store) ClaimDue(ctx context.Context, now time.Time, max int, lease time.Duration) ([]store.Claim, error) {
	if lease < time.Millisecond {
		return nil, wrap("claim due", fmt.Errorf("lease %v is shorter than 1ms", lease))
	}
	if max <= 0 {
		return nil, nil
	}
	until := now.Add(lease)
	ids, err := claimDueScript.Run(ctx, s.rdb, s.dueKeys(), msArg(now), max, msArg(until)).StringSlice()
	if err != nil {
		return nil, wrap("claim due", err)
	}
	claims := make([]store.Claim, len(ids))
	for i, id := range ids {
		claims[i] = store.Claim{UserID: id, LeaseUntil: fromMS(ms(until))}
	}
	return claims, nil
}

// ExtendLease pushes a claim's lease to until if the claim is still held; ErrConflict
// otherwise.
func (s *Store) ExtendLease(ctx context.Context, c store.Claim, until time.Time) (store.Claim, error) {
	n, err := extendLeaseScript.Run(ctx, s.rdb, s.dueKeys(), c.UserID, msArg(c.LeaseUntil), msArg(until)).Int()
	if err != nil {
		return store.Claim{}, wrap("extend lease", err)
	}
	if n != 1 {
		return store.Claim{}, fmt.Errorf("store/redis: extend lease of %s: %w", c.UserID, store.ErrConflict)
	}
	return store.Claim{UserID: c.UserID, LeaseUntil: fromMS(ms(until))}, nil
}

// Complete ends a claim and sets the next due time, keeping an earlier MarkDue made during the
// claim. A claim that another claim has replaced (the lease ran out and someone else claimed
// the person) returns ErrConflict and changes nothing; a person whose due entry was removed
// meanwhile stays removed; one removed and marked due again keeps the earlier time.
func (s *Store) Complete(ctx context.Context, c store.Claim, next time.Time) error {
	n, err := completeScript.Run(ctx, s.rdb, s.dueKeys(), c.UserID, msArg(c.LeaseUntil), msArg(next)).Int()
	if err != nil {
		return wrap("complete", err)
	}
	if n < 0 {
		return fmt.Errorf("store/redis: complete %s: %w", c.UserID, store.ErrConflict)
	}
	return nil
}

// NextDue returns the earliest due time (a held person's is their lease end).
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	zs, err := s.rdb.ZRangeWithScores(ctx, s.dueKeys()[0], 0, 0).Result()
	if err != nil {
		return time.Time{}, false, wrap("next due", err)
	}
	if len(zs) == 0 {
		return time.Time{}, false, nil
	}
	return fromMS(int64(zs[0].Score)), true, nil
}

// DueCount returns how many people have a due entry, and how many are due at or before now.
func (s *Store) DueCount(ctx context.Context, now time.Time) (int, int, error) {
	k := s.dueKeys()[0]
	p := s.rdb.Pipeline()
	total := p.ZCard(ctx, k)
	due := p.ZCount(ctx, k, "-inf", msArg(now))
	if _, err := p.Exec(ctx); err != nil {
		return 0, 0, wrap("due count", err)
	}
	return int(total.Val()), int(due.Val()), nil
}

// RemoveDue removes the person's due entry and any claim on it; a missing one is not an error.
func (s *Store) RemoveDue(ctx context.Context, userID string) error {
	keys := s.dueKeys()
	_, err := s.rdb.TxPipelined(ctx, func(p goredis.Pipeliner) error {
		p.ZRem(ctx, keys[0], userID)
		p.HDel(ctx, keys[1], userID)
		p.HDel(ctx, keys[2], userID)
		return nil
	})
	return wrap("remove due", err)
}
