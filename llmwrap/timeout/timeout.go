package timeout

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
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
	// ErrTotal: a call as its caller sees it — every attempt, retry
	// wait and fallback — took longer than its total limit.
	ErrTotal = errors.New("tokenwise/timeout: call with its retries and fallbacks timed out")
)

// ErrConfig: New was given a Config it cannot use (a negative limit).
var ErrConfig = errors.New("tokenwise/timeout: invalid config")

// Config configures the timeouts. A zero field is no limit; the zero
// Config adds no layer (Middleware returns nil).
type Config struct {
	// Call bounds one call, from send to the last chunk. Zero: no limit.
	Call time.Duration
	// FirstToken bounds, for a streaming call, the wait for the first
	// chunk. A chunk that carries nothing of the answer (no content,
	// reasoning, refusal, tool call, finish reason or usage: a
	// {"choices":[]} without usage, an empty delta, a delta of the role
	// alone) does not count, for it or for Idle. Zero: no limit.
	FirstToken time.Duration
	// Idle bounds, for a streaming call, the gap between two chunks. It
	// starts with the first chunk: the wait for the first one is
	// FirstToken's. Zero: no limit.
	Idle time.Duration
	// Total bounds a call as its caller sees it, from send to the last
	// chunk: all its attempts, the waits between them and its fallbacks
	// to other models. It is TotalMiddleware's, which goes outside the
	// retries and fallbacks; Middleware bounds one attempt. Zero: no
	// limit.
	Total time.Duration
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
	if cfg.Call < 0 || cfg.FirstToken < 0 || cfg.Idle < 0 || cfg.Total < 0 {
		return nil, fmt.Errorf("%w: negative limit (call %v, first token %v, idle %v, total %v)", ErrConfig, cfg.Call, cfg.FirstToken, cfg.Idle, cfg.Total)
	}
	return &Timeout{cfg: cfg}, nil
}

// Middleware returns the timeout middleware, or nil when the Config sets
// no limit. The middleware is safe for concurrent use and leaves no
// goroutine or timer behind when a call returns.
//
// The idle and first-token clocks stop while the caller's stream function
// runs: a slow consumer is not a stalled provider.
func (t *Timeout) Middleware() middleware.Middleware { return t.middleware(false) }

// ExtendingMiddleware is Middleware for a chain whose total is
// [Timeout.ExtendableTotalMiddleware]'s: each attempt first extends the
// call's total to Config.Total (its model's, from the call's start) when
// that is longer, then is bounded as Middleware bounds it (its call limit
// by a timer of its own, never leaning on the total's deadline, which
// another attempt running beside it may extend). It is nil when the
// Config sets no limit, Total included.
func (t *Timeout) ExtendingMiddleware() middleware.Middleware { return t.middleware(true) }

func (t *Timeout) middleware(extend bool) middleware.Middleware {
	l := t.cfg
	if l.Call <= 0 && l.FirstToken <= 0 && l.Idle <= 0 && (!extend || l.Total <= 0) {
		return nil
	}
	// DeadlineErrors are immutable: one per limit serves every call.
	callCause := &middleware.DeadlineError{Cause: ErrCall, Limit: l.Call}
	firstCause := &middleware.DeadlineError{Cause: ErrFirstToken, Limit: l.FirstToken}
	idleCause := &middleware.DeadlineError{Cause: ErrIdle, Limit: l.Idle}
	totalCause := &middleware.DeadlineError{Cause: ErrTotal, Limit: l.Total}
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			// The attempt's start, read once: the call deadline is from
			// it, and extendFor judges by it whether the total's deadline
			// comes before that one.
			var now time.Time
			if l.Call > 0 {
				now = time.Now()
			}
			if extend {
				ctx = extendFor(ctx, l.Total, l.Call, now, totalCause)
			}
			if l.Call > 0 {
				// Its timer starts only if the inner handler watches
				// ctx (a provider's HTTP client does).
				d := middleware.WithDeadline(ctx, now.Add(l.Call), callCause)
				defer d.Stop()
				ctx = d
			}
			if req.Stream == nil || (l.FirstToken <= 0 && l.Idle <= 0) {
				resp, err := next.Handle(ctx, req)
				return resp, wrap(ctx, err)
			}
			sctx, cancel := context.WithCancelCause(ctx)
			defer cancel(nil)
			w := &watchdog{cancel: cancel, idle: l.Idle, first: l.FirstToken, firstCause: firstCause, idleCause: idleCause, start: time.Now()}
			w.last.Store(beforeFirst)
			defer w.stop()
			if l.FirstToken > 0 {
				w.t.Store(time.AfterFunc(l.FirstToken, w.fire))
			}
			inner := req.Stream
			r := req.Clone()
			r.Stream = func(ctx context.Context, c middleware.Chunk) error {
				if !carries(&c) {
					return w.empty(ctx, inner, c)
				}
				// Two atomic writes a chunk: in, then the time it ended.
				if w.last.Swap(inside) == beforeFirst {
					w.begin()
				}
				err := inner(ctx, c)
				w.last.Store(int64(time.Since(w.start)))
				return err
			}
			resp, err := next.Handle(sctx, r)
			return resp, wrap(sctx, err)
		})
	}
}

