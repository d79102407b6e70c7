package toolwrap

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/middleware"
)

// Config configures an Executor. The zero Config runs calls one at a
// time, without a timeout, caching or failing on a tool's error.
type Config struct {
	// MaxParallel bounds the tool calls of one turn that run at the same
	// time. Zero: 1 (one at a time).
	MaxParallel int
	// Timeout bounds every tool call that has no timeout of its own
	// (Meta.Timeout). Zero: none.
	Timeout time.Duration
	// FailOnError makes Execute return the first failed call's *Error (in
	// call order) instead of only showing the model the observation.
	// False: errors, panics and timeouts are observations and the run
	// goes on.
	FailOnError bool
	// CacheTTL caches the successful results of idempotent tools for this
	// long, keyed on the tool name and the canonical JSON of the
	// arguments. Zero: no cache.
	CacheTTL time.Duration
	// CacheSize bounds the cached results. Zero: 1024.
	CacheSize int
	// CacheBytes bounds the bytes of the cached results (and their keys):
	// the least recently used leave to make room, and a result larger
	// than the bound is not cached. Zero: 64 MiB.
	CacheBytes int64
	// Meta overrides the metadata of the named tools (a policy's per_tool
	// section): side effects if either says so; idempotent and timeout
	// from the override. Nil: the tools' own.
	Meta map[string]Meta
	// RunTimeout is the deadline of a run from its start
	// (middleware.Run.Started), as the run guard holds it for the run's
	// LLM calls (a policy's limits.run_timeout or budget.run.max_wall_time):
	// a call of the context's run still running then is cancelled, a
	// later one (a tool with side effects waiting its turn) is not run,
	// and Execute returns the run guard's deadline error
	// (guard.ErrRunDeadline). Zero: none.
	RunTimeout time.Duration
}

// ErrConfig: New was given a Config it cannot use (a negative field).
var ErrConfig = errors.New("tokenwise/toolwrap: invalid config")

// Option configures code-side dependencies of an Executor.
type Option func(*options)

type options struct {
	artifacts *Artifacts
	now       func() time.Time
}

// WithArtifacts offloads large results to a (see Artifacts) and adds the
// read_artifact tool. Default: no offloading.
func WithArtifacts(a *Artifacts) Option { return func(o *options) { o.artifacts = a } }

// Executor runs one turn's tool calls: independent calls in parallel,
// bounded by MaxParallel; a tool with side effects alone and in order; each
// with its own timeout; errors, timeouts and panics as observations; large
// results offloaded to artifacts; idempotent results cached. Every call is
// recorded in the context's run (middleware.Run.RecordTool) and emitted as
// a middleware.ToolFinished event.
//
// An Executor is safe for concurrent use.
type Executor struct {
	tools       map[string]*Tool // pointers: calls read them without copying
	order       []string
	maxParallel int
	timeout     time.Duration
	failOnError bool
	arts        *Artifacts
	cache       *resultCache
	flight      singleflight.Group
	now         func() time.Time
	runTimeout  time.Duration
	runCause    error // the run's deadline error, immutable
}

