package toolwrap

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/tokenwise/tokenwise/middleware"
)

// Option configures an Executor.
type Option func(*config)

type config struct {
	maxParallel int
	timeout     time.Duration
	failOnError bool
	artifacts   *Artifacts
	cacheTTL    time.Duration
	cacheSize   int
	meta        map[string]Meta
	now         func() time.Time
}

// WithMaxParallel bounds the tool calls of one turn that run at the same
// time. Zero or less: 1 (one at a time), as in the policy.
func WithMaxParallel(n int) Option { return func(c *config) { c.maxParallel = n } }

// WithTimeout bounds every tool call that has no timeout of its own.
// Zero: none.
func WithTimeout(d time.Duration) Option { return func(c *config) { c.timeout = d } }

// WithFailOnError makes Execute return the first failed call's *Error (in
// call order) instead of only showing the model the observation. Default:
// errors, panics and timeouts are observations and the run goes on.
func WithFailOnError(fail bool) Option { return func(c *config) { c.failOnError = fail } }

// WithArtifacts offloads large results to a (see Artifacts) and adds the
// read_artifact tool. Default: no offloading.
func WithArtifacts(a *Artifacts) Option { return func(c *config) { c.artifacts = a } }

// WithCache caches the successful results of idempotent tools for ttl,
// keyed on the tool name and the canonical JSON of the arguments, bounded
// by maxEntries (zero: 1024). ttl zero: no cache.
func WithCache(ttl time.Duration, maxEntries int) Option {
	return func(c *config) { c.cacheTTL, c.cacheSize = ttl, maxEntries }
}

// WithMeta overrides the metadata of the named tool (a policy's per_tool
// section): side effects if either says so; idempotent and timeout from m.
func WithMeta(name string, m Meta) Option {
	return func(c *config) {
		if c.meta == nil {
			c.meta = map[string]Meta{}
		}
		c.meta[name] = m
	}
}

// Executor runs one turn's tool calls: independent calls in parallel,
// bounded by MaxParallel; a tool with side effects alone and in order; each
// with its own timeout; errors, timeouts and panics as observations; large
// results offloaded to artifacts; idempotent results cached. Every call is
// recorded in the context's run (middleware.Run.RecordTool) and emitted as
// a middleware.ToolFinished event.
//
// An Executor is safe for concurrent use.
type Executor struct {
	tools       map[string]Tool
	order       []string
	maxParallel int
	timeout     time.Duration
	failOnError bool
	arts        *Artifacts
	cache       *resultCache
	flight      singleflight.Group
	now         func() time.Time
}

