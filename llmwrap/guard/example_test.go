package guard_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/guard"
	"github.com/tokenwise/tokenwise/llmwrap/instrument"
	"github.com/tokenwise/tokenwise/middleware"
)

// The run guard stops an agent loop at its call limit: the third call of
// a run limited to two is refused with a *guard.LimitError, before it
// reaches the provider. Calls outside a run are not limited (a chain built
// by llmwrap logs once when that happens under run limits).
func Example() {
	provider := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model}, nil
	})
	g, err := guard.New(guard.Config{MaxCalls: 2, RunTimeout: 5 * time.Minute})
	if err != nil {
		panic(err)
	}
	h := middleware.Then(provider, instrument.New(nil, nil), g.Middleware())

	ctx, run := middleware.StartRun(context.Background(), "ticket-4711")
	for i := 1; i <= 3; i++ {
		_, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o"})
		var le *guard.LimitError
		switch {
		case errors.As(err, &le):
			fmt.Printf("call %d refused: limit %d, matches ErrMaxCalls: %v\n", i, le.Limit, errors.Is(err, guard.ErrMaxCalls))
		case err != nil:
			fmt.Println(err)
		default:
			fmt.Printf("call %d ok\n", i)
		}
	}
	fmt.Println("recorded:", len(run.Calls()))
	// Output:
	// call 1 ok
	// call 2 ok
	// call 3 refused: limit 2, matches ErrMaxCalls: true
	// recorded: 3
}
