package fallback

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
)

// ErrChainFailed: the call failed on every model the chain tried.
var ErrChainFailed = errors.New("tokenwise/fallback: every model tried failed")

// ErrHedgeLost is the cause of the cancellation of a hedged attempt that
// lost the race.
var ErrHedgeLost = errors.New("tokenwise/fallback: another attempt answered first")

// Error is returned when more than one model was tried and the call still
// failed. It lists every attempt in order; errors.Is matches
// ErrChainFailed and each attempt's error (so a chain that ended on a rate
// limit matches middleware.ErrRateLimited), errors.As finds the first
// attempt error of the wanted type.
type Error struct {
	Attempts []middleware.Attempt
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(ErrChainFailed.Error())
	fmt.Fprintf(&b, " (%d attempts)", len(e.Attempts))
	for i, a := range e.Attempts {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(a.Model)
		if a.Hedge {
			b.WriteString(" (hedge)")
		}
		b.WriteString(": ")
		if a.Err != nil {
			b.WriteString(a.Err.Error())
		} else {
			b.WriteString("ok")
		}
	}
	return b.String()
}

// Is matches ErrChainFailed.
func (e *Error) Is(target error) bool { return target == ErrChainFailed }

// Unwrap returns the attempts' errors, in order.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, len(e.Attempts))
	for _, a := range e.Attempts {
		if a.Err != nil {
			errs = append(errs, a.Err)
		}
	}
	return errs
}

// DefaultOn returns the errors that move a call on when Config.On is nil:
// rate limits, exhausted quotas, unavailable providers, timeouts, network
// failures, cut streams, malformed answers, open breakers and
// context-window errors.
func DefaultOn() []error {
	return []error{middleware.ErrRateLimited, middleware.ErrQuotaExceeded, middleware.ErrUnavailable,
		middleware.ErrTimeout, middleware.ErrNetwork, middleware.ErrStreamCut, middleware.ErrMalformed,
		breaker.ErrOpen, middleware.ErrContextWindow}
}

// ErrConfig: New was given a Config it cannot use (a negative hedge
// field, a percentile outside [0, 100), an empty model name).
var ErrConfig = errors.New("tokenwise/fallback: invalid config")

// Config is the chain. The zero value has no fallback models (Middleware
// returns nil).
type Config struct {
	// Models are tried in order after the requested model, each at most
	// once. Nil: no fallback models.
	Models []string
	// On lists the errors (matched with errors.Is) that move a call to the
	// next model. Nil: DefaultOn. A cancellation never moves on.
	On []error
	// Stop lists errors (matched with errors.Is) that never move on, even
	// when they match On: e.g. a rate limit's refusal meant for the caller.
	// Nil: none.
	Stop []error
	// LargerWindow lists extra models, tried after Models, only to escalate
	// a context-window error (see WithWindows). Nil: none.
	LargerWindow []string
	// Hedge configures hedging. Zero: off.
	Hedge Hedge
	// Allow, when set, is asked before a call of the requested model
	// moves on to candidate, one of Models: false skips it (e.g. a
	// model dearer than the one asked for). LargerWindow's models, tried
	// to escalate a context-window error, are not asked. Nil: all.
	Allow func(requested, candidate string) bool
}

// Hedge configures hedging: the call is sent to the next model too when the
// first has not answered after min(Delay, the Percentile of its recent
// latencies). With only Percentile set, hedging starts once MinSamples
// latencies were seen.
type Hedge struct {
	Delay      time.Duration // zero: not used
	Percentile float64       // in (0,100); zero: not used
	MinSamples int           // zero: 20
	Samples    int           // latencies kept per model; zero: 256
}

func (h Hedge) enabled() bool { return h.Delay > 0 || h.Percentile > 0 }

// Option configures code-side aspects of the middleware.
type Option func(*options)

type options struct {
	estimate func(*middleware.Request) int64
	window   func(model string) int64
	maxOut   func(model string) int64
}

// WithMaxOutput tells the fallback each model's maximum output in tokens
// (0: unknown). A call moved on to a model whose maximum is below the
// caller's max_tokens is sent with that maximum instead: a provider refuses
// a max_tokens above the model's own with a bad request, which would end
// the chain. Without it the caller's max_tokens goes as it is.
func WithMaxOutput(fn func(model string) int64) Option { return func(o *options) { o.maxOut = fn } }

