package redis

import (
	"context"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
)

// BreakerStore is the circuit breakers' SharedStore on Redis
// (llmwrap/breaker with WithSharedStore, which llmwrap.WithBreakerStore
// sets): when a replica's breaker of a model opens, the end of its open
// period is one Redis string, which every call of every replica reads
// first, so that a breaker opened by one replica is open in all of them.
// A call costs one GET and takes no lock (replicas never wait for each
// other); an opening costs one script that keeps the later end.
//
// Keys: "<prefix>:breaker:open:<model>", holding the end of the open
// period in Unix milliseconds, expiring at that time.
//
// A BreakerStore is safe for concurrent use.
type BreakerStore struct {
	c      goredis.UniversalClient
	prefix string
	health health
}

var _ breaker.SharedStore = (*BreakerStore)(nil)

// opTimeout bounds each Redis command of a BreakerStore.
const opTimeout = 2 * time.Second

// NewBreakerStore returns a BreakerStore on c whose keys start with prefix
// ("tokenwise" when empty). The caller owns c.
func NewBreakerStore(c goredis.UniversalClient, prefix string) *BreakerStore {
	if prefix == "" {
		prefix = "tokenwise"
	}
	return &BreakerStore{c: c, prefix: prefix}
}

func (s *BreakerStore) key(model string) string { return s.prefix + ":breaker:open:" + model }

// openScript sets KEYS[1] to ARGV[1] (Unix milliseconds), expiring then,
// unless it already holds a later time.
var openScript = goredis.NewScript(`
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local untilMs = tonumber(ARGV[1])
if cur >= untilMs then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[1])
return 1
`)

// OpenUntil returns until when some replica opened model's breaker (the
// zero time when none did, or its period is over).
//
// It is read before every call, so it is bounded by 250ms, and for a
// second after Redis did not answer it fails at once (ErrUnreachable):
// a Redis that cannot answer leaves each replica to its own breaker
// without slowing its calls.
func (s *BreakerStore) OpenUntil(ctx context.Context, model string) (time.Time, error) {
	k := s.key(model)
	if err := s.health.check(k); err != nil {
		return time.Time{}, err
	}
	rctx, cancel := context.WithTimeout(ctx, breakerReadTimeout)
	defer cancel()
	ms, err := s.c.Get(rctx, k).Int64()
	if errors.Is(err, goredis.Nil) {
		return time.Time{}, nil
	}
	if err != nil {
		s.health.failed(ctx, err)
		return time.Time{}, fmt.Errorf("tokenwise/redis: breaker state %s: %w", k, err)
	}
	return time.UnixMilli(ms), nil
}

// Open records that model's breaker is open until until (rounded up to
// the millisecond); a later end already recorded stays.
func (s *BreakerStore) Open(ctx context.Context, model string, until time.Time) error {
	k := s.key(model)
	if err := s.health.check(k); err != nil {
		return err
	}
	octx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	ms := until.UnixMilli()
	if until.After(time.UnixMilli(ms)) {
		ms++
	}
	if err := openScript.Run(octx, s.c, []string{k}, ms).Err(); err != nil {
		s.health.failed(ctx, err)
		return fmt.Errorf("tokenwise/redis: breaker state %s: %w", k, err)
	}
	return nil
}
