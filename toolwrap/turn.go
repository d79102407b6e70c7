package toolwrap

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
)

// turn runs the calls of one Execute on goroutines other than Execute's
// caller's, which only waits: one goroutine runs the turn (loop), and a
// group of calls without side effects runs on it and MaxParallel-1 more
// (worker). Under a context that never ends (no Done channel: nothing
// gives up on a call) they call the tools directly; under one that can
// end, each tool runs on a goroutine of its own (see await). A tool or an
// observer that calls runtime.Goexit (testing's FailNow) ends the
// goroutine it runs on, never Execute's caller: that goroutine's deferred
// call fails the call as a panic (ErrPanic) and starts another goroutine
// that goes on where it stopped. No goroutine of the turn outlives
// Execute.
//
// That is one goroutine per turn (and per worker of a parallel group)
// instead of one per call with its box: the state of the turn is here, so
// that another goroutine can take it up.
type turn struct {
	e       *Executor
	ctx     context.Context
	calls   []middleware.ToolCall
	results []Result
	earlier *abandoned
	// lo is the next call; given is where the calls given up on while
	// their tools ran begin (see Execute).
	lo, given int
	// stopped: the calls from lo on are not run (ErrNotRun).
	stopped bool
	// own is the call in flight on the goroutine running loop.
	own callState
	// grouped: calls[lo:hi] are a group without side effects that runs
	// in parallel, the next call to take being next.
	grouped bool
	hi      int
	next    atomic.Int64
	workers sync.WaitGroup // the group's workers besides loop's goroutine
	done    sync.WaitGroup // loop's end, which Execute waits for
}

// callState is the call in flight on one of a turn's goroutines.
type callState struct {
	i      int  // the call (-1: none)
	side   bool // a call of a tool with side effects, run alone
	inTool bool // its tool runs
	start  time.Time
	// err is the call's error from its tool (the executor's get): a call
	// given up on while its tool runs stays known as such (see fail).
	err error
}

// loop runs the turn from t.lo on: Execute's loop, one call at a time
// except a parallel group.
func (t *turn) loop() {
	calls := t.calls
	returned := false
	defer func() {
		v := recover()
		if returned {
			t.done.Done()
			return
		}
		i, side := t.own.i, t.own.side
		// The next goroutine's calls are not this call's: a later Goexit
		// of a call without side effects must not pass for one with them.
		t.own.side = false
		if i < 0 {
			// No call in flight: the executor's own work between calls
			// (an observer told of a call given up on) ended the
			// goroutine. The calls left without a result fail as panics,
			// told to no observer (one could end this goroutine too).
			for i := t.lo; i < len(calls); i++ {
				t.orphan(i, v)
			}
			t.done.Done()
			return
		}
		// fail tells observers of the call's failure, and one may end
		// this goroutine too (runtime.Goexit): the turn goes on all the
		// same, the call's result never empty.
		defer func() {
			t.orphan(i, v)
			if !t.grouped {
				t.lo = i + 1
				if side {
					// As after a call with side effects that returned:
					// given up on while its tool still runs, no call
					// after it starts beside it.
					if t.lo < len(calls) && t.ctx.Err() == nil && stillRunning(t.ctx, t.results[i:t.lo]) {
						t.stopped = true
					}
					t.given = t.lo
				}
			}
			go t.loop()
		}()
		t.fail(&t.own, v)
	}()
	e, ctx, results := t.e, t.ctx, t.results
	for t.lo < len(calls) {
		lo := t.lo
		switch {
		case t.grouped:
			t.work(&t.own)
			t.workers.Wait()
			t.grouped = false
			t.lo = t.hi
		case t.stopped:
			t.own.i = lo
			e.notRun(ctx, calls, results, lo, lo+1)
			t.own.i = -1
			t.lo++
		case e.sideEffects(calls[lo].Name):
			if ctx.Err() == nil && (stillRunning(ctx, results[t.given:lo]) || t.earlier.running(ctx, false)) {
				t.stopped = true
				continue
			}
			t.given = lo
			t.own.side = true
			t.call(&t.own, lo)
			t.own.side = false
			t.lo++
			if t.lo < len(calls) && ctx.Err() == nil && stillRunning(ctx, results[lo:t.lo]) {
				t.stopped = true
				continue
			}
			t.given = t.lo
		default:
			hi := lo + 1
			for hi < len(calls) && !e.sideEffects(calls[hi].Name) {
				hi++
			}
			w := min(e.maxParallel, hi-lo)
			if w <= 1 {
				t.call(&t.own, lo)
				t.lo++
				continue
			}
			if w == hi-lo {
				if d, same := e.sameTimeout(calls[lo:hi]); same && (d > 0 || ctx.Done() != nil) {
					e.direct(ctx, d, calls, results, lo, hi)
					t.lo = hi
					continue
				}
			}
			t.next.Store(int64(lo))
			t.hi, t.grouped = hi, true
			t.workers.Add(w - 1)
			for range w - 1 {
				go t.worker()
			}
		}
	}
	returned = true
}

