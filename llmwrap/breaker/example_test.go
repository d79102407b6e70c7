package breaker_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/middleware"
)

// Two failures in a row open gpt-4o's breaker: the third call is refused
// without reaching the provider.
func Example() {
	calls := 0
	dead := middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
		calls++
		return nil, &middleware.ProviderError{Kind: middleware.ErrUnavailable, StatusCode: 503}
	})
	set, err := breaker.New(breaker.Config{ConsecutiveFailures: 2})
	if err != nil {
		panic(err)
	}
	h := set.Middleware()(dead)
	for range 3 {
		_, err := h.Handle(context.Background(), &middleware.Request{Model: "gpt-4o"})
		fmt.Println(errors.Is(err, breaker.ErrOpen), set.State("gpt-4o"))
	}
	fmt.Println("provider calls:", calls)
	// Output:
	// false closed
	// false open
	// true open
	// provider calls: 2
}
