package fallback_test

import (
	"context"
	"fmt"

	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

// gpt-4o is overloaded: the call falls back to gpt-4o-mini, and the call's
// facts list both attempts.
func Example() {
	provider := middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
		if r.Model == "gpt-4o" {
			return nil, &middleware.ProviderError{Kind: middleware.ErrUnavailable, Model: r.Model, StatusCode: 503}
		}
		return &middleware.Response{Model: r.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	})
	var facts middleware.CallFacts
	obs := middleware.ObserverFunc(func(_ context.Context, e middleware.Event) {
		if f, ok := e.(middleware.CallFinished); ok {
			facts = f.Facts
		}
	})
	fb, err := fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}})
	if err != nil {
		panic(err)
	}
	h := middleware.Then(provider, instrument.New(nil, obs), fb.Middleware(), middleware.Meter(nil, nil))
	resp, err := h.Handle(context.Background(), &middleware.Request{Model: "gpt-4o"})
	fmt.Println(resp.Message.Content, err)
	for _, a := range facts.Attempts {
		fmt.Println(a.Model, a.Err)
	}
	// Output:
	// ok <nil>
	// gpt-4o tokenwise/middleware: provider unavailable (gpt-4o): HTTP 503
	// gpt-4o-mini <nil>
}
