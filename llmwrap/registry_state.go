package llmwrap

import (
	"sync"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/tokens"
)

// State keeps the stateful parts of chains (response cache stores, budget
// ledgers, rate limit slots, the local shares spent while a shared store
// is down, circuit breakers, the token estimator's memo)
// across rebuilds: every Build given the same State through WithState
// shares them, so rebuilding a chain for a reloaded policy keeps cache
// contents and money already spent. Each part is created on first use.
//
// A State is safe for concurrent use.
type State struct {
	mu        sync.Mutex
	estimator *tokens.Estimator
	cache     cache.Store            // the memory store of Builds without WithCacheStore
	caches    map[string]cache.Store // a Registry's memory stores, by cache scope
	budgetMem *budget.MemoryStore
	rateMem   *ratelimit.MemoryStore
	// The local shares of budgets and rate limits with on_unavailable:
	// local, spent while their shared store is down: a rebuild must not
	// give them back.
	budgetLocal *budget.MemoryStore
	rateLocal   *ratelimit.MemoryStore
	breakers    map[breaker.Config]*breaker.Set
}

// NewState returns an empty State.
func NewState() *State { return &State{} }

// WithState makes Build keep the state of its layers in s (see State).
// Without it every Build starts from empty stores.
func WithState(s *State) Option {
	return func(o *options) { o.state = s }
}

// A nil *State is a build without one: every method then creates a fresh
// part that no other build shares.

func (s *State) sharedEstimator() *tokens.Estimator {
	if s == nil {
		return tokens.New()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.estimator == nil {
		s.estimator = tokens.New()
	}
	return s.estimator
}

// memoryCache returns the in-memory cache store of Builds without
// WithCacheStore, created by the first with init.
func (s *State) memoryCache(init func() cache.Store) cache.Store {
	if s == nil {
		return init()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = init()
	}
	return s.cache
}

// scopeCache returns a Registry's in-memory cache store of a cache scope
// ("global" or "team:<name>"), created by the first with init.
func (s *State) scopeCache(scope string, init func() cache.Store) cache.Store {
	if s == nil {
		return init()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.caches[scope]
	if !ok {
		if s.caches == nil {
			s.caches = map[string]cache.Store{}
		}
		c = init()
		s.caches[scope] = c
	}
	return c
}

func (s *State) budgetMemory() *budget.MemoryStore {
	if s == nil {
		return budget.NewMemoryStore()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.budgetMem == nil {
		s.budgetMem = budget.NewMemoryStore()
	}
	return s.budgetMem
}

// budgetLocalMemory returns the ledger of budgets' local shares
// (budget.WithLocalStore).
func (s *State) budgetLocalMemory() *budget.MemoryStore {
	if s == nil {
		return budget.NewMemoryStore()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.budgetLocal == nil {
		s.budgetLocal = budget.NewMemoryStore()
	}
	return s.budgetLocal
}

// rateLimitLocalMemory returns the state of rate limits' local shares
// (ratelimit.WithLocalStore).
func (s *State) rateLimitLocalMemory() *ratelimit.MemoryStore {
	if s == nil {
		return ratelimit.NewMemoryStore()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rateLocal == nil {
		s.rateLocal = ratelimit.NewMemoryStore()
	}
	return s.rateLocal
}

func (s *State) rateLimitMemory() *ratelimit.MemoryStore {
	if s == nil {
		return ratelimit.NewMemoryStore()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rateMem == nil {
		s.rateMem = ratelimit.NewMemoryStore()
	}
	return s.rateMem
}

// breakerSet returns the breakers of cfg: builds with the same breaker
// config share them, so a reload that leaves the config alone keeps the
// breakers' state.
func (s *State) breakerSet(cfg breaker.Config, opts ...breaker.Option) (*breaker.Set, error) {
	if s == nil {
		return breaker.New(cfg, opts...)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if set, ok := s.breakers[cfg]; ok {
		return set, nil
	}
	set, err := breaker.New(cfg, opts...)
	if err != nil {
		return nil, err
	}
	if s.breakers == nil {
		s.breakers = map[breaker.Config]*breaker.Set{}
	}
	s.breakers[cfg] = set
	return set, nil
}
