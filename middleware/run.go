package middleware

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tokenwise/tokenwise/internal/ctxval"
)

type runKey struct{}

// Run is the scope of one agent task: every call made with its context is
// recorded, and middlewares keep per-run state (budgets, counters) in it.
// A Run is safe for concurrent use.
type Run struct {
	id    string
	key   string   // the run's key in its store ("" for a run of this process)
	store RunStore // nil: the run lives in this process only

	mu     sync.Mutex
	start  time.Time
	seq    int
	calls  []CallRecord
	tools  []ToolRecord
	values map[any]any // RunValue's values, by stateKey

	toolTurns int
	toolWall  time.Duration
	turnWalls []time.Duration // wall time of each tool turn

	spent     Usage // running sums of the recorded calls, for Spent
	spentPico int64
	sumsLost  int // calls whose figures a RunSums store did not take
}

// CallRecord is what a run remembers of one call.
type CallRecord struct {
	CallFacts
	Usage   Usage
	Latency time.Duration
	Start   time.Time
	Err     error
}

// ToolRecord is what a run remembers of one tool call.
type ToolRecord struct {
	Name     string
	CallID   string
	Duration time.Duration
	Err      error
	Cached   bool

	Artifact    string // artifact id when the result was offloaded
	SavedTokens int64  // estimated tokens the artifact kept out of the conversation

	Turn int // 1-based tool turn of the run (RecordToolTurn closes a turn); set by RecordTool when 0
}

// StartRun opens a run scope. Calls made with the returned context (and
// contexts derived from it) are recorded in the returned Run.
func StartRun(ctx context.Context, id string) (context.Context, *Run) {
	r := &Run{id: id, start: time.Now()}
	return context.WithValue(ctx, runKey{}, r), r
}

// RunStore shares runs between processes: the calls of one run made in
// several processes (gateway replicas behind a load balancer, each
// receiving some of the run's requests) are numbered by one counter, so
// that a run guard's call limit holds across them, and the run starts once,
// so that its deadline does. Package llmwrap/budget keeps the per-run
// budget of a shared run in its budget store, under the run's key, for as
// long as Idle. Implementations (adapters/redis.NewRunStore) must be safe
// for concurrent use.
type RunStore interface {
	// Next counts one call of the run named key and returns its number
	// (1-based, across every process sharing the store) and the run's
	// start: the now of the run's first call, in whichever process made
	// it. A run without a call for Idle is forgotten (its next call is
	// number 1 of a new run).
	Next(ctx context.Context, key string, now time.Time) (seq int, start time.Time, err error)
	// Idle is how long the state of a run lives after its last call.
	Idle() time.Duration
}

// RunSums is implemented by a RunStore that also sums the calls of a
// shared run over every process (adapters/redis.RunStore): Run.Record adds
// each call's figures to the sums, Run.SharedState reads them, so that a
// run's report (calls, tokens, exact cost, savings, per model) covers the
// calls every process made, not only this one's.
type RunSums interface {
	// AddCall adds the figures of one finished call of the run named
	// key (CallTotals) to the run's sums.
	AddCall(ctx context.Context, key string, call Totals) error
	// Sums returns what the store knows of the run named key; ok is
	// false when it knows no such run (never called, or forgotten after
	// Idle).
	Sums(ctx context.Context, key string) (state RunState, ok bool, err error)
}

// RunState is what a RunSums store knows of a shared run.
type RunState struct {
	Sums  Totals    // the figures of its finished calls (Wall zero)
	Calls int       // the calls numbered so far, finished or not, in every process
	Start time.Time // its start: the now of its first call (zero: unknown)
}

// ErrRunStore matches the errors of a call whose number a shared run's
// RunStore could not give (the store is unreachable): the call is refused,
// since a call limit that cannot be counted cannot be held.
var ErrRunStore = errors.New("tokenwise/middleware: run store unavailable")

// OpenSharedRun returns the run id whose call count, start and per-run
// budget are shared through store under key, which names the run in every
// process the same way (a gateway uses its team and run id). Put it in the
// contexts of the run's calls with [WithRun]. Without a key or a store it
// is a run of this process only.
func OpenSharedRun(id, key string, store RunStore) *Run {
	if key == "" || store == nil {
		key, store = "", nil
	}
	return &Run{id: id, key: key, store: store, start: time.Now()}
}

