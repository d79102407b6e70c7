package route

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
)

// Option configures New with code-side dependencies.
type Option func(*config)

type config struct {
	router    Router
	estimator Estimator
	budget    BudgetReader
	checks    []NamedCheck
	window    func(model string) int64
	maxOut    func(model string) int64
	rulesOpts []RulesOption
}

// WithRouter replaces the Config's rules by r (a team's own classifier).
// Regeneration, cascade and larger-window escalation still follow the
// Config.
func WithRouter(r Router) Option { return func(c *config) { c.router = r } }

// WithEstimator sets the input token estimator (see Estimator). Default: a
// conservative estimate of about four bytes per token.
func WithEstimator(e Estimator) Option { return func(c *config) { c.estimator = e } }

// WithBudget sets the reader of budget_below conditions (see BudgetReader).
func WithBudget(b BudgetReader) Option { return func(c *config) { c.budget = b } }

// WithCheck adds a custom cascade check, run after the Config's checks;
// name appears in reports when it rejects an answer.
func WithCheck(name string, fn Check) Option {
	return func(c *config) { c.checks = append(c.checks, NamedCheck{name, fn}) }
}

// WithWindows tells the router each model's context window in tokens (0:
// unknown), for Config.LargerWindow. Without it no call is escalated
// before the provider refuses it (the fallback layer escalates that
// refusal).
func WithWindows(fn func(model string) int64) Option { return func(c *config) { c.window = fn } }

// WithMaxOutput tells the router each model's maximum output in tokens (0:
// unknown). A call moved to a model (by a rule, the default, a cascade, a
// larger window or a regeneration) whose maximum is below the caller's
// max_tokens is sent with that maximum: the provider refuses a max_tokens
// above the model's own with a bad request. Without it the caller's
// max_tokens goes as it is.
func WithMaxOutput(fn func(model string) int64) Option { return func(c *config) { c.maxOut = fn } }

// WithRulesOptions passes options to the built-in rules (NewRules), e.g.
// WithLearnedModel.
func WithRulesOptions(opts ...RulesOption) Option {
	return func(c *config) { c.rulesOpts = append(c.rulesOpts, opts...) }
}

// Routing is the routing layer. It is safe for concurrent use.
type Routing struct {
	r *router // nil: routes nothing
}

// New returns the routing layer of rt. Its Middleware is nil when rt
// routes nothing (no rules, no default, no cascade, no regeneration, no
// larger window, no learned routing) and no Router is given. It fails
// (with errors matching ErrConfig) on a Config NewRules refuses.
func New(rt Config, opts ...Option) (*Routing, error) {
	var cfg config
	for _, o := range opts {
		if o != nil {
			o(&cfg)
		}
	}
	if err := rt.validate(); err != nil {
		return nil, err
	}
	if cfg.router == nil {
		if !rt.routes() {
			return &Routing{}, nil
		}
		ropts := cfg.rulesOpts
		if cfg.estimator != nil {
			ropts = append(ropts, WithRulesEstimator(cfg.estimator))
		}
		if cfg.budget != nil {
			ropts = append(ropts, WithRulesBudget(cfg.budget))
		}
		rules, err := NewRules(rt, ropts...)
		if err != nil {
			return nil, err
		}
		cfg.router = rules
	}
	if cfg.window == nil {
		cfg.window = func(string) int64 { return 0 }
	}
	r := &router{cfg: cfg, def: rt.Default, cascade: rt.Cascade.Models, wider: rt.LargerWindow, hasDefault: rt.Default != ""}
	if rt.RegenerateFinal.Enabled {
		r.regen = rt.RegenerateFinal.Model
		if r.regen == "" {
			r.regen = rt.Default
		}
	}
	if len(r.cascade) > 0 {
		r.checks = append(BuiltinChecks(rt.Cascade.Checks), cfg.checks...)
	}
	return &Routing{r: r}, nil
}

// Middleware returns the routing middleware, or nil when the layer routes
// nothing. The middleware is safe for concurrent use.
func (rt *Routing) Middleware() middleware.Middleware {
	r := rt.r
	if r == nil {
		return nil
	}
	return func(next middleware.Handler) middleware.Handler {
		return &handler{router: r, next: next}
	}
}

