package otel

import (
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
)

// maxCached bounds each option cache. Keys are made of models, teams,
// statuses and budget scopes, so a deployment has a few dozen; past the
// bound (a caller sending unbounded model names) options are built per call
// and not kept.
const maxCached = 1024

// optCache maps a key to options built once. It is safe for concurrent use.
type optCache[K comparable, V any] struct {
	mu sync.RWMutex
	m  map[K]V
}

func (c *optCache[K, V]) get(o *Observer, k K, build func(*Observer, K) V) V {
	c.mu.RLock()
	v, ok := c.m[k]
	c.mu.RUnlock()
	if ok {
		return v
	}
	v = build(o, k)
	c.mu.Lock()
	if c.m == nil {
		c.m = make(map[K]V)
	}
	if len(c.m) < maxCached {
		c.m[k] = v
	}
	c.mu.Unlock()
	return v
}

// spanStartOpts are the prebuilt options of a call span for one model.
type spanStartOpts struct {
	name        string
	kind, attrs trace.SpanStartOption
}

func buildSpanStart(o *Observer, model string) spanStartOpts {
	return spanStartOpts{
		name: "chat " + model,
		kind: trace.WithSpanKind(trace.SpanKindClient),
		attrs: trace.WithAttributes(attribute.String("gen_ai.operation.name", "chat"), o.system,
			attribute.String("gen_ai.request.model", model)),
	}
}

func (o *Observer) spanStart(model string) spanStartOpts {
	return o.starts.get(o, model, buildSpanStart)
}

// callKey selects the attribute sets of a finished call's metrics.
type callKey struct {
	op, requested, model, errType string
}

// callMetricOpts are the prebuilt record options of a finished call.
type callMetricOpts struct {
	duration, input, output []metric.RecordOption
}

func buildCallOpts(o *Observer, k callKey) callMetricOpts {
	op := k.op
	if op == "" {
		op = "chat"
	}
	base := []attribute.KeyValue{attribute.String("gen_ai.operation.name", op), o.system,
		attribute.String("gen_ai.request.model", k.requested), attribute.String("gen_ai.response.model", k.model)}
	set := func(extra attribute.KeyValue) []metric.RecordOption {
		kv := append(append(make([]attribute.KeyValue, 0, len(base)+1), base...), extra)
		return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
	}
	var c callMetricOpts
	if k.errType != "" {
		c.duration = set(attribute.String("error.type", k.errType))
	} else {
		c.duration = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(base...))}
	}
	c.input = set(attribute.String("gen_ai.token.type", "input"))
	c.output = set(attribute.String("gen_ai.token.type", "output"))
	return c
}

func (o *Observer) callOpts(k callKey) callMetricOpts { return o.calls.get(o, k, buildCallOpts) }

// Kinds of counter keys.
const (
	kindCost uint8 = iota
	kindRetry
	kindFallback
	kindBudget
	kindLookup
	kindSaved
	kindBreaker
	kindRate
	kindRateWait  // a record of tokenwise.ratelimit.wait
	kindRemaining // a record of tokenwise.ratelimit.remaining
	kindRoute
	kindRouteSaved
)

// countKey selects the attribute set of one counter increment.
type countKey struct {
	kind    uint8
	a, b, c string
	f       float64
}

func buildCounterOpts(_ *Observer, k countKey) []metric.AddOption {
	var kv []attribute.KeyValue
	switch k.kind {
	case kindCost:
		kv = []attribute.KeyValue{attribute.String("gen_ai.response.model", k.a), attribute.String("tokenwise.team", k.b)}
	case kindRetry, kindSaved:
		kv = []attribute.KeyValue{attribute.String("gen_ai.request.model", k.a)}
	case kindFallback:
		kv = []attribute.KeyValue{attribute.String("tokenwise.from", k.a), attribute.String("tokenwise.to", k.b)}
	case kindBudget:
		kv = []attribute.KeyValue{attribute.String("tokenwise.budget.scope", k.a), attribute.String("tokenwise.budget.unit", k.b),
			attribute.Float64("tokenwise.budget.fraction", k.f)}
	case kindLookup:
		kv = []attribute.KeyValue{attribute.String("tokenwise.cache.status", k.a)}
	case kindRoute:
		kv = []attribute.KeyValue{attribute.String("tokenwise.from", k.a), attribute.String("tokenwise.to", k.b), attribute.String("tokenwise.stage", k.c)}
	case kindRouteSaved:
		kv = []attribute.KeyValue{attribute.String("gen_ai.request.model", k.a), attribute.String("tokenwise.team", k.b)}
	case kindBreaker:
		kv = []attribute.KeyValue{attribute.String("gen_ai.request.model", k.a), attribute.String("tokenwise.breaker.to", k.b)}
	case kindRate:
		kv = []attribute.KeyValue{attribute.String("gen_ai.request.model", k.a), attribute.String("tokenwise.ratelimit.action", k.b)}
		if k.c != "" {
			kv = append(kv, attribute.String("tokenwise.ratelimit.limit", k.c))
		}
	}
	return []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

func (o *Observer) counterOpts(k countKey) []metric.AddOption {
	return o.counts.get(o, k, buildCounterOpts)
}

func buildRecordOpts(_ *Observer, k countKey) []metric.RecordOption {
	kv := []attribute.KeyValue{attribute.String("gen_ai.request.model", k.a)}
	if k.kind == kindRemaining {
		kv = append(kv, attribute.String("tokenwise.ratelimit.unit", k.b))
	}
	return []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(kv...))}
}

// recordOpts returns the record options of a histogram or gauge whose
// attributes are a countKey's (kindRateWait, kindRemaining).
func (o *Observer) recordOpts(k countKey) []metric.RecordOption {
	return o.records.get(o, k, buildRecordOpts)
}