// New returns an executor of tools configured by cfg. Tool names must be
// unique and non-empty and every tool needs a Call. With artifacts on, the
// read_artifact tool is added unless a tool of that name is given.
//
// Like the LLM layers it takes a plain Config (package llmwrap maps a
// policy's tools section to it: llmwrap.NewExecutor) and functional
// options for code-side dependencies only.
func New(tools []Tool, cfg Config, opts ...Option) (*Executor, error) {
	if cfg.MaxParallel < 0 || cfg.Timeout < 0 || cfg.CacheTTL < 0 || cfg.CacheSize < 0 || cfg.CacheBytes < 0 || cfg.RunTimeout < 0 {
		return nil, fmt.Errorf("%w: negative field in %+v", ErrConfig, cfg)
	}
	c := options{now: time.Now}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	e := &Executor{tools: make(map[string]*Tool, len(tools)+1), maxParallel: max(cfg.MaxParallel, 1),
		timeout: cfg.Timeout, failOnError: cfg.FailOnError, arts: c.artifacts, now: c.now}
	if cfg.RunTimeout > 0 {
		e.runTimeout = cfg.RunTimeout
		e.runCause = &middleware.DeadlineError{Cause: guard.ErrRunDeadline, Limit: cfg.RunTimeout}
	}
	all := append([]Tool(nil), tools...)
	if e.arts != nil {
		if _, dup := findTool(all, ReadArtifactName); !dup {
			all = append(all, e.arts.ReadTool())
		}
	}
	for _, t := range all {
		switch {
		case t.Name == "":
			return nil, errors.New("tokenwise/toolwrap: a tool has no name")
		case t.Call == nil:
			return nil, fmt.Errorf("tokenwise/toolwrap: tool %s has no Call", t.Name)
		}
		if _, dup := e.tools[t.Name]; dup {
			return nil, fmt.Errorf("tokenwise/toolwrap: tool %s given twice", t.Name)
		}
		if m, ok := cfg.Meta[t.Name]; ok {
			t.Meta.SideEffects = t.Meta.SideEffects || m.SideEffects
			t.Meta.Idempotent = m.Idempotent
			if m.Timeout > 0 {
				t.Meta.Timeout = m.Timeout
			}
		}
		e.tools[t.Name] = &t
		e.order = append(e.order, t.Name)
	}
	if cfg.CacheTTL > 0 {
		e.cache = newResultCache(cfg.CacheTTL, cfg.CacheSize, cfg.CacheBytes, c.now)
	}
	return e, nil
}

func findTool(ts []Tool, name string) (Tool, bool) {
	for _, t := range ts {
		if t.Name == name {
			return t, true
		}
	}
	return Tool{}, false
}

// Tools returns the tools' specs for a chat request, in the order given
// (read_artifact last).
func (e *Executor) Tools() []middleware.Tool {
	out := make([]middleware.Tool, len(e.order))
	for i, n := range e.order {
		out[i] = e.tools[n].Spec()
	}
	return out
}

// Tool returns the named tool, with its effective metadata.
func (e *Executor) Tool(name string) (Tool, bool) {
	t, ok := e.tools[name]
	if !ok {
		return Tool{}, false
	}
	return *t, true
}

// Artifacts returns the executor's artifacts, or nil.
func (e *Executor) Artifacts() *Artifacts { return e.arts }

// Execute runs one turn's calls and returns their results in call order.
//
// Calls to tools without side effects run concurrently, at most
// MaxParallel at once; a call to a tool with side effects waits for every
// earlier call, runs alone, and the later calls wait for it. A call
// given up on while its tool still runs (a tool that ignores its context)
// is waited for up to its timeout once more; if it still runs, a call to
// a tool with side effects after it, or any call after such a tool, is
// not run (ErrNotRun). So in the later turns of the context's run, while
// such a tool runs: a call of a tool with side effects is not run beside
// it, nor any call beside such a tool given up on. When ctx ends
// (the run's deadline or cancellation) every call is cancelled and Execute
// returns the results so far with context.Cause(ctx). Otherwise the error
// is nil unless Config.FailOnError is set and a call failed. With
// Config.RunTimeout, the run's deadline ends ctx.
func (e *Executor) Execute(ctx context.Context, calls []middleware.ToolCall) ([]Result, error) {
	if e.runTimeout > 0 {
		if run := middleware.RunFrom(ctx); run != nil {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadlineCause(ctx, run.Started().Add(e.runTimeout), e.runCause)
			defer cancel()
		}
	}
	results := make([]Result, len(calls))
	start := e.now()
	run := middleware.RunFrom(ctx)
	// earlier holds the calls of the run's earlier turns given up on
	// while their tools ran: nothing starts beside such a call of a tool
	// with side effects, and no call of a tool with side effects beside
	// any such call.
	var earlier *abandoned
	if run != nil {
		earlier = runAbandoned(run)
	}
	if len(calls) > 0 {
		// The turn runs on goroutines of its own, Execute's caller's only
		// waiting (see turn): a tool or an observer that calls
		// runtime.Goexit ends one of them, never the caller. While a call
		// of an earlier turn of a tool with side effects still runs, no
		// call is run (ErrNotRun).
		t := &turn{e: e, ctx: ctx, calls: calls, results: results, earlier: earlier, own: callState{i: -1},
			stopped: ctx.Err() == nil && earlier.running(ctx, true)}
		t.done.Add(1)
		go t.loop()
		t.done.Wait()
	}
	if run != nil && len(calls) > 0 {
		earlier.add(results, e.sideEffects)
		recordTurn(run, e.now().Sub(start), results)
	}
	if ctx.Err() != nil {
		return results, context.Cause(ctx)
	}
	if e.failOnError {
		for i := range results {
			if err := results[i].Err; err != nil {
				// The call's own *Error (its timeout, its tool's error),
				// whose message is the observation the model got.
				var te *Error
				if errors.As(err, &te) {
					return results, te
				}
				return results, &Error{Tool: results[i].Name, CallID: results[i].CallID, Err: err}
			}
		}
	}
	return results, nil
}

