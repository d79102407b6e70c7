package toolwrap_test

import (
	"context"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/toolwrap"
)

// TestNoToolCallAtTheRunsDeadline: a call that returns as the run's
// deadline passes is not followed by the next call of the turn, which
// would start (and act) at the deadline. The run's context timer fires at
// that instant too, and its goroutine may not have run when the first
// call returns, so each round plays the race once more.
func TestNoToolCallAtTheRunsDeadline(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		next string
		side bool
	}{
		{"a tool with side effects", "rollback", true},
		{"a read", "check_disk", false},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				var started atomic.Int32
				ex, err := toolwrap.New([]toolwrap.Tool{
					{Name: "deploy", Meta: toolwrap.Meta{SideEffects: true}, Call: func(ctx context.Context, _ string) (string, error) {
						// Works until the run's deadline, as a tool whose
						// own timeout ends with it.
						if dl, ok := ctx.Deadline(); ok {
							time.Sleep(time.Until(dl))
						}
						return "deployed", nil
					}},
					{Name: c.next, Meta: toolwrap.Meta{SideEffects: c.side}, Call: func(context.Context, string) (string, error) {
						started.Add(1)
						return "done", nil
					}},
				}, toolwrap.Config{RunTimeout: time.Minute})
				if err != nil {
					t.Fatal(err)
				}
				for round := range 200 {
					ctx, _ := middleware.StartRun(context.Background(), "run-deadline")
					_, err := ex.Execute(ctx, calls("deploy", c.next))
					if n := started.Load(); n != 0 {
						t.Fatalf("round %d: %s started at the run's deadline (%d calls); want no call started at it", round, c.next, n)
					}
					if err == nil {
						t.Fatalf("round %d: Execute returned no error at the run's deadline", round)
					}
				}
			})
		})
	}
}
