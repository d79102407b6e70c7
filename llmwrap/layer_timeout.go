package llmwrap

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// timeoutLayer bounds each attempt (timeouts.call, first_token, idle) by
// the limits of the attempt's model: it is the innermost layer, so a
// call's model there is the one routing, the cascade or a fallback picked.
//
// When a model's total is shorter than another's (gpt-4o's 60s, o3's 10m),
// the call's total may be extended by its attempts (see totalLayer): each
// attempt extends it to its own model's total, from the call's start,
// when that is longer, so that a gpt-4o call a rule routes to o3, or that
// falls back to it, is bounded by o3's total, not cut at gpt-4o's.
func timeoutLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	if extendableTotals(p.Timeouts) {
		return perModel(p, (*timeout.Timeout).ExtendingMiddleware)
	}
	return perModel(p, (*timeout.Timeout).Middleware)
}

// longestTotal returns the longest total of any model: timeouts.total or
// an entry's of timeouts.models, as Timeouts.For resolves it.
func longestTotal(t policies.Timeouts) policies.Duration {
	longest := t.Total
	for _, m := range t.Models {
		longest = max(longest, m.Over(t).Total)
	}
	return longest
}

// extendableTotals reports whether a call's total may be extended by an
// attempt of another model: some model has a total (not none) shorter
// than another's.
func extendableTotals(t policies.Timeouts) bool {
	longest := longestTotal(t)
	if t.Total > 0 && t.Total < longest {
		return true
	}
	for _, m := range t.Models {
		if tt := m.Over(t).Total; tt > 0 && tt < longest {
			return true
		}
	}
	return false
}

// perModel builds the middleware pick makes of a timeout layer for the
// policy's timeouts and one for each timeouts.models entry, and returns
// the middleware that hands a call to the one of its model (the first
// entry matching req.Model, else the policy's). It is nil when none sets
// a limit.
func perModel(p *policies.Policy, pick func(*timeout.Timeout) middleware.Middleware) (middleware.Middleware, error) {
	build := func(t policies.Timeouts) (middleware.Middleware, error) {
		l, err := timeout.New(limitsConfig(t))
		if err != nil {
			return nil, err
		}
		return pick(l), nil
	}
	base, err := build(p.Timeouts)
	if err != nil {
		return nil, err
	}
	entries := p.Timeouts.Models
	if len(entries) == 0 {
		return base, nil
	}
	mws := make([]middleware.Middleware, len(entries))
	some := base != nil
	for i, m := range entries {
		// The entry's limits over the policy's, as Timeouts.For resolves
		// a model it matches.
		if mws[i], err = build(m.Over(p.Timeouts)); err != nil {
			return nil, err
		}
		some = some || mws[i] != nil
	}
	if !some {
		return nil, nil
	}
	match := &modelMatch{entries: entries}
	return func(next middleware.Handler) middleware.Handler {
		hs := make([]middleware.Handler, len(mws)+1)
		for i, mw := range mws {
			hs[i] = wrapOrNext(mw, next)
		}
		hs[len(mws)] = wrapOrNext(base, next)
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			return hs[match.index(req.Model)].Handle(ctx, req)
		})
	}, nil
}

// modelMatch finds the timeouts.models entry of a model, remembering up
// to maxResolved names (a model's patterns, a dozen path.Match calls,
// would otherwise run twice per call; a gateway's clients naming ever
// new models cannot grow it past that).
type modelMatch struct {
	entries []policies.ModelTimeouts
	memo    sync.Map // model name -> int
	n       atomic.Int64
}

// index returns the index of the first entry matching model, or
// len(entries) when none does.
func (m *modelMatch) index(model string) int {
	if v, ok := m.memo.Load(model); ok {
		return v.(int)
	}
	i := policies.Timeouts{Models: m.entries}.Entry(model)
	if i < 0 {
		i = len(m.entries)
	}
	if m.n.Load() < maxResolved {
		// The name may be a piece of a large request body: keep a copy.
		if _, loaded := m.memo.LoadOrStore(strings.Clone(model), i); !loaded {
			m.n.Add(1)
		}
	}
	return i
}

func wrapOrNext(mw middleware.Middleware, next middleware.Handler) middleware.Handler {
	if mw == nil {
		return next
	}
	return mw(next)
}