// stillRunning reports whether a call of results was given up on while
// its tool ran (a tool that ignores its context) and the tool has not
// returned since, waiting for it up to its timeout once more (or until
// ctx ends): a tool that stops at its timeout returns at once.
func stillRunning(ctx context.Context, results []Result) bool {
	var wait <-chan time.Time
	for i := range results {
		var te *Error
		if !errors.As(results[i].Err, &te) || te.ended == nil {
			continue
		}
		if wait == nil {
			d := te.Timeout
			for j := i + 1; j < len(results); j++ {
				var o *Error
				if errors.As(results[j].Err, &o) {
					d = max(d, o.Timeout)
				}
			}
			t := time.NewTimer(d)
			defer t.Stop()
			wait = t.C
		}
		select {
		case <-te.ended:
		case <-wait:
			return true
		case <-ctx.Done():
			return true
		}
	}
	return false
}

// abandoned holds the calls of a run given up on while their tools ran
// (tools that ignore their context), until the tools return: a later turn
// of the run starts nothing beside such a call of a tool with side
// effects, and no call of a tool with side effects beside any such call
// (see Execute).
type abandoned struct {
	mu    sync.Mutex
	calls []abandonedCall
}

type abandonedCall struct {
	ended <-chan struct{} // closed when the tool returns
	until time.Time       // the end of its wait "once more": given up on, plus its timeout
	side  bool            // a tool with side effects
}

type abandonedKey struct{}

// runAbandoned returns the calls of run given up on while their tools ran.
func runAbandoned(run *middleware.Run) *abandoned {
	return middleware.RunValue(run, abandonedKey{}, func() *abandoned { return new(abandoned) })
}

// add keeps the calls of results given up on whose tools still run.
func (a *abandoned) add(results []Result, side func(name string) bool) {
	for i := range results {
		var te *Error
		if !errors.As(results[i].Err, &te) || te.ended == nil {
			continue
		}
		select {
		case <-te.ended:
			continue
		default:
		}
		a.mu.Lock()
		a.calls = append(a.calls, abandonedCall{ended: te.ended, until: te.givenAt.Add(te.Timeout), side: side(results[i].Name)})
		a.mu.Unlock()
	}
}

