package llmwrap_test

import (
	"context"

	"github.com/tokenwise/tokenwise/middleware"
)

func middlewareRun() (context.Context, *middleware.Run) {
	return middleware.StartRun(context.Background(), "test-run")
}
