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
// policy's chain per call, around a model that answers at once, with a
// one-message request (the cache key and the token estimate, which grow
// with the request, cost little):
//   - chain=raw: the model alone;
//   - chain=default: a cache miss every call (new contents);
//   - chain=nocache-repeat: the cache off and the same request every call,
//     so that the estimator's memo answers: what the other layers cost.
func BenchmarkDefaultChainSmallRequest(b *testing.B) {
	model := middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
		return &middleware.Response{ID: "chatcmpl-1", Model: req.Model, FinishReason: "stop",
			Message: middleware.Message{Role: middleware.RoleAssistant, Content: "The disk is fine."},
			Usage:   middleware.Usage{InputTokens: 12, OutputTokens: 5}}, nil
	})
	for _, chain := range []string{"raw", "default", "nocache-repeat"} {
		b.Run("chain="+chain, func(b *testing.B) {
			var h middleware.Handler = model
			p := policies.Default()
			if chain == "nocache-repeat" {
				p.Cache.Enabled = false
			}
			if chain != "raw" {
				h = llmwrap.MustBuild(p, llmwrap.WithLogger(slog.New(slog.DiscardHandler)))(model)
			}
			reqs := make([]*middleware.Request, 4096)
			for i := range reqs {
				reqs[i] = &middleware.Request{Model: "gpt-4o-mini", Messages: []middleware.Message{
					{Role: middleware.RoleUser, Content: "How full is the disk of web-" + strconv.Itoa(i) + "?"}}}
			}
			if chain == "nocache-repeat" {
				reqs = reqs[:1]
			}
			ctx := context.Background()
			// Vocabularies load once per process: not in the loop.
			if _, err := h.Handle(ctx, reqs[0]); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			start, ok := cpuNanos()
			n := 0
			for b.Loop() {
				req := reqs[n%len(reqs)]
				if chain == "default" && n%len(reqs) == 0 && n > 0 { // new contents: a miss every call
					for i := range reqs {
						reqs[i].Messages[0].Content = "How full is the disk of web-" + strconv.Itoa(n+i) + "?"
					}
				}
				if _, err := h.Handle(ctx, req); err != nil {
					b.Fatal(err)
				}
				n++
			}
			if end, ok2 := cpuNanos(); ok && ok2 && b.N > 0 {
				b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}