// worker runs calls of the turn's group until none is left. One whose
// tool ends it with runtime.Goexit is failed and another worker takes
// its place.
func (t *turn) worker() {
	s := callState{i: -1}
	returned := false
	defer func() {
		v := recover()
		i := s.i
		if returned || i < 0 {
			t.workers.Done()
			return
		}
		// Another worker takes this one's place even if an observer told
		// of the call's failure ends this goroutine too (see loop).
		defer func() {
			t.orphan(i, v)
			go t.worker()
		}()
		t.fail(&s, v)
	}()
	t.work(&s)
	returned = true
}

// work runs the calls of the turn's group that no other goroutine took.
func (t *turn) work(s *callState) {
	for {
		i := int(t.next.Add(1) - 1)
		if i >= t.hi {
			return
		}
		t.call(s, i)
	}
}

// call runs call i on the calling goroutine, its tool included: a panic
// of the executor's own work for the call is the call's error (an
// observer's, an artifact store's); a Goexit leaves s saying which call it ended (see fail).
func (t *turn) call(s *callState, i int) {
	s.i = i
	c := &t.calls[i]
	defer func() {
		if v := recover(); v != nil {
			t.results[i] = panicResult(t.ctx, c, v)
			s.i, s.inTool, s.err = -1, false, nil
		}
	}()
	e := t.e
	tool := e.tools[c.Name]
	s.start = e.now()
	raw, cached, err := e.get(t.ctx, c, tool, 0, false, &s.inTool)
	s.err = err
	e.safeFinish(&t.results[i], t.ctx, c, tool, s.start, raw, cached, err)
	s.i, s.err = -1, nil
}

// fail gives the call in flight of s, whose goroutine is ending (v: its
// panic, nil for a Goexit), its result: a tool's Goexit is the call's
// panic, recorded as any call's; the executor's own work's, as in
// directCall.
func (t *turn) fail(s *callState, v any) {
	i := s.i
	if i < 0 {
		return
	}
	s.i = -1
	was := s.err
	s.err = nil
	c := &t.calls[i]
	if s.inTool {
		s.inTool = false
		tool := t.e.tools[c.Name]
		t.e.safeFinish(&t.results[i], t.ctx, c, tool, s.start, "", false, &Error{Tool: c.Name, CallID: c.ID, Err: &panicError{v: goexitValue}})
		return
	}
	// A call given up on while its tool runs stays known as such (see
	// stillRunning), whatever ended the goroutine that reported it.
	setPanicResult(&t.results[i], t.ctx, c, panicValue(v), was)
}

// orphan gives call i, if it has no result (its goroutine ended before
// one was written), a panic's (v; nil: a Goexit), told to no observer.
func (t *turn) orphan(i int, v any) {
	if r := &t.results[i]; r.Err == nil && r.Name == "" && r.Content == "" {
		c := &t.calls[i]
		err := &Error{Tool: c.Name, CallID: c.ID, Err: &panicError{v: panicValue(v)}}
		*r = Result{CallID: c.ID, Name: c.Name, Err: err, Content: err.Error()}
	}
}

// panicValue is v, the panic that ends a goroutine, or goexitValue for a
// runtime.Goexit (nil).
func panicValue(v any) any {
	if v == nil {
		return goexitValue
	}
	return v
}