// Shared returns the key and the store of a run opened by OpenSharedRun;
// ("", nil) for a run of this process only.
func (r *Run) Shared() (key string, store RunStore) { return r.key, r.store }

// WithRun returns ctx carrying the run r, opened earlier by StartRun or
// OpenSharedRun: a server that receives one run's calls in several
// requests (the gateway, by X-Run-Id) puts each of them in the same Run,
// so that per-run budgets and limits hold across them.
func WithRun(ctx context.Context, r *Run) context.Context {
	return context.WithValue(ctx, runKey{}, r)
}

// StartTeamRun is StartRun(WithTeam(ctx, team), id) in one allocation:
// the context, the team and the new Run (the gateway opens one for each
// request without an X-Run-Id).
func StartTeamRun(ctx context.Context, team, id string) (context.Context, *Run) {
	c := &teamRunCtx{Context: ctx, team: team}
	c.own.id, c.own.start = id, time.Now()
	c.run = &c.own
	return c, c.run
}

// WithTeamRun is WithRun(WithTeam(ctx, team), r) in one allocation.
func WithTeamRun(ctx context.Context, team string, r *Run) context.Context {
	return &teamRunCtx{Context: ctx, team: team, run: r}
}

// teamRunCtx is the context of StartTeamRun and WithTeamRun: ctx with a
// team and a run, own being the Run StartTeamRun opened.
type teamRunCtx struct {
	context.Context
	team string
	run  *Run
	own  Run
}

func (c *teamRunCtx) Value(key any) any {
	switch key.(type) {
	case teamKey:
		// A pointer: a string would be boxed on every TeamFrom.
		return &c.team
	case runKey:
		return c.run
	}
	return c.Context.Value(key)
}

// String names the context, as context.WithValue's String does.
func (c *teamRunCtx) String() string { return "middleware.WithTeamRun" }

// ValueParent returns the parent: c adds values to it and nothing else,
// and a Deadline under it may share the timer of one over it (see
// lazyOver).
func (c *teamRunCtx) ValueParent(ctxval.Only) context.Context { return c.Context }

// RunFrom returns the run of ctx, or nil outside a run.
func RunFrom(ctx context.Context) *Run {
	r, _ := ctx.Value(runKey{}).(*Run)
	return r
}

// ID returns the run's id.
func (r *Run) ID() string { return r.id }

// Started returns when the run started. For a shared run, that is the
// start its store returned at the run's last numbered call (the first
// call's, in any process), or when this process opened it before any.
func (r *Run) Started() time.Time {
	if r.store == nil {
		return r.start // immutable
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.start
}

// NextSeq reserves and returns the number of the next call of the run
// (1-based), counted in this process: a shared run's calls are numbered by
// [Run.NextSeqContext].
func (r *Run) NextSeq() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq++
	return r.seq
}

