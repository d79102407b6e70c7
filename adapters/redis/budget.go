package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

// BudgetStore is a budget.Store on Redis, shared by every replica that uses
// the same server and policy: one hash per ledger window holds the settled
// spend (per bucket for rolling windows: exact, as whole micro-dollars and
// the pico-dollars left over, rounded up once when read, as the
// MemoryStore does) and the reserved totals; a sorted
// set holds each reservation ("<id> <usd> <tokens>") scored by its expiry. Reserve
// and settle are single Lua scripts, so they are atomic across replicas.
//
// A reservation lives while its call is in flight: the budget layer extends
// it (Extend) every third of its TTL. One that expires anyway — its replica
// died, or lost Redis for a whole TTL — is CHARGED at its reserved amount by
// the next script that touches the ledger (using the Redis server's clock),
// not released: the provider may well have billed the call, and a budget
// must not spend that money twice. If the call settles after all, its
// settle corrects the charge to the actual amount. A reservation whose
// reply never came (the caller's deadline ended the wait, the connection
// failed) is a refusal to its caller, which never settles it: the store
// releases it in the background, should the script have run.
//
// Keys: "{<key>:<window>}:l", "{<key>:<window>}:z", "{<key>:<window>}:x"
// (reservations charged at expiry, until their settle) and
// "{<key>:<window>}:s" (the reservations settled in the last two minutes:
// a script go-redis retries after a dropped connection, which may have
// run, is not counted twice), where key is the
// namespaced ledger key the budget layer passes
// ("<prefix>:budget:<team>:<team>", or "<prefix>:budget::run:<run key>"
// for a shared run's ledger) and the braces keep the keys in one Redis
// Cluster slot. Ledger keys expire after their window (plus a day); a
// shared run's (window "all") after the run's idle time without a
// reservation (budget.Reservation.Idle).
//
// Redis should not evict these keys (maxmemory-policy noeviction, or a
// server of its own): a ledger whose spend Redis dropped has forgotten
// that spend. When Redis lost one of a ledger's keys but not the other,
// the scripts rebuild the reserved totals from the set of reservations,
// so that the calls in flight are still counted; a settle whose ledger
// Redis lost writes its spend again, with the ledger's TTL.
//
// A BudgetStore is safe for concurrent use.
type BudgetStore struct {
	c goredis.UniversalClient
}

var _ budget.Store = (*BudgetStore)(nil)

// NewBudgetStore returns a BudgetStore on c. The caller owns c.
func NewBudgetStore(c goredis.UniversalClient) *BudgetStore { return &BudgetStore{c: c} }

