package middleware_test

import (
	"context"
	"fmt"

	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

func named(name string) middleware.Middleware {
	return func(next middleware.Handler) middleware.Handler {
		return middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
			fmt.Println("enter", name)
			resp, err := next.Handle(ctx, req)
			fmt.Println("leave", name)
			return resp, err
		})
	}
}

// The first middleware given to Chain is the outermost one.
func ExampleChain() {
	provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		fmt.Println("provider", req.Model)
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	})
	h := middleware.Chain(named("guard"), named("cache"), named("budget"))(provider)
	resp, _ := h.Handle(context.Background(), &middleware.Request{Model: "gpt-4o-mini"})
	fmt.Println(resp.Message.Content)
	// Output:
	// enter guard
	// enter cache
	// enter budget
	// provider gpt-4o-mini
	// leave budget
	// leave cache
	// leave guard
	// ok
}

// A run records every call made with its context.
func ExampleStartRun() {
	provider := middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model, FinishReason: "stop",
			Message: middleware.Message{Role: middleware.RoleAssistant, Content: "Disk is 95% full."},
			Usage:   middleware.Usage{InputTokens: 1000, OutputTokens: 100}}, nil
	})
	price := middleware.PricerFunc(func(model string, u middleware.Usage) (int64, bool) {
		// $0.15 per 1M input tokens, $0.60 per 1M output tokens: exact
		// pico-dollars per token.
		return u.InputTokens*150_000 + u.OutputTokens*600_000, true
	})
	h := middleware.Then(provider, instrument.New(price, nil))
	ctx, run := middleware.StartRun(context.Background(), "ticket-1")
	h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "status?"}}})
	t := run.Totals()
	c := run.Calls()[0]
	fmt.Println(c.Seq, c.Model, c.Stage, c.Usage.Total(), middleware.FormatPico(c.CostPico))
	fmt.Println(t.Calls, middleware.FormatPico(t.CostPico))
	// Output:
	// 1 gpt-4o-mini final_answer 1100 $0.00021
	// 1 $0.00021
}
