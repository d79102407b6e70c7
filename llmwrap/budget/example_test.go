package budget_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

// prices is a one-model Catalog: gpt-4o at $2.50 and $10 per million
// input and output tokens (pico-dollars per token). llmwrap.Catalog gives
// the catalog of a policy file.
type prices struct{}

func (prices) Cost(model string, u middleware.Usage) (int64, bool) {
	if model != "gpt-4o" {
		return 0, false
	}
	return u.InputTokens*2_500_000 + u.OutputTokens*10_000_000, true
}

func (prices) Model(name string) (budget.Model, bool) {
	if name != "gpt-4o" {
		return budget.Model{}, false
	}
	return budget.Model{Priced: true, ContextWindow: 128_000, MaxOutputTokens: 16_384, OutputPico: 10_000_000}, true
}

func Example() {
	b, err := budget.New(budget.Config{
		Name:    "devops",
		Request: budget.RequestLimit{MaxOutputTokens: 100},
		Team:    budget.TeamLimit{Period: budget.PeriodDaily, Limit: budget.Amount{USDMicros: 2_500}},
	}, budget.WithCatalog(prices{}), budget.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		panic(err)
	}
	provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		fmt.Println("sent with max_tokens", req.MaxTokens)
		return &middleware.Response{Usage: middleware.Usage{InputTokens: 11, OutputTokens: 80}}, nil
	})
	h := middleware.Then(provider, instrument.New(nil, nil), b.Middleware())
	ctx := middleware.WithTeam(context.Background(), "sre")
	req := &middleware.Request{Model: "gpt-4o", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "Check the disk."}}}
	for range 3 {
		_, err := h.Handle(ctx, req)
		var e *budget.ExceededError
		if errors.As(err, &e) {
			fmt.Println("refused:", e.Scope, middleware.FormatUSD(e.Used), "used,", middleware.FormatUSD(e.Need), "needed")
		}
	}
	rem, _ := b.Remaining(ctx, "sre")
	fmt.Println("remaining", middleware.FormatUSD(rem.Remaining().USDMicros))
	// Output:
	// sent with max_tokens 100
	// sent with max_tokens 100
	// refused: team:sre $0.001655 used, $0.001028 needed
	// remaining $0.000845
}