// running reports whether a call of an earlier turn (of a tool with side
// effects, if side) still runs, waiting for each up to the end of its
// timeout once more from when it was given up on (or until ctx ends).
// Calls whose tools have returned are forgotten.
func (a *abandoned) running(ctx context.Context, side bool) bool {
	if a == nil {
		return false
	}
	a.mu.Lock()
	pending := make([]abandonedCall, 0, len(a.calls))
	for _, c := range a.calls {
		select {
		case <-c.ended:
		default:
			pending = append(pending, c)
		}
	}
	a.calls = pending
	pending = slices.Clone(pending)
	a.mu.Unlock()
	for _, c := range pending {
		if side && !c.side {
			continue
		}
		if d := time.Until(c.until); d > 0 {
			t := time.NewTimer(d)
			select {
			case <-c.ended:
			case <-t.C:
			case <-ctx.Done():
			}
			t.Stop()
		}
		select {
		case <-c.ended:
		default:
			return true
		}
	}
	return false
}

// notRun gives calls[lo:hi] the ErrNotRun observation, recorded as each
// call's result, without running them.
func (e *Executor) notRun(ctx context.Context, calls []middleware.ToolCall, results []Result, lo, hi int) {
	now := e.now()
	for i := lo; i < hi; i++ {
		c := &calls[i]
		e.safeFinish(&results[i], ctx, c, e.tools[c.Name], now, "", false, &Error{Tool: c.Name, CallID: c.ID, Err: ErrNotRun})
	}
}

// sideEffects reports whether the named tool has side effects (an unknown
// tool has none).
func (e *Executor) sideEffects(name string) bool {
	t, ok := e.tools[name]
	return ok && t.Meta.SideEffects
}

// timeoutOf returns the timeout of a call to t (zero: none).
func (e *Executor) timeoutOf(t Tool) time.Duration {
	if t.Meta.Timeout > 0 {
		return t.Meta.Timeout
	}
	return e.timeout
}

// sameTimeout returns the timeout the calls share, if they do (an unknown
// tool takes any).
func (e *Executor) sameTimeout(calls []middleware.ToolCall) (d time.Duration, same bool) {
	set := false
	for i := range calls {
		t, ok := e.tools[calls[i].Name]
		if !ok {
			continue
		}
		td := e.timeoutOf(*t)
		if set && td != d {
			return 0, false
		}
		d, set = td, true
	}
	return d, true
}

// slot is one call of a direct group: the call goroutine claims it when
// its tool returns (state 0 to 1) and fills r; the group claims it when it
// gives up on the call (0 to 2) and the call's late result is dropped.
type slot struct {
	state atomic.Int32
	r     Result
	c     *middleware.ToolCall
	d     time.Duration
	done  chan<- struct{}
	ended chan struct{} // closed when the call's goroutine ends
}

// direct runs calls[lo:hi], which all start at once under the same
// timeout d (zero: none) in an abandonable context: one timer for the
// group instead of one per call, and each tool runs on a goroutine of its
// own, with no further goroutine per call. The calling goroutine waits for
// them; when the group's context ends it stops waiting: a call still
// running gets the timeout (or cancellation) observation and its goroutine
// ends, its result dropped, when the tool returns.
func (e *Executor) direct(ctx context.Context, d time.Duration, calls []middleware.ToolCall, results []Result, lo, hi int) {
	gctx := ctx
	if d > 0 {
		var cancel context.CancelFunc
		gctx, cancel = context.WithTimeoutCause(ctx, d, ErrTimeout)
		defer cancel()
	}
	n := hi - lo
	slots := make([]slot, n)
	done := make(chan struct{}, n) // never blocks a call goroutine
	start := e.now()
	for i := range slots {
		s := &slots[i]
		s.c, s.d, s.done, s.ended = &calls[lo+i], d, done, make(chan struct{})
		go e.directCall(gctx, s)
	}
	pending := n // claimed calls not yet received, and unclaimed ones
	for pending > 0 {
		select {
		case <-done:
			pending--
			continue
		case <-gctx.Done():
		}
		for i := range slots {
			if slots[i].state.CompareAndSwap(0, 2) {
				pending--
			}
		}
		for ; pending > 0; pending-- {
			<-done
		}
	}
	for i := range slots {
		if slots[i].state.Load() == 1 {
			results[lo+i] = slots[i].r
		}
	}
	// The calls given up on are told last: an observer that ends this
	// goroutine (runtime.Goexit) when told of one loses no other call's
	// result.
	for i := range slots {
		if slots[i].state.Load() == 2 {
			c := &calls[lo+i]
			e.safeFinish(&results[lo+i], gctx, c, nil, start, "", false, givenUp(callErr(gctx, *c, d, context.Cause(gctx)), slots[i].ended))
		}
	}
}

