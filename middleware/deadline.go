package middleware

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/internal/ctxval"
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
// A Deadline under another one that is not made real yet, with only
// values between them (the run guard's deadline and the timeout layer's
// call deadline inside it, say), stays unmade as well, and when it is made
// real it shares one timer with the outer one: a context with the earlier
// of the two deadlines and its cause, under the outer one's parent, which
// the outer one's Stop cancels. Nothing can tell it from a
// context.WithDeadlineCause under the outer one (the outer one, if made
// real later, ends at its own deadline as it would have), but a call
// bounded by both costs one timer instead of two. Under an outer one
// that is made real (its parent can end: a request's context), an inner
// one whose deadline comes first is made under the outer one's parent
// instead, and the outer one's Stop cancels it: it ends at the same
// instants with the same causes, and the outer one's context keeps no
// children (no map of them, no Done channel made for them).
//
// One of WithExtendableDeadline (a call's total that follows the model
// that answers it) is as lazy, and its deadline can move later (Extend):
// unmade, it simply moves; made, its timer is reset. A Deadline under it
// shares its timer only when its own deadline comes first (the extendable
// one's may move past it).
//
// Stop is the CancelFunc: call it when the call returns (it releases the
// timer, if one was started). A Deadline is safe for concurrent use.
type Deadline struct {
	parent   context.Context
	deadline time.Time
	cause    error
	// over is the Deadline the parent's Done comes from, unmade when d
	// was made (see lazyOver); nil when there is none.
	over *Deadline

	mu        sync.Mutex
	real      context.Context // context.WithDeadlineCause(parent, deadline, cause), once made (or its fused form, see fuse)
	cancel    context.CancelFunc
	stopped   bool
	stoppedAt time.Time // when Stop was first called
	// fused are the Deadlines under d made real without d (see fuse),
	// which d's Stop cancels; the first in fusedArr, in d's allocation.
	fused    []*Deadline
	fusedArr [1]*Deadline

	// An extendable Deadline (WithExtendableDeadline): start is when its
	// limits count from; made real, it is a context.WithCancelCause under
	// its parent (ccancel) ended by a timer of its own, which Extend
	// resets; fired says that timer ended it.
	ext     bool
	start   time.Time
	ccancel context.CancelCauseFunc
	timer   *time.Timer
	fired   bool
}

// WithDeadline returns parent bounded by deadline; an expired deadline
// ends it with cause (see context.WithDeadlineCause). Call its Stop when
// the call returns.
func WithDeadline(parent context.Context, deadline time.Time, cause error) *Deadline {
	return withDeadline(parent, deadline, cause, false, time.Time{})
}

// WithExtendableDeadline is WithDeadline(parent, start.Add(limit), cause)
// whose deadline [Deadline.Extend] can move later until it has passed.
// It is as lazy as WithDeadline's: no timer until something watches it,
// and a WithDeadline under it (with only values between them, or
// [WithoutDeadline]) stays unmade as well. Made real, it is a
// context.WithCancelCause under parent ended by a timer of its own with
// the cause of its current deadline (Err then context.DeadlineExceeded,
// from the deadline on, even before its timer has fired).
// [ExtendableDeadline] finds it from a context under it.
func WithExtendableDeadline(parent context.Context, start time.Time, limit time.Duration, cause error) *Deadline {
	return withDeadline(parent, start.Add(limit), cause, true, start)
}

func withDeadline(parent context.Context, deadline time.Time, cause error, ext bool, start time.Time) *Deadline {
	if parent == nil {
		panic("tokenwise/middleware: WithDeadline of a nil context")
	}
	// The first deadlines of an instrumented call live in its CallInfo's
	// allocation.
	d := CallInfoFrom(parent).deadline()
	if d == nil {
		d = new(Deadline)
	}
	d.parent, d.deadline, d.cause, d.ext, d.start = parent, deadline, cause, ext, start
	over := deadlineOver(parent)
	if over != nil && over.unmade() {
		// parent can end only by over, which is not made real: d need
		// not be either (see fuse).
		d.over = over
		return d
	}
	// A Deadline over parent that is made real or stopped can end: its
	// Done is not asked for (a channel it may never need otherwise).
	if over != nil || parent.Done() != nil {
		// A parent that can end makes it real at once: which of the two
		// ended first decides the cause, and only a timer running from
		// now can tell.
		d.materialize()
	}
	return d
}

// maxValueDepth bounds how many value contexts lazyOver looks through.
const maxValueDepth = 16

