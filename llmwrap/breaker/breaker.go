package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sony/gobreaker/v2"

	"github.com/tokenwise/tokenwise/middleware"
)

// ErrOpen: the model's circuit breaker refused the call.
var ErrOpen = errors.New("tokenwise/breaker: circuit open")

// OpenError is returned for a call refused by an open (or half-open and
// busy) breaker. It matches ErrOpen with errors.Is.
type OpenError struct {
	Model string
	State string // "open" or "half-open"
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("%v for model %q (%s)", ErrOpen, e.Model, e.State)
}

// Is matches ErrOpen.
func (e *OpenError) Is(target error) bool { return target == ErrOpen }

// Defaults of a zero Config field.
const (
	DefaultMinRequests = 10
	DefaultOpenFor     = 30 * time.Second
	DefaultWindow      = 60 * time.Second
	// buckets of the rolling window
	windowBuckets = 10
)

// ErrConfig: New was given a Config it cannot use (a negative field or a
// FailureRatio above 1).
var ErrConfig = errors.New("tokenwise/breaker: invalid config")

// Config configures every model's breaker. With ConsecutiveFailures and
// FailureRatio both zero there is no breaker (Middleware returns nil).
type Config struct {
	// ConsecutiveFailures trips after this many failures in a row. Zero: not used.
	ConsecutiveFailures int
	// FailureRatio in (0,1] trips when failures/requests in Window reach it.
	// Zero: not used.
	FailureRatio float64
	// MinRequests is the number of requests in Window before FailureRatio
	// applies. Zero: DefaultMinRequests.
	MinRequests int
	// OpenFor is how long a tripped breaker stays open. Zero: DefaultOpenFor.
	OpenFor time.Duration
	// HalfOpenProbes is the number of trial calls let through when the
	// open period is over; that many successes close the breaker, one
	// failure opens it again. Zero: 1.
	HalfOpenProbes int
	// Window is the rolling window of the closed state's counts (in ten
	// buckets). Zero: DefaultWindow.
	Window time.Duration
}

// Option configures code-side dependencies of the breakers (a shared
// state store).
type Option func(*options)

type options struct {
	shared gobreaker.SharedDataStore
}

// Set holds one breaker per model, created on first use. It is safe for
// concurrent use.
type Set struct {
	s        Config
	off      bool                      // trips on nothing: no layer
	shared   gobreaker.SharedDataStore // nil: state in this process only
	mu       sync.Mutex
	breakers map[string]*modelBreaker
}

// WithSharedStore keeps every model's breaker state in st (gobreaker's
// SharedDataStore, e.g. adapters/redis.NewBreakerStore), so that replicas
// sharing st share their breakers: one replica's open breaker refuses calls
// in all of them. Each call reads and writes the shared state twice, under
// the store's lock (before the call, to be admitted, and after, to count
// its outcome), never holding the lock during the call itself; calls in
// the half-open state are admitted until the first outcome arrives. When
// the store cannot answer, the call is let through (a breaker that fails
// open) rather than refused.
func WithSharedStore(st gobreaker.SharedDataStore) Option {
	return func(o *options) { o.shared = st }
}

type modelBreaker struct {
	cb *gobreaker.TwoStepCircuitBreaker[struct{}]

	// shared mode (WithSharedStore): dcb is created on first use under
	// mu, which also serialises this process's turns on the shared state.
	sharedMu sync.Mutex
	dcb      *gobreaker.DistributedCircuitBreaker[struct{}]

	mu         sync.Mutex
	pending    []middleware.BreakerChanged // transitions not yet emitted
	hasPending atomic.Bool                 // pending is not empty: flush's lock-free fast path
}

// New returns the breaker Set of cfg; when cfg trips on nothing its
// Middleware is nil. It fails (with an error matching ErrConfig) on a
// negative field or a FailureRatio above 1.
func New(cfg Config, opts ...Option) (*Set, error) {
	o := &options{}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	s := cfg
	if s.ConsecutiveFailures < 0 || s.FailureRatio < 0 || s.FailureRatio > 1 || s.MinRequests < 0 ||
		s.OpenFor < 0 || s.HalfOpenProbes < 0 || s.Window < 0 {
		return nil, fmt.Errorf("%w: %+v", ErrConfig, cfg)
	}
	if s.ConsecutiveFailures <= 0 && s.FailureRatio <= 0 {
		return &Set{off: true}, nil
	}
	if s.MinRequests <= 0 {
		s.MinRequests = DefaultMinRequests
	}
	if s.OpenFor <= 0 {
		s.OpenFor = DefaultOpenFor
	}
	if s.HalfOpenProbes <= 0 {
		s.HalfOpenProbes = 1
	}
	if s.Window <= 0 {
		s.Window = DefaultWindow
	}
	return &Set{s: s, shared: o.shared, breakers: map[string]*modelBreaker{}}, nil
}

// errExcluded is what done is told about a call that must not count.
var errExcluded = errors.New("tokenwise/breaker: not counted")

func (s *Set) get(model string) *modelBreaker {
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.breakers[model]; ok {
		return b
	}
	b := &modelBreaker{}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](s.settings(model, b))
	s.breakers[model] = b
	return b
}