// WithWindows tells the fallback each model's context window in tokens (0:
// unknown), as route.WithWindows tells the router. A context-window error
// moves on only to a model whose window is known and larger than the
// failed model's. Without it context-window errors do not move on.
func WithWindows(fn func(model string) int64) Option { return func(o *options) { o.window = fn } }

// WithInputEstimate replaces the estimate of a request's input tokens that
// a cancelled hedge reported in the fallback's Error is given. Default:
// middleware.EstimateInput. (What a call cost is the Meter's business:
// middleware.Meter records and prices each attempt.)
func WithInputEstimate(fn func(*middleware.Request) int64) Option {
	return func(o *options) {
		if fn != nil {
			o.estimate = fn
		}
	}
}

type fallback struct {
	c        Config
	on       []error
	estimate func(*middleware.Request) int64
	window   func(model string) int64 // nil: context-window errors end the call
	maxOut   func(model string) int64 // nil: max_tokens goes as the caller set it

	mu   sync.Mutex
	lat  map[string]*ring
	next middleware.Handler
}

// Fallback is the fallback layer. It is safe for concurrent use.
type Fallback struct {
	proto *fallback // settings only: each Middleware call makes its own
	off   bool
}

// New returns the fallback layer of c. It fails (with an error matching
// ErrConfig) on a negative hedge field, a percentile outside [0, 100) or
// an empty model name.
func New(c Config, opts ...Option) (*Fallback, error) {
	h := c.Hedge
	if h.Delay < 0 || h.Percentile < 0 || h.Percentile >= 100 || h.MinSamples < 0 || h.Samples < 0 {
		return nil, fmt.Errorf("%w: hedge %+v", ErrConfig, h)
	}
	for _, m := range append(slices.Clip(c.Models), c.LargerWindow...) {
		if m == "" {
			return nil, fmt.Errorf("%w: an empty model name", ErrConfig)
		}
	}
	if len(c.Models) == 0 && len(c.LargerWindow) == 0 && !c.Hedge.enabled() {
		return &Fallback{off: true}, nil
	}
	o := &options{estimate: middleware.EstimateInput}
	for _, opt := range opts {
		if opt != nil {
			opt(o)
		}
	}
	proto := &fallback{c: c, on: c.On, estimate: o.estimate, window: o.window, maxOut: o.maxOut}
	if proto.on == nil {
		proto.on = DefaultOn()
	}
	if c.Hedge.MinSamples <= 0 {
		proto.c.Hedge.MinSamples = 20
	}
	if c.Hedge.Samples <= 0 {
		proto.c.Hedge.Samples = 256
	}
	return &Fallback{proto: proto}, nil
}

// Middleware returns the fallback middleware, or nil when the Config has
// no models to fall back to and no hedging. The middleware is safe for
// concurrent use.
func (fb *Fallback) Middleware() middleware.Middleware {
	if fb.off {
		return nil
	}
	proto := fb.proto
	return func(next middleware.Handler) middleware.Handler {
		f := &fallback{c: proto.c, on: proto.on, estimate: proto.estimate, window: proto.window,
			maxOut: proto.maxOut, lat: map[string]*ring{}, next: next}
		return f
	}
}

// result is the outcome of one attempt.
type result struct {
	model   string
	resp    *middleware.Response
	err     error
	lat     time.Duration
	hedge   bool
	started bool // a chunk reached the caller
	usage   middleware.Usage
}