type router struct {
	cfg        config
	def        string // Config.Default
	regen      string
	cascade    []string
	checks     []NamedCheck
	wider      []string
	hasDefault bool
}

type handler struct {
	*router
	next middleware.Handler
}

// call is the state of one routed call.
type call struct {
	ci    *middleware.CallInfo
	stage middleware.Stage
	rule  string // the explanation so far
	usage middleware.Usage
	calls int
	// maxTokens is the caller's max_tokens, which each model the call
	// moves to is given as far as it can (FitMaxTokens).
	maxTokens int
}

func (h *handler) Handle(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
	ci := middleware.CallInfoFrom(ctx)
	estModel := req.Model
	if h.router.def != "" {
		estModel = h.router.def
	}
	var q Query
	q.init(ctx, req, h.cfg.estimator, estModel)
	c := &call{ci: ci, stage: q.Stage, maxTokens: req.MaxTokens}
	ci.Update(func(f *middleware.CallFacts) {
		if f.Stage != c.stage {
			f.Stage = c.stage
		}
	})
	if middleware.FixedModel(ctx) {
		// The endpoint serves one model: the call is not moved.
		c.decide(ctx, req.Model, req.Model, "")
		return h.next.Handle(ctx, req)
	}
	model := req.Model
	if d, ok := h.route(ctx, &q); ok {
		if d.Model != "" {
			model = d.Model
		}
		c.rule = d.Rule
	}
	if model != req.Model && !middleware.Serves(ctx, model) {
		c.rule = joinRule(c.rule, "kept "+req.Model+": "+model+" is not among the models the caller serves")
		model = req.Model
	}
	if w, why := h.fitWindow(&q, model); w != "" && middleware.Serves(ctx, w) {
		model = w
		c.rule = joinRule(c.rule, why)
	}
	c.decide(ctx, req.Model, model, c.rule)
	r := req
	if model != req.Model {
		r = ci.CloneRequest(req)
		r.Model = model
		middleware.FitMaxTokens(ctx, r, h.cfg.maxOut)
	}

	regen := h.regen != "" && model != h.regen && middleware.Serves(ctx, h.regen)
	if !regen {
		resp, err := h.serve(ctx, c, r)
		return c.finish(resp, err)
	}
	// The strong model may have to rewrite the answer: hold the first
	// model's chunks back until we know.
	held, hctx := r, ctx
	if req.Stream != nil {
		held = r.Clone()
		held.Stream = discard
		hctx = middleware.WithStreamHeld(ctx) // may be retried or fall back after its first chunks
	}
	resp, err := h.serve(hctx, c, held)
	if err != nil || !IsFinalAnswer(resp) {
		if err == nil && req.Stream != nil {
			if rerr := middleware.Replay(ctx, resp, 0, req.Stream); rerr != nil {
				return c.finish(nil, rerr)
			}
		}
		return c.finish(resp, err)
	}
	from := resp.Model
	if from == "" {
		from = r.Model
	}
	g := req.Clone()
	g.Model, g.Tools, g.ToolChoice = h.regen, nil, ""
	if g.Model != req.Model {
		middleware.FitMaxTokens(ctx, g, h.cfg.maxOut)
	}
	why := "regenerated the final answer of " + r.Model + " with " + h.regen + " (no tools)"
	c.rule = joinRule(c.rule, why)
	c.decide(ctx, from, h.regen, c.rule)
	c.note(why)
	var sent atomic.Bool // a chunk of the regeneration reached the caller
	if req.Stream != nil {
		out := req.Stream
		g.Stream = func(ctx context.Context, ch middleware.Chunk) error {
			sent.Store(true)
			return out(ctx, ch)
		}
	}
	resp2, err := h.attempt(ctx, c, g)
	if err != nil && !sent.Load() && ctx.Err() == nil && !middleware.IsCancellation(err) {
		// The strong model failed before the caller saw any of its
		// answer: the cheap model's final answer, whole and paid for,
		// is the call's answer.
		kept := "regeneration with " + h.regen + " failed (" + shortErr(err) + "): kept the final answer of " + from
		c.rule = joinRule(c.rule, kept)
		c.note(kept + ": " + err.Error())
		c.ci.Update(func(f *middleware.CallFacts) {
			f.Model, f.Rule = from, c.rule
			// Not the route's answer while its models are healthy: a
			// response cache does not keep it.
			f.OffRoute = kept
		})
		if req.Stream != nil {
			if rerr := middleware.Replay(ctx, resp, 0, req.Stream); rerr != nil {
				return c.finish(nil, rerr)
			}
		}
		return c.finish(resp, nil)
	}
	return c.finish(resp2, err)
}

