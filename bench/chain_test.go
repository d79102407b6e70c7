package bench_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/middleware/middlewaretest"
	"github.com/tokenwise/tokenwise/tokens"
)

// instantModel answers every request at once with the same answer.
var instantModel = middleware.HandlerFunc(func(_ context.Context, req *middleware.Request) (*middleware.Response, error) {
	return &middleware.Response{ID: "chatcmpl-1", Model: req.Model, FinishReason: "stop",
		Message: middleware.Message{Role: middleware.RoleAssistant, Content: answer},
		Usage:   middleware.Usage{InputTokens: 2100, OutputTokens: 20}}, nil
})

// coreAgentRequest is agentRequest(n) as a core request: the same
// messages and tools, as the openai adapter decodes them.
func coreAgentRequest(n int) *middleware.Request {
	return middlewaretest.AgentRequest("Summarise (request "+strconv.Itoa(n)+").", 1)
}

// BenchmarkChainInstantModelMiss: the default policy's full chain around
// a model that answers instantly (no HTTP, no adapter), the 8 KB agent
// request, a cache miss every call; client=raw calls the model alone.
// The difference is what the layers cost per call.
func BenchmarkChainInstantModelMiss(b *testing.B) {
	for _, side := range []string{"raw", "tokenwise"} {
		b.Run("client="+side, func(b *testing.B) {
			var h middleware.Handler = instantModel
			if side == "tokenwise" {
				h = fullPolicy(b)(instantModel)
			}
			reqs := make([]*middleware.Request, 1024)
			for i := range reqs {
				reqs[i] = coreAgentRequest(i)
			}
			ctx := context.Background()
			// Warm up: vocabularies and pools are loaded once per process.
			if _, err := h.Handle(ctx, coreAgentRequest(-1)); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			start, ok := cpuNanos()
			n := 0
			for b.Loop() {
				// Distinct requests (a miss each), built outside the loop.
				req := reqs[n%len(reqs)]
				if n%len(reqs) == 0 && n > 0 {
					for i := range reqs {
						reqs[i].Messages[len(reqs[i].Messages)-1].Content = "Summarise (request " + strconv.Itoa(n+i) + ")."
					}
				}
				resp, err := h.Handle(ctx, req)
				if err != nil || resp.Message.Content != answer {
					b.Fatal(resp, err)
				}
				n++
			}
			if end, ok2 := cpuNanos(); ok && ok2 && b.N > 0 {
				b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
			}
		})
	}
}

// The vocabularies load once per process, on first use: here, before any
// benchmark, rather than in the first one's loop.
func init() {
	e := tokens.New()
	e.Text("gpt-4o", "warm up")
	e.Text("gpt-4", "warm up")
}
