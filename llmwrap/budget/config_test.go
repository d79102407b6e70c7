package budget_test

import (
	"errors"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
)

func TestBadConfigIsAnError(t *testing.T) {
	t.Parallel()
	for _, cfg := range []budget.Config{
		{Run: budget.Amount{Tokens: -1}},
		{Team: budget.TeamLimit{Limit: budget.Amount{Tokens: 10}}},
		{Team: budget.TeamLimit{Limit: budget.Amount{Tokens: 10}, Period: budget.PeriodRolling}},
		{Team: budget.TeamLimit{Period: "weekly"}},
		{OnExceed: budget.OnExceedDowngrade},
		{OnExceed: "shrug"},
		{OnUnavailable: "ignore"},
		{WarnAt: []float64{0}},
		{LocalFraction: 2},
		{Run: budget.Amount{USDMicros: 1}}, // a USD limit without a Catalog
	} {
		if _, err := budget.New(cfg); !errors.Is(err, budget.ErrConfig) {
			t.Errorf("New(%+v): %v, want ErrConfig", cfg, err)
		}
	}
}

func TestZeroConfigAddsNoLayer(t *testing.T) {
	t.Parallel()
	b, err := budget.New(budget.Config{})
	if err != nil || b.Middleware() != nil {
		t.Fatalf("New(Config{}): %v; a layer: %v", err, b != nil && b.Middleware() != nil)
	}
}
