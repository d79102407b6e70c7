package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

func guardLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	l := guard.Limits{MaxCalls: p.Limits.MaxCalls, RunTimeout: p.Limits.RunTimeout.Duration()}
	// The smaller non-zero value of the two places a policy can set each wins.
	if n := p.Budget.Run.MaxCalls; n > 0 && (l.MaxCalls == 0 || n < l.MaxCalls) {
		l.MaxCalls = n
	}
	if d := p.Budget.Run.MaxWallTime.Duration(); d > 0 && (l.RunTimeout == 0 || d < l.RunTimeout) {
		l.RunTimeout = d
	}
	return guard.New(l), nil
}
