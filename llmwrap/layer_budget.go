package llmwrap

import (
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// budgetLayer builds the budget layer. Not built yet: the layer is off.
func budgetLayer(p *policies.Policy, o *options) (middleware.Middleware, error) {
	return nil, nil
}
