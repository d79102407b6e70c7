package retry

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// Defaults of a zero Config field.
const (
	DefaultBaseDelay = 200 * time.Millisecond
	DefaultMaxDelay  = 10 * time.Second
)

// ErrConfig: New was given a Config it cannot use (a negative field).
var ErrConfig = errors.New("tokenwise/retry: invalid config")

// Config configures the retries. MaxAttempts of zero or one turns retries
// off (Middleware returns nil).
type Config struct {
	// MaxAttempts counts attempts per call, the first included. Zero or
	// one: no retries.
	MaxAttempts int
	// BaseDelay is the first backoff's upper bound. Zero: DefaultBaseDelay.
	BaseDelay time.Duration
	// MaxDelay caps one backoff, and a Retry-After: a provider asking for a
	// longer wait is not retried. Zero: DefaultMaxDelay.
	MaxDelay time.Duration
	// MaxTotalWait caps the sum of the waits of one call. Zero: only the
	// call's deadline bounds it.
	MaxTotalWait time.Duration
}

// Option configures code-side aspects of the middleware.
type Option func(*options)

type options struct {
	jitter func() float64
}

// WithJitter replaces the source of jitter: f returns a number in [0, 1)
// and must be safe for concurrent use. Default: math/rand/v2.Float64.
// Tests use it to make backoffs deterministic.
func WithJitter(f func() float64) Option {
	return func(o *options) {
		if f != nil {
			o.jitter = f
		}
	}
}

type config struct {
	Config
	jitter func() float64
}

// Retry is the retry layer. It is safe for concurrent use.
type Retry struct {
	c *config
}

// New returns the retry layer for cfg. It fails (with an error matching
// ErrConfig) on a negative field.
func New(cfg Config, opts ...Option) (*Retry, error) {
	if cfg.MaxAttempts < 0 || cfg.BaseDelay < 0 || cfg.MaxDelay < 0 || cfg.MaxTotalWait < 0 {
		return nil, fmt.Errorf("%w: negative field in %+v", ErrConfig, cfg)
	}
	o := &options{jitter: rand.Float64}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	c := &config{Config: cfg, jitter: o.jitter}
	if c.BaseDelay <= 0 {
		c.BaseDelay = DefaultBaseDelay
	}
	if c.MaxDelay <= 0 {
		c.MaxDelay = DefaultMaxDelay
	}
	if c.BaseDelay > c.MaxDelay {
		c.BaseDelay = c.MaxDelay
	}
	return &Retry{c: c}, nil
}

// Middleware returns the retry middleware, or nil when the Config allows
// a single attempt. The middleware is safe for concurrent use.
func (r *Retry) Middleware() middleware.Middleware {
	if r.c.MaxAttempts <= 1 {
		return nil
	}
	c := r.c
	return func(next middleware.Handler) middleware.Handler {
		return &handler{c: c, next: next}
	}
}

type handler struct {
	c    *config
	next middleware.Handler
}

func (h *handler) Handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	r := req
	var started *atomic.Bool
	if req.Stream != nil && !middleware.StreamHeld(ctx) { // a held stream's chunks reach no caller
		started = new(atomic.Bool)
		inner := req.Stream
		r = req.Clone()
		r.Stream = func(ctx context.Context, c middleware.Chunk) error {
			started.Store(true)
			return inner(ctx, c)
		}
	}
	var waited time.Duration
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for attempt := 1; ; attempt++ {
		mark := middleware.MarkAttempt(ctx)
		resp, err := h.next.Handle(ctx, r)
		// A budget above that no Meter below tells of each attempt
		// keeps its record of them (middleware.AttemptNoter).
		middleware.NoteAttempt(ctx, mark, r, resp, err)
		if err == nil || attempt >= h.c.MaxAttempts || !middleware.Transient(err) || ctx.Err() != nil ||
			(started != nil && started.Load()) {
			return resp, err
		}
		wait, ok := h.wait(ctx, attempt, waited, err)
		if !ok {
			return resp, err
		}
		if wait > 0 {
			if timer == nil {
				timer = time.NewTimer(wait)
			} else {
				timer.Reset(wait)
			}
			select {
			case <-ctx.Done():
				// The call's context ended while waiting: report the
				// provider's failure, which says why we were waiting.
				return resp, err
			case <-timer.C:
			}
		}
		if ctx.Err() != nil {
			// The call's deadline passed with the wait (a timer and a
			// deadline at the same instant): no attempt starts after it.
			return resp, err
		}
		// Admitted when it is sent, after the wait: the rate limits
		// count the request then (a slot taken before the wait would let
		// it go out with the next second's).
		if aerr := middleware.AdmitRetry(ctx); aerr != nil {
			// The budget cannot hold what the failed attempts were
			// billed beside the next one's worst case, or the rate
			// limits refuse one request more: the provider's failure
			// stands.
			middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
				f.Notes = append(f.Notes, "retry: not retried: "+aerr.Error())
			})
			return resp, err
		}
		middleware.CallInfoFrom(ctx).Update(func(f *middleware.CallFacts) {
			f.Retries = append(f.Retries, middleware.Retry{Model: req.Model, Wait: wait, Err: err})
		})
		// Emitted as the retry is sent, once admitted: an observer
		// counts only retries that went out.
		if middleware.Observing(ctx) {
			middleware.Emit(ctx, middleware.Retrying{Model: req.Model, Attempt: attempt, Wait: wait, Err: err})
		}
		waited += wait
	}
}

// wait returns how long to wait before the next attempt, and false when
// the call should not be retried: the wait would outlast the deadline, the
// total wait cap or MaxDelay (for a provider's Retry-After).
func (h *handler) wait(ctx context.Context, attempt int, waited time.Duration, err error) (time.Duration, bool) {
	var d time.Duration
	if ra, ok := middleware.RetryAfter(err); ok {
		if ra > h.c.MaxDelay {
			return 0, false
		}
		d = ra
	} else {
		d = Backoff(h.c.BaseDelay, h.c.MaxDelay, attempt, h.c.jitter())
	}
	if h.c.MaxTotalWait > 0 && waited+d > h.c.MaxTotalWait {
		return 0, false
	}
	if dl, ok := ctx.Deadline(); ok && !time.Now().Add(d).Before(dl) {
		return 0, false
	}
	return d, true
}

// Backoff returns the full-jitter backoff before retry number attempt
// (1-based): u · min(max, base·2^(attempt-1)), with u in [0, 1).
func Backoff(base, max time.Duration, attempt int, u float64) time.Duration {
	ceil := base
	for i := 1; i < attempt && ceil < max; i++ {
		ceil *= 2
	}
	if ceil > max {
		ceil = max
	}
	return time.Duration(u * float64(ceil))
}
