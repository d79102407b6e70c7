package redis

import (
	"context"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
)

// RateLimitStore is a ratelimit.Store on Redis, shared by every replica
// that uses the same server: each limit is a GCRA cell (one key holding
// its theoretical arrival time in microseconds of the Redis server's
// clock), each concurrency limit a sorted set of leases scored by their
// expiry, and what the provider reported about a model a hash. An
// admission is one Lua script (one round trip) that checks every limit of
// the call, reserves them all or none, and takes the leases; a settlement
// is another. The keys of one model share a hash tag ("{prefix:rl:model}")
// so that they live in one Redis Cluster slot. A settlement is applied
// once even when go-redis runs its script again (a retry after a dropped
// connection): the first key of the call's limits, suffixed ":settled",
// keeps the settlements of the last two minutes; an admission likewise is
// admitted once (":admitted" and ":admitted:at", the admissions of the
// last two minutes and the time each was admitted for).
//
// go-redis/redis_rate implements GCRA in Redis too, but for one limit per
// call: admitting against requests, tokens, the team's share, the
// provider's reported state and a concurrency cap at once, reserving a
// future slot, and settling tokens afterwards need a script of our own.
//
// A RateLimitStore is safe for concurrent use.
type RateLimitStore struct {
	c goredis.UniversalClient
}

var _ ratelimit.Store = (*RateLimitStore)(nil)

// NewRateLimitStore returns a RateLimitStore on c. The caller owns c.
func NewRateLimitStore(c goredis.UniversalClient) *RateLimitStore { return &RateLimitStore{c: c} }

const luaNow = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local function put(k, v)
  local ttl = math.floor((v - now) / 1000) + 60000
  if ttl < 60000 then ttl = 60000 end
  -- a TTL past 1e14 ms would reach Redis as "1e+14", not an integer
  if ttl > 1e12 then ttl = 1e12 end
  redis.call('SET', k, string.format('%.0f', v), 'PX', ttl)
end
-- a wait in the reply: within a Go Duration (a Lua number beyond int64 is
-- no integer reply)
local function us(d)
  d = math.ceil(d)
  if d > 9e15 then d = 9e15 end
  return d
