package otel

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/tokenwise/tokenwise/middleware"
)

// ScopeName is the instrumentation scope of the tracer and meter.
const ScopeName = "github.com/tokenwise/tokenwise/adapters/otel"

// Option configures New.
type Option func(*config)

type config struct {
	tp     trace.TracerProvider
	mp     metric.MeterProvider
	system string
}

// WithTracerProvider sets the tracer provider. Default: no spans.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// WithMeterProvider sets the meter provider. Default: no metrics.
func WithMeterProvider(mp metric.MeterProvider) Option { return func(c *config) { c.mp = mp } }

// WithSystem sets gen_ai.system. Default "openai".
func WithSystem(s string) Option { return func(c *config) { c.system = s } }

// Observer turns tokenwise events into spans and metrics. It is safe for
// concurrent use.
type Observer struct {
	tracer trace.Tracer
	// noSpans is set for the no-op tracer provider (the default), whose
	// spans never record: no span is started, looked up or ended then.
	noSpans bool
	system  attribute.KeyValue

	tokens, duration                                  metric.Float64Histogram
	cost, cacheLookups, cacheSaved                    metric.Int64Counter
	fallbacks, retries, budgetWarnings, breakerChange metric.Int64Counter
	rateAdmissions, routeDecisions                    metric.Int64Counter
	routeSaved                                        metric.Int64UpDownCounter
	rateWait                                          metric.Float64Histogram
	rateRemaining                                     metric.Int64Gauge

	mu    sync.Mutex
	spans map[*middleware.CallInfo]callSpan // recorded call spans

	starts  optCache[string, spanStartOpts]
	calls   optCache[callKey, callMetricOpts]
	counts  optCache[countKey, []metric.AddOption]
	records optCache[countKey, []metric.RecordOption]
}

type callSpan struct {
	span  trace.Span
	ctx   context.Context
	start time.Time
}

var _ middleware.Observer = (*Observer)(nil)