// valueCtxType is the type of context.WithValue's contexts.
var valueCtxType = func() reflect.Type {
	t := reflect.TypeOf(context.WithValue(context.Background(), valueTypeKey{}, nil))
	// Its parent is its first field, the embedded Context.
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct || t.Elem().NumField() == 0 ||
		t.Elem().Field(0).Name != "Context" || t.Elem().Field(0).Type != reflect.TypeFor[context.Context]() {
		return nil
	}
	return t
}()

type valueTypeKey struct{}

// valueParent is implemented by tokenwise's own value contexts
// (ctxval.Ctx).
type valueParent interface {
	ValueParent(ctxval.Only) context.Context
}

// lazyOver returns the Deadline whose Done the Done of ctx is, when
// between the two there are only contexts that add a value (those of
// context.WithValue and of tokenwise), and that Deadline is not made real
// nor stopped; nil otherwise.
func lazyOver(ctx context.Context) *Deadline {
	if d := deadlineOver(ctx); d != nil && d.unmade() {
		return d
	}
	return nil
}

// unmade reports whether d is neither made real nor stopped.
func (d *Deadline) unmade() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.real == nil && !d.stopped
}

// deadlineOver returns the Deadline whose Done the Done of ctx is, when
// between the two there are only contexts that add a value (those of
// context.WithValue and of tokenwise), whatever its state; nil otherwise.
func deadlineOver(ctx context.Context) *Deadline {
	for range maxValueDepth {
		switch c := ctx.(type) {
		case *Deadline:
			return c
		case valueParent:
			ctx = c.ValueParent(ctxval.Only{})
		case *noDeadline:
			ctx = c.Context
		default:
			if valueCtxType == nil || reflect.TypeOf(ctx) != valueCtxType {
				return nil
			}
			p, _ := reflect.ValueOf(ctx).Elem().Field(0).Interface().(context.Context)
			if p == nil {
				return nil
			}
			ctx = p
		}
	}
	return nil
}

// materialize returns the real deadline context, making it on first use.
// Made late, it ends as d did if something ended d already (its deadline,
// its Stop or its parent, whichever came first), as a real one would have.
func (d *Deadline) materialize() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.real != nil {
		return d.real
	}
	// Only an unmade d's Stop and, over an unmade Deadline, its parent
	// (see lazyOver) can have ended it before now: d is made at once under
	// a parent that can end otherwise.
	var (
		first time.Time
		by    int // 0: nothing ended d yet
	)
	const byDeadline, byStop, byParent = 1, 2, 3
	if !time.Now().Before(d.deadline) {
		first, by = d.deadline, byDeadline
	}
	if d.stopped && (by == 0 || d.stoppedAt.Before(first)) {
		first, by = d.stoppedAt, byStop
	}
	if d.over != nil {
		if end, ok := d.over.endedAt(); ok && (by == 0 || !first.Before(end)) {
			by = byParent // on a tie too, as fuse decides
		}
	}
	switch {
	case by == byDeadline:
		d.real, d.cancel = context.WithDeadlineCause(context.WithoutCancel(d.parent), d.deadline, d.cause)
	case by == byStop:
		d.real, d.cancel = context.WithCancel(context.WithoutCancel(d.parent))
		d.cancel()
	case d.ext:
		// Under a parent that ended, this takes its cause; else its
		// own timer, which Extend can reset, ends it.
		d.real, d.ccancel = context.WithCancelCause(d.parent)
		if by == 0 {
			d.timer = time.AfterFunc(time.Until(d.deadline), d.fire)
		}
	case by == 0 && d.over != nil && d.over.fuse(d):
	case by == 0 && d.fuseMade():
	default:
		// Under a parent that ended, this takes its cause.
		d.real, d.cancel = context.WithDeadlineCause(d.parent, d.deadline, d.cause)
	}
	return d.real
}