func (f *fallback) moveOn(err error) bool {
	if middleware.IsCancellation(err) {
		return false
	}
	for _, s := range f.c.Stop {
		if errors.Is(err, s) {
			return false
		}
	}
	for _, s := range f.on {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// Handle implements middleware.Handler.
func (f *fallback) Handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	var (
		triedBuf [4]string // no allocation for short chains
		resBuf   [2]result
		tried    = triedBuf[:0]
		results  = resBuf[:0]
		last     *result
		fixed    = middleware.FixedModel(ctx) // the endpoint serves req.Model only
	)
	for {
		model, ok := f.nextModel(ctx, req.Model, tried, last, fixed)
		if !ok {
			break
		}
		if last != nil && middleware.Observing(ctx) {
			middleware.Emit(ctx, middleware.FellBack{From: last.model, To: model, Err: last.err})
		}
		var rs []result
		hedgeTo := ""
		if len(tried) == 0 && req.Stream == nil && f.c.Hedge.enabled() {
			hedgeTo, _ = f.nextModel(ctx, req.Model, []string{model}, nil, fixed)
			if hedgeTo == "" {
				// One model: the hedge is a second request to the same
				// model (another connection, often another replica).
				hedgeTo = model
			}
		}
		if hedgeTo != "" {
			rs = f.hedged(ctx, req, model, hedgeTo)
		} else {
			rs = []result{f.try(ctx, req, model, false)}
		}
		for i := range rs {
			tried = append(tried, rs[i].model)
		}
		results = append(results, rs...)
		if win := winner(rs); win != nil {
			return f.finish(ctx, req, results, win)
		}
		last = &results[len(results)-1]
		if (last.started && !middleware.StreamHeld(ctx)) || middleware.Ended(ctx) || !f.moveOn(last.err) {
			break
		}
	}
	return f.finish(ctx, req, results, nil)
}

func winner(rs []result) *result {
	for i := range rs {
		if rs[i].err == nil {
			return &rs[i]
		}
	}
	return nil
}

// nextModel returns the next model to try: the requested one first, then
// the fallback models, skipping those tried; after a context-window error,
// only models with a larger known window, LargerWindow included; when
// fixed (middleware.FixedModel), none but the requested one; never one
// the caller's endpoint does not serve (middleware.Serves).
func (f *fallback) nextModel(ctx context.Context, requested string, tried []string, last *result, fixed bool) (string, bool) {
	if len(tried) == 0 {
		return requested, true
	}
	if fixed {
		return "", false
	}
	window := last != nil && errors.Is(last.err, middleware.ErrContextWindow)
	var need int64
	if window {
		if f.window == nil {
			return "", false
		}
		need = f.window(last.model)
	}
	cands := f.c.Models
	if window {
		cands = append(slices.Clip(cands), f.c.LargerWindow...)
	}
	for i, m := range cands {
		if m == requested || slices.Contains(tried, m) || !middleware.Serves(ctx, m) {
			continue
		}
		if f.c.Allow != nil && i < len(f.c.Models) && !f.c.Allow(requested, m) {
			continue
		}
		if window {
			if w := f.window(m); w <= 0 || w <= need {
				continue
			}
		}
		return m, true
	}
	return "", false
}

// try runs one attempt against model.
func (f *fallback) try(ctx context.Context, req *middleware.Request, model string, hedge bool) result {
	r := req
	var started *atomic.Bool
	if model != req.Model || req.Stream != nil {
		r = middleware.CallInfoFrom(ctx).CloneRequest(req)
		r.Model = model
		if model != req.Model {
			middleware.FitMaxTokens(ctx, r, f.maxOut)
		}
	}
	if req.Stream != nil {
		started = new(atomic.Bool)
		inner := req.Stream
		r.Stream = func(ctx context.Context, c middleware.Chunk) error {
			started.Store(true)
			return inner(ctx, c)
		}
	}
	if hedge {
		ctx = middleware.WithHedgedAttempt(ctx)
	}
	if model != req.Model || hedge {
		// Another attempt than the call's first: a budget above admits
		// it at its own model's worst case (middleware.AttemptNoter).
		if err := middleware.AdmitAttempt(ctx, r); err != nil {
			return result{model: model, err: err, hedge: hedge}
		}
	}
	mark := middleware.MarkAttempt(ctx)
	start := time.Now()
	resp, err := f.next.Handle(ctx, r)
	middleware.NoteAttempt(ctx, mark, r, resp, err)
	res := result{model: model, resp: resp, err: err, lat: time.Since(start), hedge: hedge}
	if started != nil {
		res.started = started.Load()
	}
	if resp != nil && !resp.FromCache {
		res.usage = resp.Usage
	}
	if err == nil {
		f.record(model, res.lat)
	}
	return res
}

// safeTry is try on a goroutine of its own: a panic under it is the
// attempt's error (a *middleware.PanicError), never the process's end.
func (f *fallback) safeTry(ctx context.Context, req *middleware.Request, model string, hedge bool) (res result) {
	defer func() {
		if v := recover(); v != nil {
			res = result{model: model, hedge: hedge, err: middleware.Recovered(ctx, "fallback hedge", v)}
		}
	}()
	return f.try(ctx, req, model, hedge)
}

// hedged runs model, and hedgeTo as well if model is slow. It returns the
// attempts in the order they started, after all of them ended.
func (f *fallback) hedged(ctx context.Context, req *middleware.Request, model, hedgeTo string) []result {
	delay, ok := f.delay(model)
	if !ok {
		return []result{f.try(ctx, req, model, false)}
	}
	ctx0, cancel0 := context.WithCancelCause(ctx)
	defer cancel0(nil)
	ch := make(chan result, 2)
	go func() { ch <- f.safeTry(ctx0, req, model, false) }()
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case r := <-ch:
		return []result{r}
	case <-ctx.Done():
		return []result{<-ch}
	case <-t.C:
	}
	ctx1, cancel1 := context.WithCancelCause(ctx)
	defer cancel1(nil)
	go func() { ch <- f.safeTry(ctx1, req, hedgeTo, true) }()
	first := <-ch
	if first.err == nil {
		if !first.hedge {
			cancel1(ErrHedgeLost)
		} else {
			cancel0(ErrHedgeLost)
		}
	}
	second := <-ch
	if first.err == nil {
		if second.err != nil && second.usage.IsZero() {
			second.usage = middleware.Usage{InputTokens: f.estimate(req)}
		}
		if !second.hedge && second.err != nil {
			f.record(model, second.lat) // censored: it was at least this slow
		}
	}
	if first.hedge {
		first, second = second, first // report in start order
	}
	return []result{first, second}
}

