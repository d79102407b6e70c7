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
	// FailureRatio in (0,1] trips when failures/requests in Window reach it,
	// of the requests that count (see the package doc: a cancelled call
	// is none). Zero: not used.
	FailureRatio float64
	// MinRequests is the number of requests that count in Window before
	// FailureRatio applies. Zero: DefaultMinRequests.
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
	shared SharedStore
}

// SharedStore is where replicas share their breakers' open state (e.g.
// adapters/redis.NewBreakerStore). Implementations must be safe for
// concurrent use.
type SharedStore interface {
	// OpenUntil returns until when some replica opened model's breaker;
	// the zero time (or a past one) when none did.
	OpenUntil(ctx context.Context, model string) (time.Time, error)
	// Open records that model's breaker is open until until; a later
	// until already recorded stays.
	Open(ctx context.Context, model string, until time.Time) error
}

// Set holds one breaker per model, created on first use. It is safe for
// concurrent use.
type Set struct {
	s      Config
	off    bool        // trips on nothing: no layer
	shared SharedStore // nil: state in this process only
	// breakers maps a model to its *modelBreaker. A call reads it
	// without a lock (one lookup per call, from every goroutine); mu
	// serialises the creation of a model's breaker only.
	breakers sync.Map
	mu       sync.Mutex
}

// WithSharedStore shares the breakers' open state through st, so that a
// breaker one replica opens refuses calls in every replica that shares st
// for its open period. Each replica counts the outcomes of its own calls
// (its breaker trips on the failures it sees, by the Config's rules);
// when one trips it records in st until when it is open, and every call
// in every replica first reads that (one read of st, taking no lock, so
// that replicas never wait for each other). After the open period each
// replica admits calls by its own breaker: the one that tripped sends its
// half-open probes. When st cannot answer, a call is judged by this
// replica's breaker alone (the shared state fails open).
func WithSharedStore(st SharedStore) Option {
	return func(o *options) { o.shared = st }
}

type modelBreaker struct {
	cb *gobreaker.TwoStepCircuitBreaker[struct{}]

	// quiet is the breaker's fast path (see finish): with a trip rule of
	// consecutive failures only over a rolling window, a success or an
	// uncounted call that ends while the breaker is closed and its window
	// holds no failure changes nothing the breaker decides by (its
	// consecutive and total failures stay 0), so it is not reported to
	// gobreaker: one lock and one clock read less per call.
	quiet bool
	// dirty is set when the breaker's window may hold a failure or the
	// breaker may not be closed: before every failure is reported (under
	// fmu) and at every state change. It is cleared, under fmu, only
	// when the breaker is closed and gobreaker counts no failure.
	dirty  atomic.Bool
	closed atomic.Bool // the state is closed (set at every state change)
	fmu    sync.Mutex

	// openedAt is set (unix nanoseconds) when the breaker turns open and
	// cleared when that is recorded in the shared store.
	openedAt atomic.Int64

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
	return &Set{s: s, shared: o.shared}, nil
}

// errExcluded is what done is told about a call that must not count.
var errExcluded = errors.New("tokenwise/breaker: not counted")

// get returns model's breaker, creating it on first use: one lock-free
// lookup for a model seen before, so that concurrent calls do not queue
// on the Set.
func (s *Set) get(model string) *modelBreaker {
	if b, ok := s.breakers.Load(model); ok {
		return b.(*modelBreaker)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	// Another call may have created it since the lookup: there is one
	// breaker per model.
	if b, ok := s.breakers.Load(model); ok {
		return b.(*modelBreaker)
	}
	b := s.newBreaker(model)
	s.breakers.Store(model, b)
	return b
}

// newBreaker returns a new breaker of model, closed.
func (s *Set) newBreaker(model string) *modelBreaker {
	b := &modelBreaker{quiet: s.s.FailureRatio <= 0 && s.s.Window/windowBuckets > 0}
	b.closed.Store(true)
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](s.settings(model, b))
	return b
}

