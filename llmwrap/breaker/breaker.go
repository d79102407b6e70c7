package breaker

import (
	"context"
	"errors"
	"fmt"
	"sync"
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

// Option configures code-side dependencies of the breakers. There are
// none yet; the type keeps the constructor the shape of every layer's.
type Option func(*options)

type options struct{}

// Set holds one breaker per model, created on first use. It is safe for
// concurrent use.
type Set struct {
	s        Config
	off      bool // trips on nothing: no layer
	mu       sync.Mutex
	breakers map[string]*modelBreaker
}

type modelBreaker struct {
	cb *gobreaker.TwoStepCircuitBreaker[struct{}]

	mu      sync.Mutex
	pending []middleware.BreakerChanged // transitions not yet emitted
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
	return &Set{s: s, breakers: map[string]*modelBreaker{}}, nil
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
	st := s.s
	bucket := st.Window / windowBuckets
	if bucket <= 0 {
		bucket = st.Window
	}
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:         model,
		MaxRequests:  uint32(st.HalfOpenProbes),
		Interval:     st.Window,
		BucketPeriod: bucket,
		Timeout:      st.OpenFor,
		ReadyToTrip: func(c gobreaker.Counts) bool {
			if st.ConsecutiveFailures > 0 && c.ConsecutiveFailures >= uint32(st.ConsecutiveFailures) {
				return true
			}
			return st.FailureRatio > 0 && c.Requests >= uint32(st.MinRequests) &&
				float64(c.TotalFailures) >= st.FailureRatio*float64(c.Requests)
		},
		// Runs under gobreaker's lock: only queue the event.
		OnStateChange: func(name string, from, to gobreaker.State) {
			b.mu.Lock()
			b.pending = append(b.pending, middleware.BreakerChanged{Model: name, From: from.String(), To: to.String()})
			b.mu.Unlock()
		},
		IsExcluded:   func(err error) bool { return err == errExcluded },
		IsSuccessful: func(err error) bool { return err == nil },
	})
	s.breakers[model] = b
	return b
}

// flush emits the queued state changes, outside every lock.
func (b *modelBreaker) flush(ctx context.Context) {
	b.mu.Lock()
	ev := b.pending
	b.pending = nil
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
	return s.get(model).cb.State().String()
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
