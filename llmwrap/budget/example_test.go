package budget_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/tokenwise/tokenwise/llmwrap/budget"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

func Example() {
	p := &policies.Policy{Version: 1, Name: "devops", Budget: policies.Budget{
		Request: policies.RequestBudget{MaxOutputTokens: 100},
		Team:    policies.TeamBudget{Period: policies.PeriodDaily, MaxUSD: policies.MicroUSD(2_500)},
	}}
	b, _ := budget.New(p, budget.WithLogger(slog.New(slog.DiscardHandler)))
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
	// refused: team:sre $0.001656 used, $0.001028 needed
	// remaining $0.000844
}
