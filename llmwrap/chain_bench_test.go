package llmwrap_test

import (
	"context"
	"log/slog"
	"strconv"
	"testing"

	"github.com/tokenwise/tokenwise/llmwrap"
	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/policies"
)

// BenchmarkDefaultChainSmallRequest is the fixed cost of the default
// policy's chain per call: a one-message request (so that the cache key
// and the token estimate, which grow with the request, cost little), a
// cache miss every call, around a model that answers at once.
// client=raw is the model alone.
func BenchmarkDefaultChainSmallRequest(b *testing.B) {
	model := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{ID: "chatcmpl-1", Model: req.Model, FinishReason: "stop",
			Message: middleware.Message{Role: middleware.RoleAssistant, Content: "The disk is fine."},
			Usage:   middleware.Usage{InputTokens: 12, OutputTokens: 5}}, nil
	})
	for _, side := range []string{"raw", "tokenwise"} {
		b.Run("client="+side, func(b *testing.B) {
			var h middleware.Handler = model
			if side == "tokenwise" {
				h = llmwrap.MustBuild(policies.Default(), llmwrap.WithLogger(slog.New(slog.DiscardHandler)))(model)
			}
			reqs := make([]*middleware.Request, 4096)
			for i := range reqs {
				reqs[i] = &middleware.Request{Model: "gpt-4o-mini", Messages: []middleware.Message{
					{Role: middleware.RoleUser, Content: "How full is the disk of web-" + strconv.Itoa(i) + "?"}}}
			}
			ctx := context.Background()
			// Vocabularies load once per process: not in the loop.
			if _, err := h.Handle(ctx, &middleware.Request{Model: "gpt-4o-mini", Messages: []middleware.Message{{Role: middleware.RoleUser, Content: "warm up"}}}); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			n := 0
			for b.Loop() {
				req := reqs[n%len(reqs)]
				if n%len(reqs) == 0 && n > 0 { // new contents: a miss every call
					for i := range reqs {
						reqs[i].Messages[0].Content = "How full is the disk of web-" + strconv.Itoa(n+i) + "?"
					}
				}
				if _, err := h.Handle(ctx, req); err != nil {
					b.Fatal(err)
				}
				n++
			}
		})
	}
}
