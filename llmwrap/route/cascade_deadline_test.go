package route_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/route"
	"github.com/tokenwise/tokenwise/middleware"
)

// A cascade whose cheap model's answer is rejected by a check as the
// call's deadline passes sends no request to the next model: it would go
// out, and be billed, at the deadline. The deadline's timer fires at that
// instant too, and its goroutine may not have run yet when the check
// returns, so each round plays the race once more.
func TestCascadeDoesNotEscalateARejectedDraftAtTheCallsDeadline(t *testing.T) {
	t.Parallel()
	synctest.Test(t, func(t *testing.T) {
		var deadline time.Time
		slowReject := func(*middleware.Request, *middleware.Response) error {
			time.Sleep(time.Until(deadline)) // the check ends at the deadline
			return errors.New("too short")
		}
		rt, err := route.New(route.Config{Cascade: route.Cascade{Models: []string{"gpt-4o-mini", "gpt-4o"}, Checks: []route.CheckName{}}},
			route.WithCheck("slow", slowReject))
		if err != nil {
			t.Fatal(err)
		}
		for round := range 200 {
			var mu sync.Mutex
			var sent []string
			h := rt.Middleware()(middleware.HandlerFunc(func(ctx context.Context, req *middleware.Request) (*middleware.Response, error) {
				mu.Lock()
				sent = append(sent, req.Model)
				mu.Unlock()
				return &middleware.Response{Model: req.Model, FinishReason: "stop", Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}, nil
			}))
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			deadline, _ = ctx.Deadline()
			_, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini",
				Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "check the disk"}}})
			cancel()
			if len(sent) != 1 || sent[0] != "gpt-4o-mini" {
				t.Fatalf("round %d: models sent %v, want only gpt-4o-mini: no step is sent at the call's deadline", round, sent)
			}
			var rej *route.RejectedError
			if !errors.As(err, &rej) || !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("round %d: err %v, want the draft's rejection and the deadline", round, err)
			}
		}
	})
}
