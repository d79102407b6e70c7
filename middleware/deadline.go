package middleware

import (
	"context"
	"sync"
	"time"
)

// Deadline is a context bounded by a deadline, like the one
// context.WithDeadlineCause returns, whose timer starts only when
// something watches it, if its parent can never end (its Done is nil, as
// context.Background's). Most calls end long before their deadline; a
// handler that never looks at its context's Done channel (an in-process
// model, a cache) then costs no timer and no cancellation machinery.
// Under a parent that can end, it is made real at once.
//
// Anything that can observe the deadline makes it real first — Done, a
// child context (context.WithCancel, context.AfterFunc), context.Cause,
// and Err once the deadline has passed or Stop was called — so that it behaves in every respect as
// context.WithDeadlineCause(parent, deadline, cause) would: same Done
// channel, Err, Cause and Deadline. Values are the parent's.
//
// Stop is the CancelFunc: call it when the call returns (it releases the
// timer, if one was started). A Deadline is safe for concurrent use.
type Deadline struct {
	parent   context.Context
	deadline time.Time
	cause    error

	mu      sync.Mutex
	real    context.Context // context.WithDeadlineCause(parent, deadline, cause), once made
	cancel  context.CancelFunc
	stopped bool
}

// WithDeadline returns parent bounded by deadline; an expired deadline
// ends it with cause (see context.WithDeadlineCause). Call its Stop when
// the call returns.
func WithDeadline(parent context.Context, deadline time.Time, cause error) *Deadline {
	if parent == nil {
		panic("tokenwise/middleware: WithDeadline of a nil context")
	}
	// The first deadline of an instrumented call lives in its CallInfo's
	// allocation.
	d := CallInfoFrom(parent).deadline()
	if d == nil {
		d = new(Deadline)
	}
	d.parent, d.deadline, d.cause = parent, deadline, cause
	if parent.Done() != nil {
		// A parent that can end makes it real at once: which of the two
		// ended first decides the cause, and only a timer running from
		// now can tell.
		d.materialize()
	}
	return d
}

// materialize returns the real deadline context, making it on first use.
// A Deadline stopped before is made cancelled, as its Stop would have.
func (d *Deadline) materialize() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.real == nil {
		d.real, d.cancel = context.WithDeadlineCause(d.parent, d.deadline, d.cause)
		if d.stopped {
			d.cancel()
		}
	}
	return d.real
}

// made returns the real context if it was made, else nil.
func (d *Deadline) made() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.real
}

// Stop cancels the context (context.Canceled, as a CancelFunc does) and
// releases its timer. It may be called more than once.
func (d *Deadline) Stop() {
	d.mu.Lock()
	d.stopped = true
	cancel := d.cancel
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
}

// Deadline returns the earlier of the parent's deadline and d's.
func (d *Deadline) Deadline() (time.Time, bool) {
	if p, ok := d.parent.Deadline(); ok && p.Before(d.deadline) {
		return p, true
	}
	return d.deadline, true
}

// Done returns the channel closed when the context ends; the timer starts
// with the first call.
func (d *Deadline) Done() <-chan struct{} { return d.materialize().Done() }

// Err returns nil while the context runs, else why it ended.
func (d *Deadline) Err() error {
	if r := d.made(); r != nil {
		return r.Err()
	}
	d.mu.Lock()
	stopped := d.stopped
	d.mu.Unlock()
	if stopped || d.parent.Err() != nil || !time.Now().Before(d.deadline) {
		return d.materialize().Err()
	}
	return nil
}

// Value returns the parent's value for key. The context package's own
// key (a *int, with which context.Cause and child contexts find the
// nearest cancellable context) makes the real context and asks it.
func (d *Deadline) Value(key any) any {
	if _, ok := key.(*int); ok {
		return d.materialize().Value(key)
	}
	return d.parent.Value(key)
}

// String names the context as fmt does context's own.
func (d *Deadline) String() string { return "middleware.WithDeadline" }