// directCall runs one call of a direct group on its own goroutine (whose
// stack starts small: the frames stay lean, pointers rather than values).
func (e *Executor) directCall(ctx context.Context, s *slot) {
	defer close(s.ended)
	claimed, returned, told := false, false, false
	t := e.tools[s.c.Name]
	start := e.now()
	defer func() {
		v := recover()
		if told {
			return
		}
		if v == nil && !returned {
			// The tool called runtime.Goexit: its call failed as a panic,
			// recorded and emitted as any call's.
			if s.state.CompareAndSwap(0, 1) {
				// The group is told even if an observer's Goexit ends
				// safeFinish (after it wrote the result).
				defer func() { s.done <- struct{}{} }()
				e.safeFinish(&s.r, ctx, s.c, t, start, "", false, &Error{Tool: s.c.Name, CallID: s.c.ID, Err: &panicError{v: goexitValue}})
			}
			return
		}
		if v == nil && claimed {
			// An observer told of the call called runtime.Goexit: finish
			// wrote the call's result before telling it. The group is
			// told, or it waits forever.
			s.done <- struct{}{}
			return
		}
		if v != nil {
			// The executor's own work panicked (a tool's panic is
			// recovered by safeCall): the call's error, and the group is
			// told, whoever claimed the slot, even if an observer told of
			// the panic ends this goroutine (runtime.Goexit): the result
			// is written before the observer is told.
			if claimed || s.state.CompareAndSwap(0, 1) {
				defer func() { s.done <- struct{}{} }()
				setPanicResult(&s.r, ctx, s.c, v, nil)
			}
		}
	}()
	var raw string
	var cached bool
	var err error
	if t != nil && !middleware.Ended(ctx) && (!t.Meta.Idempotent || e.cache == nil) {
		// The common call, without get's frame: this goroutine's stack
		// starts small.
		o := safeCall(ctx, t.Call, s.c.Arguments)
		raw, err = o.s, o.err
		returned = true
		if err != nil {
			err = callErr(ctx, *s.c, s.d, err)
		}
	} else {
		raw, cached, err = e.get(ctx, s.c, t, s.d, true, nil)
		returned = true
		var te *Error
		if errors.As(err, &te) && te.ended != nil {
			// Given up on while its tool (run by a flight of identical
			// calls) still runs: the slot's call ends with the tool.
			defer func() { <-te.ended }()
		}
	}
	if !s.state.CompareAndSwap(0, 1) {
		return // given up on: the group reported it
	}
	claimed = true
	e.safeFinish(&s.r, ctx, s.c, t, start, raw, cached, err)
	told = true
	s.done <- struct{}{}
}

// panicResult is the result of call c whose work panicked with v.
func panicResult(ctx context.Context, c *middleware.ToolCall, v any) (r Result) {
	setPanicResult(&r, ctx, c, v, nil)
	return r
}

// setPanicResult writes to r the result of call c whose work panicked
// with v before it tells observers of the panic: one that ends the
// goroutine (runtime.Goexit) leaves the result written. A call given up
// on while its tool runs (was, its error) stays known as such, waited for
// up to its timeout once more as any (see stillRunning).
func setPanicResult(r *Result, ctx context.Context, c *middleware.ToolCall, v any, was error) {
	pe := &panicError{v: v}
	err := &Error{Tool: c.Name, CallID: c.ID, Err: pe}
	var te *Error
	if errors.As(was, &te) && te.ended != nil {
		err.ended, err.givenAt, err.Timeout = te.ended, te.givenAt, te.Timeout
	}
	*r = Result{CallID: c.ID, Name: c.Name, Err: err, Content: err.Error()}
	pe.stack = middleware.Recovered(ctx, "tool executor", v).Stack
}

