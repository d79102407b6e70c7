package middleware

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/internal/ctxval"
)

type teamKey struct{}
type stageKey struct{}
type callKey struct{}
type observerKey struct{}

// WithTeam returns a context whose calls are attributed to team: team
// budgets, team-scoped cache entries and the team's policy apply to them.
func WithTeam(ctx context.Context, team string) context.Context {
	return context.WithValue(ctx, teamKey{}, team)
}

// TeamFrom returns the team set by WithTeam, or "".
func TeamFrom(ctx context.Context) string {
	switch t := ctx.Value(teamKey{}).(type) {
	case string:
		return t
	case *string: // StartTeamRun's and WithTeamRun's
		return *t
	}
	return ""
}

// Stage is the step of an agent loop a call belongs to.
type Stage string

// The stages of an agent loop (the seed's multi-model pattern).
const (
	StageUnknown        Stage = ""
	StageToolSelection  Stage = "tool_selection"  // choosing which tool to call
	StageResultAnalysis Stage = "result_analysis" // reading tool results
	StageFinalAnswer    Stage = "final_answer"    // writing the answer to the user
)

// WithStage returns a context that declares the stage of the calls made
// with it, overriding automatic detection.
func WithStage(ctx context.Context, s Stage) context.Context {
	return context.WithValue(ctx, stageKey{}, s)
}

// StageFrom returns the stage set by WithStage, or StageUnknown.
func StageFrom(ctx context.Context) Stage {
	s, _ := ctx.Value(stageKey{}).(Stage)
	return s
}

// CacheStatus says how a cache treated a call.
type CacheStatus string

// Cache statuses recorded in CallFacts.
const (
	CacheNone    CacheStatus = ""       // no cache on the path
	CacheHit     CacheStatus = "hit"    // answered from the cache
	CacheMiss    CacheStatus = "miss"   // not found; the answer may have been stored
	CacheBypass  CacheStatus = "bypass" // the request was not eligible or asked to bypass
	CacheRefresh CacheStatus = "refresh"
)

// Attempt is one try of a call against one model.
type Attempt struct {
	Model string
	// Start is when the attempt was sent (the Meter sets it); zero when
	// unknown.
	Start   time.Time
	Latency time.Duration
	Err     error // nil for the successful attempt
	Hedge   bool  // started by hedging, in parallel with another attempt
	Usage   Usage // billed: the answer's, a cut stream's partial usage, or an estimate for a cancelled hedge
	// CostPico is what Usage cost on Model, exact, in pico-USD (see
	// FormatPico): priced once, by the Meter.
	CostPico int64
	// Estimated is set when Usage (and so CostPico) is an estimate, not
	// the provider's count: the provider reported no usage (a stream cut
	// before its usage chunk, a server that sends none, an attempt
	// cancelled or timed out in flight, an answer cut after its 2xx
	// status: [AnswerCutError]). The Meter sets it; reports show it beside
	// the figure.
	Estimated bool
}

// UsageEstimated reports whether any attempt of the call was billed an
// estimate (Attempt.Estimated): its cost is then in part an estimate.
func (f *CallFacts) UsageEstimated() bool {
	for i := range f.Attempts {
		if f.Attempts[i].Estimated {
			return true
		}
	}
	return false
}

// Retry is one failed try that a retry layer tried again.
type Retry struct {
	Model string
	Wait  time.Duration // the backoff before the next try
	Err   error
}

