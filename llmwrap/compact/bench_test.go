package compact_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

// fiftyMessages is a 50-message agent conversation (system, task, 24 tool
// turns) of about 26k tokens.
func fiftyMessages() []middleware.Message { return conversation(24, 1, 4_000) }

var okResp = &middleware.Response{Message: middleware.Message{Role: middleware.RoleAssistant, Content: "ok"}}

func nop(context.Context, *middleware.Request) (*middleware.Response, error) { return okResp, nil }

func benchFits(b *testing.B, est compact.Estimator) {
	mw, _ := compact.New(compact.Config{MaxInputTokens: 100_000, Strategies: []compact.Strategy{compact.Drop}}, compact.WithEstimator(est))
	h := middleware.Then(middleware.HandlerFunc(nop), mw)
	msgs := fiftyMessages()
	ctx, _ := middleware.StartRun(context.Background(), "bench")
	b.ReportAllocs()
	for b.Loop() {
		// A new request every time, as an agent sends: the estimator's
		// per-message memo makes the estimate incremental.
		if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
			b.Fatal(err)
		}
	}
}

// Deciding that a 50-message request already fits.
func BenchmarkFits50(b *testing.B) {
	b.Run("tokens", func(b *testing.B) { benchFits(b, tokens.New()) })
	b.Run("approx", func(b *testing.B) { benchFits(b, compact.Approx{}) })
}

// Compacting a 50-message request: a fresh run every time, so that the
// blocks are formed (offload then drop), not reused.
func BenchmarkCompact50(b *testing.B) {
	for _, est := range []compact.Estimator{tokens.New(), compact.Approx{}} {
		b.Run(fmt.Sprintf("%T", est), func(b *testing.B) {
			mw, _ := compact.New(compact.Config{MaxInputTokens: 8_000, KeepLastTurns: 2, BlockSize: 4,
				Strategies: []compact.Strategy{compact.Offload, compact.Drop}}, compact.WithEstimator(est), compact.WithOffloader(&memOffloader{}))
			h := middleware.Then(middleware.HandlerFunc(nop), mw)
			msgs := fiftyMessages()
			b.ReportAllocs()
			for b.Loop() {
				ctx, _ := middleware.StartRun(context.Background(), "bench")
				if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// Sending a 50-message request whose compacted prefix is already frozen in
// the run (the steady state of an agent loop).
func BenchmarkFrozen50(b *testing.B) {
	mw, _ := compact.New(compact.Config{MaxInputTokens: 8_000, KeepLastTurns: 2, BlockSize: 4,
		Strategies: []compact.Strategy{compact.Offload, compact.Drop}}, compact.WithEstimator(tokens.New()), compact.WithOffloader(&memOffloader{}))
	h := middleware.Then(middleware.HandlerFunc(nop), mw)
	msgs := fiftyMessages()
	ctx, _ := middleware.StartRun(context.Background(), "bench")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
			b.Fatal(err)
		}
	}
}
