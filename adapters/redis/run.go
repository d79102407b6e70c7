package redis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/middleware"
)

// RunStore is a middleware.RunStore on Redis: the runs opened with
// middleware.OpenSharedRun on it are shared by every replica that uses the
// same server and prefix. Each call of a run costs one script that counts
// it (so a run guard's call limit holds across replicas, with no call
// admitted twice under the same number), sets the run's start if it is the
// run's first call (the first replica to see the run sets it), and keeps
// the run for its idle time. The per-run budget of such a run lives in the
// budget store (BudgetStore) under the run's key, with the same idle time.
//
// Keys: "<prefix>:run:{<key>}", a hash of the run's call count ("n"), its
// start in Unix milliseconds ("s") and the sums of its finished calls
// ("t:<figure>", middleware.Totals.Fields: tokens, exact cost in
// pico-dollars, savings, per model; AddCall, Sums), expiring idle after
// the run's last call, where key is the run's key (the gateway's is
// "<team>/<run id>"), "<prefix>:run:{<key>}:added", the additions of the
// last two minutes, and "<prefix>:run:{<key>}:numbered", the last 1000
// counts (so that one go-redis retried is summed, or counted, once).
//
// A RunStore is safe for concurrent use.
type RunStore struct {
	c      goredis.UniversalClient
	prefix string
	idle   time.Duration
}

var _ middleware.RunStore = (*RunStore)(nil)

// DefaultRunIdle is a RunStore's idle time when NewRunStore is given none.
const DefaultRunIdle = time.Hour

// NewRunStore returns a RunStore on c whose keys start with prefix
// ("tokenwise" when empty) and expire idle after a run's last call
// (DefaultRunIdle when idle <= 0; at least a millisecond). The caller owns
// c.
func NewRunStore(c goredis.UniversalClient, prefix string, idle time.Duration) *RunStore {
	if prefix == "" {
		prefix = "tokenwise"
	}
	if idle <= 0 {
		idle = DefaultRunIdle
	}
	return &RunStore{c: c, prefix: prefix, idle: max(idle, time.Millisecond)}
}

// Key returns the Redis key of the run named key.
func (s *RunStore) Key(key string) string { return s.prefix + ":run:{" + key + "}" }

// Idle returns how long a run's keys live after its last call.
func (s *RunStore) Idle() time.Duration { return s.idle }

// nextScript counts a call of the run KEYS[1]: ARGV now_ms, idle_ms, the
// count's unique token; returns {seq, start_ms}. KEYS[2] keeps the tokens
// of the run's last numberedKept counts, scored by their numbers: a count
// whose token is there already is the same one run again (go-redis
// retries a command whose connection dropped, and the script may have
// run), which gets the number it got, not a second one.
var nextScript = goredis.NewScript(`
local s = redis.call('ZSCORE', KEYS[2], ARGV[3])
local start = redis.call('HGET', KEYS[1], 's')
if s and start then return {tonumber(s), tonumber(start)} end
redis.call('HSETNX', KEYS[1], 's', ARGV[1])
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[2], n, ARGV[3])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -` + strconv.Itoa(numberedKept+1) + `)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return {n, tonumber(redis.call('HGET', KEYS[1], 's'))}
`)

// numberedKept is how many of a run's last counts (Next) it remembers.
const numberedKept = 1000

// Next counts one call of the run named key and returns its number and the
// run's start.
func (s *RunStore) Next(ctx context.Context, key string, now time.Time) (int, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	v, err := nextScript.Run(ctx, s.c, []string{s.Key(key), s.Key(key) + ":numbered"}, now.UnixMilli(), s.idle.Milliseconds(),
		addBase+"-"+strconv.FormatUint(addSeq.Add(1), 36)).Int64Slice()
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("tokenwise/redis: run state: %w", err)
	}
	if len(v) != 2 || v[0] <= 0 {
		return 0, time.Time{}, fmt.Errorf("tokenwise/redis: run state: unexpected reply %v", v)
	}
	return int(v[0]), time.UnixMilli(v[1]), nil
}

var _ middleware.RunSums = (*RunStore)(nil)

// sumsPrefix starts the hash fields of a run's sums (middleware.Totals
// fields), apart from the call count and start that Next keeps.
const sumsPrefix = "t:"

// addScript adds a call's figures to the run KEYS[1]: ARGV idle_ms, the
// addition's unique token, added_ms, then field, value pairs. KEYS[2]
// keeps the tokens of the last added_ms: an addition whose token is there
// already is the same one run again (go-redis retries a command whose
// connection dropped, and the script may have run), not added twice.
var addScript = goredis.NewScript(`
local t = redis.call('TIME')
local nowms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local keep = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', nowms - keep)
if redis.call('ZADD', KEYS[2], 'NX', nowms, ARGV[2]) == 0 then return 0 end
redis.call('PEXPIRE', KEYS[2], math.min(keep, tonumber(ARGV[1])))
for i = 4, #ARGV - 1, 2 do
  redis.call('HINCRBY', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
`)

// addedFor is how long a run remembers the tokens of the calls it summed
// (AddCall): longer than go-redis's retries of a command.
const addedFor = 2 * time.Minute

// addBase makes the tokens of AddCall and Next unique across processes.
var addBase = func() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}()

var addSeq atomic.Uint64

// AddCall adds the figures of one finished call of the run named key to
// the run's sums, in the run's hash (fields "t:<figure>", one script:
// every figure or none), and keeps the run for its idle time.
func (s *RunStore) AddCall(ctx context.Context, key string, call middleware.Totals) error {
	fields := call.Fields()
	args := make([]any, 0, 3+2*len(fields))
	args = append(args, s.idle.Milliseconds(), addBase+"-"+strconv.FormatUint(addSeq.Add(1), 36), addedFor.Milliseconds())
	for _, f := range fields {
		args = append(args, sumsPrefix+f.Name, f.Value)
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if err := addScript.Run(ctx, s.c, []string{s.Key(key), s.Key(key) + ":added"}, args...).Err(); err != nil {
		return fmt.Errorf("tokenwise/redis: run sums: %w", err)
	}
	return nil
}

// Sums returns the sums of the run named key, its numbered calls and its
// start; ok is false when Redis has no such run.
func (s *RunStore) Sums(ctx context.Context, key string) (middleware.RunState, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	h, err := s.c.HGetAll(ctx, s.Key(key)).Result()
	if err != nil {
		return middleware.RunState{}, false, fmt.Errorf("tokenwise/redis: run sums: %w", err)
	}
	if len(h) == 0 {
		return middleware.RunState{}, false, nil
	}
	fields := make([]middleware.TotalsField, 0, len(h))
	for name, v := range h {
		fig, ok := strings.CutPrefix(name, sumsPrefix)
		if !ok {
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return middleware.RunState{}, false, fmt.Errorf("tokenwise/redis: run sums: field %q: %w", name, err)
		}
		fields = append(fields, middleware.TotalsField{Name: fig, Value: n})
	}
	st := middleware.RunState{Sums: middleware.TotalsFromFields(fields)}
	st.Calls, _ = strconv.Atoi(h["n"])
	if ms, err := strconv.ParseInt(h["s"], 10, 64); err == nil {
		st.Start = time.UnixMilli(ms)
	}
	return st, true, nil
}
