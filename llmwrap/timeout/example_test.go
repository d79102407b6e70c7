package timeout_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
)

// A provider that never answers hits the call timeout; the error matches
// the package's sentinel and context.DeadlineExceeded.
func Example() {
	stuck := middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	t, err := timeout.New(timeout.Config{Call: 10 * time.Millisecond})
	if err != nil {
		panic(err)
	}
	h := t.Middleware()(stuck)
	_, err = h.Handle(context.Background(), &middleware.Request{Model: "gpt-4o"})
	fmt.Println(errors.Is(err, timeout.ErrCall), errors.Is(err, context.DeadlineExceeded))
	fmt.Println(err)
	// Output:
	// true true
	// tokenwise/timeout: call timed out after 10ms
}
