package budget_test

import (
	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/policies"
)

// newBudget builds the budget of a policy's budget section the way
// llmwrap.Build does (its mapping is table-tested in package llmwrap):
// these tests state their budgets as policies because the policies'
// model catalog prices the calls.
func newBudget(p *policies.Policy, opts ...budget.Option) (*budget.Budget, error) {
	return llmwrap.NewBudget(p, opts...)
}
