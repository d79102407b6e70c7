// Package timeout bounds LLM calls: the whole call, the wait for the first
// streamed chunk, and the gap between two chunks. Every timeout error
// matches context.DeadlineExceeded, middleware.ErrTimeout and this
// package's sentinel for the limit that fired.
package timeout

import (
	"context"
	"errors"
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

// Limits configures the timeouts. A zero field is no limit; the zero value
// adds no layer.
type Limits struct {
	Call       time.Duration // one call, from send to the last chunk
	FirstToken time.Duration // streaming: until the first chunk
	Idle       time.Duration // streaming: between two chunks
}

// New returns the timeout middleware. It is safe for concurrent use and
// leaves no goroutine or timer behind when a call returns.
func New(l Limits) middleware.Middleware {
	if l.Call <= 0 && l.FirstToken <= 0 && l.Idle <= 0 {
		return nil
	}
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if l.Call > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeoutCause(ctx, l.Call, &middleware.DeadlineError{Cause: ErrCall, Limit: l.Call})
				defer cancel()
			}
			if req.Stream == nil || (l.FirstToken <= 0 && l.Idle <= 0) {
				resp, err := next.Handle(ctx, req)
				return resp, wrap(ctx, err, l)
			}
			sctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			w := &watchdog{cancel: cancel, idle: l.Idle}
			if l.FirstToken > 0 {
				w.arm(l.FirstToken, ErrFirstToken)
			} else {
				w.arm(l.Idle, ErrIdle)
			}
			defer w.stop()
			inner := req.Stream
			r := req.Clone()
			r.Stream = func(ctx context.Context, c middleware.Chunk) error {
				w.stop()
				err := inner(ctx, c)
				if l.Idle > 0 {
					w.arm(l.Idle, ErrIdle)
				}
				return err
			}
			resp, err := next.Handle(sctx, r)
			return resp, wrap(sctx, err, l)
		})
	}
}

func wrap(ctx context.Context, err error, l Limits) error {
	if err == nil {
		return nil
	}
	if de := middleware.DeadlineCause(ctx, 0, ErrCall, ErrFirstToken, ErrIdle); de != nil {
		return de
	}
	return err
}

// watchdog cancels a stream's context when its timer fires.
type watchdog struct {
	mu     sync.Mutex
	t      *time.Timer
	idle   time.Duration
	cancel context.CancelCauseFunc
}

func (w *watchdog) arm(d time.Duration, sentinel error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cause := &middleware.DeadlineError{Cause: sentinel, Limit: d}
	w.t = time.AfterFunc(d, func() { w.cancel(cause) })
}

func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.t != nil {
		w.t.Stop()
		w.t = nil
	}
}
