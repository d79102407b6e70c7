package retry_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/middleware"
)

// A provider that is unavailable twice, then answers: the retry layer hides
// the two failures. (Without WithJitter the waits are random.)
func Example() {
	calls := 0
	provider := middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
		calls++
		if calls < 3 {
			return nil, &middleware.ProviderError{Kind: middleware.ErrUnavailable, StatusCode: 503}
		}
		return &middleware.Response{Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
	})
	r, err := retry.New(retry.Config{MaxAttempts: 3, BaseDelay: time.Millisecond},
		retry.WithJitter(func() float64 { return 0 }))
	if err != nil {
		panic(err)
	}
	resp, err := r.Middleware()(provider).Handle(context.Background(), &middleware.Request{Model: "gpt-4o"})
	fmt.Println(resp.Message.Content, err, calls)
	// Output: ok <nil> 3
}
