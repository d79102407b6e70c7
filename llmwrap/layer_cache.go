package llmwrap

import (
	"errors"

	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// WithCacheStore sets the store of the response cache (for example a Redis
// store shared by replicas, adapters/redis.NewCacheStore). The caller owns
// it (and closes it). Default: an in-memory store bounded by the policy's
// cache.max_entries and cache.max_bytes; a policy whose cache.store is
// redis requires this option.
func WithCacheStore(s cache.Store) Option {
	return func(o *options) { o.cacheStore = s }
}

// cacheLayer builds the response cache from p.Cache (off unless enabled).
func cacheLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	c := p.Cache
	if !c.Enabled {
		return nil, nil
	}
	store := o.cacheStore
	if store == nil {
		if c.Store == policies.StoreRedis {
			return nil, errors.New("tokenwise/llmwrap: cache.store is redis: pass the store with llmwrap.WithCacheStore")
		}
		// No sweeper: Build returns no Close; expired entries are never
		// served and are pushed out by the LRU bounds. With a State (see
		// WithState) every Build shares one store, created by the first
		// with its policy's bounds, so a rebuild keeps the cache contents.
		store = o.state.memoryCache(func() cache.Store {
			return cache.NewMemory(cache.MemoryOptions{MaxEntries: c.MaxEntries, MaxBytes: int64(c.MaxBytes)})
		})
	}
	if m, ok := store.(*cache.Memory); ok {
		// A store kept across reloads (WithState, a Registry): a policy
		// that shortened the TTL holds the answers kept before it to it.
		m.HoldTo(c.TTL.Duration())
	}
	cc, err := cache.New(cacheConfig(p, o), cache.WithStore(store), cache.WithPricer(o.catalog))
	if err != nil {
		return nil, err
	}
	return cc.Middleware(), nil
}