const luaCommon = `
local h, z, x, sd = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local t = redis.call('TIME')
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
-- int reads field f of the ledger hash, whose value v (false: absent, 0)
-- must be an integer as HINCRBY writes it: a value another program left
-- there ("abc", "1.5", "1e3") is an error naming the key and the field,
-- never a zero that would let the budget be overspent.
local function int(v, f)
  if not v then return 0 end
  if not string.match(v, '^%-?%d+$') then
    error({err = 'TOKENWISE_CORRUPT field ' .. f .. ' holds ' .. string.format('%q', string.sub(v, 1, 40)) .. ', not an integer'})
  end
  return tonumber(v)
end
-- charge adds u micro-dollars and p pico-dollars (0 <= p < 1e6) and tk
-- tokens to the spend (of bucket b of a rolling window): whole
-- micro-dollars in 'uu', the pico-dollars left over in 'up', kept in
-- [0, 1e6) by carrying into 'uu' (two integers: a Lua number, a double,
-- could not hold a total in pico-dollars exactly).
local function charge(b, nb, u, p, tk)
  local fu, fp, ft = 'uu', 'up', 'ut'
  if nb ~= 0 then fu, fp, ft = 'uu:' .. b, 'up:' .. b, 'ut:' .. b end
  if p ~= 0 and redis.call('HINCRBY', h, fp, p) >= 1000000 then
    redis.call('HINCRBY', h, fp, -1000000)
    u = u + 1
  end
  if u ~= 0 then redis.call('HINCRBY', h, fu, u) end
  if tk ~= 0 then redis.call('HINCRBY', h, ft, tk) end
end
-- ceil returns u micro-dollars and p pico-dollars (p >= 0) in
-- micro-dollars, rounded up.
local function ceil(u, p)
  local q = math.floor(p / 1000000)
  if p - q * 1000000 > 0 then q = q + 1 end
  return u + q
end
-- check fails (int) before any write when a field the script may write
-- (the reserved totals, the spend of bucket b) is not an integer: a
-- script that failed half way would have released a reservation without
-- charging its spend.
local function check(b, nb)
  local fu, fp, ft = 'uu', 'up', 'ut'
  if nb ~= 0 then fu, fp, ft = 'uu:' .. b, 'up:' .. b, 'ut:' .. b end
  local f = {'ru', 'rt', 'n', fu, fp, ft}
  local v = redis.call('HMGET', h, unpack(f))
  for i = 1, #f do int(v[i], f[i]) end
end
-- sync rebuilds the reserved totals and the count of reservations in
-- flight from the set of reservations when they disagree with it: Redis
-- lost one of the keys but not the other (maxmemory evicted the hash or
-- the set, a key expired early). Otherwise the reservations in flight
-- would no longer be counted against the limit and their settles would
-- leave the totals negative (or, the set lost, held for good).
local function sync()
  local n = int(redis.call('HGET', h, 'n'), 'n')
  if redis.call('ZCARD', z) == n then return end
  local ru, rt, c = 0, 0, 0
  for _, m in ipairs(redis.call('ZRANGE', z, 0, -1)) do
    local u, tk = string.match(m, ' (%-?%d+) (%-?%d+)$')
    ru, rt, c = ru + tonumber(u), rt + tonumber(tk), c + 1
  end
  redis.call('HSET', h, 'ru', ru, 'rt', rt, 'n', c)
  if redis.call('PTTL', h) == -1 then
    redis.call('PEXPIRE', h, math.max(redis.call('PTTL', z), 60000))
  end
end
-- expired reservations are charged at their reserved amount: their calls
-- may have been billed (see BudgetStore).
local function purge(cur, nb)
  local expired = redis.call('ZRANGEBYSCORE', z, '-inf', nowms)
  if #expired > 0 then check(cur, nb) end
  for _, m in ipairs(expired) do
    local u, tk = string.match(m, ' (%-?%d+) (%-?%d+)$')
    u, tk = tonumber(u), tonumber(tk)
    redis.call('HINCRBY', h, 'ru', 0 - u)
    redis.call('HINCRBY', h, 'rt', 0 - tk)
    redis.call('HINCRBY', h, 'n', -1)
    charge(cur, nb, u, 0, tk)
    redis.call('ZREM', z, m)
    redis.call('SADD', x, m)
  end
  if #expired > 0 then redis.call('PEXPIRE', x, math.max(redis.call('PTTL', h), 60000)) end
end
-- used returns the settled spend in the window: micro-dollars (the exact
-- sum rounded up once) and tokens.
local function used(cur, nb)
  if nb == 0 then
    local v = redis.call('HMGET', h, 'uu', 'up', 'ut')
    return ceil(int(v[1], 'uu'), int(v[2], 'up')), int(v[3], 'ut')
  end
  local fu, fp, ft = {}, {}, {}
  for b = cur - nb + 1, cur do
    fu[#fu + 1] = 'uu:' .. b
    fp[#fp + 1] = 'up:' .. b
    ft[#ft + 1] = 'ut:' .. b
  end
  local vu = redis.call('HMGET', h, unpack(fu))
  local vp = redis.call('HMGET', h, unpack(fp))
  local vt = redis.call('HMGET', h, unpack(ft))
  local su, sp, st = 0, 0, 0
  for i = 1, #vu do
    su = su + int(vu[i], fu[i])
    sp = sp + int(vp[i], fp[i])
    st = st + int(vt[i], ft[i])
  end
  return ceil(su, sp), st
end
local function state()
  local v = redis.call('HMGET', h, 'ru', 'rt', 'n')
  return int(v[1], 'ru'), int(v[2], 'rt'), int(v[3], 'n')
end
`

// reserve: ARGV id, need_u, need_t, lim_u, lim_t, ttl_ms, bucket, nbuckets, key_ttl_ms
// returns {ok, unit, used_u, used_t, res_u, res_t}
var reserveScript = goredis.NewScript(luaCommon + `
local id, nu, nt = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local lu, lt = tonumber(ARGV[4]), tonumber(ARGV[5])
local ttl, cur, nb, kttl = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
sync()
purge(cur, nb)
local uu, ut = used(cur, nb)
local ru, rt = state()
local member = id .. ' ' .. nu .. ' ' .. nt
-- A reservation already made is the same reservation run again (go-redis
-- retried the script after a connection dropped before its reply).
if redis.call('ZSCORE', z, member) then return {1, 0, uu, ut, ru, rt} end
if lu > 0 and uu + ru + nu > lu then return {0, 1, uu, ut, ru, rt} end
if lt > 0 and ut + rt + nt > lt then return {0, 2, uu, ut, ru, rt} end
redis.call('HINCRBY', h, 'ru', nu)
redis.call('HINCRBY', h, 'rt', nt)
redis.call('HINCRBY', h, 'n', 1)
redis.call('ZADD', z, nowms + ttl, member)
if nb > 0 then redis.call('HDEL', h, 'uu:' .. (cur - nb), 'up:' .. (cur - nb), 'ut:' .. (cur - nb)) end
redis.call('PEXPIRE', h, kttl)
redis.call('PEXPIRE', z, kttl)
return {1, 0, uu, ut, ru + nu, rt + nt}
`)