// NextSeqContext reserves and returns the number of the next call of the
// run (1-based): NextSeq for a run of this process, and for a shared run
// the number its RunStore gives, across every process (its start is
// updated too). Run guards count calls with it before they start. The
// error, of a shared run's store, matches ErrRunStore.
func (r *Run) NextSeqContext(ctx context.Context) (int, error) {
	if r.store == nil {
		return r.NextSeq(), nil
	}
	seq, start, err := r.store.Next(ctx, r.key, time.Now())
	if err != nil {
		return 0, fmt.Errorf("%w: run %q: %w", ErrRunStore, r.id, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seq = max(r.seq, seq)
	if !start.IsZero() {
		r.start = start
	}
	return seq, nil
}

// Seq returns how many calls the run has started (for a shared run, the
// highest number this process was given).
func (r *Run) Seq() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.seq
}

// Record appends a finished call. A shared run whose store sums runs
// (RunSums) adds the call's figures to the store's sums too, before
// Record returns (a failure to is counted, see SharedState).
func (r *Run) Record(c CallRecord) {
	r.mu.Lock()
	r.calls = append(r.calls, c)
	r.spent = r.spent.Add(c.Usage.Counts())
	r.spentPico = SatAdd(r.spentPico, c.CostPico)
	r.mu.Unlock()
	if s, ok := r.store.(RunSums); ok {
		if err := s.AddCall(context.Background(), r.key, CallTotals(c)); err != nil {
			r.mu.Lock()
			r.sumsLost++
			r.mu.Unlock()
		}
	}
}

// SharedState returns what is known of the run over every process that
// shares it, when it is a shared run whose store sums runs (RunSums;
// shared true): the store's sums of its finished calls (with the tool
// figures of this process), its calls numbered in every process and its
// start; else (shared false) this process's: Totals, Seq and Started.
// lost counts the calls of this process whose figures the store did not
// take (it was unreachable): the sums then lack them. err is the store's,
// with this process's state in st.
func (r *Run) SharedState(ctx context.Context) (st RunState, shared bool, lost int, err error) {
	s, ok := r.store.(RunSums)
	local := r.Totals()
	r.mu.Lock()
	lost, seq, start := r.sumsLost, r.seq, r.start
	r.mu.Unlock()
	mine := RunState{Sums: local, Calls: seq, Start: start}
	if !ok {
		return mine, false, lost, nil
	}
	st, found, err := s.Sums(ctx, r.key)
	if err != nil {
		return mine, false, lost, err
	}
	if !found { // forgotten by the store: what this process saw
		return mine, false, lost, nil
	}
	sums := &st.Sums
	sums.ToolCalls, sums.ToolTime, sums.ToolTurns, sums.ToolWall = local.ToolCalls, local.ToolTime, local.ToolTurns, local.ToolWall
	sums.Artifacts, sums.ArtifactSavedTokens = local.Artifacts, local.ArtifactSavedTokens
	sums.Wall = local.Wall
	if !st.Start.IsZero() {
		sums.Wall = time.Since(st.Start)
	} else {
		st.Start = start
	}
	return st, true, lost, nil
}

// Spent returns the usage and cost (micro-USD, rounded up) of the calls
// recorded so far, in constant time and without allocating: budget readers call it on
// every routing decision.
func (r *Run) Spent() (Usage, int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.spent, (r.spentPico + 999_999) / 1_000_000 // rounded up, like a budget's charge
}

// RecordTool appends a finished tool call.
func (r *Run) RecordTool(t ToolRecord) {
	r.mu.Lock()
	if t.Turn == 0 {
		t.Turn = r.toolTurns + 1
	}
	r.tools = append(r.tools, t)
	r.mu.Unlock()
}

// RecordToolTurn adds the wall time of one turn of tool calls (several
// calls may have run in parallel within it).
func (r *Run) RecordToolTurn(wall time.Duration) {
	r.mu.Lock()
	r.toolTurns++
	r.toolWall += wall
	r.turnWalls = append(r.turnWalls, wall)
	r.mu.Unlock()
}

// Calls returns the finished calls, in the order they finished.
func (r *Run) Calls() []CallRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]CallRecord(nil), r.calls...)
}

// Tools returns the finished tool calls.
func (r *Run) Tools() []ToolRecord {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]ToolRecord(nil), r.tools...)
}

// ToolTurnWalls returns the wall time of each tool turn
// (RecordToolTurn), in order.
func (r *Run) ToolTurnWalls() []time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Duration(nil), r.turnWalls...)
}

// RunValue returns the value of type V kept in r under key, creating it
// with init when absent. Layers keep per-run state this way (a run budget's
// ledger, a compaction's stable prefix, the run's artifacts). The key's
// type and V together name the value: a package keys its values with a type
// of its own, so packages never collide and a value is never read as
// another type. init runs under the run's lock: keep it free of calls back
// into r.
func RunValue[K comparable, V any](r *Run, key K, init func() V) V {
	k := stateKey[K, V]{key}
	r.mu.Lock()
	defer r.mu.Unlock()
	if v, ok := r.values[k]; ok {
		return v.(V)
	}
	if r.values == nil {
		r.values = make(map[any]any)
	}
	v := init()
	r.values[k] = v
	return v
}