end
`

// admit: KEYS cells.., slots.., [learned], admitted (zset), admitted (hash);
// ARGV ncells, nslots, maxwait_ns, requests, tokens, lease, lease_ttl_ms,
// has_learned, then per cell interval_ns, tolerance_ns, is_tokens, name
// and per slot max, name, then the admission's unique token;
// returns {ok, wait_us, limit, flag} with flag 1 = retry, 2 = concurrency.
//
// The last two keys keep the admissions of the last settledFor (the
// token's time in the set, its slot "<at_us> <limit>" in the hash): one
// whose token is there already is the same one run again (go-redis
// retries a command whose connection dropped, and the script may have
// run), which gets its admission back, not a second one.
var rlAdmitScript = goredis.NewScript(luaNow + `
local az, ah, tok = KEYS[#KEYS - 1], KEYS[#KEYS], ARGV[#ARGV]
local prev = redis.call('HGET', ah, tok)
if prev then
  local at0, w0 = string.match(prev, '^(%S+) (.*)$')
  local d = tonumber(at0) - now
  if d < 0 then d = 0 end
  return {1, us(d), w0, 0}
end
local nc, ns = tonumber(ARGV[1]), tonumber(ARGV[2])
local maxwait, reqs, toks = tonumber(ARGV[3]) / 1000, tonumber(ARGV[4]), tonumber(ARGV[5])
local lease, lttl, hasl = ARGV[6], tonumber(ARGV[7]), ARGV[8] == '1'
local delay, which = 0, ''
local tats, incs = {}, {}
local a = 9
for i = 1, nc do
  local iv, tol, tk, name = tonumber(ARGV[a]) / 1000, tonumber(ARGV[a+1]) / 1000, ARGV[a+2], ARGV[a+3]
  a = a + 4
  local cost = reqs
  if tk == '1' then cost = toks end
  local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
  local inc = cost * iv
  local base = tat
  if base < now then base = now end
  local tl = tol
  if inc > tl then tl = inc end
  -- (base - now) + (inc - tl), not base + inc - tl - now: with a huge
  -- need, base + inc loses base's microseconds to the double's precision
  local d = (base - now) + (inc - tl)
  if d > delay then delay, which = d, name end
  tats[i], incs[i] = tat, inc
end
local lk, lv = nil, nil
if hasl then
  lk = KEYS[nc + ns + 1]
  lv = redis.call('HMGET', lk, 'p', 'rt', 'ri', 'tt', 'ti')
  for i = 1, 5 do lv[i] = tonumber(lv[i]) or 0 end
  if lv[1] - now > delay then delay, which = lv[1] - now, 'provider' end
  local function learned(tat, iv, cost, name)
    if iv <= 0 then return end
    local base = tat
    if base < now then base = now end
    local inc, tl = cost * iv, 60000000
    if inc > tl then tl = inc end
    local d = (base - now) + (inc - tl)
    if d > delay then delay, which = d, name end
  end
  learned(lv[2], lv[3], reqs, 'provider rpm')
  learned(lv[4], lv[5], toks, 'provider tpm')
end
if delay > maxwait then return {0, us(delay), which, 0} end
local at = now + delay
if delay > 0 then
  for i = 1, nc do
    if tats[i] < at then return {0, us(delay), which, 1} end
  end
end
local nowms = math.floor(now / 1000)
for j = 1, ns do
  local k, mx, name = KEYS[nc + j], tonumber(ARGV[a + 2*(j-1)]), ARGV[a + 2*(j-1) + 1]
  redis.call('ZREMRANGEBYSCORE', k, '-inf', nowms)
  if redis.call('ZCARD', k) >= mx then return {0, 20000, name, 2} end
end
for i = 1, nc do
  local base = tats[i]
  if base < at then base = at end
  put(KEYS[i], base + incs[i])
end
if hasl then
  local function commit(fi, tat, iv, cost)
    if iv <= 0 then return end
    local base = tat
    if base < at then base = at end
    redis.call('HSET', lk, fi, string.format('%.0f', base + cost * iv))
  end
  commit('rt', lv[2], lv[3], reqs)
  commit('tt', lv[4], lv[5], toks)
end
for j = 1, ns do
  local k = KEYS[nc + j]
  redis.call('ZADD', k, nowms + lttl, lease)
  redis.call('PEXPIRE', k, lttl + 60000)
end
local keep = ` + strconv.FormatInt(settledFor.Microseconds(), 10) + `
local old = redis.call('ZRANGEBYSCORE', az, '-inf', now - keep, 'LIMIT', 0, 64)
for _, m in ipairs(old) do
  redis.call('HDEL', ah, m)
  redis.call('ZREM', az, m)
end
redis.call('ZADD', az, now, tok)
redis.call('HSET', ah, tok, string.format('%.0f', at) .. ' ' .. which)
redis.call('PEXPIRE', az, keep / 1000)
redis.call('PEXPIRE', ah, keep / 1000)
return {1, us(delay), which, 0}
`)

// settle: KEYS cells.., slots.., [learned], settled; ARGV ncells, nslots,
// requests, tokens, lease, has_learned, then per cell interval_ns,
// is_tokens, then the settlement's unique token. The last key keeps the
// tokens of the settlements of the last settledFor: one whose token is
// there already is the same one run again (go-redis retries a command
// whose connection dropped, and the script may have run), not applied
// twice (a refund applied twice would admit past the limit).
var rlSettleScript = goredis.NewScript(luaNow + `
local sk, tok = KEYS[#KEYS], ARGV[#ARGV]
redis.call('ZREMRANGEBYSCORE', sk, '-inf', now - ` + strconv.FormatInt(settledFor.Microseconds(), 10) + `)
if redis.call('ZADD', sk, 'NX', now, tok) == 0 then return 0 end
redis.call('PEXPIRE', sk, ` + strconv.FormatInt(settledFor.Milliseconds(), 10) + `)
local nc, ns = tonumber(ARGV[1]), tonumber(ARGV[2])
local reqs, toks, lease, hasl = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5], ARGV[6] == '1'
local a = 7
for i = 1, nc do
  local iv, tk = tonumber(ARGV[a]) / 1000, ARGV[a+1]
  a = a + 2
  local cost = reqs
  if tk == '1' then cost = toks end
  if cost ~= 0 then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '')
    if tat then redis.call('SET', KEYS[i], string.format('%.0f', tat + cost * iv), 'KEEPTTL') end
  end
end
for j = 1, ns do redis.call('ZREM', KEYS[nc + j], lease) end
if hasl then
  local lk = KEYS[nc + ns + 1]
  local v = redis.call('HMGET', lk, 'rt', 'ri', 'tt', 'ti')
  local rt, ri, tt, ti = tonumber(v[1]), tonumber(v[2]) or 0, tonumber(v[3]), tonumber(v[4]) or 0
  if rt and ri > 0 and reqs ~= 0 then redis.call('HSET', lk, 'rt', string.format('%.0f', rt + reqs * ri)) end
  if tt and ti > 0 and toks ~= 0 then redis.call('HSET', lk, 'tt', string.format('%.0f', tt + toks * ti)) end