// finish returns the call's outcome. (The attempts and their costs are
// recorded by middleware.Meter, at the provider.)
func (f *fallback) finish(ctx context.Context, req *middleware.Request, rs []result, win *result) (*middleware.Response, error) {
	final := win
	if final == nil {
		final = &rs[len(rs)-1]
	}
	if ci := middleware.CallInfoFrom(ctx); ci != nil {
		ci.Update(func(fc *middleware.CallFacts) {
			fc.Model = final.model
			if win != nil && win.model != req.Model && fc.OffRoute == "" {
				fc.OffRoute = "fallback: answered by " + win.model + ", not " + req.Model
			}
		})
	}
	if win != nil {
		return win.resp, nil
	}
	if len(rs) == 1 {
		return final.resp, final.err
	}
	atts := make([]middleware.Attempt, len(rs))
	for i := range rs {
		atts[i] = rs[i].attempt()
	}
	return final.resp, &Error{Attempts: atts}
}

func (r *result) attempt() middleware.Attempt {
	return middleware.Attempt{Model: r.model, Latency: r.lat, Err: r.err, Hedge: r.hedge, Usage: r.usage}
}

// ring keeps a model's recent latencies.
type ring struct {
	d    []time.Duration
	next int
	full bool
}

func (f *fallback) record(model string, d time.Duration) {
	if f.c.Hedge.Percentile <= 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.lat[model]
	if r == nil {
		r = &ring{d: make([]time.Duration, f.c.Hedge.Samples)}
		f.lat[model] = r
	}
	r.d[r.next] = d
	r.next++
	if r.next == len(r.d) {
		r.next, r.full = 0, true
	}
}

// delay returns how long to wait before hedging a call to model, false
// when it should not be hedged (yet).
func (f *fallback) delay(model string) (time.Duration, bool) {
	h := f.c.Hedge
	d, ok := h.Delay, h.Delay > 0
	if h.Percentile <= 0 {
		return d, ok
	}
	f.mu.Lock()
	var xs []time.Duration
	if r := f.lat[model]; r != nil {
		n := r.next
		if r.full {
			n = len(r.d)
		}
		xs = append(xs, r.d[:n]...)
	}
	f.mu.Unlock()
	if len(xs) < h.MinSamples {
		return d, ok
	}
	slices.Sort(xs)
	i := int(float64(len(xs)) * h.Percentile / 100)
	i = min(max(i, 0), len(xs)-1)
	if p := xs[i]; !ok || p < d {
		return p, true
	}
	return d, true
}
