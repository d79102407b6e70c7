package fallback_test

import (
	"context"
	"testing"
	"time"

	"github.com/tokenwise/tokenwise/llmwrap/breaker"
	"github.com/tokenwise/tokenwise/llmwrap/fallback"
	"github.com/tokenwise/tokenwise/llmwrap/retry"
	"github.com/tokenwise/tokenwise/llmwrap/timeout"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
)

// BenchmarkResilienceLayers measures the fallback, breaker, retry and
// timeout layers together around a healthy model that answers at once
// (the provider's own cost excluded).
func BenchmarkResilienceLayers(b *testing.B) {
	answer := &middleware.Response{Model: "gpt-4o", Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"},
		FinishReason: "stop", Usage: middleware.Usage{InputTokens: 10, OutputTokens: 2}}
	healthy := middleware.HandlerFunc(func(ctx context.Context, r *middleware.Request) (*middleware.Response, error) {
		return answer, nil
	})
	layers := map[string]middleware.Middleware{
		"fallback": middlewaretest.Must(fallback.New(fallback.Config{Models: []string{"gpt-4o-mini"}})),
		"breaker":  middlewaretest.Must(breaker.New(breaker.Config{ConsecutiveFailures: 5, FailureRatio: 0.5})),
		"retry":    middlewaretest.Must(retry.New(retry.Config{MaxAttempts: 3})),
		"timeout":  middlewaretest.Must(timeout.New(timeout.Config{Call: 30 * time.Second, FirstToken: 5 * time.Second, Idle: 10 * time.Second})),
	}
	run := func(b *testing.B, h middleware.Handler, stream bool) {
		req := user("How full is the disk?")
		if stream {
			req.Stream = func(context.Context, middleware.Chunk) error { return nil }
		}
		b.ReportAllocs()
		for b.Loop() {
			// a fresh CallInfo per call, as instrument.New makes
			ctx := middleware.WithCallInfo(context.Background(), &middleware.CallInfo{})
			if _, err := h.Handle(ctx, req); err != nil {
				b.Fatal(err)
			}
		}
	}
	all := middleware.Then(healthy, layers["fallback"], layers["breaker"], layers["retry"], layers["timeout"])
	b.Run("baseline", func(b *testing.B) { run(b, healthy, false) }) // the CallInfo and context alone
	b.Run("all4", func(b *testing.B) { run(b, all, false) })
	b.Run("all4-stream", func(b *testing.B) { run(b, all, true) })
	for _, name := range []string{"fallback", "breaker", "retry", "timeout"} {
		b.Run(name, func(b *testing.B) { run(b, layers[name](healthy), false) })
	}
}