// settle: ARGV member ("<id> <need_u> <need_t>"), act_u, act_t, bucket, nbuckets, cur_bucket, act_p, key_ttl_ms, settled_ms
// (act_u micro-dollars and act_p pico-dollars, 0 <= act_p < 1e6: the exact cost)
// returns {used_u, used_t, res_u, res_t, n}
//
// A ledger hash the settle writes that has no expiry (Redis lost the keys
// the reservation made — a restart, an eviction — and the charge created
// it anew) is given key_ttl_ms, as a reservation gives it: otherwise it
// would never be deleted.
//
// A rolling window's settlement is charged to the reservation's bucket
// while it is in the window, else (a call that outlived the window) to the
// current bucket, as the MemoryStore does: the spend happened.
//
// A reservation that expired (and was charged at its reserved amount) before
// its call settled is corrected to the actual amount; a correction that
// lowers the charge is dropped when the reservation's bucket has left the
// window (the charge may have left it too: taken off the current bucket,
// it would take off newer spend).
var settleScript = goredis.NewScript(luaCommon + `
local id, au, at, ap = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[7])
local b, nb, cur = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
sync()
purge(cur, nb)
-- A settle already made is the same settle run again (go-redis retried
-- the script after a connection dropped before its reply): settled
-- members are kept for settledFor.
redis.call('ZREMRANGEBYSCORE', sd, '-inf', nowms - tonumber(ARGV[9]))
if redis.call('ZSCORE', sd, id) then
  local uu, ut = used(cur, nb)
  local ru, rt, n = state()
  return {uu, ut, ru, rt, n}
end
local late = nb > 0 and (b <= cur - nb or b > cur)
if late then b = cur end
check(b, nb)
local u, tk = string.match(id, ' (%-?%d+) (%-?%d+)$')
if redis.call('ZREM', z, id) == 1 then
  redis.call('HINCRBY', h, 'ru', 0 - tonumber(u))
  redis.call('HINCRBY', h, 'rt', 0 - tonumber(tk))
  redis.call('HINCRBY', h, 'n', -1)
elseif redis.call('SREM', x, id) == 1 then
  au, at = au - tonumber(u), at - tonumber(tk)
  if late and au < 0 then au, ap = 0, 0 end
  if late then at = math.max(at, 0) end
end
redis.call('ZADD', sd, nowms, id)
local keep, left = tonumber(ARGV[9]), redis.call('PTTL', h)
if left > 0 and left < keep then keep = left end
redis.call('PEXPIRE', sd, keep)
if au ~= 0 or at ~= 0 or ap ~= 0 then
  charge(b, nb, au, ap, at)
  if redis.call('PTTL', h) == -1 then redis.call('PEXPIRE', h, tonumber(ARGV[8])) end
end
local uu, ut = used(cur, nb)
local ru, rt, n = state()
return {uu, ut, ru, rt, n}
`)

// extend: ARGV member, ttl_ms; returns 1, or 0 when the reservation is gone.
// The ledger's keys are kept at least two TTLs more, so that a call that
// outlives its ledger's idle time (a shared run's) never loses them.
var extendScript = goredis.NewScript(luaCommon + `
local ttl = tonumber(ARGV[2])
local r = redis.call('ZADD', z, 'XX', 'CH', nowms + ttl, ARGV[1])
if r == 1 then
  for _, k in ipairs({h, z}) do
    local left = redis.call('PTTL', k)
    if left >= 0 and left < 2 * ttl then redis.call('PEXPIRE', k, 2 * ttl) end
  end
end
return r
`)

// balance: ARGV cur_bucket, nbuckets; returns {used_u, used_t, res_u, res_t, n}
var balanceScript = goredis.NewScript(luaCommon + `
sync()
purge(tonumber(ARGV[1]), tonumber(ARGV[2]))
local uu, ut = used(tonumber(ARGV[1]), tonumber(ARGV[2]))
local ru, rt, n = state()
return {uu, ut, ru, rt, n}
`)

