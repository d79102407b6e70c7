package middleware

import (
	"context"
	"time"

	"github.com/tokenwise/tokenwise/internal/ctxval"
)

// Event is something that happened in tokenwise, delivered to observers.
// The core defines the events every layer shares; packages may define their
// own by implementing Kind. Events are values: observers may keep them.
type Event interface {
	Kind() string
}

// Observer receives events. Observe is called synchronously on the hot
// path, never under a tokenwise lock: implementations must be quick, safe
// for concurrent use, and must not block.
type Observer interface {
	Observe(ctx context.Context, e Event)
}

// ObserverFunc adapts a function to an Observer.
type ObserverFunc func(ctx context.Context, e Event)

// Observe calls f(ctx, e).
func (f ObserverFunc) Observe(ctx context.Context, e Event) { f(ctx, e) }

type multiObserver []Observer

func (m multiObserver) Observe(ctx context.Context, e Event) {
	for _, o := range m {
		o.Observe(ctx, e)
	}
}

// Observers fans events out to every non-nil observer, in order. It
// returns nil when there is none.
func Observers(obs ...Observer) Observer {
	var m multiObserver
	for _, o := range obs {
		switch o := o.(type) {
		case nil:
		case multiObserver:
			m = append(m, o...)
		default:
			m = append(m, o)
		}
	}
	switch len(m) {
	case 0:
		return nil
	case 1:
		return m[0]
	}
	return m
}

// WithObserver returns a context whose events also go to o, after the
// observers the context already had. The context and the observer that
// fans out to both are one allocation.
func WithObserver(ctx context.Context, o Observer) context.Context {
	if o == nil {
		return ctx
	}
	c := &ctxval.Ctx[observerKey, observerVal]{Context: ctx}
	c.Val.set(ctx, o)
	return c
}

// observerVal is the value of WithObserver's context: o is the context's
// observer, &pair when the context had one already.
type observerVal struct {
	o    Observer
	pair pairObserver
}

// set makes v the observer of a context under parent adding o (not nil).
func (v *observerVal) set(parent context.Context, o Observer) {
	*v = observerVal{}
	if prev := ObserverFrom(parent); prev != nil {
		v.pair = pairObserver{prev, o}
		v.o = &v.pair
	} else {
		v.o = o
	}
}

// Observed is what [WithObserver] adds to a context, for a context type
// of a layer's own that adds an observer in an allocation it makes
// anyway, sparing WithObserver's: Set it, and answer Value(key) with
// Observed.Value's answer when it has one. The zero Observed adds none.
type Observed struct{ v observerVal }

// Set makes s add o after the observers of parent, the context the
// layer's context is under (o nil: none).
func (s *Observed) Set(parent context.Context, o Observer) {
	if o == nil {
		s.v = observerVal{}
		return
	}
	s.v.set(parent, o)
}

// Value answers key as the context of WithObserver(parent, o) does for
// its own key; ok is false for every other key, and when s adds no
// observer.
func (s *Observed) Value(key any) (v any, ok bool) {
	if _, is := key.(observerKey); is && s.v.o != nil {
		return &s.v, true
	}
	return nil, false
}

// pairObserver fans events out to a, then b.
type pairObserver struct{ a, b Observer }

func (p *pairObserver) Observe(ctx context.Context, e Event) {
	p.a.Observe(ctx, e)
	p.b.Observe(ctx, e)
}

// ObserverFrom returns the context's observer, or nil.
func ObserverFrom(ctx context.Context) Observer {
	v, _ := ctx.Value(observerKey{}).(*observerVal)
	if v == nil {
		return nil
	}
	return v.o
}

// Emit delivers e to the context's observers. It does nothing when there
// are none; build the event only when Observing(ctx) if that is costly.
func Emit(ctx context.Context, e Event) {
	if o := ObserverFrom(ctx); o != nil {
		o.Observe(ctx, e)
	}
}

// Observing reports whether events emitted with ctx reach any observer.
func Observing(ctx context.Context) bool { return ObserverFrom(ctx) != nil }

// CallStarted: a call entered the chain.
type CallStarted struct {
	Run    string
	Seq    int
	Team   string
	Stage  Stage
	Model  string // as requested
	Stream bool
	Time   time.Time
}

// CallFinished: a call left the chain, answered or failed.
type CallFinished struct {
	Facts   CallFacts // model, stage, rule, cache status, attempts, cost
	Usage   Usage
	Latency time.Duration
	Err     error
}

// RouteDecided: a router picked a model.
type RouteDecided struct {
	From, To string // requested and chosen model
	Rule     string // the rule and the reason, e.g. `rule 2 "cheap": stage=tool_selection`
	Stage    Stage
}

// Retrying: a transient failure is retried: the retry is sent now,
// admitted after a wait of Wait (a retry that was not admitted or not
// sent emits none).
type Retrying struct {
	Model   string
	Attempt int // the attempt that failed, 1-based
	Wait    time.Duration
	Err     error
}

// FellBack: a model failed and the next one in the chain is tried.
type FellBack struct {
	From, To string
	Err      error
}

// BreakerChanged: a model's circuit breaker changed state.
type BreakerChanged struct {
	Model    string
	From, To string // "closed", "open", "half-open"
}

// BudgetWarning: spend crossed a soft-limit fraction of a budget.
type BudgetWarning struct {
	Scope    string // "run", "team:devops", ...
	Unit     string // "usd_micros" or "tokens"
	Fraction float64
	Limit    int64
	Used     int64
}