// TotalMiddleware returns the middleware of Config.Total, or nil when it
// is zero. Place it outside the retries and fallbacks (package llmwrap
// puts it right inside the run guard): its deadline is in the context of
// every attempt, whose call limit it shortens when it comes first, and a
// retry or a fallback neither waits a backoff that would end past it nor
// starts an attempt once it has passed. When it passes, the call fails
// with a [*middleware.DeadlineError] matching ErrTotal (and
// context.DeadlineExceeded and middleware.ErrTimeout), whatever the
// attempt it cut short returned. The middleware is safe for concurrent
// use and leaves no goroutine or timer behind when a call returns.
func (t *Timeout) TotalMiddleware() middleware.Middleware {
	total := t.cfg.Total
	if total <= 0 {
		return nil
	}
	cause := &middleware.DeadlineError{Cause: ErrTotal, Limit: total}
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			// Its timer starts only if something watches it; the call
			// deadline of each attempt shares one with it (see
			// middleware.Deadline).
			d := middleware.WithDeadline(ctx, time.Now().Add(total), cause)
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

// carries reports whether a chunk carries something of the answer:
// content, reasoning, a refusal, a tool call, a finish reason or a usage.
// A chunk of nothing — {"choices":[]} without usage, an empty delta, a
// delta of its role alone, a vendor's metadata or keep-alive object — is
// no activity of the model: it neither meets the first-token limit nor
// resets the idle clock, or a server that sends such chunks forever would
// hold a stream open until its call limit.
func carries(c *middleware.Chunk) bool {
	return c.Content != "" || c.Reasoning != "" || c.Refusal != "" || len(c.ToolCalls) > 0 ||
		c.FinishReason != "" || c.Usage != nil
}

// wrap reports which of this package's deadlines ended the call, if one did.
func wrap(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	if de := middleware.DeadlineCause(ctx, 0, ErrCall, ErrFirstToken, ErrIdle); de != nil {
		return middleware.TimedOut(de, err)
	}
	return err
}

// watchdog cancels a stream's context when the wait for its first chunk,
// or the gap since the end of the last chunk's stream function, runs out.
// One timer serves the whole stream and chunks never touch it: a chunk
// records when its stream function returned (an atomic store), and the
// timer, when it fires, either cancels the stream or sleeps for what is
// left of the idle limit since that time. A timer that fires while the
// stream function runs waits a whole limit more: the clock is stopped
// then (for a chunk of nothing, exactly: the timer looks again when its
// function returns, that function's time not counted). The timer may fire as a chunk arrives, in which case the stream
// is cancelled (the limit did run out).
type watchdog struct {
	t     atomic.Pointer[time.Timer]
	start time.Time // the monotonic origin of last
	// last is when the last chunk's stream function returned (since
	// start), beforeFirst before the first chunk, inside while a chunk's
	// stream function runs.
	last                  atomic.Int64
	idle, first           time.Duration
	firstCause, idleCause error
	cancel                context.CancelCauseFunc

	mu      sync.Mutex // serialises fire and stop; of the chunks, only those of nothing take it
	stopped bool
	// paused is the time the stream functions of chunks of nothing took
	// before the first chunk of something, which the first-token clock
	// does not count; due, that the timer fired while the function of a
	// chunk of nothing ran (fire then runs again when it returns, the
	// time it took not counted). Both under mu.
	paused time.Duration
	due    bool
}

// The values of watchdog.last that are no time.
const (
	beforeFirst = -1
	inside      = -2
	// insideFirst: the stream function of a chunk of nothing runs before
	// the first chunk of something; insideEmpty, after it.
	insideFirst = -3
	insideEmpty = -4
)

// empty passes on a chunk that carries nothing (see carries): the clocks
// stop while its stream function runs, as for any chunk, and then go on
// from where they were, as if the chunk had not come.
func (w *watchdog) empty(ctx context.Context, inner middleware.StreamFunc, c middleware.Chunk) error {
	if w.last.CompareAndSwap(beforeFirst, insideFirst) {
		in := time.Since(w.start)
		err := inner(ctx, c)
		w.mu.Lock()
		w.paused += time.Since(w.start) - in
		w.last.Store(beforeFirst)
		due := w.due
		w.due = false
		w.mu.Unlock()
		if due {
			w.fire() // the limit, less the time the function took, may have run out
		}
		return err
	}
	prev := w.last.Swap(insideEmpty)
	in := time.Since(w.start)
	err := inner(ctx, c)
	// The gap since the last chunk of something, less the time this
	// chunk's stream function took.
	w.mu.Lock()
	w.last.Store(prev + int64(time.Since(w.start)-in))
	due := w.due
	w.due = false
	w.mu.Unlock()
	if due {
		w.fire()
	}
	return err
}

// begin is called with the first chunk: the first-token limit is met, the
// idle clock starts when that chunk's function returns.
func (w *watchdog) begin() {
	t := w.t.Load()
	switch {
	case w.idle <= 0:
		if t != nil {
			t.Stop()
		}
	case t == nil:
		w.t.Store(time.AfterFunc(w.idle, w.fire))
	default:
		t.Reset(w.idle)
	}
}

func (w *watchdog) fire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return
	}
	t := w.t.Load()
	last := w.last.Load()
	switch {
	case last == inside:
		if w.idle > 0 {
			t.Reset(w.idle)
		}
	case last == insideFirst || last == insideEmpty:
		// The clock is stopped: looked at again when the function returns.
		w.due = true
	case last == beforeFirst:
		// What is left of the limit, the time the functions of chunks of
		// nothing took not counted.
		if left := w.first + w.paused - time.Since(w.start); left > 0 {
			t.Reset(left)
			return
		}
		w.cancel(w.firstCause)
	case w.idle > 0:
		if left := w.idle - (time.Since(w.start) - time.Duration(last)); left > 0 {
			t.Reset(left)
			return
		}
		w.cancel(w.idleCause)
	}
}

// stop stops the timer for good.
func (w *watchdog) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	if t := w.t.Load(); t != nil {
		t.Stop()
	}
}