// finish reports a call's verdict (judge's) to the breaker through done,
// the func its admission returned. A success or an uncounted call of a
// quiet breaker (see modelBreaker) that is clean is not reported: gobreaker
// would only count it in figures its trip rule does not read (requests,
// successes, exclusions; consecutive successes, which count in the
// half-open state only, and a breaker that turns half-open is dirty).
func (b *modelBreaker) finish(done func(error), verdict error) {
	if verdict != nil && verdict != errExcluded {
		if !b.quiet {
			done(verdict)
			return
		}
		// A failure marks the breaker dirty before gobreaker counts it,
		// under fmu, so that a clean-up never clears dirty over a
		// failure being counted.
		b.fmu.Lock()
		b.dirty.Store(true)
		done(verdict)
		b.fmu.Unlock()
		return
	}
	if b.quiet && !b.dirty.Load() {
		return
	}
	done(verdict)
	if b.quiet && verdict == nil {
		b.clean()
	}
}

// clean clears dirty when the breaker is closed and its window holds no
// failure. Under fmu the state cannot leave closed (only a failure opens
// a closed breaker) nor a failure be counted.
func (b *modelBreaker) clean() {
	b.fmu.Lock()
	defer b.fmu.Unlock()
	if !b.closed.Load() {
		return
	}
	// Counts reads gobreaker's counts as its last call left them (it
	// does not roll the window): a failure that since left the window
	// keeps the breaker dirty until a later call's done rolls it out.
	if c := b.cb.Counts(); c.TotalFailures == 0 && c.ConsecutiveFailures == 0 {
		b.dirty.Store(false)
	}
}

// settings returns gobreaker's settings of model's breaker.
func (s *Set) settings(model string, b *modelBreaker) gobreaker.Settings {
	st := s.s
	bucket := st.Window / windowBuckets
	if bucket <= 0 {
		bucket = st.Window
	}
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
			// The calls that count: an excluded one (a cancellation, a
			// hedge that lost, a panic) is in Requests too.
			n := c.Requests - min(c.TotalExclusions, c.Requests)
			return st.FailureRatio > 0 && n >= uint32(st.MinRequests) &&
				float64(c.TotalFailures) >= st.FailureRatio*float64(n)
		},
		// Runs under gobreaker's lock: only queue the event.
		OnStateChange: func(name string, from, to gobreaker.State) {
			b.dirty.Store(true)
			b.closed.Store(to == gobreaker.StateClosed)
			if to == gobreaker.StateOpen {
				b.openedAt.Store(time.Now().UnixNano())
			}
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
// "half-open" ("closed" for a model not seen yet); "open" too while
// another replica's breaker of the model is open (WithSharedStore).
func (s *Set) State(model string) string {
	if s == nil || s.off {
		return "closed"
	}
	if s.shared != nil {
		if until, err := s.shared.OpenUntil(context.Background(), model); err == nil && time.Now().Before(until) {
			return gobreaker.StateOpen.String()
		}
	}
	return s.get(model).cb.State().String()
}

// publish records in the shared store that b's breaker turned open, if it
// did since the last publish.
func (s *Set) publish(ctx context.Context, model string, b *modelBreaker) {
	at := b.openedAt.Swap(0)
	if at == 0 || s.shared == nil {
		return
	}
	// The call's context may be ending with the call: the record must
	// still be made.
	_ = s.shared.Open(context.WithoutCancel(ctx), model, time.Unix(0, at).Add(s.s.OpenFor))
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
				// Another replica's open breaker; a store that cannot
				// answer leaves the call to this replica's breaker.
				if until, err := s.shared.OpenUntil(ctx, req.Model); err == nil && time.Now().Before(until) {
					return nil, &OpenError{Model: req.Model, State: "open"}
				}
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
			judged := false
			defer func() {
				if !judged {
					// A panic below (the provider's code, the caller's
					// stream func): the call is not counted, and its
					// admission is given back — a half-open breaker's
					// probe never judged would keep its slot for good.
					b.finish(done, errExcluded)
					b.flush(ctx)
				}
			}()
			resp, err := next.Handle(ctx, req)
			judged = true
			b.finish(done, judge(ctx, err))
			s.publish(ctx, req.Model, b)
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