// CallFacts are the facts middlewares learn about one call while it runs.
type CallFacts struct {
	Run            string // run id, "" outside a run
	Seq            int    // 1-based number of the call in its run
	Team           string
	Stage          Stage  // declared with WithStage, else detected once before the call (llmwrap/instrument)
	Final          bool   // the answer was a final answer (no tool call), whatever the stage
	RequestedModel string // the model the caller asked for
	Model          string // the model that answered (or was last tried)
	Rule           string // why the router picked Model, e.g. `rule 2 "cheap-tools": stage=tool_selection`
	Cache          CacheStatus
	Saved          Usage // tokens a cache hit or a compaction saved
	SavedPico      int64 // USD (pico, exact) those saved tokens represent
	CostPico       int64 // USD (pico, exact) billed for this call: the sum of its Attempts' costs (see Meter)
	// Routed is set when a router moved the call to a model other than
	// the one it was on (a rule, a cascade's step, a regeneration).
	Routed bool
	// RoutingSavedPico is what routing saved on the call (USD pico): the
	// usage of the answer it passed on priced at RequestedModel, less
	// CostPico — negative when routing chose a dearer model or paid for
	// an escalation (a cascade's rejected answer, a regeneration). Set by
	// the instrument layer (llmwrap/instrument), and by the gateway for its
	// Responses calls, with RoutingSaved: for a Routed call whose models
	// all have a price; else 0.
	RoutingSavedPico int64
	Attempts         []Attempt
	Retries          []Retry       // tries a retry layer repeated, in order
	ToolCalls        []string      // the tools the answer asked for, by name, in order
	Notes            []string      // free-form remarks of middlewares (e.g. "compacted 12 messages")
	RateWait         time.Duration // time spent waiting for rate-limit admission, all models
	RateRefusals     int           // rate-limit refusals (rejected or moved on to the next model)
	CacheReason      string        // why the cache missed or bypassed ("request not deterministic"); "" for a hit or a plain miss
	// OffRoute says why the answer is not the one the call's route gives
	// while its models are healthy and its budgets afford them: a
	// fallback model answered after the routed one failed, or a budget
	// downgraded the call. A response cache does not keep such an answer
	// (the next identical call would get another model's). "": none.
	OffRoute string
	// Unkeepable says why a response cache must not keep the answer,
	// whole as it is to this call: a stream that ended cleanly after its
	// finish_reason but without [DONE] nor the usage it was asked for,
	// which may have been cut just before its usage chunk (a hit would
	// lack the usage). "": none.
	Unkeepable string
	// Operation is the GenAI operation of a call that is not a chat
	// ("embeddings", as the gateway reports its embeddings calls); "":
	// chat.
	Operation string
}

// CallInfo holds the CallFacts of one running call. Middlewares update it
// through Update; it is safe for concurrent use (hedged attempts run in
// parallel).
type CallInfo struct {
	mu    sync.Mutex
	facts CallFacts
	memo  []any // CallMemo's values, *memoEntry[K, V]: few, so a list
	// memoArr holds the first values of memo, in the CallInfo's own
	// allocation.
	memoArr [2]any
	// attemptArr holds the first attempt of facts.Attempts (most calls
	// make one), in the CallInfo's own allocation.
	attemptArr [1]Attempt
	// estimate holds the first input token estimate of the call (most
	// calls make one, see Estimate), in the CallInfo's own allocation,
	// once hasEstimate is set.
	estimate estimateEntry

	// Spare room, in the CallInfo's own allocation, for the first request
	// copy (CloneRequest) and the first two deadlines (WithDeadline) of
	// the call: most calls make one copy, and one deadline per layer that
	// bounds them (the run guard's and the timeout layer's).
	spareReq      Request
	spareDeadline [2]Deadline
	spareReqUsed  bool
	spareDLUsed   uint8 // how many of spareDeadline were taken
	hasEstimate   bool

	// outer is the call in whose course this one was made (StartCall
	// under a call's context), nil for none.
	outer *CallInfo
}

// Outer returns the call in whose course the call of ci was made (a
// layer's own call, such as a context compaction's summary, whose context
// is that of the call it serves), nil for a call its caller made. On a nil
// *CallInfo it is nil.
func (ci *CallInfo) Outer() *CallInfo {
	if ci == nil {
		return nil
	}
	return ci.outer
}

// CloneRequest returns a shallow copy of r, as r.Clone does, for a layer
// of this call that changes it (a model, max_tokens). The first copy of
// the call takes no allocation of its own. On a nil *CallInfo it is
// r.Clone().
func (ci *CallInfo) CloneRequest(r *Request) *Request {
	if ci == nil {
		return r.Clone()
	}
	ci.mu.Lock()
	if ci.spareReqUsed {
		ci.mu.Unlock()
		return r.Clone()
	}
	ci.spareReqUsed = true
	ci.mu.Unlock()
	c := &ci.spareReq
	*c = *r
	return c
}

// FitMaxTokens lowers r.MaxTokens to maxOut(r.Model), the maximum output
// of the model a layer moved the call to (0: unknown), when the caller's
// max_tokens is above it, and notes that in the call's facts: the
// provider refuses a max_tokens above the model's own with a bad request
// ("max_tokens is too large"). r must be the layer's own copy of the
// request. A nil maxOut, or a request without max_tokens, changes nothing.
func FitMaxTokens(ctx context.Context, r *Request, maxOut func(model string) int64) {
	if maxOut == nil || r.MaxTokens <= 0 {
		return
	}
	m := maxOut(r.Model)
	if m <= 0 || int64(r.MaxTokens) <= m {
		return
	}
	note := "max_tokens " + strconv.Itoa(r.MaxTokens) + " lowered to " + strconv.FormatInt(m, 10) + ", " + r.Model + "'s maximum output"
	r.MaxTokens = int(m)
	CallInfoFrom(ctx).Update(func(f *CallFacts) { f.Notes = append(f.Notes, note) })
}