// storeErr is the error of a ledger script: a *budget.StoreError naming
// Redis and the ledger's hash key (WRONGTYPE, a corrupted field, a
// connection that failed), so that an operator knows which key to look at.
func storeErr(op string, k []string, err error) error {
	return &budget.StoreError{Op: op, Err: fmt.Errorf("redis ledger %s: %w", k[0], err)}
}

func keys(key string, w budget.Window) []string {
	base := "{" + key + ":" + w.ID() + "}"
	return []string{base + ":l", base + ":z", base + ":x", base + ":s"}
}

// settledFor is how long a ledger remembers the reservations it settled
// (its ":s" key), so that a settle go-redis runs again (it retries a
// command whose connection dropped, and the script may have run) is not
// charged twice.
const settledFor = 2 * time.Minute

func buckets(w budget.Window, now time.Time) (cur int64, nb int) {
	if w.Rolling <= 0 {
		return 0, 0
	}
	cur, _ = w.Bucket(now)
	return cur, budget.RollingBuckets
}

// keyTTL keeps a ledger a day past its window (for reading), or two
// rolling windows, or idle after its last reservation when set (a shared
// run's ledger).
func keyTTL(w budget.Window, now time.Time, resTTL, idle time.Duration) time.Duration {
	d := w.Remains(now) + 24*time.Hour
	switch {
	case idle > 0:
		d = idle
	case w.Rolling > 0:
		d = 2 * w.Rolling
	}
	return max(d, 2*resTTL, time.Minute)
}

var seq atomic.Uint64

// Reserve runs the reserve script.
func (s *BudgetStore) Reserve(ctx context.Context, r budget.Reservation) (budget.Hold, error) {
	cur, nb := buckets(r.Window, r.Now)
	ttl := r.TTL
	if ttl <= 0 {
		ttl = budget.DefaultReservationTTL
	}
	id := r.ID
	if id == "" {
		id = strconv.FormatUint(seq.Add(1), 36) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	}
	k := keys(r.Key, r.Window)
	v, err := reserveScript.Run(ctx, s.c, k, id, r.Need.USDMicros, r.Need.Tokens, r.Limit.USDMicros, r.Limit.Tokens,
		ttl.Milliseconds(), cur, nb, keyTTL(r.Window, r.Now, ttl, r.Idle).Milliseconds()).Int64Slice()
	if err != nil {
		if _, replied := errors.AsType[goredis.Error](err); !replied {
			// No reply from Redis (the caller's deadline came first, the
			// connection failed): the script may have run all the same,
			// and the caller, refused, never settles what it reserved.
			s.release(ctx, k, id+" "+strconv.FormatInt(r.Need.USDMicros, 10)+" "+strconv.FormatInt(r.Need.Tokens, 10), cur, nb)
		}
		return nil, storeErr("reserve", k, err)
	}
	if len(v) != 6 {
		return nil, storeErr("reserve", k, fmt.Errorf("unexpected reply %v", v))
	}
	if v[0] == 0 {
		if v[1] == 1 {
			return nil, &budget.ExceededError{Unit: budget.UnitUSD, Limit: r.Limit.USDMicros, Used: v[2], Reserved: v[4], Need: r.Need.USDMicros}
		}
		return nil, &budget.ExceededError{Unit: budget.UnitTokens, Limit: r.Limit.Tokens, Used: v[3], Reserved: v[5], Need: r.Need.Tokens}
	}
	member := id + " " + strconv.FormatInt(r.Need.USDMicros, 10) + " " + strconv.FormatInt(r.Need.Tokens, 10)
	return &redisHold{s: s, keys: k, id: member, w: r.Window, bucket: cur, ttl: ttl, idle: r.Idle}, nil
}

// release takes back a reservation whose reply was lost, in the
// background (the caller's context may have ended; a Redis that does not
// answer must not hold the caller longer), within opTimeout: it settles
// it at nothing if it was made (a settle of a reservation that is not in
// the ledger changes nothing), rather than leave it held until its TTL
// and then charged at its worst case for a call that was never made.
func (s *BudgetStore) release(ctx context.Context, k []string, member string, bucket int64, nb int) {
	ctx = context.WithoutCancel(ctx)
	go func() {
		rctx, cancel := context.WithTimeout(ctx, opTimeout)
		defer cancel()
		_ = settleScript.Run(rctx, s.c, k, member, 0, 0, bucket, nb, bucket, 0, time.Minute.Milliseconds(), settledFor.Milliseconds()).Err()
	}()
}