// route asks the router. The built-in Rules are called directly, so that
// the query stays on the caller's stack; another Router gets a copy on the
// heap (an interface call lets it escape), copied back for fitWindow.
func (h *handler) route(ctx context.Context, q *Query) (Decision, bool) {
	if rules, ok := h.cfg.router.(*Rules); ok {
		return rules.Route(ctx, q)
	}
	hq := new(Query)
	*hq = *q
	d, ok := h.cfg.router.Route(ctx, hq)
	*q = *hq
	return d, ok
}

func discard(context.Context, middleware.Chunk) error { return nil }

// serve runs r through the cascade, when it applies, or as one call. The
// answer streams to r.Stream.
func (h *handler) serve(ctx context.Context, c *call, r *middleware.Request) (*middleware.Response, error) {
	cascade := servedOnly(ctx, h.cascade)
	start := -1
	if len(cascade) > 0 {
		start = slices.Index(cascade, r.Model)
		if start < 0 && c.rule == "" && !h.hasDefault {
			start = 0 // no rule matched, no default: the cascade decides
		}
	}
	if start < 0 {
		return h.attempt(ctx, c, r)
	}
	if m := cascade[start]; m != r.Model {
		// The cascade picked its first model (no rule matched): a
		// decision too, in the call's rule and events.
		c.rule = joinRule(c.rule, "cascade: starts at "+m)
		c.decide(ctx, r.Model, m, c.rule)
	}
	out := r.Stream
	for i := start; i < len(cascade); i++ {
		m := cascade[i]
		last := i == len(cascade)-1
		held := out != nil && !last // a draft that may be rejected is not shown
		step := r
		if step.Model != m || held {
			step = r.Clone()
			if step.Model != m {
				step.Model, step.MaxTokens = m, c.maxTokens
				middleware.FitMaxTokens(ctx, step, h.cfg.maxOut)
			}
			if held {
				step.Stream = discard
			}
		}
		if i > start {
			c.decide(ctx, cascade[i-1], m, c.rule)
		}
		sctx := ctx
		if held {
			sctx = middleware.WithStreamHeld(ctx) // a draft: its chunks reach no caller
		}
		resp, err := h.attempt(sctx, c, step)
		if err != nil {
			if last || !Escalates(ctx, err) {
				return nil, err
			}
			c.rule = joinRule(c.rule, "cascade: "+m+" failed ("+shortErr(err)+") → "+cascade[i+1])
			c.note("cascade: " + m + " failed: " + err.Error())
			continue
		}
		if last {
			return resp, nil
		}
		if rej := h.check(step, resp, m); rej != nil {
			if middleware.Ended(ctx) {
				// The next step would go out, and be billed, at the
				// call's deadline (its timer may not have fired yet).
				return nil, fmt.Errorf("%w; the call ended before the cascade's next step: %w", rej, context.Cause(ctx))
			}
			c.rule = joinRule(c.rule, "cascade: "+m+" "+rej.Check+" failed → "+cascade[i+1])
			c.note("cascade: " + rej.Error())
			continue
		}
		if held {
			if err := middleware.Replay(ctx, resp, 0, out); err != nil {
				return nil, err
			}
		}
		return resp, nil
	}
	return nil, errors.New("tokenwise/route: empty cascade") // unreachable: the loop returns on its last step
}

// servedOnly returns the models of ms that ctx's calls may be sent to
// (middleware.Serves): ms itself when that is all of them (one lookup of
// the served set a call, whatever the cascade's length).
func servedOnly(ctx context.Context, ms []string) []string {
	set, ok := middleware.ServedModels(ctx)
	if !ok {
		return ms
	}
	for i, m := range ms {
		if !middleware.InServed(set, m) {
			out := slices.Clone(ms[:i])
			for _, m := range ms[i+1:] {
				if middleware.InServed(set, m) {
					out = append(out, m)
				}
			}
			return out
		}
	}
	return ms
}