// fuseMade makes d real, its lock held, under the parent of the Deadline
// over it (see deadlineOver) when that one is made real at its own
// deadline under its parent, still runs and ends after d's deadline: then
// only its parent or its Stop can end it before d's own timer, and d
// under its parent, cancelled by its Stop (see fuse), ends as d under it
// would, at the same instants with the same causes. The outer one's
// context then gets no child (no map of children, no Done channel made
// for d's sake): a call deadline under a run deadline, both under a
// request's context that can end, costs three allocations fewer.
func (d *Deadline) fuseMade() bool {
	if d.ext {
		return false
	}
	o := d.over
	if o == nil {
		o = deadlineOver(d.parent)
	}
	if o == nil {
		return false
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	// o.over == nil and !o.ext: o.real is
	// context.WithDeadlineCause(o.parent, o.deadline, o.cause), or o
	// fused under the Deadline over it by fuseMade, which ends as that.
	if o.real == nil || o.stopped || o.over != nil || o.ext || !d.deadline.Before(o.deadline) || o.real.Err() != nil {
		return false
	}
	d.real, d.cancel = context.WithDeadlineCause(o.parent, d.deadline, d.cause)
	if o.fused == nil {
		o.fused = o.fusedArr[:0]
	}
	o.fused = append(o.fused, d)
	return true
}

// fuse makes kid, a Deadline under d with only values between them (see
// lazyOver), real without making d real, if d is still unmade, not
// stopped and under a parent that cannot end (an unmade d under another
// Deadline is not): as the earlier of the two deadlines with its cause
// (d's on a tie) under d's parent. That is what a real d and kid under it
// would do, d's deadline or cause being the only thing that could end it,
// and d's Stop cancels kid (Canceled, as a real d's would). kid's lock is
// held.
func (d *Deadline) fuse(kid *Deadline) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.real != nil || d.stopped || d.over != nil {
		return false
	}
	if d.ext && !kid.deadline.Before(d.deadline) {
		// d's deadline may move past kid's: kid needs a timer of its own.
		return false
	}
	dl, cause := kid.deadline, kid.cause
	if !dl.Before(d.deadline) {
		dl, cause = d.deadline, d.cause
	}
	kid.real, kid.cancel = context.WithDeadlineCause(d.parent, dl, cause)
	if d.fused == nil {
		d.fused = d.fusedArr[:0]
	}
	d.fused = append(d.fused, kid)
	return true
}

// endedAt returns when d ended, if it has: at its deadline, at its Stop,
// or when the Deadline over it ended (its parent cannot end otherwise).
func (d *Deadline) endedAt() (time.Time, bool) {
	d.mu.Lock()
	end, ended := d.deadline, !time.Now().Before(d.deadline)
	if d.stopped && (!ended || d.stoppedAt.Before(end)) {
		end, ended = d.stoppedAt, true
	}
	over := d.over
	d.mu.Unlock()
	if over != nil {
		if e, ok := over.endedAt(); ok && (!ended || e.Before(end)) {
			end, ended = e, true
		}
	}
	return end, ended
}

// made returns the real context if it was made, else nil.
func (d *Deadline) made() context.Context {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.real
}

// Stop cancels the context (context.Canceled, as a CancelFunc does) and
// releases its timer, and cancels the Deadlines under it that share it
// (see fuse). It may be called more than once.
func (d *Deadline) Stop() {
	d.mu.Lock()
	if !d.stopped {
		d.stoppedAt = time.Now()
	}
	d.stopped = true
	cancel, ccancel, fused := d.cancel, d.ccancel, d.fused
	d.fused = nil
	if d.timer != nil {
		d.timer.Stop()
	}
	d.mu.Unlock()
	if cancel != nil {
		cancel()
	}
	if ccancel != nil {
		ccancel(nil)
	}
	for _, k := range fused {
		// k was made (fuse set its cancel under its lock): cancelling it
		// is what a real d's cancellation would have done to it.
		k.mu.Lock()
		c := k.cancel
		k.mu.Unlock()
		c()
	}
}

// Deadline returns the earlier of the parent's deadline and d's.
func (d *Deadline) Deadline() (time.Time, bool) {
	var dl time.Time
	if d.ext {
		// Extend moves it.
		d.mu.Lock()
		dl = d.deadline
		d.mu.Unlock()
	} else {
		dl = d.deadline
	}
	if p, ok := d.parent.Deadline(); ok && p.Before(dl) {
		return p, true
	}
	return dl, true
}

// Done returns the channel closed when the context ends; the timer starts
// with the first call.
func (d *Deadline) Done() <-chan struct{} { return d.materialize().Done() }

// Err returns nil while the context runs, else why it ended.
func (d *Deadline) Err() error {
	if r := d.made(); r != nil {
		return d.realErr(r)
	}
	d.mu.Lock()
	stopped, due := d.stopped, !time.Now().Before(d.deadline)
	d.mu.Unlock()
	if stopped || d.parent.Err() != nil || due {
		return d.realErr(d.materialize())
	}
	return nil
}

// realErr is the Err of d made real as r: r's, but for an extendable d
// (see WithExtendableDeadline), which its deadline ends from the deadline
// on, its timer fired or not, with context.DeadlineExceeded.
func (d *Deadline) realErr(r context.Context) error {
	err := r.Err()
	if !d.ext {
		return err
	}
	if err == nil {
		d.mu.Lock()
		due := !time.Now().Before(d.deadline)
		d.mu.Unlock()
		if !due {
			return nil
		}
		d.fire()
		err = r.Err()
	}
	if errors.Is(err, context.Canceled) {
		d.mu.Lock()
		fired := d.fired
		d.mu.Unlock()
		if fired {
			return context.DeadlineExceeded
		}
	}
	return err
}