// get returns the raw result of a call: from the cache, or shared with an
// identical call in flight, or from the tool. Direct: ctx already carries
// the call's timeout d and the caller can abandon it, so the tool is called
// on the calling goroutine.
//
// inTool, when not nil, says that the calling goroutine is a turn's (see
// turn), which may call a tool itself: it is true while the tool runs.
func (e *Executor) get(ctx context.Context, c *middleware.ToolCall, t *Tool, d time.Duration, direct bool, inTool *bool) (raw string, cached bool, err error) {
	switch {
	case t == nil:
		err = &Error{Tool: c.Name, CallID: c.ID, Err: ErrUnknownTool}
	case middleware.Ended(ctx):
		// Ended, or at its deadline (whose timer may not have fired
		// yet): the call does not start at the deadline.
		err = &Error{Tool: c.Name, CallID: c.ID, Err: cmp.Or(context.Cause(ctx), context.DeadlineExceeded)}
	case t.Meta.Idempotent && e.cache != nil:
		key := cacheKey(c.Name, c.Arguments)
		if v, hit := e.cache.get(key); hit {
			return v, true, nil
		}
		tv, cv := *t, *c // copies for the closure: t and c stay on the stack
		for {
			// The call runs under the context of the caller that leads
			// its flight; every caller, leader or not, waits on its own.
			ch := e.flight.DoChan(key, func() (any, error) {
				var s string
				var err error
				if direct {
					// It must end when the leader's context does, not
					// when the tool does.
					s, err = e.await(ctx, tv, cv, d, nil)
				} else {
					s, err = e.invoke(ctx, tv, cv, nil)
				}
				if err == nil {
					e.cache.put(key, s)
				}
				// Ended by its leader's context (a cancellation, the
				// run's deadline), not by the tool or its timeout: that
				// is no result of the calls that joined it.
				left := err != nil && ctx.Err() != nil && !errors.Is(context.Cause(ctx), ErrTimeout)
				return flightResult{s: s, left: left}, err
			})
			select {
			case res := <-ch:
				fr := res.Val.(flightResult)
				if fr.left && !middleware.Ended(ctx) {
					continue // another run's call ended: this one goes on, leading a flight or joining one
				}
				return fr.s, false, ownError(res.Err, c)
			case <-ctx.Done():
				// Given up on while the flight may still run the tool: the
				// error says when it ends (see stillRunning).
				return "", false, givenUp(callErr(ctx, *c, d, context.Cause(ctx)), flightEnded(ch))
			}
		}
	case direct:
		o := safeCall(ctx, t.Call, c.Arguments)
		if o.err != nil {
			return "", false, callErr(ctx, *c, d, o.err)
		}
		raw = o.s
	default:
		raw, err = e.invoke(ctx, *t, *c, inTool)
	}
	return raw, cached, err
}

// ownError is err, the *Error of the call that led a flight c joined,
// as c's own: with c's id (the leader's name and arguments are c's).
func ownError(err error, c *middleware.ToolCall) error {
	te, ok := err.(*Error)
	if !ok || te.CallID == c.ID {
		return err
	}
	own := *te
	own.CallID = c.ID
	return &own
}

// flightEnded returns a channel closed when the flight of ch has ended
// and, if it gave up on its tool, the tool has returned.
func flightEnded(ch <-chan singleflight.Result) <-chan struct{} {
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		res := <-ch
		var te *Error
		if errors.As(res.Err, &te) && te.ended != nil {
			<-te.ended
		}
	}()
	return ended
}

