package timeout

import (
	"context"
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
	cause := &middleware.DeadlineError{Cause: ErrTotal, Limit: total}
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			// As lazy as TotalMiddleware's: its timer starts only if
			// something watches it.
			d := middleware.WithExtendableDeadline(ctx, time.Now(), total, cause)
			defer d.Stop()
			resp, err := next.Handle(d, req)
			if err != nil {
				if de := middleware.DeadlineCause(d, total, ErrTotal); de != nil {
					return resp, middleware.TimedOut(de, err)
				}
			}
			return resp, err
		})
	}
}

// extendFor extends the total of the call of ctx, if it has an extendable
// one, to total (from the call's start; cause, a DeadlineError of total
// matching ErrTotal, then ends it), and returns the context under
// which an attempt limited to call makes its call deadline: ctx, or, when
// the total's deadline was before the end of call from now, the
// attempt's start (so that context.WithDeadline would lean on it), ctx
// with its deadline hidden.
func extendFor(ctx context.Context, total, call time.Duration, now time.Time, cause error) context.Context {
	d := middleware.ExtendableDeadline(ctx)
	if d == nil {
		return ctx
	}
	if total > 0 {
		d.Extend(total, cause)
	}
	if call > 0 {
		if dl, ok := ctx.Deadline(); ok && dl.Before(now.Add(call)) {
			return middleware.WithoutDeadline(ctx)
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
	d := middleware.WithExtendableDeadline(parent, time.Now(), total, &middleware.DeadlineError{Cause: ErrTotal, Limit: total})
	return d, d.Stop
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
	if d := middleware.ExtendableDeadline(ctx); d != nil {
		d.Extend(total, &middleware.DeadlineError{Cause: ErrTotal, Limit: total})
	}
}