// deadline returns a zero Deadline for one of the call's first two
// WithDeadlines, from the CallInfo's own allocation, or nil when both
// were taken.
func (ci *CallInfo) deadline() *Deadline {
	if ci == nil {
		return nil
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if int(ci.spareDLUsed) == len(ci.spareDeadline) {
		return nil
	}
	ci.spareDLUsed++
	return &ci.spareDeadline[ci.spareDLUsed-1]
}

// NewCallInfo returns a CallInfo holding f: the instrument layer opens
// every call with one. The zero CallInfo is ready to use as well.
func NewCallInfo(f CallFacts) *CallInfo {
	ci := &CallInfo{facts: f}
	if f.Attempts == nil {
		ci.facts.Attempts = ci.attemptArr[:0]
	}
	return ci
}

// StartCall returns a context carrying a new CallInfo holding f, and that
// CallInfo: the instrument layer opens every call with it. It is
// NewCallInfo and WithCallInfo in one allocation.
func StartCall(ctx context.Context, f CallFacts) (context.Context, *CallInfo) {
	c := &ctxval.Ctx[callKey, CallInfo]{Context: ctx}
	c.Val.facts = f
	c.Val.outer = CallInfoFrom(ctx)
	if f.Attempts == nil {
		c.Val.facts.Attempts = c.Val.attemptArr[:0]
	}
	return c, &c.Val
}

// StartObservedCall is StartCall(WithObserver(ctx, obs), f) in one
// allocation: the instrument layer opens every call of a chain built
// with an observer with it. A nil obs adds none.
func StartObservedCall(ctx context.Context, f CallFacts, obs Observer) (context.Context, *CallInfo) {
	c := &observedCallCtx{Context: ctx}
	c.obs.Set(ctx, obs)
	c.ci.facts = f
	c.ci.outer = CallInfoFrom(ctx)
	if f.Attempts == nil {
		c.ci.facts.Attempts = c.ci.attemptArr[:0]
	}
	return c, &c.ci
}

// observedCallCtx is StartObservedCall's context: its parent with the
// call's CallInfo and the observer it adds.
type observedCallCtx struct {
	context.Context
	ci  CallInfo
	obs Observed
}

func (c *observedCallCtx) Value(key any) any {
	if _, ok := key.(callKey); ok {
		return &c.ci
	}
	if v, ok := c.obs.Value(key); ok {
		return v
	}
	return c.Context.Value(key)
}

// String names the context, as context.WithValue's String does.
func (c *observedCallCtx) String() string { return "tokenwise context value" }

// ValueParent returns the parent: c adds values to it and nothing else
// (see lazyOver).
func (c *observedCallCtx) ValueParent(ctxval.Only) context.Context { return c.Context }

// CallMemo returns the per-call value of type V kept in ci under key,
// computing it with fn the first time. Layers share per-call work this way
// (the input token estimate is computed once per call and model, whoever
// asks first). The key's type and V together name the value: a package
// keys its values with a type of its own, so packages never collide and a
// value is never read as another type. fn runs under the CallInfo's lock:
// keep it free of calls back into ci. On a nil *CallInfo, CallMemo just
// calls fn.
func CallMemo[K comparable, V any](ci *CallInfo, key K, fn func() V) V {
	if ci == nil {
		return fn()
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if v, ok := memoGet[K, V](ci, key); ok {
		return v
	}
	if ci.memo == nil {
		ci.memo = ci.memoArr[:0]
	}
	// Key and value in one allocation (boxing each would take two).
	e := &memoEntry[K, V]{k: key, v: fn()}
	ci.memo = append(ci.memo, e)
	return e.v
}

// EstimateKey names an input token estimate of a call (see
// [CallInfo.Estimate]): who counts, what of the model the count depends on,
// and the identity of the request's message and tool slices (their first
// elements and lengths), so that a copy of the request that only changed
// the model shares the count and a layer that rewrote the messages gets a
// fresh one.
type EstimateKey struct {
	Estimator any      // the estimator, by pointer: two estimators never share a count
	Encoding  string   // the model's tokenizer
	Rule      [3]int64 // further facts of the model the count depends on
	Messages  *Message // &req.Messages[0], nil when there are none
	N         int      // len(req.Messages)
	Tools     *Tool    // &req.Tools[0], nil when there are none
	NT        int      // len(req.Tools)
}

type estimateEntry struct {
	k EstimateKey
	v int64
}

// Estimate returns the input token estimate of the call named by k,
// computing it with fn the first time: the router, the context layer, the
// budget and the rate limiter share one count per call and model. It is
// CallMemo for estimates, with the first in the CallInfo's own allocation
// (CallMemo allocates each value). fn runs under the CallInfo's lock. On a
// nil *CallInfo, Estimate just calls fn.
func (ci *CallInfo) Estimate(k EstimateKey, fn func() int64) int64 {
	if ci == nil {
		return fn()
	}
	ci.mu.Lock()
	if ci.hasEstimate {
		if ci.estimate.k == k {
			v := ci.estimate.v
			ci.mu.Unlock()
			return v
		}
		ci.mu.Unlock()
		return CallMemo(ci, k, fn)
	}
	v := fn()
	ci.estimate, ci.hasEstimate = estimateEntry{k, v}, true
	ci.mu.Unlock()
	return v
}

// EstimateOf returns the estimate of the call named by k when a layer has
// computed it (see [CallInfo.Estimate]), without computing it: a layer
// that can decide from a bound asks first. False on a nil *CallInfo.
func (ci *CallInfo) EstimateOf(k EstimateKey) (int64, bool) {
	if ci == nil {
		return 0, false
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if ci.hasEstimate && ci.estimate.k == k {
		return ci.estimate.v, true
	}
	return memoGet[EstimateKey, int64](ci, k)
}

// memoGet returns the value CallMemo keeps in ci under key; ci.mu is held.
func memoGet[K comparable, V any](ci *CallInfo, key K) (V, bool) {
	for _, m := range ci.memo {
		// The entry's type is the key's type and V together.
		if e, ok := m.(*memoEntry[K, V]); ok && e.k == key {
			return e.v, true
		}
	}
	var zero V
	return zero, false
}

// memoEntry is one value of CallMemo with its key.
type memoEntry[K comparable, V any] struct {
	k K
	v V
}

// stateKey is the key of a value kept by RunValue: the
// caller's key, typed with the value's type.
type stateKey[K comparable, V any] struct{ k K }

// Update runs fn with the facts locked.
func (ci *CallInfo) Update(fn func(f *CallFacts)) {
	if ci == nil {
		return
	}
	ci.mu.Lock()
	fn(&ci.facts)
	ci.mu.Unlock()
}

// Seq returns the call's number in its run (0 outside a run).
func (ci *CallInfo) Seq() int {
	if ci == nil {
		return 0
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	return ci.facts.Seq
}

// Stage returns the call's stage without copying its facts; StageUnknown
// on a nil *CallInfo.
func (ci *CallInfo) Stage() Stage {
	if ci == nil {
		return StageUnknown
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	return ci.facts.Stage
}

// AttemptCount returns how many attempts the call has made so far (0 on a
// nil *CallInfo): with [CallInfo.AttemptsSince], what a layer's own
// attempts were.
func (ci *CallInfo) AttemptCount() int {
	if ci == nil {
		return 0
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	return len(ci.facts.Attempts)
}

// AttemptsSince returns a copy of the call's attempts from the i-th on
// (nil on a nil *CallInfo).
func (ci *CallInfo) AttemptsSince(i int) []Attempt { return ci.AppendAttemptsSince(nil, i) }

// AppendAttemptsSince appends to dst a copy of the call's attempts from
// the i-th on, and returns the extended slice (dst on a nil *CallInfo).
func (ci *CallInfo) AppendAttemptsSince(dst []Attempt, i int) []Attempt {
	if ci == nil {
		return dst
	}
	ci.mu.Lock()
	defer ci.mu.Unlock()
	if i >= len(ci.facts.Attempts) {
		return dst
	}
	return append(dst, ci.facts.Attempts[max(i, 0):]...)
}

// Facts returns a copy of the facts.
func (ci *CallInfo) Facts() CallFacts {
	if ci == nil {
		return CallFacts{}
	}
	ci.mu.Lock()
	f := ci.facts
	f.Attempts = append([]Attempt(nil), ci.facts.Attempts...)
	f.Notes = append([]string(nil), ci.facts.Notes...)
	f.Retries = append([]Retry(nil), ci.facts.Retries...)
	f.ToolCalls = append([]string(nil), ci.facts.ToolCalls...)
	ci.mu.Unlock()
	return f
}

// WithCallInfo returns a context carrying ci.
func WithCallInfo(ctx context.Context, ci *CallInfo) context.Context {
	return context.WithValue(ctx, callKey{}, ci)
}

// CallInfoFrom returns the call's CallInfo, or nil outside an instrumented
// call. A nil *CallInfo is safe to Update (it does nothing).
func CallInfoFrom(ctx context.Context) *CallInfo {
	ci, _ := ctx.Value(callKey{}).(*CallInfo)
	return ci
}
