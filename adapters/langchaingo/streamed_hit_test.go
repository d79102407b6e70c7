package langchaingo_test

import (
	"context"
	"strings"
	"testing"

	"github.com/tmc/langchaingo/llms"

	twlc "github.com/tokenwise/tokenwise/adapters/langchaingo"
	"github.com/tokenwise/tokenwise/adapters/openai/openaitest"
	"github.com/tokenwise/tokenwise/llmwrap/cache"
)

// TestStreamedHitRepeatsTheTextInTheCachesPieces pins the documented
// difference between a streamed answer and its replay from the cache (see
// the package doc, Streaming): a streaming caller served from the cache
// gets the same text, in the cache's own pieces (at most
// cache.Config.ReplayChunk bytes each, none empty), not in the chunks the
// first call delivered (their boundaries and the backend's empty role and
// finish chunks are not kept with a stored answer).
func TestStreamedHitRepeatsTheTextInTheCachesPieces(t *testing.T) {
	const answer = "The disk is 42% full, and /var holds most of it."
	srv := openaitest.NewServer(t)
	srv.On().Reply(openaitest.Reply{Content: answer, ChunkSize: 6})
	c, err := cache.New(cache.Config{ReplayChunk: 8})
	if err != nil {
		t.Fatal(err)
	}
	llm := twlc.New(twlc.Models{"gpt-4o": newOpenAI(t, srv, "gpt-4o", false)}, c.Middleware())
	call := func() []string {
		var chunks []string
		resp, err := llm.GenerateContent(t.Context(), []llms.MessageContent{human("How full is the disk?")},
			llms.WithStreamingFunc(func(_ context.Context, b []byte) error { chunks = append(chunks, string(b)); return nil }))
		if err != nil {
			t.Fatal(err)
		}
		if got := resp.Choices[0].Content; got != answer {
			t.Fatalf("answered %q", got)
		}
		return chunks
	}
	first, hit := call(), call()
	if srv.Count() != 1 {
		t.Fatalf("%d provider calls, want 1", srv.Count())
	}
	if a, b := strings.Join(first, ""), strings.Join(hit, ""); a != answer || b != answer {
		t.Fatalf("the first call streamed %q, the hit %q; want %q both", a, b, answer)
	}
	for i, c := range hit {
		if c == "" || len(c) > 8 {
			t.Errorf("the hit's chunk %d is %q: want a piece of 1 to 8 bytes (ReplayChunk)", i, c)
		}
	}
}
