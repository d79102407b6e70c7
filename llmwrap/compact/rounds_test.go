package compact_test

import (
	"context"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap/compact"
	"github.com/tokenwise/tokenwise/middleware"
)

// A long conversation (400 tool turns, 801 messages) compacted one turn a
// block needs a round of work (excerpts, a summary) per block: every
// strategy runs over all of them, and the request fits, instead of failing
// as too large with "compaction did not converge" after 256 rounds.
func TestLongConversationIsCompactedWholly(t *testing.T) {
	t.Parallel()
	summariser := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{Model: req.Model, Message: middleware.Message{Role: middleware.RoleAssistant, Content: "checked a log"}}, nil
	})
	msgs := conversation(400, 1, 3000)
	est := compact.Approx{}
	before := est.Request("gpt-4o-mini", &middleware.Request{Messages: msgs})
	for _, s := range []compact.Strategy{compact.Offload, compact.Summarise} {
		rec := &recorder{}
		c, err := compact.New(compact.Config{MaxInputTokens: 40_000, BlockSize: 1, KeepLastTurns: 1, Strategies: []compact.Strategy{s}},
			compact.WithEstimator(est), compact.WithSummariser(summariser), compact.WithOffloader(&memOffloader{}))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := middleware.Then(rec, c.Middleware()).Handle(context.Background(), &middleware.Request{Model: "gpt-4o-mini", Messages: msgs}); err != nil {
			t.Fatalf("%s: %d input tokens, ceiling 40000: %v", s, before, err)
		}
		if n := est.Request("gpt-4o-mini", rec.requests()[0]); n > 40_000 {
			t.Fatalf("%s: sent %d input tokens, ceiling 40000", s, n)
		}
	}
}