// settings returns gobreaker's settings of model's breaker.
func (s *Set) settings(model string, b *modelBreaker) gobreaker.Settings {
	st := s.s
	bucket := st.Window / windowBuckets
	if bucket <= 0 {
		bucket = st.Window
	}
	shared := s.shared != nil
	return gobreaker.Settings{
		Name:         model,
		MaxRequests:  uint32(st.HalfOpenProbes),
		Interval:     st.Window,
		BucketPeriod: bucket,
		Timeout:      st.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if st.ConsecutiveFailures > 0 && c.ConsecutiveFailures >= uint32(st.ConsecutiveFailures) {
				return true
			}
			n := c.Requests
			if shared {
				// Shared mode counts each call's admission as an
				// excluded request: count the calls with an outcome.
				n = c.Requests - min(c.Requests, c.TotalExclusions)
			}
			return st.FailureRatio > 0 && n >= uint32(st.MinRequests) &&
				float64(c.TotalFailures) >= st.FailureRatio*float64(n)
		},
		// Runs under gobreaker's lock: only queue the event.
		OnStateChange: func(name string, from, to gobreaker.State) {
			b.mu.Lock()
			b.pending = append(b.pending, middleware.BreakerChanged{Model: name, From: from.String(), To: to.String()})
			b.hasPending.Store(true)
			b.mu.Unlock()
		},
		IsExcluded:   func(err error) bool { return err == errExcluded },
		IsSuccessful: func(err error) bool { return err == nil },
	}
}

// flush emits the queued state changes, outside every lock.
func (b *modelBreaker) flush(ctx context.Context) {
	// The flag is set under mu with every queued change and cleared only
	// here, under mu, with the queue: no change is skipped.
	if !b.hasPending.Load() {
		return
	}
	b.mu.Lock()
	ev := b.pending
	b.pending = nil
	b.hasPending.Store(false)
	b.mu.Unlock()
	for _, e := range ev {
		middleware.Emit(ctx, e)
	}
}

// State returns the state of model's breaker: "closed", "open" or
// "half-open" ("closed" for a model not seen yet).
func (s *Set) State(model string) string {
	if s == nil || s.off {
		return "closed"
	}
	b := s.get(model)
	if s.shared != nil {
		var state gobreaker.State
		ok := b.withShared(s, model, func(dcb *gobreaker.DistributedCircuitBreaker[struct{}]) {
			var err error
			if state, err = dcb.State(); err != nil {
				state = gobreaker.StateClosed
			}
		})
		if ok {
			return state.String()
		}
	}
	return b.cb.State().String()
}

// outerLock guards a model's shared state around gobreaker's own lock:
// gobreaker reads the shared state before it takes its lock, which would
// let a concurrent writer's update be overwritten.
func outerLock(model string) string { return "tokenwise:outer:" + model }

// withShared runs fn with model's distributed breaker, under this
// process's lock of the model and the store's outer lock. It reports false
// when the store could not be used (fn did not run).
func (b *modelBreaker) withShared(s *Set, model string, fn func(*gobreaker.DistributedCircuitBreaker[struct{}])) bool {
	b.sharedMu.Lock()
	defer b.sharedMu.Unlock()
	if err := s.shared.Lock(outerLock(model)); err != nil {
		return false
	}
	defer func() { _ = s.shared.Unlock(outerLock(model)) }()
	if b.dcb == nil {
		dcb, err := gobreaker.NewDistributedCircuitBreaker[struct{}](s.shared, s.settings(model, b))
		if err != nil {
			return false
		}
		b.dcb = dcb
	}
	fn(b.dcb)
	return true
}

// sharedHandle serves one call with WithSharedStore.
func (s *Set) sharedHandle(ctx context.Context, req *middleware.Request, next middleware.Handler) (*middleware.Response, error) {
	b := s.get(req.Model)
	var refused error
	b.withShared(s, req.Model, func(dcb *gobreaker.DistributedCircuitBreaker[struct{}]) {
		_, err := dcb.Execute(func() (struct{}, error) { return struct{}{}, errExcluded })
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			refused = err
		}
	})
	b.flush(ctx)
	if refused != nil {
		state := "open"
		if errors.Is(refused, gobreaker.ErrTooManyRequests) {
			state = "half-open"
		}
		return nil, &OpenError{Model: req.Model, State: state}
	}
	resp, err := next.Handle(ctx, req)
	outcome := judge(ctx, err)
	b.withShared(s, req.Model, func(dcb *gobreaker.DistributedCircuitBreaker[struct{}]) {
		_, _ = dcb.Execute(func() (struct{}, error) { return struct{}{}, outcome })
	})
	b.flush(ctx)
	return resp, err
}

// Middleware returns the middleware that guards each call with the breaker
// of its req.Model. A Set that trips on nothing (or a nil Set) returns
// nil (no layer).
func (s *Set) Middleware() middleware.Middleware {
	if s == nil || s.off {
		return nil
	}
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if s.shared != nil {
				return s.sharedHandle(ctx, req, next)
			}
			b := s.get(req.Model)
			done, err := b.cb.Allow()
			b.flush(ctx) // an open breaker may just have turned half-open
			if err != nil {
				state := "open"
				if errors.Is(err, gobreaker.ErrTooManyRequests) {
					state = "half-open"
				}
				return nil, &OpenError{Model: req.Model, State: state}
			}
			resp, err := next.Handle(ctx, req)
			done(judge(ctx, err))
			b.flush(ctx)
			return resp, err
		})
	}
}

// judge maps a call's outcome to what the breaker counts: nil (success),
// errExcluded (not counted) or the error (a failure).
func judge(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil, middleware.IsCancellation(err), errors.Is(err, middleware.ErrBudget):
		return errExcluded // the caller's context ended, or no provider fault
	case middleware.Transient(err), errors.Is(err, middleware.ErrMalformed):
		return err
	case errors.Is(err, middleware.ErrBadRequest), errors.Is(err, middleware.ErrAuth),
		errors.Is(err, middleware.ErrContextWindow), errors.Is(err, middleware.ErrContentFilter),
		errors.Is(err, middleware.ErrQuotaExceeded):
		return nil // the model answered; the request (or account) was at fault
	}
	return errExcluded // not a provider failure we can judge (another layer's refusal)
}
