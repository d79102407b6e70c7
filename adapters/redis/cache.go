package redis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/tokenwise/tokenwise/llmwrap/cache"
)

// CacheStore is a [cache.Store] in Redis, shared by every replica that uses
// the same server and prefix. Each entry is one string key,
// "<prefix>:cache:<key in hex>", holding the entry's binary form (canonical
// request included, so a hit is still checked against the request) with
// the entry's TTL as the key's expiry. The binary form carries when the
// entry was stored and the cache's TTL then (cache.Entry's Stored and
// TTL), so that a cache whose TTL a reload shortened does not serve an
// entry kept under the longer one once it is older than the shorter
// (cache.Entry.Outlived), though Redis still holds it. It is safe for
// concurrent use.
type CacheStore struct {
	client goredis.UniversalClient
	prefix string
	health health
}

var _ cache.Store = (*CacheStore)(nil)

// NewCacheStore returns a cache store on client. prefix namespaces the keys
// (empty: "tokenwise"). The caller owns the client.
func NewCacheStore(client goredis.UniversalClient, prefix string) *CacheStore {
	if prefix == "" {
		prefix = "tokenwise"
	}
	return &CacheStore{client: client, prefix: prefix + ":cache:"}
}

// Key returns the Redis key of a cache key.
func (s *CacheStore) Key(key uint64) string {
	b := make([]byte, 0, len(s.prefix)+16)
	b = append(b, s.prefix...)
	h := strconv.AppendUint(nil, key, 16)
	for range 16 - len(h) {
		b = append(b, '0')
	}
	return string(append(b, h...))
}

// Get returns the entry under key, nil on a miss. An entry Redis holds
// that does not decode (another version) is a miss. Each command is
// bounded by 500ms, and for a second after Redis did not answer the store
// fails at once with ErrUnreachable: a cache that cannot answer is a miss
// (or, with the cache's FailClosed, a failed call), never a slow call.
func (s *CacheStore) Get(ctx context.Context, key uint64) (*cache.Entry, error) {
	k := s.Key(key)
	if err := s.health.check(k); err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, cacheOpTimeout)
	defer cancel()
	b, err := s.client.Get(cctx, k).Bytes()
	if errors.Is(err, goredis.Nil) {
		return nil, nil
	}
	if err != nil {
		s.health.failed(ctx, err)
		return nil, fmt.Errorf("tokenwise/redis: cache get %s: %w", k, err)
	}
	e := &cache.Entry{}
	if e.UnmarshalBinary(b) != nil {
		return nil, nil
	}
	return e, nil
}

// Set stores e under key with Redis expiry ttl (0: none), bounded as Get.
func (s *CacheStore) Set(ctx context.Context, key uint64, e *cache.Entry, ttl time.Duration) error {
	b, err := e.MarshalBinary()
	if err != nil {
		return err
	}
	k := s.Key(key)
	if err := s.health.check(k); err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, cacheOpTimeout)
	defer cancel()
	if err := s.client.Set(cctx, k, b, ttl).Err(); err != nil {
		s.health.failed(ctx, err)
		return fmt.Errorf("tokenwise/redis: cache set %s: %w", k, err)
	}
	return nil
}
