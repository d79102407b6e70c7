package llmwrap

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

func guardLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	l := guardConfig(p)
	g, err := guard.New(l)
	if err != nil {
		return nil, err
	}
	limits := runLimits(p, l)
	if limits == "" {
		return g.Middleware(), nil
	}
	return middleware.Chain(runlessNotice(o.logger, limits), g.Middleware()), nil
}

// runLimits describes the policy's run-scoped limits, "" when it has none.
func runLimits(p *policies.Policy, l guard.Config) string {
	var parts []string
	if l.MaxCalls > 0 {
		parts = append(parts, fmt.Sprintf("max_calls %d", l.MaxCalls))
	}
	if l.RunTimeout > 0 {
		parts = append(parts, "run_timeout "+policies.Duration(l.RunTimeout).String())
	}
	if r := p.Budget.Run; r.MaxUSD > 0 || r.MaxTokens > 0 {
		parts = append(parts, "budget.run")
	}
	return strings.Join(parts, ", ")
}

// runlessNotice logs once per chain that a call was made outside a run
// while the policy sets run limits: they apply only to calls made with
// the context of middleware.StartRun, and nothing else would say so.
func runlessNotice(logger *slog.Logger, limits string) middleware.Middleware {
	if logger == nil {
		logger = slog.Default()
	}
	var once sync.Once
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			if middleware.RunFrom(ctx) == nil {
				once.Do(func() {
					logger.Warn("tokenwise: a call outside a run: the policy's run limits ("+limits+") apply only to calls made with the context of middleware.StartRun",
						"model", req.Model, "team", middleware.TeamFrom(ctx))
				})
			}
			return next.Handle(ctx, req)
		})
	}
}