// Totals sums a run's calls.
type Totals struct {
	Calls     int
	Failed    int
	CacheHits int
	Usage     Usage
	CostPico  int64
	Saved     Usage
	SavedPico int64
	// RoutingSavedPico sums the calls' CallFacts.RoutingSavedPico: what
	// routing saved (negative: cost) against the models the calls asked for.
	RoutingSavedPico int64
	LLMTime          time.Duration // sum of call latencies
	ToolCalls        int
	ToolTime         time.Duration // sum of tool durations
	Wall             time.Duration // since the run started
	ByModel          map[string]ModelTotals

	ToolTurns           int           // turns of tool calls (RecordToolTurn)
	ToolWall            time.Duration // wall time of those turns; ToolTime-ToolWall was saved by parallel runs
	Artifacts           int           // tool results offloaded to artifacts
	ArtifactSavedTokens int64         // estimated tokens those artifacts kept out of the conversation

	RateWaits    int           // calls that waited for rate-limit admission
	RateWait     time.Duration // their total wait
	RateRefusals int           // rate-limit refusals

	// EstimatedCalls counts the calls billed, in part or whole, an
	// estimate rather than the provider's usage (CallFacts.UsageEstimated),
	// and EstimatedPico what those estimated attempts cost (part of
	// CostPico).
	EstimatedCalls int
	EstimatedPico  int64
}

// ModelTotals sums what one model did in a run: Calls counts the calls it
// answered; Usage and CostPico sum every provider attempt made on it (so
// a failed attempt before a fallback counts under its own model), and add
// up to the run's totals exactly.
type ModelTotals struct {
	Calls     int
	CacheHits int // calls answered from the cache with an answer of this model (no tokens spent)
	Usage     Usage
	CostPico  int64
	// SavedPico is what the model's cache hits saved (USD pico, exact).
	// What a context compaction saved is in Totals.SavedPico only: it is
	// not the cache's.
	SavedPico int64
}

// Totals returns the run's sums so far: of the calls and tools this
// process recorded (a shared run's sums over every process:
// SharedState).
func (r *Run) Totals() Totals {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := Totals{ToolCalls: len(r.tools), Wall: time.Since(r.start), ByModel: map[string]ModelTotals{}}
	for i := range r.calls {
		t.addCall(&r.calls[i])
	}
	for _, tr := range r.tools {
		t.ToolTime += tr.Duration
		if tr.Artifact != "" {
			t.Artifacts++
			t.ArtifactSavedTokens += tr.SavedTokens
		}
	}
	t.ToolTurns, t.ToolWall = r.toolTurns, r.toolWall
	return t
}

// addCall adds one finished call to t (whose ByModel is not nil).
func (t *Totals) addCall(c *CallRecord) {
	t.Calls++
	if c.Err != nil {
		t.Failed++
	}
	if c.Cache == CacheHit {
		t.CacheHits++
	}
	t.Usage = t.Usage.Add(c.Usage.Counts())
	t.CostPico = SatAdd(t.CostPico, c.CostPico)
	t.Saved = t.Saved.Add(c.Saved.Counts())
	t.SavedPico = SatAdd(t.SavedPico, c.SavedPico)
	t.RoutingSavedPico = SatAdd(t.RoutingSavedPico, c.RoutingSavedPico)
	t.LLMTime += c.Latency
	if c.RateWait > 0 {
		t.RateWaits++
		t.RateWait += c.RateWait
	}
	t.RateRefusals += c.RateRefusals
	if c.UsageEstimated() {
		t.EstimatedCalls++
		for _, a := range c.Attempts {
			if a.Estimated {
				t.EstimatedPico = SatAdd(t.EstimatedPico, a.CostPico)
			}
		}
	}
	switch {
	case len(c.Attempts) > 0 && c.Cache != CacheHit:
		// each provider attempt under its own model (a fallback, a
		// cascade step or a regeneration billed on another model)
		if c.Model != "" {
			m := t.ByModel[c.Model]
			m.Calls++
			t.ByModel[c.Model] = m
		}
		for _, a := range c.Attempts {
			m := t.ByModel[a.Model]
			m.Usage = m.Usage.Add(a.Usage.Counts())
			m.CostPico = SatAdd(m.CostPico, a.CostPico)
			t.ByModel[a.Model] = m
		}
	case c.Model != "":
		m := t.ByModel[c.Model]
		m.Calls++
		if c.Cache == CacheHit {
			m.CacheHits++
			m.SavedPico = SatAdd(m.SavedPico, c.SavedPico)
		}
		m.Usage = m.Usage.Add(c.Usage.Counts())
		m.CostPico = SatAdd(m.CostPico, c.CostPico)
		t.ByModel[c.Model] = m
	}
}

