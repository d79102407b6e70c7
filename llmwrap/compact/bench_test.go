package compact_test

import (
	"context"
	"fmt"
	"sync"
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
	mw, _ := mwOf(compact.New(compact.Config{MaxInputTokens: 100_000, Strategies: []compact.Strategy{compact.Drop}}, compact.WithEstimator(est)))
	h := middleware.Then(middleware.HandlerFunc(nop), mw)
	msgs := fiftyMessages()
	ctx, _ := middleware.StartRun(context.Background(), "bench")
	// The agent's earlier calls counted these messages: warm the memo
	// outside the measurement, which is the steady state of the loop.
	if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
		b.Fatal(err)
	}
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

// stableOffloader writes the excerpt of a content once and returns the
// same excerpt (the same strings) ever after, like a content-addressed
// artifact store, or an agent loop in which every excerpt was written, and
// counted, by the call that first offloaded its result.
type stableOffloader struct {
	memOffloader
	mu    sync.Mutex
	known map[string]string
}

func (o *stableOffloader) Offload(ctx context.Context, run, tool, content string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if e, ok := o.known[content]; ok {
		return e, nil
	}
	e, err := o.memOffloader.Offload(ctx, "stable", tool, content)
	if o.known == nil {
		o.known = map[string]string{}
	}
	o.known[content] = e
	return e, err
}

// Compacting a 50-message request: a fresh run every time, so that the
// blocks are formed (offload then drop), not reused. "new excerpts": the
// offloader writes new artifact ids every time, so the estimate tokenises
// about 24 new excerpts (some 6 KB of new text) per iteration: that is the
// tokenizer's cost of text nobody counted before, which any exact estimate
// of the request sent pays once (the layers below reuse the per-message
// memo). "known excerpts": the excerpts were written and counted before, so
// this is the compactor's own cost.
func BenchmarkCompact50(b *testing.B) {
	for _, est := range []compact.Estimator{tokens.New(), compact.Approx{}} {
		for _, tc := range []struct {
			name string
			off  func() compact.Offloader
		}{
			{"new_excerpts", func() compact.Offloader { return &memOffloader{} }},
			{"known_excerpts", func() compact.Offloader { return &stableOffloader{} }},
		} {
			b.Run(fmt.Sprintf("%T/%s", est, tc.name), func(b *testing.B) {
				benchCompact(b, est, tc.off())
			})
		}
	}
}

func benchCompact(b *testing.B, est compact.Estimator, off compact.Offloader) {
	mw, _ := mwOf(compact.New(compact.Config{MaxInputTokens: 8_000, KeepLastTurns: 2, BlockSize: 4,
		Strategies: []compact.Strategy{compact.Offload, compact.Drop}}, compact.WithEstimator(est), compact.WithOffloader(off)))
	h := middleware.Then(middleware.HandlerFunc(nop), mw)
	msgs := fiftyMessages()
	// Warm up outside the measurement: the conversation's messages were
	// counted by the agent's earlier calls.
	ctx, _ := middleware.StartRun(context.Background(), "warm")
	if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		ctx, _ := middleware.StartRun(context.Background(), "bench")
		if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
			b.Fatal(err)
		}
	}
}

// Sending a 50-message request whose compacted prefix is already frozen in
// the run (the steady state of an agent loop).
func BenchmarkFrozen50(b *testing.B) {
	mw, _ := mwOf(compact.New(compact.Config{MaxInputTokens: 8_000, KeepLastTurns: 2, BlockSize: 4,
		Strategies: []compact.Strategy{compact.Offload, compact.Drop}}, compact.WithEstimator(tokens.New()), compact.WithOffloader(&memOffloader{})))
	h := middleware.Then(middleware.HandlerFunc(nop), mw)
	msgs := fiftyMessages()
	ctx, _ := middleware.StartRun(context.Background(), "bench")
	// The first call forms the blocks; the loop measures the calls after.
	if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
			b.Fatal(err)
		}
	}
}
