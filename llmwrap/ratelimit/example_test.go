package ratelimit_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/ratelimit"
	"github.com/tokenwise/tokenwise/middleware"
)

// A limiter used without a chain: 60 requests a minute with a second of
// burst admit one call at once; the next is refused with the time to wait.
func ExampleLimiter_Reserve() {
	l, err := ratelimit.New(ratelimit.Config{
		Models:  map[string]ratelimit.ModelLimit{"gpt-4o": {RPM: 60}},
		OnLimit: ratelimit.OnLimitReject,
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	for i := range 2 {
		t, err := l.Reserve(ctx, "gpt-4o", "sre", 0)
		if err != nil {
			wait, _ := middleware.RetryAfter(err)
			fmt.Printf("call %d refused: %v, retry in about %s\n", i+1, errors.Is(err, middleware.ErrRateLimited), wait.Round(time.Second))
			continue
		}
		fmt.Printf("call %d admitted\n", i+1)
		t.Done(ctx, -1, 1) // after the call: tokens used (-1: unknown), requests made
	}
	// Output:
	// call 1 admitted
	// call 2 refused: true, retry in about 1s
}