// CallTotals returns the Totals of one finished call alone (Wall zero):
// what recording it adds to its run's.
func CallTotals(c CallRecord) Totals {
	t := Totals{ByModel: map[string]ModelTotals{}}
	t.addCall(&c)
	return t
}

// TotalsField is one named figure of a Totals: stores that sum runs over
// several processes keep each as a counter (Totals.Fields).
type TotalsField struct {
	Name  string
	Value int64
}

// figure is one named counter of a value of type T: a pointer to an int,
// an int64 or a time.Duration in it.
type figure[T any] struct {
	name string
	ptr  func(*T) any
}

// usageFigures are the counters of a Usage.
var usageFigures = []figure[Usage]{
	{"input_tokens", func(u *Usage) any { return &u.InputTokens }},
	{"output_tokens", func(u *Usage) any { return &u.OutputTokens }},
	{"cached_input_tokens", func(u *Usage) any { return &u.CachedInputTokens }},
	{"cache_write_tokens", func(u *Usage) any { return &u.CacheWriteTokens }},
	{"reasoning_tokens", func(u *Usage) any { return &u.ReasoningTokens }},
	{"audio_input_tokens", func(u *Usage) any { return &u.AudioInputTokens }},
	{"audio_output_tokens", func(u *Usage) any { return &u.AudioOutputTokens }},
}

// totalsFigures are the counters of a Totals besides its usages and
// models (durations in nanoseconds).
var totalsFigures = []figure[Totals]{
	{"calls", func(t *Totals) any { return &t.Calls }},
	{"failed", func(t *Totals) any { return &t.Failed }},
	{"cache_hits", func(t *Totals) any { return &t.CacheHits }},
	{"cost_pico", func(t *Totals) any { return &t.CostPico }},
	{"saved_pico", func(t *Totals) any { return &t.SavedPico }},
	{"routing_saved_pico", func(t *Totals) any { return &t.RoutingSavedPico }},
	{"llm_ns", func(t *Totals) any { return &t.LLMTime }},
	{"tool_calls", func(t *Totals) any { return &t.ToolCalls }},
	{"tool_ns", func(t *Totals) any { return &t.ToolTime }},
	{"tool_turns", func(t *Totals) any { return &t.ToolTurns }},
	{"tool_wall_ns", func(t *Totals) any { return &t.ToolWall }},
	{"artifacts", func(t *Totals) any { return &t.Artifacts }},
	{"artifact_saved_tokens", func(t *Totals) any { return &t.ArtifactSavedTokens }},
	{"rate_waits", func(t *Totals) any { return &t.RateWaits }},
	{"rate_wait_ns", func(t *Totals) any { return &t.RateWait }},
	{"rate_refusals", func(t *Totals) any { return &t.RateRefusals }},
	{"estimated_calls", func(t *Totals) any { return &t.EstimatedCalls }},
	{"estimated_pico", func(t *Totals) any { return &t.EstimatedPico }},
}

// modelFigures are the counters of a ModelTotals besides its usage.
var modelFigures = []figure[ModelTotals]{
	{"calls", func(m *ModelTotals) any { return &m.Calls }},
	{"cache_hits", func(m *ModelTotals) any { return &m.CacheHits }},
	{"cost_pico", func(m *ModelTotals) any { return &m.CostPico }},
	{"saved_pico", func(m *ModelTotals) any { return &m.SavedPico }},
}

// figureValue reads the counter p (of a figure) as an int64.
func figureValue(p any) int64 {
	switch p := p.(type) {
	case *int:
		return int64(*p)
	case *int64:
		return *p
	case *time.Duration:
		return int64(*p)
	}
	panic("middleware: a figure of an unknown type")
}