// Extend moves the reservation's expiry to ttl from now (Redis's clock).
// It returns budget.ErrReservationExpired when the reservation already
// expired (and was charged) or was settled.
func (h *redisHold) Extend(ctx context.Context, ttl time.Duration) error {
	if h.done.Load() {
		return budget.ErrReservationExpired
	}
	n, err := extendScript.Run(ctx, h.s.c, h.keys, h.id, ttl.Milliseconds()).Int64()
	if err != nil {
		return storeErr("extend", h.keys, err)
	}
	if n == 0 {
		// ZADD XX CH reports 0 both for a missing member and an unchanged
		// score; a score moved into the future always changes.
		return budget.ErrReservationExpired
	}
	return nil
}

type redisHold struct {
	s      *BudgetStore
	keys   []string
	id     string // the reservation's member of the expiry set
	w      budget.Window
	bucket int64
	ttl    time.Duration // the reservation's TTL
	idle   time.Duration // the ledger's idle time (budget.Reservation.Idle)
	done   atomic.Bool
}

func toBalance(v []int64) budget.Balance {
	return budget.Balance{Used: budget.Amount{USDMicros: v[0], Tokens: v[1]},
		Reserved: budget.Amount{USDMicros: v[2], Tokens: v[3]}, InFlight: v[4]}
}

// Settle runs the settle script once.
func (h *redisHold) Settle(ctx context.Context, actual budget.Amount, now time.Time) (budget.Balance, error) {
	cur, nb := buckets(h.w, now)
	if h.done.Swap(true) {
		return h.s.balance(ctx, h.keys, cur, nb)
	}
	actual = budget.Amount{}.Add(actual) // (SubMicroPico carried into [0, 999,999], as the script needs it)
	v, err := settleScript.Run(ctx, h.s.c, h.keys, h.id, actual.USDMicros, actual.Tokens, h.bucket, nb, cur, actual.SubMicroPico,
		keyTTL(h.w, now, h.ttl, h.idle).Milliseconds(), settledFor.Milliseconds()).Int64Slice()
	if err != nil {
		return budget.Balance{}, storeErr("settle", h.keys, err)
	}
	if len(v) != 5 {
		return budget.Balance{}, storeErr("settle", h.keys, fmt.Errorf("unexpected reply %v", v))
	}
	return toBalance(v), nil
}

// Balance reads a ledger, purging expired reservations first.
func (s *BudgetStore) Balance(ctx context.Context, key string, w budget.Window, now time.Time) (budget.Balance, error) {
	cur, nb := buckets(w, now)
	return s.balance(ctx, keys(key, w), cur, nb)
}

func (s *BudgetStore) balance(ctx context.Context, k []string, cur int64, nb int) (budget.Balance, error) {
	v, err := balanceScript.Run(ctx, s.c, k, cur, nb).Int64Slice()
	if err != nil {
		return budget.Balance{}, storeErr("balance", k, err)
	}
	if len(v) != 5 {
		return budget.Balance{}, storeErr("balance", k, fmt.Errorf("unexpected reply %v", v))
	}
	return toBalance(v), nil
}

// Mark sets flag with SET NX and a TTL (none when ttl <= 0).
func (s *BudgetStore) Mark(ctx context.Context, flag string, ttl time.Duration, _ time.Time) (bool, error) {
	// The flag holds a token of this Mark: a run of the script that
	// go-redis resends after a dropped reply finds its own token and
	// answers as the first run did (a plain SETNX answered "already set",
	// and the warning it marked was never sent).
	token := addBase + ":m" + strconv.FormatUint(addSeq.Add(1), 10)
	n, err := markScript.Run(ctx, s.c, []string{flag}, token, max(ttl, 0).Milliseconds()).Int()
	if err != nil {
		return false, &budget.StoreError{Op: "mark", Err: fmt.Errorf("redis key %s: %w", flag, err)}
	}
	return n == 1, nil
}

// markScript sets KEYS[1] to ARGV[1] (with a TTL of ARGV[2] ms when
// positive) unless it is set; it answers 1 when it set it, or found it
// set to ARGV[1] (its own earlier run), else 0.
var markScript = goredis.NewScript(`
local v = redis.call('GET', KEYS[1])
if v == ARGV[1] then return 1 end
if v then return 0 end
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
else
  redis.call('SET', KEYS[1], ARGV[1])
end
return 1
`)