// fire ends an extendable d made real at its deadline, unless the
// deadline was extended meanwhile (its timer then fires again at the new
// one), d was stopped or its parent ended it.
func (d *Deadline) fire() {
	d.mu.Lock()
	if d.ccancel == nil || d.fired || d.stopped || time.Now().Before(d.deadline) || d.real.Err() != nil {
		d.mu.Unlock()
		return
	}
	d.fired = true
	cancel, cause := d.ccancel, d.cause
	d.mu.Unlock()
	cancel(cause)
}

// Extend moves the deadline of an extendable d (see
// WithExtendableDeadline) to limit from its start, with cause, when that
// is later than its deadline and the deadline has not passed nor anything
// else ended d. It does nothing to a Deadline of WithDeadline.
func (d *Deadline) Extend(limit time.Duration, cause error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	dl := d.start.Add(limit)
	if !d.ext || d.stopped || d.fired || !dl.After(d.deadline) || !time.Now().Before(d.deadline) {
		return
	}
	if d.real != nil {
		if d.timer == nil || d.real.Err() != nil {
			return
		}
		d.timer.Reset(time.Until(dl))
	}
	d.deadline, d.cause = dl, cause
}

// extendableKey is the context key with which ExtendableDeadline finds an
// extendable Deadline.
type extendableKey struct{}

// ExtendableDeadline returns the nearest extendable Deadline (see
// WithExtendableDeadline) ctx is or is under, or nil.
func ExtendableDeadline(ctx context.Context) *Deadline {
	d, _ := ctx.Value(extendableKey{}).(*Deadline)
	return d
}

// WithoutDeadline returns ctx with no deadline (its Done, Err and values
// are ctx's): a WithDeadline under it gets a timer of its own instead of
// leaning on an earlier deadline of ctx, which an extendable Deadline may
// move past its own. It stays as lazy as under ctx.
func WithoutDeadline(ctx context.Context) context.Context { return &noDeadline{ctx} }

type noDeadline struct{ context.Context }

func (*noDeadline) Deadline() (time.Time, bool) { return time.Time{}, false }

// String names the context as fmt does context's own.
func (*noDeadline) String() string { return "middleware.WithoutDeadline" }

// Value returns the parent's value for key. The context package's own
// key (with which context.Cause and child contexts find the nearest
// cancellable context) makes the real context and asks it.
func (d *Deadline) Value(key any) any {
	if isCancelCtxKey(key) {
		return d.materialize().Value(key)
	}
	if _, ok := key.(extendableKey); ok && d.ext {
		return d
	}
	return d.parent.Value(key)
}

// String names the context as fmt does context's own.
func (d *Deadline) String() string { return "middleware.WithDeadline" }

// cancelCtxKey is the key with which the context package asks a context
// for its nearest cancellable context (context.Cause asks it first), or
// nil if it could not be learnt.
var cancelCtxKey = func() any {
	k := &keyCatcher{Context: context.Background()}
	_ = context.Cause(k)
	if _, ok := k.key.(*int); !ok {
		return nil
	}
	return k.key
}()

// keyCatcher remembers the first key it is asked for.
type keyCatcher struct {
	context.Context
	key any
}

func (k *keyCatcher) Value(key any) any {
	if k.key == nil {
		k.key = key
	}
	return nil
}

// isCancelCtxKey reports whether key is the context package's own key:
// any *int when that key could not be learnt.
func isCancelCtxKey(key any) bool {
	if cancelCtxKey != nil {
		return key == cancelCtxKey
	}
	_, ok := key.(*int)
	return ok
}

// Ended reports whether ctx has ended, or reached its deadline: a context
// under a deadline's timer reports no error until that timer's goroutine
// has run, so at the deadline's instant Err alone would let one more
// attempt, request or call start (and be billed, or act) at the deadline.
// When the deadline has passed, Ended waits (briefly) for ctx to end, so
// that its Err and context.Cause say why once it returns true.
func Ended(ctx context.Context) bool {
	if ctx.Err() != nil {
		return true
	}
	dl, ok := ctx.Deadline()
	if !ok || time.Now().Before(dl) {
		return false
	}
	// Its timer fires at this instant; a context that does not end by its
	// deadline is ended for the caller all the same.
	t := time.NewTimer(endedWait)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
	return true
}

// endedWait bounds how long Ended waits for a context whose deadline has
// passed to end.
const endedWait = time.Second