// addFigure adds v to the counter p (of a figure), saturating.
func addFigure(p any, v int64) {
	switch p := p.(type) {
	case *int:
		*p = int(SatAdd(int64(*p), v))
	case *int64:
		*p = SatAdd(*p, v)
	case *time.Duration:
		*p = time.Duration(SatAdd(int64(*p), v))
	}
}

// appendFigures appends the figures of v other than 0, named prefix+name.
func appendFigures[T any](dst []TotalsField, prefix string, v *T, figs []figure[T]) []TotalsField {
	for _, f := range figs {
		if n := figureValue(f.ptr(v)); n != 0 {
			dst = append(dst, TotalsField{Name: prefix + f.name, Value: n})
		}
	}
	return dst
}

// addNamed adds v to the figure of figs named name, reporting whether
// there is one.
func addNamed[T any](x *T, figs []figure[T], name string, v int64) bool {
	for _, f := range figs {
		if f.name == name {
			addFigure(f.ptr(x), v)
			return true
		}
	}
	return false
}

// Fields returns t's figures other than 0 as named counters, for stores
// that sum a run's calls over several processes (RunSums): durations in
// nanoseconds, the saved usage's figures named "saved_<figure>", a model's
// "model/<name>/<figure>" (a model with none is listed with "calls" 0).
// Summing the fields of several Totals name by name and reading the sums
// back with TotalsFromFields gives the sum of those Totals (Wall excepted:
// it is not a sum, and is not a field).
func (t Totals) Fields() []TotalsField {
	f := appendFigures(nil, "", &t, totalsFigures)
	f = appendFigures(f, "", &t.Usage, usageFigures)
	f = appendFigures(f, "saved_", &t.Saved, usageFigures)
	for name, m := range t.ByModel {
		p := "model/" + name + "/"
		n := len(f)
		f = appendFigures(f, p, &m, modelFigures)
		f = appendFigures(f, p, &m.Usage, usageFigures)
		if len(f) == n {
			f = append(f, TotalsField{Name: p + "calls", Value: 0})
		}
	}
	return f
}

// TotalsFromFields returns the Totals whose figures are fields (of
// Fields, or their sums), adding up repeated names (saturating); names it
// does not know are left out (a newer process's figures, read by an older
// one).
func TotalsFromFields(fields []TotalsField) Totals {
	t := Totals{ByModel: map[string]ModelTotals{}}
	for _, f := range fields {
		if rest, ok := strings.CutPrefix(f.Name, "model/"); ok {
			i := strings.LastIndexByte(rest, '/')
			if i < 0 {
				continue
			}
			model, fig := rest[:i], rest[i+1:]
			m := t.ByModel[model]
			if addNamed(&m, modelFigures, fig, f.Value) || addNamed(&m.Usage, usageFigures, fig, f.Value) {
				t.ByModel[model] = m
			}
			continue
		}
		if !addNamed(&t, totalsFigures, f.Name, f.Value) && !addNamed(&t.Usage, usageFigures, f.Name, f.Value) {
			if fig, ok := strings.CutPrefix(f.Name, "saved_"); ok {
				addNamed(&t.Saved, usageFigures, fig, f.Value)
			}
		}
	}
	return t
}

// FormatPico renders an exact amount of pico-USD (10^-12 dollars, the
// unit of every cost tokenwise reports) as dollars with at least two
// decimals and no trailing zeros, without rounding: 56_400_000 ->
// "$0.0000564". The text is the amount, so printed costs add up.
func FormatPico(pico int64) string {
	a := uint64(pico)
	sign := ""
	if pico < 0 {
		sign = "-"
		a = uint64(-(pico + 1)) + 1
	}
	fs := strings.TrimRight(fmt.Sprintf("%012d", a%1_000_000_000_000), "0")
	for len(fs) < 2 {
		fs += "0"
	}
	return sign + "$" + strconv.FormatUint(a/1_000_000_000_000, 10) + "." + fs
}

// FormatUSD renders micro-USD as dollars, e.g. 1234 -> "$0.001234".
func FormatUSD(micros int64) string {
	sign := ""
	if micros < 0 {
		sign, micros = "-", -micros
	}
	return fmt.Sprintf("%s$%d.%06d", sign, micros/1_000_000, micros%1_000_000)
}