// maxErrorObservation bounds what the model reads of a failed call: a
// tool's error or panic value can be of any size, and is not offloaded.
const maxErrorObservation = 4 << 10

// errorObservation is msg, the error of a call, as the model reads it:
// cut to maxErrorObservation bytes, saying so.
func errorObservation(msg string) string {
	if len(msg) <= maxErrorObservation {
		return msg
	}
	return clip(msg, maxErrorObservation) + " [" + strconv.Itoa(len(msg)) + " bytes of error, cut]"
}

// flightResult is what a flight of identical calls gives those that
// share it: the tool's result, and whether the flight ended because its
// leader's context did.
type flightResult struct {
	s    string
	left bool
}

// finish makes the result r of a call to t (nil: unknown tool) and records
// it in the run and as an event.
func (e *Executor) finish(r *Result, ctx context.Context, c *middleware.ToolCall, t *Tool, start time.Time, raw string, cached bool, err error) {
	*r = Result{CallID: c.ID, Name: c.Name, Cached: cached}
	r.Duration = e.now().Sub(start)
	r.Bytes = len(raw)
	if err != nil {
		r.Err = err
		r.Content = errorObservation(err.Error())
	} else {
		r.Content = raw
		if t != nil && e.arts != nil && t.Name != ReadArtifactName {
			r.Content, r.Artifact, r.SavedTokens = e.arts.offload(ctx, t.Name, raw)
		}
	}
	if run := middleware.RunFrom(ctx); run != nil {
		run.RecordTool(middleware.ToolRecord{Name: r.Name, CallID: r.CallID, Duration: r.Duration, Err: r.Err, Cached: r.Cached,
			Artifact: r.Artifact, SavedTokens: r.SavedTokens})
	}
	if middleware.Observing(ctx) {
		middleware.Emit(ctx, middleware.ToolFinished{Name: r.Name, CallID: r.CallID, Duration: r.Duration,
			Err: r.Err, Cached: r.Cached, Bytes: r.Bytes})
	}
}

// safeFinish is finish whose work's panic (an observer's) is the call's
// error, never the end of the goroutine it runs on (Execute's own, for a
// call given up on or not run); a call given up on while its tool runs
// stays known as such (see stillRunning).
func (e *Executor) safeFinish(r *Result, ctx context.Context, c *middleware.ToolCall, t *Tool, start time.Time, raw string, cached bool, err error) {
	defer func() {
		if v := recover(); v != nil {
			// Written before an observer is told of the panic (one may
			// end the goroutine), the call given up on still known to run
			// until its tool returns.
			setPanicResult(r, ctx, c, v, err)
		}
	}()
	e.finish(r, ctx, c, t, start, raw, cached, err)
}

type outcome struct {
	s   string
	err error
	// ended, for a call given up on while its tool still ran, is closed
	// when the tool returns.
	ended chan struct{}
}

// invoke calls the tool under its timeout. A tool that ignores its
// context is abandoned when the context ends: its goroutine finishes on
// its own and its result is dropped.
func (e *Executor) invoke(ctx context.Context, t Tool, c middleware.ToolCall, inTool *bool) (string, error) {
	d := e.timeoutOf(t)
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, ErrTimeout)
		defer cancel()
	}
	return e.await(ctx, t, c, d, inTool)
}

