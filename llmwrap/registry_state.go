package llmwrap

import "sync"

// State keeps the stateful parts of chains (response cache stores, budget
// ledgers, circuit breakers) across rebuilds: every Build given the same
// State through WithState shares them, so rebuilding a chain for a
// reloaded policy keeps cache contents and money already spent. Layers
// look their state up by a key of their own (an unexported type holding
// the team or scope) and create it on first use.
//
// A State is safe for concurrent use.
type State struct {
	mu sync.Mutex
	m  map[any]any
}

// NewState returns an empty State.
func NewState() *State { return &State{m: map[any]any{}} }

// Get returns the value stored under key, creating it with init the first
// time. init runs under the State's lock: keep it quick.
func (s *State) Get(key any, init func() any) any {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.m[key]; ok {
		return v
	}
	v := init()
	s.m[key] = v
	return v
}

type stateKey struct{}

// WithState makes Build keep the state of its layers in s (see State).
// Without it every Build starts from empty stores.
func WithState(s *State) Option {
	return func(o *options) { o.set(stateKey{}, s) }
}

// shared returns the layer state stored under key in the build's State,
// or init() when the build has none. Layers with state use it so that a
// registry's reload keeps that state.
func (o *options) shared(key any, init func() any) any {
	s := o.stateOf()
	if s == nil {
		return init()
	}
	return s.Get(key, init)
}

func (o *options) stateOf() *State {
	s, _ := o.get(stateKey{}).(*State)
	return s
}
