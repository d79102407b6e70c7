package cache_test

import (
	"context"
	"fmt"

	"github.com/tokenwise/tokenwise/llmwrap/cache"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

func Example() {
	calls := 0
	provider := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		calls++
		return &middleware.Response{Model: req.Model, FinishReason: middleware.FinishStop,
			Message: middleware.Message{Role: middleware.RoleAssistant, Content: "Disk at 42%."},
			Usage:   middleware.Usage{InputTokens: 120, OutputTokens: 6}}, nil
	})
	store := cache.NewMemory(cache.MemoryOptions{MaxEntries: 1000, MaxBytes: 64 << 20})
	c, err := cache.New(cache.Config{}, cache.WithStore(store))
	if err != nil {
		panic(err)
	}
	h := middleware.Then(provider, instrument.New(nil, nil), c.Middleware())

	zero := 0.0 // deterministic: cacheable
	req := &middleware.Request{Model: "gpt-4o-mini", Temperature: &zero,
		Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "How full is the disk?"}}}
	ctx, run := middleware.StartRun(context.Background(), "example")
	for range 2 {
		resp, _ := h.Handle(ctx, req)
		fmt.Printf("%s from cache=%v usage=%d\n", resp.Message.Content, resp.FromCache, resp.Usage.Total())
	}
	resp, _ := h.Handle(cache.WithBypass(ctx), req)
	fmt.Printf("bypass: from cache=%v\n", resp.FromCache)
	t := run.Totals()
	fmt.Printf("provider calls: %d, cache hits: %d, saved tokens: %d\n", calls, t.CacheHits, t.Saved.Total())
	// Output:
	// Disk at 42%. from cache=false usage=126
	// Disk at 42%. from cache=true usage=0
	// bypass: from cache=false
	// provider calls: 2, cache hits: 1, saved tokens: 126
}
