// Package guard is a layer of the chain, the run guard: it caps the LLM
// calls (agent iterations) of a run and bounds every call of the run by the
// run's deadline.
package guard

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

var (
	// ErrMaxCalls: the run already made its maximum number of LLM calls.
	ErrMaxCalls = errors.New("tokenwise/guard: run reached its call limit")
	// ErrRunDeadline: the run's deadline ran out. Errors carrying it also
	// match context.DeadlineExceeded and middleware.ErrTimeout.
	ErrRunDeadline = errors.New("tokenwise/guard: run deadline exceeded")
)

// LimitError reports a call refused by the run guard. It matches
// ErrMaxCalls with errors.Is.
type LimitError struct {
	Run   string
	Limit int // the run's call limit
	Call  int // the number of the refused call
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("%v: run %q is limited to %d calls, call %d refused", ErrMaxCalls, e.Run, e.Limit, e.Call)
}

// Is matches ErrMaxCalls.
func (e *LimitError) Is(target error) bool { return target == ErrMaxCalls }

// Limits configures the guard. The zero value guards nothing.
type Limits struct {
	MaxCalls   int           // LLM calls per run; 0 = unlimited
	RunTimeout time.Duration // deadline of a run, from middleware.Run.Started; 0 = none
}

// New returns the run guard middleware. Calls outside a run
// (middleware.StartRun) are not limited. Place it inside the instrument
// layer (llmwrap/instrument), which numbers the calls; without it, the guard
// numbers them itself. The middleware is safe for concurrent use.
func New(l Limits) middleware.Middleware {
	if l.MaxCalls <= 0 && l.RunTimeout <= 0 {
		return nil
	}
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			run := middleware.RunFrom(ctx)
			if run == nil {
				return next.Handle(ctx, req)
			}
			if l.MaxCalls > 0 {
				seq := middleware.CallInfoFrom(ctx).Seq()
				if seq == 0 {
					seq = run.NextSeq()
				}
				if seq > l.MaxCalls {
					return nil, &LimitError{Run: run.ID(), Limit: l.MaxCalls, Call: seq}
				}
			}
			if l.RunTimeout <= 0 {
				return next.Handle(ctx, req)
			}
			cause := &middleware.DeadlineError{Cause: ErrRunDeadline, Limit: l.RunTimeout}
			if ctx.Err() == nil && !time.Now().Before(run.Started().Add(l.RunTimeout)) {
				return nil, cause
			}
			ctx, cancel := context.WithDeadlineCause(ctx, run.Started().Add(l.RunTimeout), cause)
			defer cancel()
			resp, err := next.Handle(ctx, req)
			if err != nil {
				if de := middleware.DeadlineCause(ctx, l.RunTimeout, ErrRunDeadline); de != nil {
					return resp, de
				}
			}
			return resp, err
		})
	}
}