// BudgetPace: at the pace of its period's elapsed part, a team's budget
// runs out before the period ends (budget.Remaining.Pace): spend Used of
// Limit now projects to Projected at WindowEnd, and reaches Limit at
// RunsOutAt. Fired once per period and unit, with soft limits (warn_at)
// set, once a tenth of the period has passed and before the limit is
// reached.
type BudgetPace struct {
	Scope     string // "team:devops"
	Unit      string // "usd_micros" or "tokens"
	Limit     int64
	Used      int64
	Projected int64
	RunsOutAt time.Time
	WindowEnd time.Time
}

// BudgetExceeded: a budget refused or downgraded a call.
type BudgetExceeded struct {
	Scope    string
	Unit     string
	Limit    int64
	Used     int64  // settled
	Reserved int64  // held by calls in flight
	Need     int64  // what this call would have reserved
	Action   string // "reject", "downgrade", "warn"
}

// CacheLookup: a response cache answered or missed.
type CacheLookup struct {
	Status    CacheStatus
	Reason    string // why it missed or bypassed, as in CallFacts.CacheReason
	Model     string
	Saved     Usage // on a hit: what the call would have cost in tokens
	SavedPico int64
}

// StoreFailed: a shared store (cache, budget ledger, artifacts) failed; the
// call went on according to policy.
type StoreFailed struct {
	Store string // "cache", "budget", "artifacts", "runs" (a shared run's RunStore), ...
	Op    string
	Err   error
}

// ToolFinished: one tool call ended.
type ToolFinished struct {
	Name     string
	CallID   string
	Duration time.Duration
	Err      error // nil on success; the error the model was shown otherwise
	Cached   bool
	Bytes    int // size of the result
}

// ArtifactStored: a large tool result was offloaded to an artifact.
type ArtifactStored struct {
	ID          string
	Tool        string
	Bytes       int
	SavedTokens int64 // estimated tokens kept out of the conversation
}

// ContextCompacted: a request was compacted to fit its token ceiling.
type ContextCompacted struct {
	Strategy     string
	BeforeTokens int64
	AfterTokens  int64
}

// PolicyChanged: a policy was (re)loaded, or a reload failed and the last
// good policy stays in force.
type PolicyChanged struct {
	Name string
	Path string
	Err  error
}

// PanicRecovered: a panic under tokenwise was recovered and became the
// error of one call (a [*PanicError]).
type PanicRecovered struct {
	Where string
	Value any
	Stack []byte
}

// UnknownTeam: a call named a team (WithTeam) that has no policy; it was
// served under the default policy (Refused false) or refused (Refused
// true). Emitted once per team by a registry.
type UnknownTeam struct {
	Team    string
	Known   []string // the teams that have a policy
	Refused bool
}

func (UnknownTeam) Kind() string { return "team.unknown" }

func (CallStarted) Kind() string      { return "call.started" }
func (CallFinished) Kind() string     { return "call.finished" }
func (RouteDecided) Kind() string     { return "route.decided" }
func (Retrying) Kind() string         { return "retry" }
func (FellBack) Kind() string         { return "fallback" }
func (BreakerChanged) Kind() string   { return "breaker.changed" }
func (BudgetWarning) Kind() string    { return "budget.warning" }
func (BudgetPace) Kind() string       { return "budget.pace" }
func (BudgetExceeded) Kind() string   { return "budget.exceeded" }
func (CacheLookup) Kind() string      { return "cache.lookup" }
func (StoreFailed) Kind() string      { return "store.failed" }
func (ToolFinished) Kind() string     { return "tool.finished" }
func (ArtifactStored) Kind() string   { return "artifact.stored" }
func (ContextCompacted) Kind() string { return "context.compacted" }
func (PolicyChanged) Kind() string    { return "policy.changed" }
func (PanicRecovered) Kind() string   { return "panic.recovered" }

// RateLimited: a rate limit admitted a call after a wait, refused it, or
// moved it on to the next model. Calls admitted at once emit it too, with
// Action "admitted" and no Wait, so that observers can count admissions.
type RateLimited struct {
	Model  string
	Team   string
	Action string        // "admitted", "rejected", "fallback"
	Limit  string        // the limit that held the call: "rpm", "tpm", "concurrency", "team rpm", "provider", "store", ...
	Wait   time.Duration // admitted: how long the call waited; refused: how long it should wait
	Err    error         // refused: the refusal
}

// ProviderLimits: a provider reported its rate-limit state in a response
// (OpenAI's x-ratelimit-* headers) or throttled a call (429). Adapters emit
// it for every upstream response that carries such headers. A negative
// count is unknown.
type ProviderLimits struct {
	Model             string
	Status            int           // HTTP status of the response
	LimitRequests     int64         // requests per minute allowed
	LimitTokens       int64         // tokens per minute allowed
	RemainingRequests int64         // requests left before the limit is hit
	RemainingTokens   int64         // tokens left before the limit is hit
	ResetRequests     time.Duration // until the request limit is back to full
	ResetTokens       time.Duration // until the token limit is back to full
	RetryAfter        time.Duration // a 429's Retry-After, 0 if none
}

func (RateLimited) Kind() string    { return "ratelimit" }
func (ProviderLimits) Kind() string { return "provider.limits" }
