package middlewaretest_test

import (
	"context"
	"fmt"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

func ExampleOf() {
	var rec middlewaretest.Recorder
	ctx := middleware.WithObserver(context.Background(), &rec)
	middleware.Emit(ctx, middleware.Retrying{Model: "gpt-4o", Attempt: 1})
	middleware.Emit(ctx, middleware.FellBack{From: "gpt-4o", To: "gpt-4o-mini"})
	for _, f := range middlewaretest.Of[middleware.FellBack](&rec) {
		fmt.Println(f.From, "->", f.To)
	}
	fmt.Println(len(rec.Events()), "events")
	// Output:
	// gpt-4o -> gpt-4o-mini
	// 2 events
}