// check runs the cascade's checks on an answer.
func (h *handler) check(req *middleware.Request, resp *middleware.Response, model string) *RejectedError {
	for _, ch := range h.checks {
		if err := ch.Check(req, resp); err != nil {
			return &RejectedError{Model: model, Check: ch.Name, Err: err}
		}
	}
	return nil
}

// Escalates reports whether a cascade step's error moves on to the next
// model: a failure of the step's model — the provider's error, the step's
// own timeout (timeouts.call), its open circuit breaker — not a
// cancellation, the call's deadline or a budget (ctx is the call's: once
// it ended or reached its deadline, whose timer may not have fired yet,
// nothing escalates).
func Escalates(ctx context.Context, err error) bool {
	if middleware.Ended(ctx) || middleware.IsCancellation(err) || errors.Is(err, middleware.ErrBudget) {
		return false
	}
	var pe *middleware.ProviderError
	return errors.As(err, &pe) || errors.Is(err, middleware.ErrTimeout) || errors.Is(err, breaker.ErrOpen)
}

// fitWindow returns a larger-window model when the estimate of q does not
// fit model's window, with the reason.
func (h *handler) fitWindow(q *Query, model string) (string, string) {
	if len(h.wider) == 0 {
		return "", ""
	}
	window := h.cfg.window(model)
	if window <= 0 {
		return "", ""
	}
	need := q.InputTokens() + int64(q.Request.MaxTokens)
	if need <= window {
		return "", ""
	}
	next := LargerWindow(h.wider, h.cfg.window, model, need)
	if next == "" {
		return "", ""
	}
	return next, "estimate " + strconv.FormatInt(need, 10) + " tokens > " + model + " window " +
		strconv.FormatInt(window, 10) + " → larger_window " + strconv.Quote(next)
}

// LargerWindow returns the first of the larger_window models whose
// context window (window: 0 unknown) is larger than model's and at least
// need tokens; "" when none is. The router escalates a chat call with it,
// the gateway a Responses call. (A call that fails with a context-window
// error is escalated by the fallback layer, under the router.)
func LargerWindow(models []string, window func(model string) int64, model string, need int64) string {
	cur := window(model)
	for _, w := range models {
		if w == model {
			continue
		}
		ww := window(w)
		if ww <= 0 {
			continue
		}
		if (cur == 0 || ww > cur) && ww >= need {
			return w
		}
	}
	return ""
}

// attempt makes one inner call; its usage is summed into the call's. (Its
// cost is recorded, under its own model, by middleware.Meter.)
func (h *handler) attempt(ctx context.Context, c *call, r *middleware.Request) (*middleware.Response, error) {
	resp, err := h.next.Handle(ctx, r)
	c.calls++
	if resp != nil && !resp.FromCache {
		c.usage = c.usage.Add(resp.Usage)
	}
	return resp, err
}

// decide records a routing decision and emits it.
func (c *call) decide(ctx context.Context, from, to, rule string) {
	c.ci.Update(func(f *middleware.CallFacts) {
		f.Model = to
		f.Rule = rule
		f.Routed = f.Routed || from != to
	})
	if rule != "" && middleware.Observing(ctx) {
		middleware.Emit(ctx, middleware.RouteDecided{From: from, To: to, Rule: rule, Stage: c.stage})
	}
}

func (c *call) note(s string) {
	c.ci.Update(func(f *middleware.CallFacts) { f.Notes = append(f.Notes, s) })
}

// finish sums the usage of several calls into the answer.
func (c *call) finish(resp *middleware.Response, err error) (*middleware.Response, error) {
	if c.calls <= 1 || resp == nil {
		return resp, err
	}
	if resp.Usage != c.usage {
		resp = resp.Clone()
		resp.Usage = c.usage
	}
	return resp, err
}

func joinRule(rule, more string) string {
	if rule == "" {
		return more
	}
	return rule + "; " + more
}

func shortErr(err error) string {
	s := err.Error()
	if i := strings.IndexByte(s, ':'); i > 0 && i < 60 {
		s = s[:i]
	}
	return s
}
