package llmwrap

import (
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

func timeoutLayer(p *policies.Policy, _ *options) (middleware.Middleware, error) {
	t, err := timeout.New(timeoutConfig(p))
	if err != nil {
		return nil, err
	}
	return t.Middleware(), nil
}
