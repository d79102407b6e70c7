package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

func timeoutLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	t := p.Timeouts
	return timeout.New(timeout.Limits{Call: t.Call.Duration(), FirstToken: t.FirstToken.Duration(), Idle: t.Idle.Duration()}), nil
}
