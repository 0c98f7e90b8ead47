package ratelimit

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"
)

// Redis is a Schedule shared by every replica on one Redis. Each bucket's slots live in hashes
// of 4096 slots (key PREFIX rl:KEY@EVERY:WINDOW, field = slot) that expire two hours after
// their last booking; an owner's answer lives in PREFIX rlo:OWNER for as long.
//
// The script builds the window keys it touches from the prefix it is given, which a Redis
// Cluster would refuse; dontinterrupt uses one Redis (or a primary with replicas).
type Redis struct {
	rdb    goredis.UniversalClient
	prefix string
}

// NewRedis returns a schedule on rdb with keys under prefix (the store's, "di:").
func NewRedis(rdb goredis.UniversalClient, prefix string) *Redis {
	return &Redis{rdb: rdb, prefix: prefix}
}

// keepMillis is how long slot windows and owner answers are kept after their last booking.
const keepMillis = int64(2 * time.Hour / time.Millisecond)

// reserveScript mirrors Memory.Reserve: ARGV = owner, at (µs), lead (µs), now (µs), spill (µs),
// keep (ms), n, then n pairs (bucket id, every µs). KEYS[1] is the key prefix. An owner's
// booking is stored as "at placed id1 slot1 id2 slot2 …".
var reserveScript = goredis.NewScript(`
local prefix = KEYS[1]
local okey = prefix .. 'rlo:' .. ARGV[1]
local at = tonumber(ARGV[2])
local lead = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
local spill = tonumber(ARGV[5])
local keep = tonumber(ARGV[6])
local n = tonumber(ARGV[7])
local ids, every = {}, {}
for i = 1, n do
  ids[i] = ARGV[6 + 2 * i]
  every[i] = tonumber(ARGV[7 + 2 * i])
end
local function fmt(x) return string.format('%d', x) end
local function slotof(t, e) return math.floor(t / e) end
local function floorms(t) return math.floor(t / 1000) * 1000 end
local function ceilms(t) return math.ceil(t / 1000) * 1000 end
local function wkeyof(id, s) return prefix .. 'rl:' .. id .. ':' .. fmt(math.floor(s / 4096)) end
local prev = redis.call('GET', okey)
if prev then
  local f = {}
  for w in string.gmatch(prev, '%S+') do f[#f + 1] = w end
  if tonumber(f[1]) == at then return f[2] end
  if tonumber(f[2]) > now then
    for j = 3, #f - 1, 2 do
      local s = tonumber(f[j + 1])
      redis.call('HDEL', wkeyof(f[j], s), f[j + 1])
    end
  end
end
local function taken(i, s) return redis.call('HEXISTS', wkeyof(ids[i], s), fmt(s)) == 1 end
local lo = math.max(at - lead, ceilms(now))
local hi = math.max(floorms(at), lo)
local found = nil
local t = hi
while t >= lo do
  local blocked, nxt = false, t
  for i = 1, n do
    local s = slotof(t, every[i])
    if taken(i, s) then
      blocked = true
      local start = floorms(s * every[i] - 1)
      if start < nxt then nxt = start end
    end
  end
  if not blocked then found = t break end
  t = nxt
end
if not found then
  t = ceilms(hi + 1)
  while t <= hi + spill do
    local blocked, nxt = false, t
    for i = 1, n do
      local s = slotof(t, every[i])
      if taken(i, s) then
        blocked = true
        local e = ceilms((s + 1) * every[i])
        if e > nxt then nxt = e end
      end
    end
    if not blocked then found = t break end
    t = nxt
  end
end
if not found then
  redis.call('DEL', okey)
  return false
end
local rec = fmt(at) .. ' ' .. fmt(found)
for i = 1, n do
  local s = slotof(found, every[i])
  local k = wkeyof(ids[i], s)
  redis.call('HSET', k, fmt(s), '1')
  redis.call('PEXPIRE', k, keep)
  rec = rec .. ' ' .. ids[i] .. ' ' .. fmt(s)
end
redis.call('SET', okey, rec, 'PX', keep)
return fmt(found)
`)

// Reserve implements Schedule.
func (r *Redis) Reserve(ctx context.Context, owner string, buckets []Bucket, at time.Time, lead time.Duration, now time.Time) (time.Time, error) {
	every, err := validate(buckets)
	if err != nil {
		return time.Time{}, err
	}
	args := make([]any, 0, 6+2*len(buckets))
	args = append(args, owner, micros(at), max(lead.Microseconds(), 0), micros(now), maxSpill.Microseconds(), keepMillis, len(buckets))
	for i, b := range buckets {
		args = append(args, bucketID(b), every[i])
	}
	v, err := reserveScript.Run(ctx, r.rdb, []string{r.prefix}, args...).Text()
	if err == goredis.Nil {
		return time.Time{}, ErrFull
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("ratelimit: reserve: %w", err)
	}
	t, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return time.Time{}, fmt.Errorf("ratelimit: reserve: bad answer %q", v)
	}
	return time.UnixMicro(t), nil
}