// New returns an observer for the given providers.
func New(opts ...Option) (*Observer, error) {
	c := config{tp: tracenoop.NewTracerProvider(), mp: noop.NewMeterProvider(), system: "openai"}
	for _, o := range opts {
		o(&c)
	}
	m := c.mp.Meter(ScopeName)
	o := &Observer{tracer: c.tp.Tracer(ScopeName), system: attribute.String("gen_ai.system", c.system), spans: map[*middleware.CallInfo]callSpan{}}
	_, o.noSpans = c.tp.(tracenoop.TracerProvider)
	var errs []error
	h := func(name, unit, desc string, bounds ...float64) metric.Float64Histogram {
		x, err := m.Float64Histogram(name, metric.WithUnit(unit), metric.WithDescription(desc), metric.WithExplicitBucketBoundaries(bounds...))
		errs = append(errs, err)
		return x
	}
	ctr := func(name, unit, desc string) metric.Int64Counter {
		x, err := m.Int64Counter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		errs = append(errs, err)
		return x
	}
	// Bucket boundaries as advised by the GenAI semantic conventions.
	o.tokens = h("gen_ai.client.token.usage", "{token}", "Measures number of input and output tokens used",
		1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
	o.duration = h("gen_ai.client.operation.duration", "s", "GenAI operation duration",
		0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)
	o.cost = ctr("tokenwise.cost", "{usd_pico}", "Money spent on LLM calls, in pico-USD (exact: 10^-12 dollars)")
	o.cacheLookups = ctr("tokenwise.cache.lookups", "{lookup}", "Response cache lookups by status")
	o.cacheSaved = ctr("tokenwise.cache.saved", "{usd_pico}", "Money saved by response cache hits, in pico-USD (exact: 10^-12 dollars)")
	o.fallbacks = ctr("tokenwise.fallbacks", "{fallback}", "Calls moved to the next model of the fallback chain")
	o.retries = ctr("tokenwise.retries", "{retry}", "Retries of transient failures")
	o.budgetWarnings = ctr("tokenwise.budget.warnings", "{warning}", "Soft-limit warnings of budgets")
	o.breakerChange = ctr("tokenwise.breaker.changes", "{change}", "Circuit breaker state changes")
	o.rateAdmissions = ctr("tokenwise.ratelimit.decisions", "{call}", "Rate-limit decisions: admitted, rejected or moved on to the next model")
	o.rateWait = h("tokenwise.ratelimit.wait", "s", "Time calls waited for rate-limit admission",
		0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
	o.routeDecisions = ctr("tokenwise.route.decisions", "{call}", "Models routers picked, by requested and chosen model and stage (a cascade's escalation and a regeneration count too)")
	var err error
	o.routeSaved, err = m.Int64UpDownCounter("tokenwise.route.saved", metric.WithUnit("{usd_pico}"),
		metric.WithDescription("Money routing saved against the models the calls asked for, at the tokens their answers used, in pico-USD (exact: 10^-12 dollars); negative when it chose dearer models"))
	errs = append(errs, err)
	o.rateRemaining, err = m.Int64Gauge("tokenwise.ratelimit.remaining", metric.WithUnit("{unit}"),
		metric.WithDescription("What the provider reported left of its rate limits (x-ratelimit-remaining-*), by unit: requests or tokens"))
	errs = append(errs, err)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return o, nil
}

// Observe handles one event. Attribute sets, metric options and span start
// options are built once per distinct (model, team, status, ...) key and
// reused, so a call allocates little beyond what the SDK itself needs; span
// attributes and events are only built for spans that are recorded.
func (o *Observer) Observe(ctx context.Context, e middleware.Event) {
	switch e := e.(type) {
	case middleware.CallStarted:
		o.start(ctx, e)
	case middleware.CallFinished:
		o.finish(ctx, middleware.CallInfoFrom(ctx), e)
	case middleware.Retrying:
		o.retries.Add(ctx, 1, o.counterOpts(countKey{kind: kindRetry, a: e.Model})...)
		if cs, ok := o.recording(ctx); ok {
			cs.span.AddEvent("tokenwise.retry", trace.WithAttributes(attribute.String("gen_ai.request.model", e.Model), attribute.Int("tokenwise.attempt", e.Attempt),
				attribute.String("tokenwise.wait", e.Wait.String()), attribute.String("error.type", errType(e.Err))))
		}
	case middleware.FellBack:
		o.fallbacks.Add(ctx, 1, o.counterOpts(countKey{kind: kindFallback, a: e.From, b: e.To})...)
		if cs, ok := o.recording(ctx); ok {
			cs.span.AddEvent("tokenwise.fallback", trace.WithAttributes(attribute.String("tokenwise.from", e.From), attribute.String("tokenwise.to", e.To),
				attribute.String("error.type", errType(e.Err))))
		}
	case middleware.BudgetWarning:
		o.budgetWarnings.Add(ctx, 1, o.counterOpts(countKey{kind: kindBudget, a: e.Scope, b: e.Unit, f: e.Fraction})...)
		if cs, ok := o.recording(ctx); ok {
			cs.span.AddEvent("tokenwise.budget.warning", trace.WithAttributes(attribute.String("tokenwise.budget.scope", e.Scope), attribute.String("tokenwise.budget.unit", e.Unit),
				attribute.Float64("tokenwise.budget.fraction", e.Fraction), attribute.Int64("tokenwise.budget.limit", e.Limit), attribute.Int64("tokenwise.budget.used", e.Used)))
		}
	case middleware.BudgetPace:
		if cs, ok := o.recording(ctx); ok {
			cs.span.AddEvent("tokenwise.budget.pace", trace.WithAttributes(attribute.String("tokenwise.budget.scope", e.Scope), attribute.String("tokenwise.budget.unit", e.Unit),
				attribute.Int64("tokenwise.budget.limit", e.Limit), attribute.Int64("tokenwise.budget.used", e.Used),
				attribute.Int64("tokenwise.budget.projected", e.Projected), attribute.String("tokenwise.budget.runs_out_at", e.RunsOutAt.UTC().Format(time.RFC3339))))
		}
	case middleware.BudgetExceeded:
		if cs, ok := o.recording(ctx); ok {
			cs.span.AddEvent("tokenwise.budget.exceeded", trace.WithAttributes(attribute.String("tokenwise.budget.scope", e.Scope), attribute.String("tokenwise.budget.action", e.Action),
				attribute.Int64("tokenwise.budget.limit", e.Limit), attribute.Int64("tokenwise.budget.need", e.Need)))
		}
	case middleware.CacheLookup:
		o.cacheLookups.Add(ctx, 1, o.counterOpts(countKey{kind: kindLookup, a: string(e.Status)})...)
		if e.Status == middleware.CacheHit && e.SavedPico > 0 {
			o.cacheSaved.Add(ctx, e.SavedPico, o.counterOpts(countKey{kind: kindSaved, a: e.Model})...)
		}
		if cs, ok := o.recording(ctx); ok {
			cs.span.AddEvent("tokenwise.cache.lookup", trace.WithAttributes(attribute.String("tokenwise.cache.status", string(e.Status)),
				attribute.String("tokenwise.cache.reason", e.Reason), attribute.Int64("tokenwise.cache.saved_usd_pico", e.SavedPico)))
		}
	case middleware.BreakerChanged:
		o.breakerChange.Add(ctx, 1, o.counterOpts(countKey{kind: kindBreaker, a: e.Model, b: e.To})...)
		if cs, ok := o.recording(ctx); ok {
			cs.span.AddEvent("tokenwise.breaker.changed", trace.WithAttributes(attribute.String("gen_ai.request.model", e.Model),
				attribute.String("tokenwise.breaker.from", e.From), attribute.String("tokenwise.breaker.to", e.To)))
		}
	case middleware.RateLimited:
		o.rateAdmissions.Add(ctx, 1, o.counterOpts(countKey{kind: kindRate, a: e.Model, b: e.Action, c: e.Limit})...)
		if e.Action == "admitted" {
			o.rateWait.Record(ctx, e.Wait.Seconds(), o.recordOpts(countKey{kind: kindRateWait, a: e.Model})...)
		}
		if cs, ok := o.recording(ctx); ok && (e.Action != "admitted" || e.Wait > 0) {
			cs.span.AddEvent("tokenwise.ratelimit", trace.WithAttributes(attribute.String("gen_ai.request.model", e.Model),
				attribute.String("tokenwise.ratelimit.action", e.Action), attribute.String("tokenwise.ratelimit.limit", e.Limit),
				attribute.String("tokenwise.wait", e.Wait.String())))
		}
	case middleware.ProviderLimits:
		if e.RemainingRequests >= 0 {
			o.rateRemaining.Record(ctx, e.RemainingRequests, o.recordOpts(countKey{kind: kindRemaining, a: e.Model, b: "requests"})...)
		}
		if e.RemainingTokens >= 0 {
			o.rateRemaining.Record(ctx, e.RemainingTokens, o.recordOpts(countKey{kind: kindRemaining, a: e.Model, b: "tokens"})...)
		}
	case middleware.RouteDecided:
		o.routeDecisions.Add(ctx, 1, o.counterOpts(countKey{kind: kindRoute, a: e.From, b: e.To, c: string(e.Stage)})...)
		if cs, ok := o.recording(ctx); ok {
			cs.span.AddEvent("tokenwise.route", trace.WithAttributes(attribute.String("tokenwise.from", e.From), attribute.String("tokenwise.to", e.To),
				attribute.String("tokenwise.rule", e.Rule)))
		}
	}
}

// start opens the call span. Only recorded spans are remembered: events
// and attempt spans of an unsampled call cost nothing.
func (o *Observer) start(ctx context.Context, e middleware.CallStarted) {
	if o.noSpans {
		return // a no-op span never records: nothing to remember
	}
	ci := middleware.CallInfoFrom(ctx)
	if ci == nil {
		return
	}
	parent := ctx
	if outer := ci.Outer(); outer != nil {
		// A layer's own call (a compaction's summary) is a child of the
		// call it serves, whose span this observer keeps.
		o.mu.Lock()
		ocs, ok := o.spans[outer]
		o.mu.Unlock()
		if ok {
			parent = trace.ContextWithSpan(ctx, ocs.span)
		}
	}
	st := o.spanStart(e.Model)
	sctx, span := o.tracer.Start(parent, st.name, st.kind, st.attrs, trace.WithTimestamp(e.Time))
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(attribute.String("tokenwise.team", e.Team), attribute.String("tokenwise.run", e.Run),
		attribute.Int("tokenwise.seq", e.Seq), attribute.Bool("tokenwise.stream", e.Stream))
	o.mu.Lock()
	o.spans[ci] = callSpan{span: span, ctx: sctx, start: e.Time}
	o.mu.Unlock()
}

// recording returns the recorded span of the call in ctx, if any.
func (o *Observer) recording(ctx context.Context) (callSpan, bool) {
	if o.noSpans {
		return callSpan{}, false // start remembered none
	}
	ci := middleware.CallInfoFrom(ctx)
	if ci == nil {
		return callSpan{}, false
	}
	o.mu.Lock()
	cs, ok := o.spans[ci]
	o.mu.Unlock()
	return cs, ok
}

func (o *Observer) finish(ctx context.Context, ci *middleware.CallInfo, e middleware.CallFinished) {
	f := &e.Facts
	var et string
	if e.Err != nil {
		et = errType(e.Err)
	}
	co := o.callOpts(callKey{op: f.Operation, requested: f.RequestedModel, model: f.Model, errType: et})
	o.duration.Record(ctx, e.Latency.Seconds(), co.duration...)
	switch {
	case len(f.Attempts) > 0:
		o.attemptTokens(ctx, f, et)
	case !e.Usage.IsZero():
		o.tokens.Record(ctx, float64(e.Usage.InputTokens), co.input...)
		o.tokens.Record(ctx, float64(e.Usage.OutputTokens), co.output...)
	}
	if len(f.Attempts) > 0 {
		// Each attempt under the model that billed it (a fallback's
		// failed but billed attempt, a cascade's rejected answer): the
		// call's cost is their sum (see middleware.Meter).
		for i := range f.Attempts {
			if a := &f.Attempts[i]; a.CostPico > 0 {
				o.cost.Add(ctx, a.CostPico, o.counterOpts(countKey{kind: kindCost, a: a.Model, b: f.Team})...)
			}
		}
	} else if f.CostPico > 0 {
		o.cost.Add(ctx, f.CostPico, o.counterOpts(countKey{kind: kindCost, a: f.Model, b: f.Team})...)
	}
	if f.RoutingSavedPico != 0 {
		o.routeSaved.Add(ctx, f.RoutingSavedPico, o.counterOpts(countKey{kind: kindRouteSaved, a: f.RequestedModel, b: f.Team})...)
	}
	if ci == nil || o.noSpans {
		return
	}
	o.mu.Lock()
	cs, ok := o.spans[ci]
	if ok {
		delete(o.spans, ci)
	}
	o.mu.Unlock()
	if !ok {
		return
	}
	// Attempts (one span each when a call made more than one: retries,
	// fallbacks, hedges, cascades) span from when they were sent; one whose
	// start is unknown follows the one before from the call's start, or
	// starts alongside it when hedged.
	at := cs.start
	var prevStart time.Time
	attempts := f.Attempts
	if len(attempts) == 1 {
		attempts = nil
	}
	for i, a := range attempts {
		start := at
		switch {
		case !a.Start.IsZero():
			start = a.Start
		case a.Hedge && i > 0:
			start = prevStart
		}
		_, as := o.tracer.Start(cs.ctx, "attempt "+a.Model, trace.WithSpanKind(trace.SpanKindClient), trace.WithTimestamp(start),
			trace.WithAttributes(attribute.String("gen_ai.request.model", a.Model), attribute.Int("tokenwise.attempt", i+1), attribute.Bool("tokenwise.hedge", a.Hedge),
				attribute.Int64("gen_ai.usage.input_tokens", a.Usage.InputTokens), attribute.Int64("gen_ai.usage.output_tokens", a.Usage.OutputTokens),
				attribute.Int64("tokenwise.cost_usd_pico", a.CostPico)))
		if a.Estimated {
			as.SetAttributes(attribute.Bool("tokenwise.usage.estimated", true))
		}
		if a.Err != nil {
			as.SetStatus(codes.Error, a.Err.Error())
			as.SetAttributes(attribute.String("error.type", errType(a.Err)))
		}
		as.End(trace.WithTimestamp(start.Add(a.Latency)))
		prevStart = start
		if !a.Hedge {
			at = start.Add(a.Latency)
		}
	}
	cs.span.SetAttributes(attribute.String("gen_ai.response.model", f.Model),
		attribute.Int64("gen_ai.usage.input_tokens", e.Usage.InputTokens), attribute.Int64("gen_ai.usage.output_tokens", e.Usage.OutputTokens),
		attribute.String("tokenwise.stage", string(f.Stage)), attribute.String("tokenwise.rule", f.Rule), attribute.String("tokenwise.cache", string(f.Cache)),
		attribute.Int64("tokenwise.cost_usd_pico", f.CostPico), attribute.Int64("tokenwise.saved_usd_pico", f.SavedPico),
		attribute.Int64("tokenwise.routing_saved_usd_pico", f.RoutingSavedPico))
	if f.UsageEstimated() {
		// The usage and cost are, in part, an estimate: the provider
		// reported no usage for an attempt.
		cs.span.SetAttributes(attribute.Bool("tokenwise.usage.estimated", true))
	}
	if e.Err != nil {
		cs.span.SetStatus(codes.Error, e.Err.Error())
		cs.span.SetAttributes(attribute.String("error.type", et))
	}
	cs.span.End(trace.WithTimestamp(cs.start.Add(e.Latency)))
}

// attemptTokens records the tokens of a call's attempts under the models
// that used them (a fallback's billed failure under its own model, as
// tokenwise.cost and the run's totals per model): one record per model
// and token type, so that a call on one model is one record, as the
// GenAI conventions measure an operation.
func (o *Observer) attemptTokens(ctx context.Context, f *middleware.CallFacts, et string) {
	type modelUsage struct {
		model string
		u     middleware.Usage
	}
	var buf [4]modelUsage
	per := buf[:0]
next:
	for i := range f.Attempts {
		a := &f.Attempts[i]
		if a.Usage.IsZero() {
			continue
		}
		for j := range per {
			if per[j].model == a.Model {
				per[j].u = per[j].u.Add(a.Usage)
				continue next
			}
		}
		per = append(per, modelUsage{a.Model, a.Usage})
	}
	for _, m := range per {
		co := o.callOpts(callKey{op: f.Operation, requested: f.RequestedModel, model: m.model, errType: et})
		o.tokens.Record(ctx, float64(m.u.InputTokens), co.input...)
		o.tokens.Record(ctx, float64(m.u.OutputTokens), co.output...)
	}
}

// errType names an error's class of the tokenwise taxonomy (error.type).
func errType(err error) string {
	if err == nil {
		return ""
	}
	for _, k := range []struct {
		err  error
		name string
	}{
		{middleware.ErrRateLimited, "rate_limited"}, {middleware.ErrQuotaExceeded, "quota_exceeded"},
		{middleware.ErrUnavailable, "unavailable"}, {middleware.ErrContextWindow, "context_window"},
		{middleware.ErrContentFilter, "content_filter"}, {middleware.ErrAuth, "auth"},
		{middleware.ErrBadRequest, "bad_request"}, {middleware.ErrTimeout, "timeout"}, {middleware.ErrBudget, "budget"},
		{middleware.ErrNetwork, "network"}, {middleware.ErrMalformed, "malformed"}, {middleware.ErrStreamCut, "stream_cut"},
		{context.Canceled, "canceled"},
	} {
		if errors.Is(err, k.err) {
			return k.name
		}
	}
	return "_OTHER"
}