end
return 1
`)

// learn: KEYS learned; ARGV pause, request reset, request interval, token
// reset, token interval (ns)
var rlLearnScript = goredis.NewScript(luaNow + `
local k = KEYS[1]
local v = redis.call('HMGET', k, 'p', 'rt', 'tt')
local p, rt, tt = tonumber(v[1]) or 0, tonumber(v[2]) or 0, tonumber(v[3]) or 0
local pause, rr, ri = tonumber(ARGV[1]) / 1000, tonumber(ARGV[2]) / 1000, tonumber(ARGV[3]) / 1000
local tr, ti = tonumber(ARGV[4]) / 1000, tonumber(ARGV[5]) / 1000
if pause > 0 and now + pause > p then redis.call('HSET', k, 'p', string.format('%.0f', now + pause)) end
if ri > 0 then
  if now + rr > rt then rt = now + rr end
  redis.call('HSET', k, 'rt', string.format('%.0f', rt), 'ri', ri)
end
if ti > 0 then
  if now + tr > tt then tt = now + tr end
  redis.call('HSET', k, 'tt', string.format('%.0f', tt), 'ti', ti)
end
local ttl = math.floor(pause / 1000) + 60000
if ttl < 120000 then ttl = 120000 end
if redis.call('PTTL', k) < ttl then redis.call('PEXPIRE', k, ttl) end
return 1
`)

func bit(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// Admit implements ratelimit.Store.
func (s *RateLimitStore) Admit(ctx context.Context, a *ratelimit.Admission) (ratelimit.Decision, error) {
	keys := make([]string, 0, len(a.Cells)+len(a.Slots)+3)
	args := make([]any, 0, 9+4*len(a.Cells)+2*len(a.Slots))
	for i := range a.Cells {
		keys = append(keys, a.Cells[i].Key)
	}
	for i := range a.Slots {
		keys = append(keys, a.Slots[i].Key)
	}
	if a.Learned != "" {
		keys = append(keys, a.Learned)
	}
	if len(keys) == 0 {
		return ratelimit.Decision{OK: true}, nil
	}
	// The admitted tokens' keys share the first key's hash tag (one Redis
	// Cluster slot).
	keys = append(keys, keys[0]+":admitted", keys[0]+":admitted:at")
	args = append(args, len(a.Cells), len(a.Slots), int64(a.MaxWait), a.Requests, a.Tokens, a.Lease,
		a.LeaseTTL.Milliseconds(), bit(a.Learned != ""))
	for i := range a.Cells {
		c := &a.Cells[i]
		args = append(args, int64(c.Interval), int64(c.Tolerance), bit(c.Tokens), c.Name)
	}
	for i := range a.Slots {
		args = append(args, a.Slots[i].Max, a.Slots[i].Name)
	}
	args = append(args, addBase+"-"+strconv.FormatUint(addSeq.Add(1), 36))
	v, err := rlAdmitScript.Run(ctx, s.c, keys, args...).Slice()
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("tokenwise/redis: rate-limit admission: %w", err)
	}
	if len(v) != 4 {
		return ratelimit.Decision{}, fmt.Errorf("tokenwise/redis: rate-limit admission: unexpected reply %v", v)
	}
	ok, _ := v[0].(int64)
	wait, _ := v[1].(int64)
	limit, _ := v[2].(string)
	flag, _ := v[3].(int64)
	return ratelimit.Decision{OK: ok == 1, Wait: time.Duration(wait) * time.Microsecond, Limit: limit,
		Retry: flag != 0, Concurrency: flag == 2}, nil
}

// Settle implements ratelimit.Store.
func (s *RateLimitStore) Settle(ctx context.Context, st *ratelimit.Settlement) error {
	keys := make([]string, 0, len(st.Cells)+len(st.Slots)+2)
	args := make([]any, 0, 7+2*len(st.Cells))
	for i := range st.Cells {
		keys = append(keys, st.Cells[i].Key)
	}
	for i := range st.Slots {
		keys = append(keys, st.Slots[i].Key)
	}
	if st.Learned != "" {
		keys = append(keys, st.Learned)
	}
	args = append(args, len(st.Cells), len(st.Slots), st.Requests, st.Tokens, st.Lease, bit(st.Learned != ""))
	for i := range st.Cells {
		args = append(args, int64(st.Cells[i].Interval), bit(st.Cells[i].Tokens))
	}
	if len(keys) == 0 {
		return nil
	}
	// The settled tokens' key shares the first key's hash tag (one Redis
	// Cluster slot).
	keys = append(keys, keys[0]+":settled")
	args = append(args, addBase+"-"+strconv.FormatUint(addSeq.Add(1), 36))
	if err := rlSettleScript.Run(ctx, s.c, keys, args...).Err(); err != nil {
		return fmt.Errorf("tokenwise/redis: rate-limit settlement: %w", err)
	}
	return nil
}

// Learn implements ratelimit.Store.
func (s *RateLimitStore) Learn(ctx context.Context, key string, f ratelimit.Feedback) error {
	err := rlLearnScript.Run(ctx, s.c, []string{key}, int64(f.Pause), int64(f.ResetRequests), int64(f.IntervalRequests),
		int64(f.ResetTokens), int64(f.IntervalTokens)).Err()
	if err != nil {
		return fmt.Errorf("tokenwise/redis: rate-limit feedback: %w", err)
	}
	return nil
}
