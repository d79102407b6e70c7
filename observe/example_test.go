package observe_test

import (
	"context"
	"log/slog"
	"os"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/observe"
)

func ExampleSlog() {
	h := slog.NewTextHandler(os.Stdout, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}})
	obs := observe.NewSlog(slog.New(h))
	obs.Observe(context.Background(), middleware.BudgetWarning{Scope: "run", Unit: "usd_micros", Fraction: 0.8, Limit: 1_000_000, Used: 812_000})
	// Output:
	// level=WARN msg="tokenwise: budget.warning" scope=run unit=usd_micros fraction=0.8 limit=1000000 used=812000
}