// New returns an executor of tools. Tool names must be unique and non-empty
// and every tool needs a Call. With artifacts on, the read_artifact tool is
// added unless a tool of that name is given.
func New(tools []Tool, opts ...Option) (*Executor, error) {
	c := config{now: time.Now}
	for _, o := range opts {
		o(&c)
	}
	e := &Executor{tools: make(map[string]Tool, len(tools)+1), maxParallel: max(c.maxParallel, 1),
		timeout: c.timeout, failOnError: c.failOnError, arts: c.artifacts, now: c.now}
	all := append([]Tool(nil), tools...)
	if e.arts != nil {
		if _, dup := findTool(all, ReadArtifactName); !dup {
			all = append(all, e.arts.ReadTool())
		}
	}
	for _, t := range all {
		switch {
		case t.Name == "":
			return nil, errors.New("toolwrap: a tool has no name")
		case t.Call == nil:
			return nil, fmt.Errorf("toolwrap: tool %s has no Call", t.Name)
		}
		if _, dup := e.tools[t.Name]; dup {
			return nil, fmt.Errorf("toolwrap: tool %s given twice", t.Name)
		}
		if m, ok := c.meta[t.Name]; ok {
			t.Meta.SideEffects = t.Meta.SideEffects || m.SideEffects
			t.Meta.Idempotent = m.Idempotent
			if m.Timeout > 0 {
				t.Meta.Timeout = m.Timeout
			}
		}
		e.tools[t.Name] = t
		e.order = append(e.order, t.Name)
	}
	if c.cacheTTL > 0 {
		e.cache = newResultCache(c.cacheTTL, c.cacheSize, c.now)
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
	return t, ok
}

// Artifacts returns the executor's artifacts, or nil.
func (e *Executor) Artifacts() *Artifacts { return e.arts }

// Execute runs one turn's calls and returns their results in call order.
//
// Calls to tools without side effects run concurrently, at most
// MaxParallel at once; a call to a tool with side effects waits for every
// earlier call, runs alone, and the later calls wait for it. When ctx ends
// (the run's deadline or cancellation) every call is cancelled and Execute
// returns the results so far with context.Cause(ctx). Otherwise the error
// is nil unless WithFailOnError is set and a call failed.
func (e *Executor) Execute(ctx context.Context, calls []middleware.ToolCall) ([]Result, error) {
	results := make([]Result, len(calls))
	start := e.now()
	for lo := 0; lo < len(calls); {
		if e.tools[calls[lo].Name].Meta.SideEffects {
			results[lo] = e.one(ctx, calls[lo])
			lo++
			continue
		}
		hi := lo + 1
		for hi < len(calls) && !e.tools[calls[hi].Name].Meta.SideEffects {
			hi++
		}
		e.group(ctx, calls, results, lo, hi)
		lo = hi
	}
	if run := middleware.RunFrom(ctx); run != nil && len(calls) > 0 {
		recordTurn(run, e.now().Sub(start), results)
	}
	if ctx.Err() != nil {
		return results, context.Cause(ctx)
	}
	if e.failOnError {
		for i := range results {
			if results[i].Err != nil {
				return results, &Error{Tool: results[i].Name, CallID: results[i].CallID, Err: results[i].Err}
			}
		}
	}
	return results, nil
}

// group runs calls[lo:hi], all without side effects, on at most
// MaxParallel workers; the calling goroutine is one of them, and workers
// take the next call as they become free.
func (e *Executor) group(ctx context.Context, calls []middleware.ToolCall, results []Result, lo, hi int) {
	w := min(e.maxParallel, hi-lo)
	if w <= 1 {
		for i := lo; i < hi; i++ {
			results[i] = e.one(ctx, calls[i])
		}
		return
	}
	var next atomic.Int64
	next.Store(int64(lo))
	work := func() {
		for {
			i := int(next.Add(1) - 1)
			if i >= hi {
				return
			}
			results[i] = e.one(ctx, calls[i])
		}
	}
	var wg sync.WaitGroup
	for range w - 1 {
		wg.Go(work)
	}
	work()
	wg.Wait()
}

// one runs a single call: cache, timeout, panic recovery, artifact offload,
// run record and event.
func (e *Executor) one(ctx context.Context, c middleware.ToolCall) Result {
	r := Result{CallID: c.ID, Name: c.Name}
	t, ok := e.tools[c.Name]
	start := e.now()
	var raw string
	var err error
	switch {
	case !ok:
		err = &Error{Tool: c.Name, CallID: c.ID, Err: ErrUnknownTool}
	case ctx.Err() != nil:
		err = &Error{Tool: c.Name, CallID: c.ID, Err: context.Cause(ctx)}
	case t.Meta.Idempotent && e.cache != nil:
		key := cacheKey(c.Name, c.Arguments)
		if v, hit := e.cache.get(key); hit {
			raw, r.Cached = v, true
			break
		}
		v, ferr, _ := e.flight.Do(key, func() (any, error) {
			s, err := e.invoke(ctx, t, c)
			if err == nil {
				e.cache.put(key, s)
			}
			return s, err
		})
		raw, err = v.(string), ferr
	default:
		raw, err = e.invoke(ctx, t, c)
	}
	r.Duration = e.now().Sub(start)
	r.Bytes = len(raw)
	if err != nil {
		r.Err = err
		r.Content = err.Error()
	} else {
		r.Content = raw
		if e.arts != nil && t.Name != ReadArtifactName {
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
	return r
}

type outcome struct {
	s   string
	err error
}

// invoke calls the tool under its timeout. A tool that ignores its
// context is abandoned when the context ends: its goroutine finishes on
// its own and its result is dropped.
func (e *Executor) invoke(ctx context.Context, t Tool, c middleware.ToolCall) (string, error) {
	d := t.Meta.Timeout
	if d <= 0 {
		d = e.timeout
	}
	if d > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeoutCause(ctx, d, ErrTimeout)
		defer cancel()
	}
	var o outcome
	if ctx.Done() == nil {
		o = safeCall(ctx, t, c.Arguments)
	} else {
		ch := make(chan outcome, 1)
		go func() { ch <- safeCall(ctx, t, c.Arguments) }()
		select {
		case o = <-ch:
		case <-ctx.Done():
			select {
			case o = <-ch:
			default:
				o = outcome{err: context.Cause(ctx)}
			}
		}
	}
	if o.err == nil {
		return o.s, nil
	}
	if ctx.Err() != nil && errors.Is(context.Cause(ctx), ErrTimeout) {
		return "", &Error{Tool: t.Name, CallID: c.ID, Timeout: d, Err: ErrTimeout}
	}
	var te *Error
	if errors.As(o.err, &te) {
		return "", o.err
	}
	return "", &Error{Tool: t.Name, CallID: c.ID, Err: o.err}
}

func safeCall(ctx context.Context, t Tool, args string) (o outcome) {
	defer func() {
		if v := recover(); v != nil {
			o = outcome{err: &panicError{v: v}}
		}
	}()
	s, err := t.Call(ctx, args)
	return outcome{s: s, err: err}
}

// ToolNames returns the names of the executor's tools, sorted.
func (e *Executor) ToolNames() []string {
	out := append([]string(nil), e.order...)
	sort.Strings(out)
	return out
}