// await calls the tool under ctx, which carries its timeout d, and gives up
// on it when ctx ends. With inTool (the caller is a turn's goroutine, see
// turn) and a ctx that never ends, the tool runs on the calling goroutine,
// inTool true meanwhile.
func (e *Executor) await(ctx context.Context, t Tool, c middleware.ToolCall, d time.Duration, inTool *bool) (string, error) {
	var o outcome
	if ctx.Done() == nil && inTool != nil {
		// A Goexit here ends the turn's goroutine, which fails the call
		// and goes on on another (see turn.loop).
		*inTool = true
		o = safeCall(ctx, t.Call, c.Arguments)
		*inTool = false
	} else if ctx.Done() == nil {
		// Nothing gives up on the call, but the tool still runs on a
		// goroutine of its own: one that calls runtime.Goexit ends that
		// goroutine, not Execute's caller's (or a flight's, whose
		// callers would wait forever).
		b := &boxedCall{ctx: ctx, call: t.Call, args: c.Arguments}
		b.wg.Add(1)
		go b.run()
		b.wg.Wait()
		o = b.o
	} else {
		ch := make(chan outcome, 1)
		ended := make(chan struct{})
		go containedCall(ctx, t.Call, c.Arguments, ch, ended)
		select {
		case o = <-ch:
		case <-ctx.Done():
			select {
			case o = <-ch:
			default:
				o = outcome{err: context.Cause(ctx), ended: ended}
			}
		}
	}
	if o.err == nil {
		return o.s, nil
	}
	if o.ended != nil {
		return "", givenUp(callErr(ctx, c, d, o.err), o.ended)
	}
	return "", callErr(ctx, c, d, o.err)
}

// boxedCall is a tool call run on a goroutine of its own by run, waited
// for on wg, with nothing to give up on it: one allocation besides the
// goroutine.
type boxedCall struct {
	ctx  context.Context
	call Func
	args string
	o    outcome
	wg   sync.WaitGroup
}

func (b *boxedCall) run() {
	defer b.wg.Done()
	returned := false
	defer func() {
		if !returned { // the tool called runtime.Goexit
			b.o = outcome{err: &panicError{v: goexitValue}}
		}
	}()
	b.o = safeCall(b.ctx, b.call, b.args)
	returned = true
}

// containedCall sends the outcome of the tool call on ch (buffered), a
// panic's or a runtime.Goexit's as a panic, and then closes ended. It runs
// on a goroutine of its own.
func containedCall(ctx context.Context, call Func, args string, ch chan<- outcome, ended chan<- struct{}) {
	defer close(ended)
	returned := false
	defer func() {
		if !returned { // the tool called runtime.Goexit
			ch <- outcome{err: &panicError{v: goexitValue}}
		}
	}()
	ch <- safeCall(ctx, call, args)
	returned = true
}

// goexitValue is the panic value of a call whose tool ended its goroutine
// with runtime.Goexit (testing's FailNow) instead of returning: a failed
// call, never a wait without end.
const goexitValue = "the tool called runtime.Goexit instead of returning"

// givenUp marks err, the *Error of a call given up on while its tool
// still runs, with ended, closed when the tool returns (see Execute).
func givenUp(err error, ended <-chan struct{}) error {
	var te *Error
	if errors.As(err, &te) {
		te.ended, te.givenAt = ended, time.Now()
	}
	return err
}

// callErr is the error of call c whose tool (or wait) failed with err
// under ctx.
func callErr(ctx context.Context, c middleware.ToolCall, d time.Duration, err error) error {
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrTimeout) {
		return &Error{Tool: c.Name, CallID: c.ID, Timeout: d, Err: ErrTimeout}
	}
	// The call's own *Error passes as it is; another call's, returned by
	// the tool (a sub-agent's executor), is the tool's error like any.
	var te *Error
	if errors.As(err, &te) && te.CallID == c.ID && te.Tool == c.Name {
		return err
	}
	return &Error{Tool: c.Name, CallID: c.ID, Err: err}
}

func safeCall(ctx context.Context, call Func, args string) (o outcome) {
	defer func() {
		if v := recover(); v != nil {
			o = outcome{err: &panicError{v: v, stack: middleware.Recovered(ctx, "tool", v).Stack}}
		}
	}()
	s, err := call(ctx, args)
	return outcome{s: s, err: err}
}

// ToolNames returns the names of the executor's tools, sorted.
func (e *Executor) ToolNames() []string {
	out := append([]string(nil), e.order...)
	sort.Strings(out)
	return out
}
