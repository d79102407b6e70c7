package timeout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

var (
	// ErrCall: the call took longer than its limit.
	ErrCall = errors.New("tokenwise/timeout: call timed out")
	// ErrFirstToken: a stream produced no chunk within its limit.
	ErrFirstToken = errors.New("tokenwise/timeout: no first token in time")
	// ErrIdle: a stream went quiet for longer than its limit.
	ErrIdle = errors.New("tokenwise/timeout: stream idle too long")
)

// ErrConfig: New was given a Config it cannot use (a negative limit).
var ErrConfig = errors.New("tokenwise/timeout: invalid config")

// Config configures the timeouts. A zero field is no limit; the zero
// Config adds no layer (Middleware returns nil).
type Config struct {
	// Call bounds one call, from send to the last chunk. Zero: no limit.
	Call time.Duration
	// FirstToken bounds, for a streaming call, the wait for the first
	// chunk. Zero: no limit.
	FirstToken time.Duration
	// Idle bounds, for a streaming call, the gap between two chunks. It
	// starts with the first chunk: the wait for the first one is
	// FirstToken's. Zero: no limit.
	Idle time.Duration
}

// Option configures code-side dependencies of the layer. The timeout layer
// has none yet; the type keeps its constructor the shape of every layer's.
type Option func(*options)

type options struct{}

// Timeout is the timeout layer. It is safe for concurrent use.
type Timeout struct {
	cfg Config
}

// New returns the timeout layer for cfg. It fails (with an error matching
// ErrConfig) on a negative limit.
func New(cfg Config, opts ...Option) (*Timeout, error) {
	o := &options{}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	if cfg.Call < 0 || cfg.FirstToken < 0 || cfg.Idle < 0 {
		return nil, fmt.Errorf("%w: negative limit (call %v, first token %v, idle %v)", ErrConfig, cfg.Call, cfg.FirstToken, cfg.Idle)
	}
	return &Timeout{cfg: cfg}, nil
}

// Middleware returns the timeout middleware, or nil when the Config sets
// no limit. The middleware is safe for concurrent use and leaves no
// goroutine or timer behind when a call returns.
//
// The idle and first-token clocks stop while the caller's stream function
// runs: a slow consumer is not a stalled provider.
func (t *Timeout) Middleware() middleware.Middleware {
	l := t.cfg
	if l.Call <= 0 && l.FirstToken <= 0 && l.Idle <= 0 {
		return nil
	}
	// DeadlineErrors are immutable: one per limit serves every call.
	callCause := &middleware.DeadlineError{Cause: ErrCall, Limit: l.Call}
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if l.Call > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeoutCause(ctx, l.Call, callCause)
				defer cancel()
			}
			if req.Stream == nil || (l.FirstToken <= 0 && l.Idle <= 0) {
				resp, err := next.Handle(ctx, req)
				return resp, wrap(ctx, err)
			}
			sctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			w := &watchdog{cancel: cancel}
			defer w.stop()
			if l.FirstToken > 0 {
				w.arm(l.FirstToken, ErrFirstToken)
			}
			inner := req.Stream
			r := req.Clone()
			r.Stream = func(ctx context.Context, c middleware.Chunk) error {
				w.stop()
				err := inner(ctx, c)
				if l.Idle > 0 && err == nil {
					w.arm(l.Idle, ErrIdle)
				}
				return err
			}
			resp, err := next.Handle(sctx, r)
			return resp, wrap(sctx, err)
		})
	}
}

// wrap reports which of this package's deadlines ended the call, if one did.
func wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if de := middleware.DeadlineCause(ctx, 0, ErrCall, ErrFirstToken, ErrIdle); de != nil {
		return de
	}
	return err
}

// watchdog cancels a stream's context when its timer fires. One timer is
// reused for the whole stream; stop and arm may race with the timer firing,
// in which case the stream is cancelled (the limit did run out).
type watchdog struct {
	mu     sync.Mutex
	t      *time.Timer
	cause  error
	cancel context.CancelCauseFunc
}

func (w *watchdog) arm(d time.Duration, sentinel error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.cause = &middleware.DeadlineError{Cause: sentinel, Limit: d}
	if w.t == nil {
		w.t = time.AfterFunc(d, w.fire)
		return
	}
	w.t.Reset(d)
}

func (w *watchdog) fire() {
	w.mu.Lock()
	cause := w.cause
	w.mu.Unlock()
	w.cancel(cause)
}

// stop pauses the timer; arm restarts it.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.t != nil {
		w.t.Stop()
	}
}
