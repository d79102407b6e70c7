package timeout

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// ExtendableTotalMiddleware is TotalMiddleware for a call whose attempts
// may be sent to a model allowed a longer total (a router's or a
// fallback's o3 under a gpt-4o call): an attempt of
// [Timeout.ExtendingMiddleware] extends the call's total to its own
// model's, counted from the call's start, when that is longer; the total
// is never shortened. longest is the longest total any model has: a
// total at least that long can never be extended, and is TotalMiddleware's.
func (t *Timeout) ExtendableTotalMiddleware(longest time.Duration) middleware.Middleware {
	total := t.cfg.Total
	if total <= 0 || total >= longest {
		return t.TotalMiddleware()
	}
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			e := newExtTotal(ctx, total)
			defer e.stop()
			resp, err := next.Handle(e, req)
			if err != nil {
				if de := middleware.DeadlineCause(e, e.limitNow(), ErrTotal); de != nil {
					return resp, middleware.TimedOut(de, err)
				}
			}
			return resp, err
		})
	}
}

// extKey is the context key of a call's extendable total.
type extKey struct{}

// extTotal is the context of an extendable total: cancelled with a
// DeadlineError matching ErrTotal when its deadline passes, a deadline
// extend can move later until it has passed. Its Err is then
// context.DeadlineExceeded, as a context.WithDeadlineCause's.
type extTotal struct {
	context.Context // context.WithCancelCause(parent)'s
	cancel          context.CancelCauseFunc
	start           time.Time

	mu       sync.Mutex
	deadline time.Time
	limit    time.Duration
	timer    *time.Timer
	fired    bool // the deadline passed
}

func newExtTotal(parent context.Context, total time.Duration) *extTotal {
	ctx, cancel := context.WithCancelCause(parent)
	e := &extTotal{Context: ctx, cancel: cancel, start: time.Now(), limit: total}
	e.deadline = e.start.Add(total)
	e.mu.Lock()
	e.timer = time.AfterFunc(total, e.fire)
	e.mu.Unlock()
	return e
}

// fire ends the call at its deadline, unless the deadline was extended
// meanwhile (the timer then fires again at the new one).
func (e *extTotal) fire() {
	e.mu.Lock()
	if time.Now().Before(e.deadline) || e.fired || e.Context.Err() != nil {
		e.mu.Unlock()
		return
	}
	e.fired = true
	cause := &middleware.DeadlineError{Cause: ErrTotal, Limit: e.limit}
	e.mu.Unlock()
	e.cancel(cause)
}

// extend moves the deadline to total from the call's start when that is
// later and the deadline has not passed.
func (e *extTotal) extend(total time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	dl := e.start.Add(total)
	if e.fired || !dl.After(e.deadline) || !time.Now().Before(e.deadline) || e.Context.Err() != nil {
		return
	}
	e.deadline, e.limit = dl, total
	e.timer.Reset(time.Until(dl))
}

func (e *extTotal) limitNow() time.Duration {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.limit
}

func (e *extTotal) stop() {
	e.mu.Lock()
	e.timer.Stop()
	e.mu.Unlock()
	e.cancel(nil)
}

// Deadline returns the earlier of the parent's deadline and the total's
// current one.
func (e *extTotal) Deadline() (time.Time, bool) {
	e.mu.Lock()
	dl := e.deadline
	e.mu.Unlock()
	if p, ok := e.Context.Deadline(); ok && p.Before(dl) {
		return p, true
	}
	return dl, true
}

// Err is context.DeadlineExceeded once the total's deadline ended it:
// from the deadline on, even before its timer has fired (a fallback that
// asks at the deadline starts no attempt).
func (e *extTotal) Err() error {
	err := e.Context.Err()
	if err == nil {
		e.mu.Lock()
		due := !time.Now().Before(e.deadline)
		e.mu.Unlock()
		if !due {
			return nil
		}
		e.fire()
		err = e.Context.Err()
	}
	if errors.Is(err, context.Canceled) {
		e.mu.Lock()
		fired := e.fired
		e.mu.Unlock()
		if fired {
			return context.DeadlineExceeded
		}
	}
	return err
}

// Value returns e for extKey, else the parent's value.
func (e *extTotal) Value(key any) any {
	if _, ok := key.(extKey); ok {
		return e
	}
	return e.Context.Value(key)
}

// String names the context as fmt does context's own.
func (e *extTotal) String() string { return "timeout.ExtendableTotal" }

// hideDeadline is a context whose deadline is none: a call deadline made
// under it gets a timer of its own (context.WithDeadline otherwise leans
// on a parent's earlier deadline, which an extendable total may move past
// it).
type hideDeadline struct{ context.Context }

func (hideDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }

// extendFor extends the total of the call of ctx, if it has an extendable
// one, to total (from the call's start), and returns the context under
// which an attempt limited to call makes its call deadline: ctx, or, when
// the total's deadline was before the end of call from now (so that
// context.WithDeadline would lean on it), ctx with its deadline hidden.
func extendFor(ctx context.Context, total, call time.Duration) context.Context {
	e, _ := ctx.Value(extKey{}).(*extTotal)
	if e == nil {
		return ctx
	}
	if total > 0 {
		e.extend(total)
	}
	if call > 0 {
		if dl, ok := ctx.Deadline(); ok && dl.Before(time.Now().Add(call)) {
			e.mu.Lock()
			moves := !e.fired
			e.mu.Unlock()
			if moves {
				return hideDeadline{ctx}
			}
		}
	}
	return ctx
}

// ExtendableTotal returns parent bounded by total, from now, as
// ExtendableTotalMiddleware bounds a call (ended with a DeadlineError
// matching ErrTotal; its Err then context.DeadlineExceeded), and its
// stop, to call when the call is over. [ExtendTotal] extends it. For code
// that bounds its attempts itself (the gateway's passed-through calls).
func ExtendableTotal(parent context.Context, total time.Duration) (context.Context, context.CancelFunc) {
	e := newExtTotal(parent, total)
	return e, e.stop
}

// ExtendTotal extends the total of the call of ctx (an [ExtendableTotal]'s
// or an ExtendableTotalMiddleware's, which ctx is or is under) to total
// from the call's start, when that is later than its deadline and the
// deadline has not passed. It does nothing to a ctx without one, nor for a
// total of zero (none).
func ExtendTotal(ctx context.Context, total time.Duration) {
	if total <= 0 {
		return
	}
	if e, _ := ctx.Value(extKey{}).(*extTotal); e != nil {
		e.extend(total)
	}
}
